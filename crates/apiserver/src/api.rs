//! The shared state of the API server: the store, the catalog (built-ins plus CRDs) and the
//! credentials, with the options every write verb takes.

use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use berth_store::Store;

use crate::catalog::{Catalog, ResourceType};

/// `fieldValidation`: what a write does with fields the kind's schema does not have
/// (they are dropped in every case).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FieldValidation {
    /// Drop them silently.
    Ignore,
    /// Drop them and answer with a `Warning` header per field (upstream's default).
    #[default]
    Warn,
    /// Refuse the request (`400` strict decoding error, or `422` for a patch).
    Strict,
}

impl FieldValidation {
    /// The query parameter's value; anything but `Ignore` or `Strict` is `Warn`.
    pub fn parse(value: Option<&str>) -> Self {
        match value {
            Some("Ignore") => Self::Ignore,
            Some("Strict") => Self::Strict,
            _ => Self::Warn,
        }
    }
}

/// Messages for the response's `Warning` headers, shared by clones of [`WriteOptions`].
pub type Warnings = Arc<Mutex<Vec<String>>>;

/// Options common to create, update, patch and delete.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// `dryRun=All`: validate and answer, but do not write.
    pub dry_run: bool,
    /// `fieldManager`, or the client's user agent up to its first `/`.
    pub field_manager: String,
    /// `force=true` for server-side apply conflicts.
    pub force: bool,
    /// The object comes from server-side apply, which maintains `managedFields` itself.
    pub apply: bool,
    /// `fieldValidation`.
    pub field_validation: FieldValidation,
    /// Warnings collected while handling the request.
    pub warnings: Warnings,
}

impl WriteOptions {
    /// Records a warning for the response.
    pub fn warn(&self, message: String) {
        self.warnings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(message);
    }
}

/// Everything request handlers and background tasks share.
pub struct Api {
    store: Arc<dyn Store>,
    catalog: RwLock<Catalog>,
    token: String,
    /// Namespaces last seen active, with their `mod_revision`: creates in them are one
    /// store write guarded by that revision (see [`Store::create_guarded`]).
    active_namespaces: Mutex<std::collections::HashMap<String, i64>>,
}

impl Api {
    /// State over a store with the given catalog; `token` is accepted as admin.
    pub fn new(store: Arc<dyn Store>, catalog: Catalog, token: String) -> Arc<Self> {
        Arc::new(Self {
            store,
            catalog: RwLock::new(catalog),
            token,
            active_namespaces: Mutex::default(),
        })
    }

    /// The store.
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// The revision at which `namespace` was last seen active, if it was.
    pub fn active_namespace(&self, namespace: &str) -> Option<i64> {
        self.active_namespaces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(namespace)
            .copied()
    }

    /// Records (`Some`) or forgets (`None`) the revision at which `namespace` is active.
    pub fn set_active_namespace(&self, namespace: &str, revision: Option<i64>) {
        let mut map = self
            .active_namespaces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match revision {
            Some(revision) => map.insert(namespace.to_string(), revision),
            None => map.remove(namespace),
        };
    }

    /// The bearer token accepted as admin.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Reads the catalog; never held across `.await`.
    pub fn catalog(&self) -> RwLockReadGuard<'_, Catalog> {
        self.catalog
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Changes the catalog (CRD registration); never held across `.await`.
    pub fn catalog_mut(&self) -> RwLockWriteGuard<'_, Catalog> {
        self.catalog
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The resource served at `group/version/plural`.
    pub fn resource(&self, group: &str, version: &str, plural: &str) -> Option<ResourceType> {
        self.catalog().find(group, version, plural).cloned()
    }

    /// The resource of `kind` in `group/version`.
    pub fn resource_of_kind(&self, group: &str, version: &str, kind: &str) -> Option<ResourceType> {
        self.catalog().find_kind(group, version, kind).cloned()
    }

    /// One served version of every stored resource (group and plural), namespaced only if
    /// asked; used by the namespace and garbage collectors.
    pub fn stored_resources(&self, namespaced_only: bool) -> Vec<ResourceType> {
        let catalog = self.catalog();
        let mut seen = std::collections::HashSet::new();
        catalog
            .resources()
            .iter()
            .filter(|r| !namespaced_only || r.namespaced)
            .filter(|r| r.verbs.iter().any(|v| v == "delete"))
            .filter(|r| seen.insert((r.group.clone(), r.plural.clone())))
            .cloned()
            .collect()
    }
}
