//! The OpenAPI documents: upstream's v1.35 `/openapi/v2` and per-group-version `/openapi/v3`
//! documents (shipped gzipped in `openapi/`, decompressed once on first use), with the
//! schemas of registered CRDs added.

mod custom;

use std::hash::{Hash, Hasher};
use std::io::Read;
use std::sync::OnceLock;

use serde_json::{Map, Value, json};

use super::crd::CrdEntry;

/// Upstream's `/openapi/v2`, minified, gzipped.
const V2_GZ: &[u8] = include_bytes!("../../openapi/v2.json.gz");

/// Upstream's `/openapi/v3/<path>` documents: index path and gzipped document.
const V3_GZ: &[(&str, &[u8])] = &[
    (
        "api/v1",
        include_bytes!("../../openapi/v3/api__v1_openapi.json.gz"),
    ),
    (
        "apis/admissionregistration.k8s.io/v1",
        include_bytes!("../../openapi/v3/apis__admissionregistration.k8s.io__v1_openapi.json.gz"),
    ),
    (
        "apis/apiextensions.k8s.io/v1",
        include_bytes!("../../openapi/v3/apis__apiextensions.k8s.io__v1_openapi.json.gz"),
    ),
    (
        "apis/apps/v1",
        include_bytes!("../../openapi/v3/apis__apps__v1_openapi.json.gz"),
    ),
    (
        "apis/authentication.k8s.io/v1",
        include_bytes!("../../openapi/v3/apis__authentication.k8s.io__v1_openapi.json.gz"),
    ),
    (
        "apis/authorization.k8s.io/v1",
        include_bytes!("../../openapi/v3/apis__authorization.k8s.io__v1_openapi.json.gz"),
    ),
    (
        "apis/autoscaling/v1",
        include_bytes!("../../openapi/v3/apis__autoscaling__v1_openapi.json.gz"),
    ),
    (
        "apis/autoscaling/v2",
        include_bytes!("../../openapi/v3/apis__autoscaling__v2_openapi.json.gz"),
    ),
    (
        "apis/batch/v1",
        include_bytes!("../../openapi/v3/apis__batch__v1_openapi.json.gz"),
    ),
    (
        "apis/certificates.k8s.io/v1",
        include_bytes!("../../openapi/v3/apis__certificates.k8s.io__v1_openapi.json.gz"),
    ),
    (
        "apis/coordination.k8s.io/v1",
        include_bytes!("../../openapi/v3/apis__coordination.k8s.io__v1_openapi.json.gz"),
    ),
    (
        "apis/discovery.k8s.io/v1",
        include_bytes!("../../openapi/v3/apis__discovery.k8s.io__v1_openapi.json.gz"),
    ),
    (
        "apis/events.k8s.io/v1",
        include_bytes!("../../openapi/v3/apis__events.k8s.io__v1_openapi.json.gz"),
    ),
    (
        "apis/networking.k8s.io/v1",
        include_bytes!("../../openapi/v3/apis__networking.k8s.io__v1_openapi.json.gz"),
    ),
    (
        "apis/node.k8s.io/v1",
        include_bytes!("../../openapi/v3/apis__node.k8s.io__v1_openapi.json.gz"),
    ),
    (
        "apis/policy/v1",
        include_bytes!("../../openapi/v3/apis__policy__v1_openapi.json.gz"),
    ),
    (
        "apis/rbac.authorization.k8s.io/v1",
        include_bytes!("../../openapi/v3/apis__rbac.authorization.k8s.io__v1_openapi.json.gz"),
    ),
    (
        "apis/scheduling.k8s.io/v1",
        include_bytes!("../../openapi/v3/apis__scheduling.k8s.io__v1_openapi.json.gz"),
    ),
    (
        "apis/storage.k8s.io/v1",
        include_bytes!("../../openapi/v3/apis__storage.k8s.io__v1_openapi.json.gz"),
    ),
];

/// Decompressed v3 documents, one slot per entry of [`V3_GZ`].
static V3: [OnceLock<Vec<u8>>; V3_GZ.len()] = [const { OnceLock::new() }; V3_GZ.len()];

/// Decompressed `/openapi/v2`.
static V2: OnceLock<Vec<u8>> = OnceLock::new();

fn gunzip(gz: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(gz.len() * 12);
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut out)
        .expect("embedded OpenAPI documents are valid gzip, checked by the unit tests");
    out
}

/// Upstream's `/openapi/v2` document, decompressed once.
pub(super) fn v2() -> &'static [u8] {
    V2.get_or_init(|| gunzip(V2_GZ))
}

/// One built-in v3 document by index path, decompressed once.
fn builtin_v3(path: &str) -> Option<&'static [u8]> {
    let i = V3_GZ.iter().position(|(p, _)| *p == path)?;
    Some(V3[i].get_or_init(|| gunzip(V3_GZ[i].1)))
}

/// A stable hash of a document for the index's `?hash=` (clients cache by it).
fn hash_of(bytes: &[u8]) -> String {
    let mut hasher = std::hash::DefaultHasher::new();
    bytes.hash(&mut hasher);
    format!("{:016X}", hasher.finish())
}

/// Hashes of the built-in documents, computed from the compressed bytes once.
fn builtin_hashes() -> &'static [String] {
    static HASHES: OnceLock<Vec<String>> = OnceLock::new();
    HASHES.get_or_init(|| V3_GZ.iter().map(|(_, gz)| hash_of(gz)).collect())
}

