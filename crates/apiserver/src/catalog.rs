//! What the API server knows about each resource type: names and scopes for discovery,
//! upstream defaulting and validation, Table columns as `kubectl get` prints them, the OpenAPI
//! documents, strategic-merge-patch keys, and the same for CustomResourceDefinitions.
//!
//! Contract with the rest of the API server (request handling codes against exactly these
//! items). Objects are `serde_json::Value` so that every field a client sent is kept.

mod builtin;
mod crd;
mod defaults;
mod definitions;
mod jsonpath;
mod names;
mod openapi;
mod schema;
mod table;
mod validation;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use serde_json::Value;

/// The `scale` subresource of a resource: where replicas live in its objects.
///
/// For built-in workloads `label_selector_path` is `.spec.selector`, a `LabelSelector`
/// object (a plain map for ReplicationControllers) that the caller formats as a string; for
/// CRDs it is the CRD's `labelSelectorPath`, which points at a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleSubresource {
    /// JSON path like `.spec.replicas`.
    pub spec_replicas_path: String,
    /// JSON path like `.status.replicas`.
    pub status_replicas_path: String,
    /// JSON path like `.status.selector`, if any.
    pub label_selector_path: Option<String>,
}

/// One served resource in one group version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceType {
    /// API group; empty for core.
    pub group: String,
    /// API version inside the group (`v1`).
    pub version: String,
    /// Object kind (`Deployment`).
    pub kind: String,
    /// Lower-case plural used in URLs (`deployments`).
    pub plural: String,
    /// Lower-case singular (`deployment`).
    pub singular: String,
    /// Short names for kubectl (`deploy`).
    pub short_names: Vec<String>,
    /// Objects live in namespaces.
    pub namespaced: bool,
    /// Discovery verbs: `create`, `delete`, `deletecollection`, `get`, `list`, `patch`,
    /// `update`, `watch`.
    pub verbs: Vec<String>,
    /// Discovery categories (`all`).
    pub categories: Vec<String>,
    /// Serves the `status` subresource.
    pub status_subresource: bool,
    /// Serves the `scale` subresource.
    pub scale_subresource: Option<ScaleSubresource>,
    /// Served from a CustomResourceDefinition.
    pub custom: bool,
}

impl ResourceType {
    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// One reason an object is invalid (a `Status` cause).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueRequired`, `FieldValueInvalid`, `FieldValueNotSupported`,
    /// `FieldValueForbidden`, `FieldValueDuplicate`, `FieldValueTooLong`.
    pub reason: String,
    /// Upstream's message, e.g. `Required value` or
    /// `Invalid value: "Foo": a lowercase RFC 1123 subdomain must consist of ...`.
    pub message: String,
    /// Field path, e.g. `metadata.name` or `spec.template.spec.containers[0].image`.
    pub field: String,
}

/// Every resource type the server serves: the built-in ones plus those of established CRDs.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    resources: Vec<ResourceType>,
    /// `group/version/plural` to an index into `resources`.
    by_plural: HashMap<String, usize>,
    /// `group/version/Kind` to an index into `resources`.
    by_kind: HashMap<String, usize>,
    /// Registered CRDs by name (`<plural>.<group>`).
    crds: HashMap<String, crd::CrdEntry>,
    /// `/openapi/v2` with the CRD definitions spliced in, built on first request.
    openapi_v2: OnceLock<Arc<Vec<u8>>>,
}

impl Catalog {
    /// The built-in resources of core/v1, apps/v1, batch/v1, autoscaling/v1 and v2,
    /// networking.k8s.io/v1, rbac.authorization.k8s.io/v1, policy/v1, storage.k8s.io/v1,
    /// coordination.k8s.io/v1, discovery.k8s.io/v1, scheduling.k8s.io/v1,
    /// apiextensions.k8s.io/v1 (and the read-only/virtual ones kubectl expects in discovery).
    pub fn builtin() -> Self {
        let mut catalog = Self {
            resources: builtin::resources(),
            ..Self::default()
        };
        catalog.reindex();
        catalog
    }

