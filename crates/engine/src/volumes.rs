//! Volumes of the `local` driver: `<root>/volumes/<name>/_data` with its metadata beside it
//! (`meta.json`, written atomically), optional tmpfs or bind backing (`--opt
//! type=tmpfs|none,device=..,o=..`) mounted on first use, the container's volume mounts
//! (`-v name:/path`, `--mount type=volume`, anonymous volumes for `VOLUME` paths,
//! `--volumes-from`) and the copy of the image's content into a fresh volume.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::container::{Container, MountPoint};
use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::model::{Config, HostConfig};
use crate::networking::write_atomic;

/// Label Docker puts on anonymous volumes.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// A volume's persisted metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub name: String,
    pub driver: String,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    pub created_at: String,
    /// The image's content was not copied in yet (a fresh volume).
    #[serde(default)]
    pub fresh: bool,
}

/// The volumes of one daemon.
#[derive(Debug)]
pub struct Volumes {
    dir: PathBuf,
    all: Mutex<BTreeMap<String, Volume>>,
}

/// Whether `name` is a valid volume name (`[a-zA-Z0-9][a-zA-Z0-9_.-]+`).
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() >= 2
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn is_mounted(path: &Path) -> bool {
    let p = path.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split_whitespace().nth(4) == Some(p.as_str()))
}

impl Volumes {
    /// Loads `<root>/volumes`.
    pub fn open(root: &Path) -> Result<Self> {
        let dir = root.join("volumes");
        std::fs::create_dir_all(&dir).map_err(|e| EngineError::io("create volumes dir", e))?;
        let mut all = BTreeMap::new();
        for entry in std::fs::read_dir(&dir).map_err(|e| EngineError::io("read volumes", e))? {
            let Ok(entry) = entry else { continue };
            let meta = entry.path().join("meta.json");
            if let Ok(bytes) = std::fs::read(&meta)
                && let Ok(v) = serde_json::from_slice::<Volume>(&bytes)
            {
                all.insert(v.name.clone(), v);
            }
        }
        Ok(Self {
            dir,
            all: Mutex::new(all),
        })
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Volume>> {
        self.all.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `<root>/volumes/<name>/_data`.
    pub fn mountpoint(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("_data")
    }

    /// The volume whose data directory is `path`, if any.
    pub fn name_of(&self, path: &str) -> Option<String> {
        let rest = Path::new(path).strip_prefix(&self.dir).ok()?;
        let mut parts = rest.components();
        let name = parts.next()?.as_os_str().to_str()?.to_string();
        (parts.as_path() == Path::new("_data")).then_some(name)
    }

    /// All volumes.
    pub fn list(&self) -> Vec<Volume> {
        self.lock().values().cloned().collect()
    }

    /// One volume.
    pub fn get(&self, name: &str) -> Result<Volume> {
        self.lock()
            .get(name)
            .cloned()
            .ok_or_else(|| EngineError::NotFound(format!("get {name}: no such volume")))
    }

    /// Creates a volume, or returns the existing one of that name (as Docker does).
    pub fn create(
        &self,
        name: Option<&str>,
        driver: &str,
        labels: BTreeMap<String, String>,
        options: BTreeMap<String, String>,
    ) -> Result<Volume> {
        if !(driver.is_empty() || driver == "local") {
            return Err(EngineError::NotFound(format!(
                "error looking up volume plugin {driver}: plugin \"{driver}\" not found"
            )));
        }
        let anonymous = name.is_none_or(str::is_empty);
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => n.to_string(),
            None => hex::encode(rand::random::<[u8; 32]>()),
        };
        if !valid_name(&name) {
            return Err(EngineError::InvalidArgument(format!(
                "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
            )));
        }
        for key in options.keys() {
            if !matches!(key.as_str(), "type" | "device" | "o") {
                return Err(EngineError::InvalidArgument(format!(
                    "create {name}: invalid option key: \"{key}\""
                )));
            }
        }
        if !options.is_empty() && !options.contains_key("type") {
            return Err(EngineError::InvalidArgument(format!(
                "create {name}: missing required option: \"type\""
            )));
        }
        let mut all = self.lock();
        if let Some(v) = all.get(&name) {
            return Ok(v.clone());
        }
        let mut labels = labels;
        if anonymous {
            labels.insert(ANONYMOUS_LABEL.into(), String::new());
        }
        let v = Volume {
            name: name.clone(),
            driver: "local".into(),
            labels,
            options,
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            fresh: true,
        };
        let dir = self.dir.join(&name);
        let made = (|| {
            std::fs::create_dir_all(dir.join("_data"))?;
            write_atomic(&dir.join("meta.json"), &serde_json::to_vec_pretty(&v)?)
        })();
        if let Err(e) = made {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(EngineError::io(format!("create volume {name}"), e));
        }
        all.insert(name, v.clone());
        Ok(v)
    }

    fn save(&self, v: &Volume) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(v)
            .map_err(|e| EngineError::Internal(format!("encoding volume: {e}")))?;
        write_atomic(&self.dir.join(&v.name).join("meta.json"), &bytes)
            .map_err(|e| EngineError::io(format!("saving volume {}", v.name), e))
    }

