//! berth-engine: the dockerd role. Containers, images and their state as Docker models,
//! persisted under the daemon's root, served as the Docker Engine API on a unix socket.
