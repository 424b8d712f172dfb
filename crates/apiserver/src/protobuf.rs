//! Request bodies in Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`),
//! which kubectl's typed clients send (`create deployment|job|cronjob|service|quota|pdb|
//! ingress|namespace|configmap|secret|...`): the `k8s\0` envelope (`runtime.Unknown`) and
//! the message inside, decoded into the JSON object the rest of the server handles.
//!
//! Field numbers, names and types come from upstream's `generated.proto` descriptors
//! (`proto/k8s-descriptors.pb.gz`, extracted from kubectl by `proto/extract.py`), so every
//! built-in kind of the served groups decodes. The proto field names are the JSON names.

use std::collections::HashMap;
use std::io::Read;
use std::sync::OnceLock;

use base64::Engine;
use prost::Message;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FieldDescriptorProto, FileDescriptorSet};
use serde_json::{Map, Value, json};

use crate::error::ApiError;

/// The magic prefix of protobuf-encoded Kubernetes objects.
const MAGIC: &[u8] = b"k8s\0";

/// The gzipped `FileDescriptorSet` of the served API groups.
static DESCRIPTORS: &[u8] = include_bytes!("../proto/k8s-descriptors.pb.gz");

/// Nesting deeper than this is refused (no built-in kind comes close; it bounds recursion).
const MAX_DEPTH: usize = 64;

/// Scalar fields that are pointers in the Go types, so an explicit zero (`replicas: 0`,
/// `runAsUser: 0`, `allowPrivilegeEscalation: false`) differs from an absent field. The
/// encoder writes every non-pointer field, zero or not; those zeros are Go's zero values,
/// which the JSON form omits.
const POINTER_SCALARS: &[&str] = &[
    "replicas",
    "backoffLimit",
    "backoffLimitPerIndex",
    "maxFailedIndexes",
    "parallelism",
    "completions",
    "successfulJobsHistoryLimit",
    "failedJobsHistoryLimit",
    "startingDeadlineSeconds",
    "ttlSecondsAfterFinished",
    "revisionHistoryLimit",
    "progressDeadlineSeconds",
    "terminationGracePeriodSeconds",
    "activeDeadlineSeconds",
    "automountServiceAccountToken",
    "enableServiceLinks",
    "shareProcessNamespace",
    "hostUsers",
    "setHostnameAsFQDN",
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "fsGroup",
    "privileged",
    "allowPrivilegeEscalation",
    "readOnlyRootFilesystem",
    "defaultMode",
    "mode",
    "optional",
    "priority",
    "minReplicas",
    "maxUnavailable",
    "maxSurge",
    "minAvailable",
    "partition",
    "suspend",
    "immutable",
    "value",
    "expirationSeconds",
    "allowVolumeExpansion",
    "allocateLoadBalancerNodePorts",
    "ready",
    "serving",
    "terminating",
];

/// Embedded Go structs (`json:",inline"`): proto has them as a field (name, message type),
/// JSON has their fields in the parent object.
const INLINE: &[(&str, &str)] = &[
    (
        "ingressRuleValue",
        ".k8s.io.api.networking.v1.IngressRuleValue",
    ),
    ("volumeSource", ".k8s.io.api.core.v1.VolumeSource"),
    (
        "persistentVolumeSource",
        ".k8s.io.api.core.v1.PersistentVolumeSource",
    ),
    ("handler", ".k8s.io.api.core.v1.ProbeHandler"),
    (
        "ephemeralContainerCommon",
        ".k8s.io.api.core.v1.EphemeralContainerCommon",
    ),
    (
        "localObjectReference",
        ".k8s.io.api.core.v1.LocalObjectReference",
    ),
];

/// Message descriptors by full name (`.k8s.io.api.apps.v1.Deployment`).
struct Catalog {
    messages: HashMap<String, DescriptorProto>,
}

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let mut messages = HashMap::new();
        let mut raw = Vec::new();
        let set = flate2::read::GzDecoder::new(DESCRIPTORS)
            .read_to_end(&mut raw)
            .ok()
            .and_then(|_| FileDescriptorSet::decode(raw.as_slice()).ok());
        match set {
            Some(set) => {
                for file in set.file {
                    let package = format!(".{}", file.package());
                    for message in file.message_type {
                        add_message(&mut messages, &package, message);
                    }
                }
            }
            None => tracing::error!("the embedded protobuf descriptors do not decode"),
        }
        Catalog { messages }
    })
}

fn add_message(out: &mut HashMap<String, DescriptorProto>, scope: &str, message: DescriptorProto) {
    let name = format!("{scope}.{}", message.name());
    for nested in &message.nested_type {
        add_message(out, &name, nested.clone());
    }
    out.insert(name, message);
}