    /// Mounts the backing of a volume with `type` options, once.
    pub fn mount(&self, name: &str) -> Result<()> {
        let v = self.get(name)?;
        let Some(kind) = v.options.get("type") else {
            return Ok(());
        };
        let target = self.mountpoint(name);
        if is_mounted(&target) {
            return Ok(());
        }
        let device = v
            .options
            .get("device")
            .cloned()
            .unwrap_or_else(|| kind.clone());
        let opts: Vec<String> = v
            .options
            .get("o")
            .map(|o| o.split(',').map(str::to_string).collect())
            .unwrap_or_default();
        let status = std::process::Command::new("mount")
            .args(["-t", kind, "-o", &opts.join(","), &device])
            .arg(&target)
            .output()
            .map_err(|e| EngineError::io("running mount", e))?;
        if !status.status.success() {
            return Err(EngineError::Internal(format!(
                "error while mounting volume '{}': failed to mount local volume: {}",
                target.display(),
                String::from_utf8_lossy(&status.stderr).trim()
            )));
        }
        Ok(())
    }

    /// Removes a volume (its backing unmounted first).
    pub fn remove(&self, name: &str) -> Result<()> {
        let mut all = self.lock();
        if !all.contains_key(name) {
            return Err(EngineError::NotFound(format!("get {name}: no such volume")));
        }
        let target = self.mountpoint(name);
        if is_mounted(&target) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&target)
                .status();
        }
        // Rename first so a crash never leaves a half-deleted volume that still loads.
        let dir = self.dir.join(name);
        let trash = self.dir.join(format!(".rm-{name}"));
        std::fs::rename(&dir, &trash).map_err(|e| EngineError::io("remove volume", e))?;
        all.remove(name);
        let _ = std::fs::remove_dir_all(&trash);
        Ok(())
    }

    /// Copies `from` into a fresh volume once (Docker's copy-up of the image's content).
    pub fn fill(&self, name: &str, from: &Path) -> Result<()> {
        let mut v = self.get(name)?;
        if !v.fresh {
            return Ok(());
        }
        let data = self.mountpoint(name);
        let empty = std::fs::read_dir(&data)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if empty && from.is_dir() {
            copy_tree(from, &data)
                .map_err(|e| EngineError::io(format!("copy into volume {name}"), e))?;
            if let Ok(meta) = std::fs::metadata(from) {
                let _ = std::fs::set_permissions(&data, meta.permissions());
                use std::os::unix::fs::MetadataExt;
                let _ = std::os::unix::fs::chown(&data, Some(meta.uid()), Some(meta.gid()));
            }
        }
        v.fresh = false;
        self.save(&v)?;
        self.lock().insert(name.to_string(), v);
        Ok(())
    }
}

/// Copies a directory tree keeping modes, owners and symlinks.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let meta = std::fs::symlink_metadata(&src)?;
        let ft = meta.file_type();
        if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
            let _ = std::os::unix::fs::lchown(&dst, Some(meta.uid()), Some(meta.gid()));
            continue;
        }
        if ft.is_dir() {
            std::fs::create_dir_all(&dst)?;
            copy_tree(&src, &dst)?;
        } else if ft.is_file() {
            std::fs::copy(&src, &dst)?;
        } else {
            continue;
        }
        std::fs::set_permissions(&dst, meta.permissions())?;
        let _ = std::os::unix::fs::chown(&dst, Some(meta.uid()), Some(meta.gid()));
    }
    Ok(())
}

