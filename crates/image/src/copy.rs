//! `docker cp` helpers: tar in and out of a path inside a mounted snapshot, never escaping
//! the container's root, and the stat behind `X-Docker-Container-Path-Stat`.

/// Docker's `ContainerPathStat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathStat {
    /// Base name of the path.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Go `os.FileMode` bits (type bits in the high bits, permissions in the low ones).
    pub mode: u32,
    /// RFC 3339 modification time.
    pub mtime: String,
    /// Symlink target, empty otherwise.
    pub link_target: String,
}
