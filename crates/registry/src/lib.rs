//! berth-registry: the OCI distribution API, both sides: a client that pulls and pushes images
//! (auth challenges, docker config credentials) and the `berth registry` server.