/// Splits `src:dst[:mode]` when `src` names a volume (not a host path).
fn volume_bind(spec: &str) -> Option<(String, String, bool)> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => return None,
    };
    if src.starts_with('/') || src.is_empty() {
        return None;
    }
    Some((
        src.to_string(),
        dst.to_string(),
        mode.split(',').any(|o| o == "ro"),
    ))
}

impl Engine {
    /// The daemon's volumes.
    pub fn volumes(&self) -> &Volumes {
        &self.vols
    }

    /// At create: the volume mounts of a container (named `-v`, `--mount type=volume`,
    /// `--volumes-from`, anonymous volumes for `Config.Volumes` paths not otherwise
    /// mounted), creating volumes that do not exist yet.
    pub(crate) fn volume_points(
        &self,
        config: &Config,
        hc: &HostConfig,
        binds: &[MountPoint],
    ) -> Result<Vec<MountPoint>> {
        let mut out: Vec<MountPoint> = Vec::new();
        let mut wanted: Vec<(String, String, bool)> = Vec::new();
        for b in hc.binds.iter().flatten() {
            if let Some(v) = volume_bind(b) {
                if !valid_name(&v.0) {
                    return Err(EngineError::InvalidArgument(format!(
                        "create {0}: \"{0}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path",
                        v.0
                    )));
                }
                wanted.push(v);
            }
        }
        for m in hc.mounts.iter().flatten().filter(|m| m.kind == "volume") {
            if !m.target.starts_with('/') {
                return Err(EngineError::InvalidArgument(format!(
                    "invalid mount config for type \"volume\": invalid mount path: '{}' mount path must be absolute",
                    m.target
                )));
            }
            wanted.push((m.source.clone(), m.target.clone(), m.read_only));
        }
        for (src, dst, ro) in wanted {
            let v = self.vols.create(
                (!src.is_empty()).then_some(src.as_str()),
                "local",
                BTreeMap::new(),
                BTreeMap::new(),
            )?;
            out.push(MountPoint {
                kind: "volume".into(),
                source: self.vols.mountpoint(&v.name).display().to_string(),
                destination: dst,
                mode: if ro { "ro".into() } else { "z".into() },
                rw: !ro,
            });
        }
        let volumes_from: Vec<String> = hc
            .extra
            .get("VolumesFrom")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default();
        for spec in volumes_from {
            let (name, mode) = spec.split_once(':').unwrap_or((spec.as_str(), ""));
            let other = self.lookup(name)?.snapshot();
            for p in other.mounts.iter().filter(|p| p.kind != "tmpfs") {
                if out
                    .iter()
                    .chain(binds)
                    .any(|x| x.destination == p.destination)
                {
                    continue;
                }
                let mut p = p.clone();
                match mode {
                    "ro" => p.rw = false,
                    "rw" => p.rw = true,
                    _ => {}
                }
                out.push(p);
            }
        }
        let tmpfs: Vec<&String> = hc
            .tmpfs
            .iter()
            .flat_map(|t| t.keys())
            .chain(
                hc.mounts
                    .iter()
                    .flatten()
                    .filter(|m| m.kind == "tmpfs")
                    .map(|m| &m.target),
            )
            .collect();
        for dst in config.volumes.iter().flat_map(|v| v.keys()) {
            let dst = dst.trim_end_matches('/');
            let taken = out
                .iter()
                .chain(binds)
                .any(|x| x.destination.trim_end_matches('/') == dst)
                || tmpfs.iter().any(|t| t.trim_end_matches('/') == dst);
            if taken || dst.is_empty() {
                continue;
            }
            let v = self
                .vols
                .create(None, "local", BTreeMap::new(), BTreeMap::new())?;
            out.push(MountPoint {
                kind: "volume".into(),
                source: self.vols.mountpoint(&v.name).display().to_string(),
                destination: dst.to_string(),
                mode: String::new(),
                rw: true,
            });
        }
        Ok(out)
    }

    /// At start (rootfs mounted): mounts volume backings and copies the image's content
    /// into fresh volumes.
    pub(crate) fn volume_setup(&self, c: &Container) -> Result<()> {
        let rootfs = Path::new(&c.rootfs.merged);
        for p in c.mounts.iter().filter(|p| p.kind == "volume") {
            let Some(name) = self.vols.name_of(&p.source) else {
                continue;
            };
            self.vols.mount(&name)?;
            let nocopy = c
                .host_config
                .binds
                .iter()
                .flatten()
                .any(|b| b.ends_with(":nocopy") && b.contains(&p.destination));
            if nocopy {
                continue;
            }
            let from = crate::rootpath::resolve(rootfs, &p.destination, true)
                .unwrap_or_else(|_| rootfs.join(p.destination.trim_start_matches('/')));
            self.vols.fill(&name, &from)?;
        }
        Ok(())
    }

