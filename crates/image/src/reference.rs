//! Image references as Docker parses them: normalization (`busybox` →
//! `docker.io/library/busybox:latest`), validation with Docker's "invalid reference format"
//! errors, and the familiar form shown to users (`busybox:latest`).
//!
//! Grammar from the distribution reference package (docker/distribution `reference/regexp`):
//! `[domain/]component[/component]*[:tag][@digest]`.

use std::fmt;

/// Registry assumed when a name has no domain.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// Repository prefix for official images on the default registry.
const OFFICIAL_PREFIX: &str = "library/";
/// Tag used when a name has neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// Longest repository name the grammar accepts.
const NAME_TOTAL_MAX: usize = 255;

/// Why a reference is invalid; rendered into [`crate::ImageError::InvalidReference`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// Docker's bare `invalid reference format`.
    #[error("")]
    Format,
    /// Docker: `repository name (library/Busybox) must be lowercase`.
    #[error("repository name ({0}) must be lowercase")]
    Uppercase(String),
    /// Docker: `repository name (...) must not be more than 255 characters`.
    #[error("repository name ({0}) must not be more than 255 characters")]
    NameTooLong(String),
    /// A 64-hex string is an image id, not a repository name.
    #[error("cannot specify 64-byte hexadecimal strings")]
    HexName,
}

/// A parsed, normalized reference: `domain/path[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    /// Registry host, with port if any (`docker.io`, `localhost:5000`).
    pub domain: String,
    /// Repository path below the domain (`library/busybox`).
    pub path: String,
    /// Tag, if given.
    pub tag: Option<String>,
    /// `sha256:<hex>` digest, if given.
    pub digest: Option<String>,
}

impl Reference {
    /// Parses what a user typed, adding the default domain and `library/` like Docker does.
    /// No default tag is added; see [`Reference::with_default_tag`].
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        if input.is_empty() {
            return Err(ReferenceError::Format);
        }
        let (rest, digest) = match input.split_once('@') {
            Some((r, d)) => {
                validate_digest(d)?;
                (r, Some(d.to_string()))
            }
            None => (input, None),
        };
        // A tag follows the last ':' after the last '/' (a ':' before it is a port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                let tag = &rest[at + 1..];
                validate_tag(tag)?;
                (&rest[..at], Some(tag.to_string()))
            }
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(ReferenceError::Format);
        }
        if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ReferenceError::HexName);
        }
        let (domain, path) = split_domain(name);
        validate_domain(&domain)?;
        let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
            format!("{OFFICIAL_PREFIX}{path}")
        } else {
            path
        };
        // Docker reports uppercase only when the lowercased name would be valid.
        for component in path.split('/') {
            validate_component(&component.to_ascii_lowercase())?;
        }
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase(path));
        }
        if domain.len() + 1 + path.len() > NAME_TOTAL_MAX {
            return Err(ReferenceError::NameTooLong(format!("{domain}/{path}")));
        }
        Ok(Self {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// Parses and adds `:latest` when neither tag nor digest is given (Docker's
    /// `TagNameOnly`).
    pub fn parse_with_default_tag(input: &str) -> Result<Self, ReferenceError> {
        Ok(Self::parse(input)?.with_default_tag())
    }

    /// Adds `:latest` when neither tag nor digest is present.
    pub fn with_default_tag(mut self) -> Self {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.to_string());
        }
        self
    }

    /// `domain/path` without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The repository as users see it: `busybox`, `foo/bar`, `localhost:5000/a/b`.
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            self.path
                .strip_prefix(OFFICIAL_PREFIX)
                .filter(|p| !p.contains('/'))
                .unwrap_or(&self.path)
                .to_string()
        } else {
            self.name()
        }
    }

    /// The whole reference as users see it: `busybox:latest`, `a/b@sha256:...`.
    pub fn familiar(&self) -> String {
        let mut out = self.familiar_name();
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(digest);
        }
        out
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Shows a normalized reference string (`docker.io/library/busybox:latest`) in familiar form
/// (`busybox:latest`); anything unparsable is returned unchanged.
pub fn familiar(normalized: &str) -> String {
    Reference::parse(normalized).map_or_else(|_| normalized.to_string(), |r| r.familiar())
}

/// Docker's `splitDockerDomain`: the first component is a domain when it contains `.` or
/// `:`, or is `localhost`, or has uppercase letters.
fn split_domain(name: &str) -> (String, String) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            let domain = if first == "index.docker.io" {
                DEFAULT_DOMAIN
            } else {
                first
            };
            (domain.to_string(), rest.to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    }
}

