//! Persistence of container records under `<root>/containers/<id>/config.v2.json`.
//!
//! Every write goes to a temporary file that is fsynced and renamed over the record, so a
//! crash leaves either the old or the new record. A container directory without a record is
//! the leftover of an interrupted create; a `.trash-<id>` directory is the leftover of an
//! interrupted removal. Both are reported by [`ContainerStore::load`] for cleanup.

use std::path::{Path, PathBuf};

use crate::container::Container;
use crate::error::{EngineError, Result};

const RECORD: &str = "config.v2.json";
const TRASH_PREFIX: &str = ".trash-";

/// What was found under the containers directory at start-up.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Complete records.
    pub containers: Vec<Container>,
    /// Ids whose create or removal was interrupted; their snapshot and runtime state must go.
    pub leftovers: Vec<String>,
}

/// The containers directory.
#[derive(Debug, Clone)]
pub struct ContainerStore {
    dir: PathBuf,
}

impl ContainerStore {
    /// Opens (creating) `<dir>`.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| EngineError::io(format!("create {}", dir.display()), e))?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// Directory of one container.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Creates the directory of a new container (before its record exists).
    pub fn create_dir(&self, id: &str) -> Result<PathBuf> {
        let dir = self.container_dir(id);
        std::fs::create_dir_all(&dir)
            .map_err(|e| EngineError::io(format!("create {}", dir.display()), e))?;
        Ok(dir)
    }

    /// Writes a container's record atomically and durably: for its creation and for
    /// changes of its configuration (rename, update).
    pub fn save(&self, container: &Container) -> Result<()> {
        self.write(container, true)
    }

    /// Writes a container's record atomically without waiting for the disk: for state
    /// changes (started, exited, paused...), which the daemon reconciles at its start with
    /// what actually runs, so a power loss cannot leave a wrong state behind.
    pub fn save_state(&self, container: &Container) -> Result<()> {
        self.write(container, false)
    }

    fn write(&self, container: &Container, sync: bool) -> Result<()> {
        let dir = self.container_dir(&container.id);
        let data = serde_json::to_vec(container)
            .map_err(|e| EngineError::Internal(format!("serialize container record: {e}")))?;
        let tmp = dir.join(format!(".{RECORD}.tmp"));
        berth_network::replace::write_file(&dir.join(RECORD), &tmp, &data, sync)
            .map_err(|e| EngineError::io(format!("write record of {}", container.id), e))
    }

    /// Reads every record; reports interrupted creates and removals as leftovers.
    pub fn load(&self) -> Result<Loaded> {
        let mut loaded = Loaded::default();
        let entries = std::fs::read_dir(&self.dir)
            .map_err(|e| EngineError::io(format!("read {}", self.dir.display()), e))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_prefix(TRASH_PREFIX) {
                loaded.leftovers.push(id.to_string());
                continue;
            }
            let record = entry.path().join(RECORD);
            match std::fs::read(&record) {
                Ok(data) => match serde_json::from_slice::<Container>(&data) {
                    Ok(c) if c.id == name => loaded.containers.push(c),
                    Ok(_) | Err(_) => {
                        tracing::warn!(container = %name, "unreadable container record, removing");
                        loaded.leftovers.push(name);
                    }
                },
                Err(_) => loaded.leftovers.push(name),
            }
        }
        Ok(loaded)
    }

    /// First step of a removal: the container disappears from disk atomically.
    pub fn begin_remove(&self, id: &str) -> Result<()> {
        let from = self.container_dir(id);
        let to = self.dir.join(format!("{TRASH_PREFIX}{id}"));
        match std::fs::rename(&from, &to) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(EngineError::io(format!("remove {}", from.display()), e)),
        }
    }

    /// Last step of a removal (and cleanup of leftovers): deletes what is left on disk.
    pub fn finish_remove(&self, id: &str) -> Result<()> {
        for dir in [
            self.dir.join(format!("{TRASH_PREFIX}{id}")),
            self.container_dir(id),
        ] {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(EngineError::io(format!("remove {}", dir.display()), e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::{Rootfs, State};

    fn record(id: &str) -> Container {
        Container {
            id: id.into(),
            name: "x".into(),
            created: chrono::Utc::now(),
            image_id: "sha256:00".into(),
            config: Default::default(),
            host_config: Default::default(),
            path: "true".into(),
            args: vec![],
            state: State::default(),
            rootfs: Rootfs::default(),
            mounts: vec![],
            log_path: String::new(),
            restart_count: 0,
            manually_stopped: false,
            has_been_started: false,
        }
    }

    #[test]
    fn records_round_trip_and_leftovers_are_reported() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = ContainerStore::open(tmp.path()).expect("open");
        store.create_dir("a").expect("dir");
        store.save(&record("a")).expect("save");
        store.create_dir("b").expect("dir without record");
        store.create_dir("c").expect("dir");
        store.save(&record("c")).expect("save");
        store.begin_remove("c").expect("begin remove");
        let loaded = store.load().expect("load");
        assert_eq!(loaded.containers.len(), 1);
        assert_eq!(
            loaded.containers[0],
            record("a").clone_with_created(&loaded.containers[0])
        );
        let mut left = loaded.leftovers.clone();
        left.sort();
        assert_eq!(left, vec!["b".to_string(), "c".to_string()]);
        for id in left {
            store.finish_remove(&id).expect("finish");
        }
        assert!(store.load().expect("load").leftovers.is_empty());
    }

    impl Container {
        fn clone_with_created(mut self, other: &Container) -> Container {
            self.created = other.created;
            self
        }
    }
}