/// `/openapi/v2` with a definition for every served version of every CRD.
pub(super) fn v2_with_crds<'a>(crds: impl Iterator<Item = &'a CrdEntry>) -> Vec<u8> {
    let base = v2();
    let mut extra = Vec::new();
    for crd in crds {
        for (name, definition) in custom::v2_definitions(crd) {
            extra.extend_from_slice(Value::String(name).to_string().as_bytes());
            extra.push(b':');
            extra.extend_from_slice(definition.to_string().as_bytes());
            extra.push(b',');
        }
    }
    // The minified document opens with its definitions (see openapi/regenerate.py), so the
    // CRD definitions go right after that brace without parsing 3 MB of JSON.
    const OPENING: &[u8] = b"{\"definitions\":{";
    if extra.is_empty() || !base.starts_with(OPENING) {
        return base.to_vec();
    }
    let mut out = Vec::with_capacity(base.len() + extra.len());
    out.extend_from_slice(OPENING);
    out.extend_from_slice(&extra);
    out.extend_from_slice(&base[OPENING.len()..]);
    out
}

/// The CRD group versions (`apis/<group>/<version>`) and their generated documents.
fn custom_documents<'a>(crds: impl Iterator<Item = &'a CrdEntry>) -> Vec<(String, Vec<u8>)> {
    let mut by_path: Vec<(String, Vec<&CrdEntry>)> = Vec::new();
    for crd in crds {
        for version in crd.versions.iter().filter(|v| v.served) {
            let path = format!("apis/{}/{}", crd.group, version.name);
            if V3_GZ.iter().any(|(p, _)| *p == path) {
                continue;
            }
            match by_path.iter_mut().find(|(p, _)| *p == path) {
                Some((_, list)) => list.push(crd),
                None => by_path.push((path, vec![crd])),
            }
        }
    }
    by_path.sort_by(|a, b| a.0.cmp(&b.0));
    by_path
        .into_iter()
        .map(|(path, list)| {
            let version = path.rsplit('/').next().unwrap_or_default().to_string();
            let doc = custom::v3_document(&list, &version);
            (path, doc.to_string().into_bytes())
        })
        .collect()
}

/// The `/openapi/v3` index.
pub(super) fn v3_index<'a>(crds: impl Iterator<Item = &'a CrdEntry>) -> Value {
    let mut paths = Map::new();
    for ((path, _), hash) in V3_GZ.iter().zip(builtin_hashes()) {
        let url = format!("/openapi/v3/{path}?hash={hash}");
        paths.insert(path.to_string(), json!({ "serverRelativeURL": url }));
    }
    for (path, doc) in custom_documents(crds) {
        let url = format!("/openapi/v3/{path}?hash={}", hash_of(&doc));
        paths.insert(path, json!({ "serverRelativeURL": url }));
    }
    json!({ "paths": paths })
}

/// One `/openapi/v3/<path>` document; `path` may carry the `?hash=` query.
pub(super) fn v3_document<'a>(
    path: &str,
    crds: impl Iterator<Item = &'a CrdEntry>,
) -> Option<Vec<u8>> {
    let path = path.split('?').next().unwrap_or(path).trim_matches('/');
    if let Some(doc) = builtin_v3(path) {
        return Some(doc.to_vec());
    }
    custom_documents(crds)
        .into_iter()
        .find(|(p, _)| p == path)
        .map(|(_, doc)| doc)
}

/// The `io.k8s.apimachinery` schemas (ObjectMeta, ListMeta, Status...) that CRD documents
/// reference, taken once from upstream's apiextensions document.
pub(super) fn meta_schemas() -> &'static Map<String, Value> {
    static META: OnceLock<Map<String, Value>> = OnceLock::new();
    META.get_or_init(|| {
        let doc = builtin_v3("apis/apiextensions.k8s.io/v1").unwrap_or_default();
        let doc: Value = serde_json::from_slice(doc).unwrap_or_default();
        doc.pointer("/components/schemas")
            .and_then(Value::as_object)
            .map(|schemas| {
                schemas
                    .iter()
                    .filter(|(name, _)| name.starts_with("io.k8s.apimachinery."))
                    .map(|(name, schema)| (name.clone(), schema.clone()))
                    .collect()
            })
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_openapi_documents_parse() {
        let v2: Value = serde_json::from_slice(v2()).expect("v2 parses");
        assert_eq!(v2["swagger"], "2.0");
        assert!(v2["definitions"]["io.k8s.api.apps.v1.DeploymentStrategy"].is_object());
        for (path, _) in V3_GZ {
            let doc: Value =
                serde_json::from_slice(builtin_v3(path).expect("doc")).expect("v3 parses");
            assert_eq!(doc["openapi"], "3.0.0", "{path}");
        }
        assert!(meta_schemas().contains_key("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"));
    }

    #[test]
    fn catalog_openapi_v3_index_links_every_group_version() {
        let index = v3_index(std::iter::empty());
        let url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
            .as_str()
            .expect("apps/v1 entry");
        assert!(url.starts_with("/openapi/v3/apis/apps/v1?hash="));
        assert!(index["paths"]["api/v1"].is_object());
        let doc = v3_document("apis/apps/v1?hash=x", std::iter::empty()).expect("apps doc");
        let doc: Value = serde_json::from_slice(&doc).expect("json");
        assert!(doc["components"]["schemas"]["io.k8s.api.apps.v1.DeploymentSpec"].is_object());
        assert!(v3_document("apis/nope/v1", std::iter::empty()).is_none());
    }
}
