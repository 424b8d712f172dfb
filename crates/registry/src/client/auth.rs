//! Credentials and challenges: the docker `config.json` `auths` map (read for push/pull,
//! written by login), `WWW-Authenticate` parsing, Basic credentials, and Bearer tokens
//! fetched from the challenge's realm with its service and the request's scopes (the
//! Docker token authentication protocol). Tokens are cached per registry and scope and
//! never logged.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;
use http::{Request, Response, StatusCode, header};
use hyper::body::Incoming;

use super::{Body, ClientError, Endpoint, RegistryClient, no_body, read_small};

/// A user name and password (or identity token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password or token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    fn basic(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// A docker `config.json`, kept whole so writing back preserves keys berth does not use.
#[derive(Debug, Clone, Default)]
pub struct DockerConfig {
    doc: serde_json::Map<String, serde_json::Value>,
}

/// Keys a registry may appear under in `auths`.
fn auth_keys(host: &str) -> Vec<String> {
    let mut keys = vec![
        host.to_string(),
        format!("https://{host}"),
        format!("http://{host}"),
        format!("https://{host}/v1/"),
    ];
    if host == "docker.io" || host == "registry-1.docker.io" || host == "index.docker.io" {
        keys.push("https://index.docker.io/v1/".into());
    }
    keys
}

impl DockerConfig {
    /// Parses a config file's bytes (empty means no credentials).
    pub fn parse(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        Ok(Self {
            doc: serde_json::from_slice(bytes)?,
        })
    }

    /// Serializes, indented like the docker CLI writes it.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(&self.doc).unwrap_or_default()
    }

    /// Credentials stored for registry `host` (`127.0.0.1:5000`, `docker.io`).
    pub fn credentials(&self, host: &str) -> Option<Credentials> {
        let auths = self.doc.get("auths")?.as_object()?;
        let entry = auth_keys(host).iter().find_map(|k| auths.get(k))?;
        if let Some(encoded) = entry
            .get("auth")
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
        {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()?;
            let raw = String::from_utf8(raw).ok()?;
            let (u, p) = raw.split_once(':')?;
            return Some(Credentials {
                username: u.into(),
                password: p.into(),
            });
        }
        let field = |k: &str| entry.get(k).and_then(|v| v.as_str()).map(str::to_string);
        Some(Credentials {
            username: field("username")?,
            password: field("password")?,
        })
    }

    /// The `X-Registry-Auth` header value (base64url JSON, as the docker CLI sends it) for
    /// registry `host`, when credentials are stored for it.
    pub fn registry_auth_header(&self, host: &str) -> Option<String> {
        let c = self.credentials(host)?;
        let json = serde_json::json!({
            "username": c.username,
            "password": c.password,
            "serveraddress": host,
        });
        Some(base64::engine::general_purpose::URL_SAFE.encode(json.to_string()))
    }

    /// Stores credentials for `host` in the `auth` form `docker login` writes.
    pub fn set_credentials(&mut self, host: &str, creds: &Credentials) {
        let raw = format!("{}:{}", creds.username, creds.password);
        let auths = self
            .doc
            .entry("auths")
            .or_insert_with(|| serde_json::Value::Object(Default::default()));
        if let Some(map) = auths.as_object_mut() {
            map.insert(
                host.to_string(),
                serde_json::json!({"auth": base64::engine::general_purpose::STANDARD.encode(raw)}),
            );
        }
    }
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `basic` or `bearer`, lowercased.
    pub scheme: String,
    /// Parameters (`realm`, `service`, `scope`).
    pub params: HashMap<String, String>,
}

impl Challenge {
    /// Parses `Scheme k="v", k2=v2`; quoted values may hold commas.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        let mut params = HashMap::new();
        let mut chars = rest.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
                chars.next();
            }
            let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
            if key.is_empty() {
                break;
            }
            let mut val = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => val.extend(chars.next()),
                        '"' => break,
                        c => val.push(c),
                    }
                }
            } else {
                val = chars.by_ref().take_while(|c| *c != ',').collect();
            }
            params.insert(key.trim().to_ascii_lowercase(), val.trim().to_string());
        }
        Some(Self {
            scheme: scheme.to_ascii_lowercase(),
            params,
        })
    }
}

/// Authorization header values learned per `host scopes`.
pub(crate) struct AuthCache {
    config: DockerConfig,
    headers: Mutex<HashMap<String, String>>,
}

