//! What the API server knows about each resource type: names and scopes for discovery,
//! upstream defaulting and validation, Table columns as `kubectl get` prints them, the OpenAPI
//! documents, strategic-merge-patch keys, and the same for CustomResourceDefinitions.
//!
//! Contract with the rest of the API server (request handling codes against exactly these
//! items). Objects are `serde_json::Value` so that every field a client sent is kept.

use serde_json::Value;

/// The `scale` subresource of a resource: where replicas live in its objects.
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
    pub version: String,
    pub kind: String,
    /// Lower-case plural used in URLs (`deployments`).
    pub plural: String,
    /// Lower-case singular (`deployment`).
    pub singular: String,
    pub short_names: Vec<String>,
    pub namespaced: bool,
    /// Discovery verbs: `create`, `delete`, `deletecollection`, `get`, `list`, `patch`,
    /// `update`, `watch`.
    pub verbs: Vec<String>,
    /// Discovery categories (`all`).
    pub categories: Vec<String>,
    pub status_subresource: bool,
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
}

impl Catalog {
    /// The built-in resources of core/v1, apps/v1, batch/v1, autoscaling/v1 and v2,
    /// networking.k8s.io/v1, rbac.authorization.k8s.io/v1, policy/v1, storage.k8s.io/v1,
    /// coordination.k8s.io/v1, discovery.k8s.io/v1, scheduling.k8s.io/v1,
    /// apiextensions.k8s.io/v1 (and the read-only/virtual ones kubectl expects in discovery).
    pub fn builtin() -> Self {
        Self::default()
    }

    /// Every served resource type.
    pub fn resources(&self) -> &[ResourceType] {
        &self.resources
    }

    /// The resource served at `/apis/<group>/<version>/<plural>`.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        self.resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
    }

    /// The resource of a kind in a group version.
    pub fn find_kind(&self, group: &str, version: &str, kind: &str) -> Option<&ResourceType> {
        self.resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.kind == kind)
    }

    /// Serves the resources of a CustomResourceDefinition (its served versions); replaces an
    /// earlier registration of the same CRD.
    pub fn add_crd(&mut self, crd: &Value) -> Result<(), Vec<Cause>> {
        let _ = crd;
        Ok(())
    }

    /// Stops serving a CRD's resources (`crd_name` is `<plural>.<group>`).
    pub fn remove_crd(&mut self, crd_name: &str) {
        let _ = crd_name;
    }

    /// Applies upstream defaulting to an object about to be created or updated (for example
    /// a Deployment's strategy, a Pod's restartPolicy, dnsPolicy, terminationGracePeriodSeconds,
    /// containers' terminationMessagePath and imagePullPolicy; a Service's type,
    /// sessionAffinity, clusterIP allocation is not done here). For CRDs: schema defaults.
    pub fn default_object(&self, resource: &ResourceType, object: &mut Value) {
        let _ = (resource, object);
    }

    /// Upstream validation of an object (create when `old` is `None`, update otherwise:
    /// immutable fields). For CRDs: the openAPIV3Schema. Empty when valid.
    pub fn validate(&self, resource: &ResourceType, object: &Value, old: Option<&Value>) -> Vec<Cause> {
        let _ = (resource, object, old);
        Vec::new()
    }

    /// Removes fields a CRD's structural schema does not allow (pruning); no-op for built-ins.
    pub fn prune(&self, resource: &ResourceType, object: &mut Value) {
        let _ = (resource, object);
    }

    /// `columnDefinitions` of the Table upstream returns for this resource (what `kubectl get`
    /// prints), including priority-1 columns shown by `-o wide`; for CRDs the
    /// additionalPrinterColumns.
    pub fn table_columns(&self, resource: &ResourceType) -> Vec<Value> {
        let _ = resource;
        Vec::new()
    }

    /// The cells of one object's Table row, matching [`Catalog::table_columns`] (ages are
    /// computed by kubectl from `creationTimestamp` when the column is `date`; upstream sends
    /// Age as a formatted string such as `5m`; compute it against `now`).
    pub fn table_cells(&self, resource: &ResourceType, object: &Value, now: chrono::DateTime<chrono::Utc>) -> Vec<Value> {
        let _ = (resource, object, now);
        Vec::new()
    }

    /// The strategic-merge-patch merge key of the list at `path` in objects of `resource`
    /// (for example `containers` in a PodSpec merges on `name`; `ports` on `containerPort`);
    /// `None` for lists that are replaced. `path` is field names from the object root.
    pub fn patch_merge_key(&self, resource: &ResourceType, path: &[&str]) -> Option<String> {
        let _ = (resource, path);
        None
    }

    /// The `/openapi/v2` document (JSON), including CRD schemas.
    pub fn openapi_v2(&self) -> Vec<u8> {
        Vec::new()
    }

    /// The `/openapi/v3` index (`{"paths": {"api/v1": {"serverRelativeURL": ...}}}`).
    pub fn openapi_v3_index(&self) -> Value {
        Value::Null
    }

    /// One `/openapi/v3/<path>` document (`api/v1`, `apis/apps/v1`), JSON.
    pub fn openapi_v3(&self, path: &str) -> Option<Vec<u8>> {
        let _ = path;
        None
    }
}