/// The protobuf package of an `apiVersion` (`apps/v1` → `k8s.io.api.apps.v1`).
fn package(api_version: &str) -> String {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    if group == "meta.k8s.io" {
        return format!(".k8s.io.apimachinery.pkg.apis.meta.{version}");
    }
    let short = group
        .trim_end_matches(".k8s.io")
        .split('.')
        .next()
        .unwrap_or("");
    let short = if short.is_empty() { "core" } else { short };
    format!(".k8s.io.api.{short}.{version}")
}

fn malformed() -> ApiError {
    ApiError::BadRequest("the protobuf body is malformed".into())
}

/// A protobuf field as read from the wire.
#[derive(Clone, Copy)]
enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Bytes(&'a [u8]),
}

fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, ApiError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*pos).ok_or_else(malformed)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(malformed())
}

fn take<'a>(buf: &'a [u8], pos: &mut usize, len: usize) -> Result<&'a [u8], ApiError> {
    let end = pos
        .checked_add(len)
        .filter(|e| *e <= buf.len())
        .ok_or_else(malformed)?;
    let bytes = &buf[*pos..end];
    *pos = end;
    Ok(bytes)
}

fn fields(buf: &[u8]) -> Result<Vec<(u64, Wire<'_>)>, ApiError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let tag = varint(buf, &mut pos)?;
        let (number, wire_type) = (tag >> 3, tag & 7);
        let wire = match wire_type {
            0 => Wire::Varint(varint(buf, &mut pos)?),
            1 => {
                let b = take(buf, &mut pos, 8)?;
                Wire::Fixed64(u64::from_le_bytes(b.try_into().map_err(|_| malformed())?))
            }
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).map_err(|_| malformed())?;
                Wire::Bytes(take(buf, &mut pos, len)?)
            }
            5 => {
                let b = take(buf, &mut pos, 4)?;
                Wire::Fixed32(u32::from_le_bytes(b.try_into().map_err(|_| malformed())?))
            }
            _ => return Err(malformed()),
        };
        out.push((number, wire));
    }
    Ok(out)
}

fn string(bytes: &[u8]) -> Result<String, ApiError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| malformed())
}

