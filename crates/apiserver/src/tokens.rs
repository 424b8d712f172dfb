//! Service-account tokens (`TokenRequest`, the `serviceaccounts/<name>/token` subresource
//! that `kubectl create token` calls): JWTs signed with HMAC-SHA256 under a key derived
//! from the server's secret, with upstream's claims (`iss`, `sub`
//! `system:serviceaccount:<ns>:<name>`, `aud`, `exp`, `iat`, `nbf`, `kubernetes.io`), and
//! their verification for bearer authentication.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use serde_json::{Value, json};

use crate::api::Api;
use crate::catalog::ResourceType;
use crate::error::ApiError;
use crate::objects;

/// The issuer and default audience of upstream's service-account tokens.
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// Upstream's default and bounds of `spec.expirationSeconds`.
const DEFAULT_EXPIRATION: i64 = 3600;
const MIN_EXPIRATION: i64 = 600;
const MAX_EXPIRATION: i64 = 1 << 32;

fn key(secret: &str) -> hmac::Key {
    // A key of its own, derived from the server secret, so a token never reveals it.
    let derived = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, b"berth service-account tokens"),
        secret.as_bytes(),
    );
    hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref())
}

/// Signs `claims` as a compact JWS (`HS256`).
fn sign(secret: &str, claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let input = format!("{header}.{payload}");
    let signature = hmac::sign(&key(secret), input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
}

/// The subject (`system:serviceaccount:<ns>:<name>`) of a valid, unexpired token.
pub fn verify(secret: &str, token: &str, now: i64) -> Option<String> {
    let (input, signature) = token.rsplit_once('.')?;
    let (header, payload) = input.split_once('.')?;
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    if header["alg"] != "HS256" {
        return None;
    }
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    hmac::verify(&key(secret), input.as_bytes(), &signature).ok()?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    let exp = claims["exp"].as_i64()?;
    let nbf = claims["nbf"].as_i64().unwrap_or(0);
    if claims["iss"] != ISSUER || now >= exp || now < nbf {
        return None;
    }
    claims["sub"].as_str().map(String::from)
}

impl Api {
    /// `POST serviceaccounts/<name>/token`: a TokenRequest answered with a signed token.
    pub async fn token_request(
        &self,
        resource: &ResourceType,
        namespace: &str,
        name: &str,
        request: &Value,
    ) -> Result<Value, ApiError> {
        if request["kind"] != "TokenRequest" && request.get("kind").is_some() {
            return Err(ApiError::BadRequest(format!(
                "the body must be a TokenRequest, not {}",
                request["kind"]
            )));
        }
        let account = self.get(resource, Some(namespace), name).await?;
        let spec = &request["spec"];
        let expiration = spec["expirationSeconds"]
            .as_i64()
            .unwrap_or(DEFAULT_EXPIRATION);
        if !(MIN_EXPIRATION..=MAX_EXPIRATION).contains(&expiration) {
            return Err(ApiError::Invalid {
                kind: "TokenRequest".into(),
                name: name.into(),
                group: "authentication.k8s.io".into(),
                causes: vec![crate::catalog::Cause {
                    reason: "FieldValueInvalid".into(),
                    message: format!(
                        "Invalid value: {expiration}: may not specify a duration less than 10 minutes"
                    ),
                    field: "spec.expirationSeconds".into(),
                }],
            });
        }
        let audiences = match spec["audiences"].as_array() {
            Some(list) if !list.is_empty() => Value::Array(list.clone()),
            _ => json!([ISSUER]),
        };
        let now = chrono::Utc::now();
        let iat = now.timestamp();
        let exp = iat + expiration;
        let uid = account
            .pointer("/metadata/uid")
            .cloned()
            .unwrap_or(Value::Null);
        let claims = json!({
            "aud": audiences,
            "exp": exp,
            "iat": iat,
            "nbf": iat,
            "iss": ISSUER,
            "sub": format!("system:serviceaccount:{namespace}:{name}"),
            "kubernetes.io": {
                "namespace": namespace,
                "serviceaccount": {"name": name, "uid": uid},
            },
        });
        let token = sign(self.token(), &claims);
        let expires = chrono::DateTime::from_timestamp(exp, 0)
            .unwrap_or(now)
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        Ok(json!({
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "creationTimestamp": objects::now_rfc3339(),
            },
            "spec": {
                "audiences": audiences,
                "expirationSeconds": expiration,
                "boundObjectRef": spec.get("boundObjectRef").cloned().unwrap_or(Value::Null),
            },
            "status": {"token": token, "expirationTimestamp": expires},
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_until_they_expire_and_only_with_the_secret() {
        let claims = json!({"iss": ISSUER, "sub": "system:serviceaccount:default:sa",
            "exp": 2000, "nbf": 1000, "iat": 1000});
        let token = sign("secret", &claims);
        assert_eq!(
            verify("secret", &token, 1500).as_deref(),
            Some("system:serviceaccount:default:sa")
        );
        assert_eq!(verify("secret", &token, 2000), None);
        assert_eq!(verify("other", &token, 1500), None);
        let forged = format!("{}x", &token[..token.len() - 1]);
        assert_eq!(verify("secret", &forged, 1500), None);
        assert_eq!(verify("secret", "not a token", 1500), None);
    }
}
