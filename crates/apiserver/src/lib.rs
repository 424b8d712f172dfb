//! berth-apiserver: the Kubernetes API (discovery, OpenAPI, REST verbs, watch, patch and
//! apply, subresources, authentication, table printing, CRDs) over a `berth-store`.

pub mod catalog;