fn base64(bytes: &[u8]) -> Value {
    json!(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// A `meta/v1.Time` or `MicroTime`; the zero time is absent (Go marshals it as null).
fn time(bytes: &[u8], micro: bool) -> Result<Option<Value>, ApiError> {
    let (mut seconds, mut nanos) = (0i64, 0u32);
    for (number, wire) in fields(bytes)? {
        match (number, wire) {
            (1, Wire::Varint(v)) => seconds = v as i64,
            (2, Wire::Varint(v)) => nanos = v as u32,
            _ => {}
        }
    }
    if seconds == 0 && nanos == 0 {
        return Ok(None);
    }
    let t = chrono::DateTime::from_timestamp(seconds, nanos).ok_or_else(malformed)?;
    let format = if micro {
        "%Y-%m-%dT%H:%M:%S%.6fZ"
    } else {
        "%Y-%m-%dT%H:%M:%SZ"
    };
    Ok(Some(json!(t.format(format).to_string())))
}

/// A `meta/v1.Duration` (nanoseconds) in Go's `time.Duration` notation (`1h0m0s`, `1.5s`).
fn duration(bytes: &[u8]) -> Result<Value, ApiError> {
    let mut nanos = 0i64;
    for (number, wire) in fields(bytes)? {
        if let (1, Wire::Varint(v)) = (number, wire) {
            nanos = v as i64;
        }
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    if n == 0 {
        return Ok(json!("0s"));
    }
    let (h, m) = (n / 3_600_000_000_000, (n / 60_000_000_000) % 60);
    let (s, frac) = ((n / 1_000_000_000) % 60, n % 1_000_000_000);
    let seconds = if frac == 0 {
        format!("{s}s")
    } else {
        let f = format!("{frac:09}");
        format!("{s}.{}s", f.trim_end_matches('0'))
    };
    Ok(json!(match (h, m) {
        (0, 0) => format!("{sign}{seconds}"),
        (0, m) => format!("{sign}{m}m{seconds}"),
        (h, m) => format!("{sign}{h}h{m}m{seconds}"),
    }))
}

/// An `intstr.IntOrString`; the integer 0 counts as Go's zero value.
fn int_or_string(bytes: &[u8]) -> Result<Value, ApiError> {
    let (mut is_string, mut int, mut text) = (false, 0i64, String::new());
    for (number, wire) in fields(bytes)? {
        match (number, wire) {
            (1, Wire::Varint(v)) => is_string = v == 1,
            (2, Wire::Varint(v)) => int = i64::from(v as i32),
            (3, Wire::Bytes(b)) => text = string(b)?,
            _ => {}
        }
    }
    Ok(if is_string { json!(text) } else { json!(int) })
}

/// The bytes of field 1 of a wrapper message (`Quantity.string`, `RawExtension.raw`).
fn first_bytes(bytes: &[u8]) -> Result<&[u8], ApiError> {
    for (number, wire) in fields(bytes)? {
        if let (1, Wire::Bytes(b)) = (number, wire) {
            return Ok(b);
        }
    }
    Ok(&[])
}

fn is_zero(value: &Value) -> bool {
    match value {
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Null => true,
        _ => false,
    }
}

fn scalar(field: &FieldDescriptorProto, wire: Wire<'_>) -> Result<Value, ApiError> {
    Ok(match (field.r#type(), wire) {
        (Type::String, Wire::Bytes(b)) => json!(string(b)?),
        (Type::Bytes, Wire::Bytes(b)) => base64(b),
        (Type::Bool, Wire::Varint(v)) => json!(v != 0),
        (Type::Int32 | Type::Enum, Wire::Varint(v)) => json!(v as i32),
        (Type::Int64, Wire::Varint(v)) => json!(v as i64),
        (Type::Uint32 | Type::Uint64, Wire::Varint(v)) => json!(v),
        (Type::Sint32 | Type::Sint64, Wire::Varint(v)) => {
            json!((v >> 1) as i64 ^ -((v & 1) as i64))
        }
        (Type::Double | Type::Fixed64 | Type::Sfixed64, Wire::Fixed64(v)) => {
            if field.r#type() == Type::Double {
                json!(f64::from_bits(v))
            } else {
                json!(v)
            }
        }
        (Type::Float | Type::Fixed32 | Type::Sfixed32, Wire::Fixed32(v)) => {
            if field.r#type() == Type::Float {
                json!(f32::from_bits(v))
            } else {
                json!(v)
            }
        }
        _ => return Err(malformed()),
    })
}

/// Decodes one field's value; `None` is Go's zero value of a non-pointer field (omitted).
fn value(
    field: &FieldDescriptorProto,
    wire: Wire<'_>,
    depth: usize,
) -> Result<Option<Value>, ApiError> {
    let pointer = POINTER_SCALARS.contains(&field.name());
    let repeated = field.label() == Label::Repeated;
    if field.r#type() != Type::Message {
        let v = scalar(field, wire)?;
        return Ok((pointer || repeated || !is_zero(&v)).then_some(v));
    }
    let Wire::Bytes(bytes) = wire else {
        return Err(malformed());
    };
    let v = match field.type_name() {
        ".k8s.io.apimachinery.pkg.apis.meta.v1.Time" => return time(bytes, false),
        ".k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime" => return time(bytes, true),
        ".k8s.io.apimachinery.pkg.apis.meta.v1.Duration" => duration(bytes)?,
        ".k8s.io.apimachinery.pkg.api.resource.Quantity" => json!(string(first_bytes(bytes)?)?),
        ".k8s.io.apimachinery.pkg.util.intstr.IntOrString" => {
            let v = int_or_string(bytes)?;
            if !pointer && !repeated && v == json!(0) {
                return Ok(None);
            }
            v
        }
        ".k8s.io.apimachinery.pkg.runtime.RawExtension"
        | ".k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1" => {
            let raw = first_bytes(bytes)?;
            if raw.is_empty() {
                return Ok(None);
            }
            serde_json::from_slice(raw).map_err(|_| malformed())?
        }
        name => message(name, bytes, depth + 1)?,
    };
    Ok(Some(v))
}

/// A map entry (`key` = 1, `value` = 2) of a `map<...>` field.
fn map_entry(
    entry: &DescriptorProto,
    bytes: &[u8],
    depth: usize,
) -> Result<(String, Value), ApiError> {
    let (mut key, mut val) = (String::new(), None);
    for (number, wire) in fields(bytes)? {
        let Some(field) = entry.field.iter().find(|f| f.number() as u64 == number) else {
            continue;
        };
        match number {
            1 => {
                key = string(match wire {
                    Wire::Bytes(b) => b,
                    _ => return Err(malformed()),
                })?
            }
            _ => val = Some(value(field, wire, depth)?.unwrap_or_else(|| zero_of(field))),
        }
    }
    let val = match val {
        Some(v) => v,
        None => entry
            .field
            .iter()
            .find(|f| f.number() == 2)
            .map(zero_of)
            .unwrap_or(Value::Null),
    };
    Ok((key, val))
}

