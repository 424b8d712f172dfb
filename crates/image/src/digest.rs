//! sha256 digests: formatting and validation of `sha256:<hex>` strings, hashing readers and
//! writers for verifying content while it streams, and layer chain ids.

use std::io::{self, Read, Write};

use ring::digest::{Context, SHA256, digest};

use crate::Digest;

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> Digest {
    format!("sha256:{}", hex::encode(digest(&SHA256, bytes)))
}

/// The 64-hex part of a `sha256:<hex>` digest, or `None` when it is not one.
pub fn sha256_hex(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    is_sha256_hex(hex).then_some(hex)
}

/// True for exactly 64 lowercase hex characters.
pub fn is_sha256_hex(hex: &str) -> bool {
    hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Docker's short id: the first 12 hex characters of a digest.
pub fn short_id(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    hex.get(..12).unwrap_or(hex)
}

/// OCI image spec `ChainID`: `ChainID(L0) = DiffID(L0)`,
/// `ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))`.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for diff in diff_ids {
        let next = match out.last() {
            None => diff.clone(),
            Some(parent) => sha256_digest(format!("{parent} {diff}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// A writer that hashes and counts everything written through it (ring's SHA-256: its
/// vector assembly is about 1.5 x sha2's portable code on CPUs without SHA extensions).
pub struct HashingWriter<W> {
    inner: W,
    hasher: Context,
    len: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Context::new(&SHA256),
            len: 0,
        }
    }

    /// The digest and length of what was written, and the inner writer.
    pub fn finish(self) -> (Digest, u64, W) {
        let digest = format!("sha256:{}", hex::encode(self.hasher.finish()));
        (digest, self.len, self.inner)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that copies everything read through it into a writer (a tee), hashing it too.
pub struct TeeReader<R, W> {
    inner: R,
    copy: HashingWriter<W>,
}

impl<R: Read, W: Write> TeeReader<R, W> {
    /// Reads from `inner`, copying to `copy`.
    pub fn new(inner: R, copy: W) -> Self {
        Self {
            inner,
            copy: HashingWriter::new(copy),
        }
    }

    /// Reads the rest of the stream (tar padding after the end marker) and returns the
    /// digest, length and the copy writer.
    pub fn finish(mut self) -> io::Result<(Digest, u64, W)> {
        io::copy(&mut self.inner, &mut self.copy)?;
        Ok(self.copy.finish())
    }
}

impl<R: Read, W: Write> Read for TeeReader<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_id_of_one_layer_is_its_diff_id_and_then_chains() {
        let a = sha256_digest(b"a");
        let b = sha256_digest(b"b");
        let chain = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(chain[0], a);
        assert_eq!(chain[1], sha256_digest(format!("{a} {b}").as_bytes()));
    }

    #[test]
    fn sha256_hex_rejects_malformed_digests() {
        let good = sha256_digest(b"x");
        assert!(sha256_hex(&good).is_some());
        assert!(sha256_hex("sha256:abc").is_none());
        assert!(sha256_hex(&good.to_uppercase()).is_none());
        assert!(sha256_hex(&format!("sha256:../{}", &good[10..])).is_none());
        assert_eq!(short_id(&good).len(), 12);
    }

    #[test]
    fn tee_reader_hashes_the_whole_stream() {
        let data = b"hello world".to_vec();
        let mut tee = TeeReader::new(&data[..], Vec::new());
        let mut first = [0u8; 5];
        tee.read_exact(&mut first).expect("read");
        let (digest, len, copy) = tee.finish().expect("finish");
        assert_eq!(digest, sha256_digest(&data));
        assert_eq!(len, 11);
        assert_eq!(copy, data);
    }
}