/// `host[:port]` where host is dot-separated alphanumerics with inner dashes, or `[ipv6]`.
fn validate_domain(domain: &str) -> Result<(), ReferenceError> {
    let (host, port) = if let Some(stripped) = domain.strip_prefix('[') {
        let (ip, after) = stripped.split_once(']').ok_or(ReferenceError::Format)?;
        if ip.is_empty() || !ip.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return Err(ReferenceError::Format);
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or(ReferenceError::Format)?),
        };
        (None, port)
    } else {
        match domain.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(domain), None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(ReferenceError::Format);
    }
    if let Some(host) = host {
        for label in host.split('.') {
            let ok = !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-');
            if !ok {
                return Err(ReferenceError::Format);
            }
        }
    }
    Ok(())
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`.
fn validate_component(component: &str) -> Result<(), ReferenceError> {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return Err(ReferenceError::Format);
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        // A separator run: '.', '_', '__' or one or more '-'.
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &component[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return Err(ReferenceError::Format);
        }
    }
    Ok(())
}

/// `[\w][\w.-]{0,127}`.
fn validate_tag(tag: &str) -> Result<(), ReferenceError> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    if bytes.is_empty()
        || bytes.len() > 128
        || !word(bytes[0])
        || !bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-')
    {
        return Err(ReferenceError::Format);
    }
    Ok(())
}

/// `algorithm:hex`; sha256 digests must be 64 lowercase hex characters.
fn validate_digest(digest: &str) -> Result<(), ReferenceError> {
    let (alg, hex) = digest.split_once(':').ok_or(ReferenceError::Format)?;
    let alg_ok = !alg.is_empty()
        && alg.as_bytes()[0].is_ascii_alphabetic()
        && alg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'+' | b'.'));
    let hex_ok = hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    if !alg_ok || !hex_ok {
        return Err(ReferenceError::Format);
    }
    if alg == "sha256" && (hex.len() != 64 || hex.bytes().any(|b| b.is_ascii_uppercase())) {
        return Err(ReferenceError::Format);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        Reference::parse_with_default_tag(s)
            .expect("valid reference")
            .to_string()
    }

    #[test]
    fn short_names_get_default_domain_library_and_latest() {
        assert_eq!(norm("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(norm("foo/bar"), "docker.io/foo/bar:latest");
        assert_eq!(
            norm("index.docker.io/library/busybox"),
            "docker.io/library/busybox:latest"
        );
    }

    #[test]
    fn registry_hosts_and_ports_are_domains() {
        assert_eq!(norm("localhost:5000/a/b"), "localhost:5000/a/b:latest");
        assert_eq!(norm("localhost/a"), "localhost/a:latest");
        assert_eq!(norm("quay.io/x/y:v1"), "quay.io/x/y:v1");
        assert_eq!(norm("[::1]:5000/img:t"), "[::1]:5000/img:t");
    }

    #[test]
    fn digest_references_keep_digest_and_get_no_default_tag() {
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            norm(&format!("busybox@{d}")),
            format!("docker.io/library/busybox@{d}")
        );
        let r = Reference::parse(&format!("localhost:5000/x:1@{d}")).expect("valid");
        assert_eq!(r.tag.as_deref(), Some("1"));
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
    }

    #[test]
    fn invalid_references_are_rejected() {
        for bad in [
            "",
            "a b",
            "busybox:",
            ":tag",
            "busybox@sha256:abc",
            "a//b",
            "-a",
            "a-",
            "a..b",
            "busybox:-x",
            "localhost:port/a",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} must be invalid");
        }
        assert_eq!(
            Reference::parse("Busybox"),
            Err(ReferenceError::Uppercase("library/Busybox".into()))
        );
        assert_eq!(
            Reference::parse(&"a".repeat(64)),
            Err(ReferenceError::HexName)
        );
        assert!(matches!(
            Reference::parse(&"a".repeat(300)),
            Err(ReferenceError::NameTooLong(_))
        ));
    }

    #[test]
    fn separators_follow_the_grammar() {
        for good in ["a_b", "a__b", "a---b", "a.b", "my-app/web_1.x"] {
            assert!(Reference::parse(good).is_ok(), "{good:?} must be valid");
        }
        for bad in ["a___b", "a._b", "a-.b"] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} must be invalid");
        }
    }

    #[test]
    fn familiar_form_hides_default_domain_and_library() {
        assert_eq!(
            familiar("docker.io/library/busybox:latest"),
            "busybox:latest"
        );
        assert_eq!(familiar("docker.io/foo/bar:1"), "foo/bar:1");
        assert_eq!(
            familiar("localhost:5000/a/b:latest"),
            "localhost:5000/a/b:latest"
        );
        let r = Reference::parse("docker.io/library/busybox").expect("valid");
        assert_eq!(r.familiar_name(), "busybox");
    }
}