/// The JSON zero value of a map value that the encoder left out or that was zero.
fn zero_of(field: &FieldDescriptorProto) -> Value {
    match field.r#type() {
        Type::String | Type::Bytes => json!(""),
        Type::Bool => json!(false),
        Type::Message => json!({}),
        _ => json!(0),
    }
}

fn message(name: &str, bytes: &[u8], depth: usize) -> Result<Value, ApiError> {
    if depth > MAX_DEPTH {
        return Err(malformed());
    }
    let catalog = catalog();
    let descriptor = catalog
        .messages
        .get(name)
        .ok_or(ApiError::UnsupportedMediaType)?;
    let mut object = Map::new();
    for (number, wire) in fields(bytes)? {
        let Some(field) = descriptor
            .field
            .iter()
            .find(|f| f.number() as u64 == number)
        else {
            continue;
        };
        let json_name = field.name().to_string();
        let map_entry_type = (field.r#type() == Type::Message)
            .then(|| catalog.messages.get(field.type_name()))
            .flatten()
            .filter(|m| m.options.as_ref().is_some_and(|o| o.map_entry()));
        if let Some(entry) = map_entry_type {
            let Wire::Bytes(b) = wire else {
                return Err(malformed());
            };
            let (k, v) = map_entry(entry, b, depth)?;
            if let Value::Object(map) = object.entry(json_name).or_insert_with(|| json!({})) {
                map.insert(k, v);
            }
            continue;
        }
        if INLINE.contains(&(field.name(), field.type_name())) {
            if let Some(Value::Object(inner)) = value(field, wire, depth)? {
                object.extend(inner);
            }
            continue;
        }
        if field.label() == Label::Repeated {
            let items: Vec<Value> = match wire {
                // Packed repeated scalars.
                Wire::Bytes(b)
                    if field.r#type() != Type::Message
                        && !matches!(field.r#type(), Type::String | Type::Bytes) =>
                {
                    packed(field, b)?
                }
                _ => value(field, wire, depth)?.into_iter().collect(),
            };
            if let Value::Array(list) = object.entry(json_name).or_insert_with(|| json!([])) {
                list.extend(items);
            }
            continue;
        }
        match value(field, wire, depth)? {
            Some(v) => {
                object.insert(json_name, v);
            }
            None => {
                object.remove(&json_name);
            }
        }
    }
    Ok(Value::Object(object))
}

fn packed(field: &FieldDescriptorProto, bytes: &[u8]) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let wire = match field.r#type() {
            Type::Double | Type::Fixed64 | Type::Sfixed64 => {
                let b = take(bytes, &mut pos, 8)?;
                Wire::Fixed64(u64::from_le_bytes(b.try_into().map_err(|_| malformed())?))
            }
            Type::Float | Type::Fixed32 | Type::Sfixed32 => {
                let b = take(bytes, &mut pos, 4)?;
                Wire::Fixed32(u32::from_le_bytes(b.try_into().map_err(|_| malformed())?))
            }
            _ => Wire::Varint(varint(bytes, &mut pos)?),
        };
        out.push(scalar(field, wire)?);
    }
    Ok(out)
}

