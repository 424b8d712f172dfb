//! The engine: owns the image store, the runtime, the container registry (in memory, backed
//! by [`ContainerStore`]) and the event bus. Operations live in the sibling modules
//! (`lifecycle`, `exec`, `images`, ...) as `impl Engine` blocks.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};

use berth_image::ImageStore;
use berth_runtime::{AttachStreams, Runtime};
use tokio::sync::oneshot;

use crate::container::Container;
use crate::error::{EngineError, Result};
use crate::events::{Event, Events};
use crate::exec::Exec;
use crate::store::ContainerStore;

/// Configuration of the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Root of all persistent state (`--root`).
    pub root: PathBuf,
    /// Name of the default runtime (`builtin`, `runc`, `crun`).
    pub default_runtime: String,
    /// Manage bridges, veths and port rules in this network namespace (created there on
    /// first use) instead of the daemon's own; `None`: the daemon's namespace.
    pub network_namespace: Option<PathBuf>,
    /// Registries (`host[:port]`) reached over plain HTTP besides localhost (`--insecure-registry`).
    pub insecure_registries: Vec<String>,
}

/// One container in the registry.
pub struct Entry {
    /// The record; never held across an await.
    pub data: Mutex<Container>,
    /// Serializes lifecycle operations (start, stop, remove) of this container.
    pub op: tokio::sync::Mutex<()>,
    /// Clients attached before the container's process exists, served at start.
    pub pending_attach: Mutex<Vec<oneshot::Sender<AttachStreams>>>,
    /// Incremented at every start; a monitor only records the exit of its own run.
    pub generation: AtomicU64,
    /// Current restart back-off in milliseconds (0: none yet).
    pub backoff_ms: AtomicU64,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("data", &self.data)
            .finish_non_exhaustive()
    }
}

impl Entry {
    /// Locks the record.
    pub fn lock(&self) -> MutexGuard<'_, Container> {
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A copy of the record.
    pub fn snapshot(&self) -> Container {
        self.lock().clone()
    }

    /// A registry entry for a record.
    pub fn new(container: Container) -> Arc<Self> {
        Arc::new(Self {
            data: Mutex::new(container),
            op: tokio::sync::Mutex::new(()),
            pending_attach: Mutex::new(Vec::new()),
            generation: AtomicU64::new(0),
            backoff_ms: AtomicU64::new(0),
        })
    }
}

/// Containers by id and by name.
#[derive(Debug, Default)]
pub struct Registry {
    pub by_id: HashMap<String, Arc<Entry>>,
    /// Name (without slash) to id; includes names reserved by creates in progress.
    pub names: HashMap<String, String>,
}

/// The dockerd role.
#[derive(Debug)]
pub struct Engine {
    pub(crate) config: EngineConfig,
    pub(crate) images: Arc<ImageStore>,
    pub(crate) runtime: Runtime,
    pub(crate) store: ContainerStore,
    pub(crate) registry: Mutex<Registry>,
    pub(crate) execs: Mutex<HashMap<String, Arc<Exec>>>,
    pub(crate) events: Events,
    pub(crate) net: crate::networking::Networking,
    pub(crate) vols: crate::volumes::Volumes,
}

impl Engine {
    /// Builds the engine over an opened image store and runtime; call
    /// [`Engine::restore`] next to reload containers.
    pub fn new(config: EngineConfig, images: ImageStore, runtime: Runtime) -> Result<Arc<Self>> {
        let store = ContainerStore::open(&config.root.join("containers"))?;
        let vols = crate::volumes::Volumes::open(&config.root)?;
        let net =
            crate::networking::Networking::open(&config.root, config.network_namespace.clone())?;
        Ok(Arc::new(Self {
            config,
            images: Arc::new(images),
            runtime,
            store,
            registry: Mutex::default(),
            execs: Mutex::default(),
            events: Events::default(),
            net,
            vols,
        }))
    }

