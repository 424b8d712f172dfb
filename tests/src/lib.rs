//! Harness for berth's end-to-end tests: locating the built binary, starting daemons in
//! temporary roots, and building fixture images.

pub mod kube;