    /// Names of the volumes a container uses.
    pub fn volumes_of(&self, c: &Container) -> Vec<String> {
        c.mounts
            .iter()
            .filter(|p| p.kind == "volume")
            .filter_map(|p| self.vols.name_of(&p.source))
            .collect()
    }

    /// The anonymous volumes of a container (what `rm -v` and `--rm` remove).
    pub fn anonymous_volumes_of(&self, c: &Container) -> Vec<String> {
        self.volumes_of(c)
            .into_iter()
            .filter(|n| {
                self.vols
                    .get(n)
                    .is_ok_and(|v| v.labels.contains_key(ANONYMOUS_LABEL))
            })
            .collect()
    }

    /// Ids of the containers using a volume.
    pub fn volume_users(&self, name: &str) -> Vec<String> {
        self.containers()
            .into_iter()
            .filter(|c| self.volumes_of(c).iter().any(|n| n == name))
            .map(|c| c.id)
            .collect()
    }

    /// Removes volumes no container uses any more, logging failures.
    pub fn remove_unused_volumes(&self, names: &[String]) {
        for n in names {
            if self.volume_users(n).is_empty()
                && let Err(e) = self.vols.remove(n)
            {
                tracing::warn!(volume = %n, error = %e, "removing volume failed");
            }
        }
    }

    /// `DELETE /volumes/{name}`: refused while a container uses it.
    pub fn remove_volume(&self, name: &str, force: bool) -> Result<()> {
        let users = self.volume_users(name);
        if !users.is_empty() {
            return Err(EngineError::Conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        match self.vols.remove(name) {
            Err(EngineError::NotFound(_)) if force => Ok(()),
            other => other,
        }
    }
}

/// The API shape of a volume.
pub fn volume_json(vols: &Volumes, v: &Volume) -> Value {
    json!({
        "CreatedAt": v.created_at,
        "Driver": v.driver,
        "Labels": v.labels,
        "Mountpoint": vols.mountpoint(&v.name),
        "Name": v.name,
        "Options": if v.options.is_empty() { Value::Null } else { json!(v.options) },
        "Scope": "local",
    })
}

/// Inspect's `Mounts` entries with `Name` and `Driver` for volumes.
pub fn decorate_mounts(engine: &Engine, c: &Container, v: &mut Value) {
    let Some(list) = v["Mounts"].as_array_mut() else {
        return;
    };
    for (m, p) in list.iter_mut().zip(&c.mounts) {
        if p.kind == "volume"
            && let Some(name) = engine.vols.name_of(&p.source)
        {
            m["Name"] = json!(name);
            m["Driver"] = json!("local");
            m["Propagation"] = json!("");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_are_created_filled_and_removed() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let vols = Volumes::open(tmp.path()).expect("open");
        let v = vols
            .create(Some("data"), "", BTreeMap::new(), BTreeMap::new())
            .expect("create");
        assert!(v.fresh);
        assert_eq!(
            vols.name_of(&vols.mountpoint("data").display().to_string())
                .as_deref(),
            Some("data")
        );
        let src = tmp.path().join("src");
        std::fs::create_dir_all(src.join("sub")).expect("src");
        std::fs::write(src.join("sub/f"), "x").expect("file");
        vols.fill("data", &src).expect("fill");
        assert_eq!(
            std::fs::read_to_string(vols.mountpoint("data").join("sub/f")).expect("copied"),
            "x"
        );
        let again = Volumes::open(tmp.path()).expect("reopen");
        assert!(!again.get("data").expect("persisted").fresh);
        assert!(
            again
                .create(Some("-bad"), "", BTreeMap::new(), BTreeMap::new())
                .is_err()
        );
        assert!(
            again
                .create(Some("x"), "nfs", BTreeMap::new(), BTreeMap::new())
                .is_err()
        );
        let anon = again
            .create(None, "", BTreeMap::new(), BTreeMap::new())
            .expect("anonymous");
        assert!(anon.labels.contains_key(ANONYMOUS_LABEL));
        again.remove("data").expect("remove");
        assert!(again.get("data").is_err());
        assert!(!tmp.path().join("volumes/data").exists());
    }
}