    /// The engine's configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The event bus.
    pub fn events(&self) -> &Events {
        &self.events
    }

    pub(crate) fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Finds a container by full id, name (with or without slash) or unique id prefix.
    pub fn lookup(&self, name: &str) -> Result<Arc<Entry>> {
        let reg = self.registry();
        if let Some(e) = reg.by_id.get(name) {
            return Ok(e.clone());
        }
        let bare = name.strip_prefix('/').unwrap_or(name);
        if let Some(e) = reg.names.get(bare).and_then(|id| reg.by_id.get(id)) {
            return Ok(e.clone());
        }
        if !name.is_empty() && name.chars().all(|c| c.is_ascii_hexdigit()) {
            let mut found = reg.by_id.iter().filter(|(id, _)| id.starts_with(name));
            if let Some((_, e)) = found.next() {
                if found.next().is_some() {
                    return Err(EngineError::NotFound(format!(
                        "multiple IDs found with provided prefix: {name}"
                    )));
                }
                return Ok(e.clone());
            }
        }
        Err(EngineError::no_such_container(name))
    }

    /// Every container's record.
    pub fn containers(&self) -> Vec<Container> {
        let entries: Vec<Arc<Entry>> = self.registry().by_id.values().cloned().collect();
        entries.iter().map(|e| e.snapshot()).collect()
    }

    /// Id of a container using `image_id`, if any (for `rmi` and prune).
    pub fn container_using_image(&self, image_id: &str) -> Option<String> {
        let entries: Vec<Arc<Entry>> = self.registry().by_id.values().cloned().collect();
        entries
            .iter()
            .map(|e| e.snapshot())
            .find(|c| c.image_id == image_id)
            .map(|c| c.id)
    }

    /// Publishes a container event with Docker's attributes (name, image, labels).
    pub(crate) fn container_event(
        &self,
        c: &Container,
        action: &str,
        extra: &[(&str, String)],
        exit_code: Option<i32>,
    ) {
        let mut attributes: std::collections::BTreeMap<String, String> = c
            .config
            .labels
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        attributes.insert("name".into(), c.name.clone());
        attributes.insert("image".into(), c.config.image.clone());
        for (k, v) in extra {
            attributes.insert((*k).to_string(), v.clone());
        }
        self.events.publish(Event {
            kind: "container",
            action: action.into(),
            id: c.id.clone(),
            attributes,
            exit_code,
            time: chrono::Utc::now(),
        });
    }

    /// Publishes an image event.
    pub(crate) fn image_event(&self, action: &str, id: &str, name: Option<&str>) {
        let mut attributes = std::collections::BTreeMap::new();
        if let Some(n) = name {
            attributes.insert("name".to_string(), n.to_string());
        }
        self.events.publish(Event {
            kind: "image",
            action: action.into(),
            id: id.into(),
            attributes,
            exit_code: None,
            time: chrono::Utc::now(),
        });
    }

    /// Runs blocking work on the image store off the async threads.
    pub(crate) async fn with_images<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&ImageStore) -> Result<T> + Send + 'static,
    {
        let images = self.images.clone();
        tokio::task::spawn_blocking(move || f(&images))
            .await
            .map_err(|e| EngineError::Internal(format!("image task failed: {e}")))?
    }
}

/// `docker.io/library/busybox:latest` → `busybox:latest`, as Docker shows references.
pub fn familiar(reference: &str) -> String {
    let r = reference
        .strip_prefix("docker.io/library/")
        .or_else(|| reference.strip_prefix("docker.io/"))
        .unwrap_or(reference);
    r.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn familiar_names() {
        assert_eq!(
            familiar("docker.io/library/busybox:latest"),
            "busybox:latest"
        );
        assert_eq!(familiar("docker.io/me/app:1"), "me/app:1");
        assert_eq!(familiar("localhost:5000/x:1"), "localhost:5000/x:1");
    }
}