    fn reindex(&mut self) {
        self.by_plural.clear();
        self.by_kind.clear();
        for (i, r) in self.resources.iter().enumerate() {
            self.by_plural
                .insert(format!("{}/{}/{}", r.group, r.version, r.plural), i);
            self.by_kind
                .insert(format!("{}/{}/{}", r.group, r.version, r.kind), i);
        }
        self.openapi_v2 = OnceLock::new();
    }

    /// Every served resource type.
    pub fn resources(&self) -> &[ResourceType] {
        &self.resources
    }

    /// The resource served at `/apis/<group>/<version>/<plural>`.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        let i = self.by_plural.get(&format!("{group}/{version}/{plural}"))?;
        self.resources.get(*i)
    }

    /// The resource of a kind in a group version.
    pub fn find_kind(&self, group: &str, version: &str, kind: &str) -> Option<&ResourceType> {
        let i = self.by_kind.get(&format!("{group}/{version}/{kind}"))?;
        self.resources.get(*i)
    }

    /// Serves the resources of a CustomResourceDefinition (its served versions); replaces an
    /// earlier registration of the same CRD.
    pub fn add_crd(&mut self, crd: &Value) -> Result<(), Vec<Cause>> {
        let entry = crd::CrdEntry::parse(crd)?;
        self.remove_crd(&entry.name);
        self.resources.extend(entry.resource_types());
        self.crds.insert(entry.name.clone(), entry);
        self.reindex();
        Ok(())
    }

    /// Stops serving a CRD's resources (`crd_name` is `<plural>.<group>`).
    pub fn remove_crd(&mut self, crd_name: &str) {
        if let Some(entry) = self.crds.remove(crd_name) {
            self.resources
                .retain(|r| !(r.custom && r.group == entry.group && r.plural == entry.plural));
            self.reindex();
        }
    }

    /// The CRD version serving `resource`, if it is a custom resource.
    fn crd_version(&self, resource: &ResourceType) -> Option<&crd::CrdVersion> {
        if !resource.custom {
            return None;
        }
        let entry = self
            .crds
            .get(&format!("{}.{}", resource.plural, resource.group))?;
        entry.versions.iter().find(|v| v.name == resource.version)
    }

    /// Applies upstream defaulting to an object about to be created or updated (for example
    /// a Deployment's strategy, a Pod's restartPolicy, dnsPolicy, terminationGracePeriodSeconds,
    /// containers' terminationMessagePath and imagePullPolicy; a Service's type,
    /// sessionAffinity, clusterIP allocation is not done here). For CRDs: schema defaults.
    pub fn default_object(&self, resource: &ResourceType, object: &mut Value) {
        if resource.custom {
            if let Some(schema) = self.crd_version(resource).and_then(|v| v.schema.as_ref()) {
                schema::apply_defaults(schema, object);
            }
        } else {
            defaults::apply(&resource.group, &resource.kind, object);
        }
    }

    /// Upstream validation of an object (create when `old` is `None`, update otherwise:
    /// immutable fields). For CRDs: the openAPIV3Schema. Empty when valid.
    pub fn validate(
        &self,
        resource: &ResourceType,
        object: &Value,
        old: Option<&Value>,
    ) -> Vec<Cause> {
        let mut causes = validation::metadata(resource, object, old);
        if resource.custom {
            if let Some(schema) = self.crd_version(resource).and_then(|v| v.schema.as_ref()) {
                schema::validate(schema, object, &mut causes);
            }
        } else {
            validation::builtin(resource, object, old, &mut causes);
        }
        causes
    }

    /// Removes fields the kind does not have: a CRD's structural schema (pruning), or
    /// the upstream definition of a built-in kind (which its typed decoding drops).
    pub fn prune(&self, resource: &ResourceType, object: &mut Value) {
        if resource.custom {
            if let Some(schema) = self.crd_version(resource).and_then(|v| v.schema.as_ref()) {
                schema::prune(schema, object);
            }
        } else {
            definitions::prune_unknown(&resource.group, &resource.version, &resource.kind, object);
        }
    }

    /// `columnDefinitions` of the Table upstream returns for this resource (what `kubectl get`
    /// prints), including priority-1 columns shown by `-o wide`; for CRDs the
    /// additionalPrinterColumns.
    pub fn table_columns(&self, resource: &ResourceType) -> Vec<Value> {
        match self.crd_version(resource) {
            Some(version) => version.column_definitions(),
            None => table::columns(&resource.group, &resource.kind),
        }
    }

    /// The cells of one object's Table row, matching [`Catalog::table_columns`] (ages are
    /// computed by kubectl from `creationTimestamp` when the column is `date`; upstream sends
    /// Age as a formatted string such as `5m`; compute it against `now`).
    pub fn table_cells(
        &self,
        resource: &ResourceType,
        object: &Value,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Vec<Value> {
        match self.crd_version(resource) {
            Some(version) => version.cells(object, now),
            None => table::cells(&resource.group, &resource.kind, object, now),
        }
    }

    /// The strategic-merge-patch merge key of the list at `path` in objects of `resource`
    /// (for example `containers` in a PodSpec merges on `name`; `ports` on `containerPort`);
    /// `None` for lists that are replaced. `path` is field names from the object root.
    pub fn patch_merge_key(&self, resource: &ResourceType, path: &[&str]) -> Option<String> {
        if resource.custom {
            // Custom resources do not support strategic merge patch upstream.
            return None;
        }
        definitions::lookup(&resource.group, &resource.version, &resource.kind, path)
    }

    /// The `x-kubernetes-patch-strategy` of the field at `path` in objects of `resource`:
    /// `merge` (lists merged by [`Catalog::patch_merge_key`], or primitive lists merged as
    /// sets such as `metadata.finalizers`), `retainKeys` (a Deployment's `spec.strategy`:
    /// fields absent from the patch are cleared), or `merge,retainKeys` (`spec.volumes`);
    /// `None` when the field is replaced. Custom resources have none.
    pub fn patch_strategy(&self, resource: &ResourceType, path: &[&str]) -> Option<String> {
        if resource.custom {
            return None;
        }
        definitions::strategy(&resource.group, &resource.version, &resource.kind, path)
    }

    /// Paths of fields in `object` that its schema does not know, as upstream's strict
    /// decoding names them (`spec.template.spec.containers[0].imagee`), for requests with
    /// `fieldValidation=Strict` (an error `strict decoding error: unknown field "<path>"`) or
    /// `Warn`. Empty when every field is known.
    pub fn unknown_fields(&self, resource: &ResourceType, object: &Value) -> Vec<String> {
        if resource.custom {
            return match self.crd_version(resource).and_then(|v| v.schema.as_ref()) {
                Some(schema) => schema::unknown_fields(schema, object),
                None => Vec::new(),
            };
        }
        definitions::unknown_fields(&resource.group, &resource.version, &resource.kind, object)
    }

    /// The `/openapi/v2` document (JSON), including CRD schemas.
    pub fn openapi_v2(&self) -> Vec<u8> {
        self.openapi_v2
            .get_or_init(|| Arc::new(openapi::v2_with_crds(self.crds.values())))
            .as_ref()
            .clone()
    }

    /// The `/openapi/v3` index (`{"paths": {"api/v1": {"serverRelativeURL": ...}}}`).
    pub fn openapi_v3_index(&self) -> Value {
        openapi::v3_index(self.crds.values())
    }

    /// One `/openapi/v3/<path>` document (`api/v1`, `apis/apps/v1`), JSON.
    pub fn openapi_v3(&self, path: &str) -> Option<Vec<u8>> {
        openapi::v3_document(path, self.crds.values())
    }
}

#[cfg(test)]
impl ResourceType {
    /// core/v1 ConfigMaps, for the unit tests of the request side.
    pub(crate) fn configmaps() -> Self {
        ResourceType {
            group: String::new(),
            version: "v1".into(),
            kind: "ConfigMap".into(),
            plural: "configmaps".into(),
            singular: "configmap".into(),
            short_names: vec![],
            namespaced: true,
            verbs: vec![],
            categories: vec![],
            status_subresource: false,
            scale_subresource: None,
            custom: false,
        }
    }
}
