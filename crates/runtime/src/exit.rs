//! The exit record: written by the shim once the container's init process is reaped,
//! atomically (temporary file, rename), so the exit status survives the shim and the
//! daemon.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use crate::ExitStatus;

/// Writes `data` to `path` atomically: a crash leaves either the old or the new content.
///
/// Not synced: the runtime's files (the shim's config, the bundle, the exit record)
/// describe processes of this boot; a power loss ends those, and the daemon reconciles its
/// containers with what runs when it starts.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
    }
    std::fs::rename(&tmp, path)
}

/// Persists an exit status.
pub fn write(path: &Path, status: &ExitStatus) -> std::io::Result<()> {
    let data = serde_json::to_vec(status).map_err(std::io::Error::other)?;
    write_atomic(path, &data)
}

/// Reads a persisted exit status; `Ok(None)` when there is none.
pub fn read(path: &Path) -> std::io::Result<Option<ExitStatus>> {
    match std::fs::read(path) {
        Ok(data) => serde_json::from_slice(&data)
            .map(Some)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_record_round_trips_and_missing_is_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("exit.json");
        assert!(read(&path).expect("read").is_none());
        let status = ExitStatus {
            code: 137,
            oom_killed: true,
            finished_at: chrono::Utc::now(),
        };
        write(&path, &status).expect("write");
        assert_eq!(read(&path).expect("read"), Some(status));
        assert!(!dir.path().join(".exit.json.tmp").exists());
    }
}
