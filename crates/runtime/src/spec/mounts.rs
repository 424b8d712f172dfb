//! Docker's default mounts (`/proc`, `/dev`, `/dev/pts`, `/dev/shm`, `/dev/mqueue`, `/sys`,
//! cgroup) followed by the container's own mounts, and the host device list of privileged
//! containers.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use serde_json::{Value, json};

use crate::ContainerConfig;

/// The mounts of a container's spec: defaults first, then the configured ones. A configured
/// mount replaces a default one with the same destination, as in Docker.
pub fn container_mounts(config: &ContainerConfig) -> Vec<Value> {
    let sys_mode = if config.privileged { "rw" } else { "ro" };
    let defaults = [
        json!({"destination": "/proc", "type": "proc", "source": "proc",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", sys_mode]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
               "options": ["nosuid", "noexec", "nodev", "relatime", sys_mode]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]}),
    ];
    let mut mounts: Vec<Value> = defaults
        .into_iter()
        .filter(|m| {
            !config
                .mounts
                .iter()
                .any(|u| Path::new(m["destination"].as_str().unwrap_or_default()) == u.destination)
        })
        .collect();
    for m in &config.mounts {
        let mut options = m.options.clone();
        if m.kind == "bind" && !options.iter().any(|o| o == "bind" || o == "rbind") {
            options.push("rbind".into());
        }
        mounts.push(json!({
            "destination": m.destination,
            "type": m.kind,
            "source": m.source,
            "options": options,
        }));
    }
    mounts
}

/// Every character and block device under the host's `/dev` (not `/dev/pts`, `/dev/shm`,
/// `/dev/mqueue`), as OCI `linux.devices` entries for privileged containers.
pub fn host_devices() -> Vec<Value> {
    let mut out = Vec::new();
    walk(Path::new("/dev"), 0, &mut out);
    out
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<Value>) {
    if depth > 4 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if ["/dev/pts", "/dev/shm", "/dev/mqueue", "/dev/console"]
            .iter()
            .any(|p| path == Path::new(p))
        {
            continue;
        }
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let ft = meta.file_type();
        if ft.is_dir() {
            walk(&path, depth + 1, out);
            continue;
        }
        let kind = if ft.is_char_device() {
            "c"
        } else if ft.is_block_device() {
            "b"
        } else {
            continue;
        };
        let rdev = meta.rdev();
        out.push(json!({
            "path": path,
            "type": kind,
            "major": nix::sys::stat::major(rdev),
            "minor": nix::sys::stat::minor(rdev),
            "fileMode": meta.mode() & 0o7777,
            "uid": meta.uid(),
            "gid": meta.gid(),
        }));
    }
}