impl AuthCache {
    pub(crate) fn new(config: DockerConfig) -> Self {
        Self {
            config,
            headers: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, host: &str, scopes: &str) -> Option<String> {
        let map = self.headers.lock().ok()?;
        map.get(&format!("{host} {scopes}"))
            .or_else(|| map.get(&format!("{host} *")))
            .cloned()
    }

    fn remember(&self, key: String, value: String) {
        if let Ok(mut map) = self.headers.lock() {
            map.insert(key, value);
        }
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'.'
            | b'_'
            | b'~'
            | b':'
            | b'/'
            | b',' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl RegistryClient {
    /// Sends `build()`, answering one 401 challenge (Basic or Bearer) and retrying.
    pub(crate) async fn send(
        &self,
        ep: &Endpoint,
        scopes: &[String],
        build: &(dyn Fn() -> Result<Request<Body>, ClientError> + Send + Sync),
    ) -> Result<Response<Incoming>, ClientError> {
        let key = scopes.join(" ");
        let mut req = build()?;
        if let Some(v) = self.auth.cached(&ep.host, &key) {
            req.headers_mut().insert(
                header::AUTHORIZATION,
                v.parse()
                    .map_err(|_| ClientError::Unauthorized(ep.host.clone()))?,
            );
        }
        let resp = self.raw(req).await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let challenge = super::header_str(&resp, header::WWW_AUTHENTICATE)
            .and_then(|c| Challenge::parse(&c))
            .ok_or_else(|| ClientError::Unauthorized(ep.host.clone()))?;
        let creds = self.auth.config.credentials(&ep.host).or_else(|| {
            (ep.host == "registry-1.docker.io")
                .then(|| self.auth.config.credentials("docker.io"))
                .flatten()
        });
        let value = self
            .authorize(ep, &challenge, creds.as_ref(), scopes)
            .await?;
        let cache_key = if challenge.scheme == "basic" {
            format!("{} *", ep.host)
        } else {
            format!("{} {key}", ep.host)
        };
        self.auth.remember(cache_key, value.clone());
        let mut req = build()?;
        req.headers_mut().insert(
            header::AUTHORIZATION,
            value
                .parse()
                .map_err(|_| ClientError::Unauthorized(ep.host.clone()))?,
        );
        self.raw(req).await
    }

    /// The Authorization value answering `challenge`.
    async fn authorize(
        &self,
        ep: &Endpoint,
        challenge: &Challenge,
        creds: Option<&Credentials>,
        scopes: &[String],
    ) -> Result<String, ClientError> {
        match challenge.scheme.as_str() {
            "basic" => creds
                .map(Credentials::basic)
                .ok_or_else(|| ClientError::Unauthorized(ep.host.clone())),
            "bearer" => {
                let realm = challenge
                    .params
                    .get("realm")
                    .ok_or_else(|| ClientError::Unauthorized(ep.host.clone()))?;
                let mut url = realm.clone();
                let mut sep = if url.contains('?') { '&' } else { '?' };
                let chosen: Vec<String> = if scopes.is_empty() {
                    challenge.params.get("scope").into_iter().cloned().collect()
                } else {
                    scopes.to_vec()
                };
                if let Some(service) = challenge.params.get("service") {
                    url.push_str(&format!("{sep}service={}", encode(service)));
                    sep = '&';
                }
                for scope in &chosen {
                    url.push_str(&format!("{sep}scope={}", encode(scope)));
                    sep = '&';
                }
                let mut req =
                    Request::get(&url)
                        .body(no_body())
                        .map_err(|e| ClientError::Http {
                            url: url.clone(),
                            source: Box::new(e),
                        })?;
                if let Some(c) = creds {
                    req.headers_mut().insert(
                        header::AUTHORIZATION,
                        c.basic()
                            .parse()
                            .map_err(|_| ClientError::Unauthorized(url.clone()))?,
                    );
                }
                tracing::debug!(realm = %realm, scopes = ?chosen, "fetching bearer token");
                let resp = super::expect(&url, self.raw(req).await?, &[StatusCode::OK]).await?;
                let body: serde_json::Value = serde_json::from_slice(&read_small(resp).await?)
                    .map_err(|e| ClientError::Http {
                        url: url.clone(),
                        source: Box::new(e),
                    })?;
                body.get("token")
                    .or_else(|| body.get("access_token"))
                    .and_then(|t| t.as_str())
                    .map(|t| format!("Bearer {t}"))
                    .ok_or_else(|| ClientError::Unauthorized(url))
            }
            _ => Err(ClientError::Unauthorized(ep.host.clone())),
        }
    }

    /// Checks credentials against a registry's `/v2/` (what `docker login` does).
    pub async fn login(&self, ep: &Endpoint, creds: &Credentials) -> Result<(), ClientError> {
        let url = format!("{}/v2/", ep.base());
        let build = || {
            Request::get(&url)
                .body(no_body())
                .map_err(|e| ClientError::Http {
                    url: url.clone(),
                    source: Box::new(e),
                })
        };
        let resp = self.raw(build()?).await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return super::expect(&url, resp, &[StatusCode::OK]).await.map(drop);
        }
        let challenge = super::header_str(&resp, header::WWW_AUTHENTICATE)
            .and_then(|c| Challenge::parse(&c))
            .ok_or_else(|| ClientError::Unauthorized(url.clone()))?;
        let value = self.authorize(ep, &challenge, Some(creds), &[]).await?;
        let mut req = build()?;
        req.headers_mut().insert(
            header::AUTHORIZATION,
            value
                .parse()
                .map_err(|_| ClientError::Unauthorized(url.clone()))?,
        );
        super::expect(&url, self.raw(req).await?, &[StatusCode::OK])
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_keep_commas_inside_quotes() {
        let c = Challenge::parse(r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#).expect("parses");
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.params["scope"], "repository:a/b:pull,push");
        assert_eq!(c.params["service"], "registry.example");
        assert_eq!(
            Challenge::parse(r#"Basic realm="x""#).map(|c| c.scheme),
            Some("basic".into())
        );
    }

    #[test]
    fn docker_config_round_trips_credentials() {
        let mut cfg = DockerConfig::parse(
            br#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"}},"credsStore":"x"}"#,
        )
        .expect("json");
        assert_eq!(
            cfg.credentials("docker.io").map(|c| c.password),
            Some("p".into())
        );
        cfg.set_credentials(
            "127.0.0.1:5000",
            &Credentials {
                username: "a".into(),
                password: "b:c".into(),
            },
        );
        let again = DockerConfig::parse(&cfg.to_bytes()).expect("json");
        assert_eq!(
            again.credentials("127.0.0.1:5000").map(|c| c.password),
            Some("b:c".into())
        );
        assert!(String::from_utf8_lossy(&again.to_bytes()).contains("credsStore"));
    }
}