/// Decodes a protobuf request body into a JSON object with `apiVersion` and `kind`; kinds
/// outside the served groups are `415`.
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let envelope = body.strip_prefix(MAGIC).ok_or_else(malformed)?;
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    for (number, wire) in fields(envelope)? {
        match (number, wire) {
            (1, Wire::Bytes(type_meta)) => {
                for (n, w) in fields(type_meta)? {
                    match (n, w) {
                        (1, Wire::Bytes(b)) => api_version = string(b)?,
                        (2, Wire::Bytes(b)) => kind = string(b)?,
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(b)) => raw = b,
            _ => {}
        }
    }
    if kind.is_empty() || kind.contains('.') {
        return Err(malformed());
    }
    let name = format!("{}.{kind}", package(&api_version));
    let mut object = message(&name, raw, 0)?;
    if let Value::Object(map) = &mut object {
        map.insert("apiVersion".into(), json!(api_version));
        map.insert("kind".into(), json!(kind));
    }
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(number: u64, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![((number << 3) | 2) as u8, bytes.len() as u8];
        out.extend_from_slice(bytes);
        out
    }

    fn varint_field(number: u64, value: u8) -> Vec<u8> {
        vec![(number << 3) as u8, value]
    }

    fn envelope(api_version: &[u8], kind: &[u8], raw: &[u8]) -> Vec<u8> {
        let type_meta = [field(1, api_version), field(2, kind)].concat();
        [MAGIC.to_vec(), field(1, &type_meta), field(2, raw)].concat()
    }

    #[test]
    fn configmap_envelope_decodes() {
        let meta = [
            field(1, b"c1"),
            field(2, b""),
            field(11, &[field(1, b"app"), field(2, b"web")].concat()),
            field(8, &[]),
        ]
        .concat();
        let data = field(2, &[field(1, b"a"), field(2, b"b")].concat());
        let raw = [field(1, &meta), data].concat();
        let object = decode(&envelope(b"v1", b"ConfigMap", &raw)).expect("decode");
        assert_eq!(
            object,
            json!({"metadata": {"name": "c1", "labels": {"app": "web"}}, "data": {"a": "b"},
                   "apiVersion": "v1", "kind": "ConfigMap"})
        );
    }

    #[test]
    fn deployment_keeps_explicit_zero_replicas_and_drops_go_zero_values() {
        // DeploymentSpec: replicas = 1 (pointer), minReadySeconds = 5 (value),
        // template = 3 { spec = 2 { containers = 2 { name = 1, image = 2 } } }.
        let container = [field(1, b"web"), field(2, b"nginx")].concat();
        let pod_spec = [field(2, &container), field(3, b"Always")].concat();
        let template = field(2, &pod_spec);
        let spec = [varint_field(1, 0), varint_field(5, 0), field(3, &template)].concat();
        let raw = [field(1, &field(1, b"d1")), field(2, &spec)].concat();
        let object = decode(&envelope(b"apps/v1", b"Deployment", &raw)).expect("decode");
        assert_eq!(
            object["spec"],
            json!({"replicas": 0, "template": {"spec": {
                "containers": [{"name": "web", "image": "nginx"}], "restartPolicy": "Always"}}})
        );
    }

    #[test]
    fn service_ports_keep_int_or_string_and_quantities_decode() {
        // ServicePort { name = 1, protocol = 2, port = 3, targetPort = 4 { type 0, intVal } }
        let target = [varint_field(1, 0), varint_field(2, 80)].concat();
        let port = [field(2, b"TCP"), varint_field(3, 8), field(4, &target)].concat();
        let raw = [field(1, &field(1, b"s1")), field(2, &field(1, &port))].concat();
        let object = decode(&envelope(b"v1", b"Service", &raw)).expect("decode");
        assert_eq!(
            object["spec"]["ports"],
            json!([{"protocol": "TCP", "port": 8, "targetPort": 80}])
        );
        // ResourceQuota spec.hard is a map of Quantity.
        let quantity = field(1, b"2");
        let hard = field(1, &[field(1, b"pods"), field(2, &quantity)].concat());
        let raw = [field(1, &field(1, b"q")), field(2, &hard)].concat();
        let object = decode(&envelope(b"v1", b"ResourceQuota", &raw)).expect("decode");
        assert_eq!(object["spec"], json!({"hard": {"pods": "2"}}));
    }

    #[test]
    fn embedded_structs_are_inlined() {
        // IngressSpec.rules = 3: IngressRule { host = 1, ingressRuleValue = 2 { http = 1 { paths = 1 { path = 1 } } } }
        let value = field(1, &field(1, &field(1, b"/api")));
        let rule = [field(1, b"example.com"), field(2, &value)].concat();
        let raw = [field(1, &field(1, b"i")), field(2, &field(3, &rule))].concat();
        let object = decode(&envelope(b"networking.k8s.io/v1", b"Ingress", &raw)).expect("decode");
        assert_eq!(
            object["spec"]["rules"],
            json!([{"host": "example.com", "http": {"paths": [{"path": "/api"}]}}])
        );
    }

    #[test]
    fn unknown_kinds_are_unsupported_and_garbage_is_bad_request() {
        let body = envelope(b"example.com/v1", b"Widget", b"");
        assert!(matches!(decode(&body), Err(ApiError::UnsupportedMediaType)));
        assert!(matches!(
            decode(b"k8s\0\x0a\xff"),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(decode(b"{}"), Err(ApiError::BadRequest(_))));
    }

    #[test]
    fn durations_use_go_notation() {
        let d = |n: i64| duration(&[vec![8u8], encode_varint(n as u64)].concat()).expect("d");
        assert_eq!(d(3_600_000_000_000), json!("1h0m0s"));
        assert_eq!(d(1_500_000_000), json!("1.5s"));
        assert_eq!(d(90_000_000_000), json!("1m30s"));
    }

    fn encode_varint(mut n: u64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(b);
                return out;
            }
            out.push(b | 0x80);
        }
    }
}
