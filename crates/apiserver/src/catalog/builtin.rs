//! The table of built-in resources: upstream's plural, singular and short names, scope,
//! discovery verbs, categories and subresources for every group version berth serves.
//!
//! Plurals, kinds, scopes, verbs and subresources are those of the v1.35 OpenAPI paths
//! (`openapi/v2.json.gz`); short names and categories are what upstream's REST storage
//! declares (they do not appear in the OpenAPI documents).

use super::{ResourceType, ScaleSubresource};

/// Which discovery verbs a resource has.
#[derive(Clone, Copy)]
enum Verbs {
    /// Every verb, as most stored resources.
    All,
    /// Every verb but `deletecollection` (namespaces).
    NoCollection,
    /// `create` only (reviews, bindings).
    Create,
    /// `get` and `list` (componentstatuses).
    Read,
}

impl Verbs {
    fn names(self) -> &'static [&'static str] {
        match self {
            Verbs::All => &[
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ],
            Verbs::NoCollection => &[
                "create", "delete", "get", "list", "patch", "update", "watch",
            ],
            Verbs::Create => &["create"],
            Verbs::Read => &["get", "list"],
        }
    }
}

/// Subresources of a row: `status`, `scale` (which implies status).
#[derive(Clone, Copy, PartialEq)]
enum Sub {
    None,
    Status,
    Scale,
}

/// One row: group version, kind, plural, short names, namespaced, verbs, categories, subs.
type Row = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    bool,
    Verbs,
    &'static [&'static str],
    Sub,
);

const ALL: &[&str] = &["all"];
const EXT: &[&str] = &["api-extensions"];
const NONE: &[&str] = &[];

#[rustfmt::skip]
const ROWS: &[Row] = &[
    ("v1", "Binding", "bindings", NONE, true, Verbs::Create, NONE, Sub::None),
    ("v1", "ComponentStatus", "componentstatuses", &["cs"], false, Verbs::Read, NONE, Sub::None),
    ("v1", "ConfigMap", "configmaps", &["cm"], true, Verbs::All, NONE, Sub::None),
    ("v1", "Endpoints", "endpoints", &["ep"], true, Verbs::All, NONE, Sub::None),
    ("v1", "Event", "events", &["ev"], true, Verbs::All, NONE, Sub::None),
    ("v1", "LimitRange", "limitranges", &["limits"], true, Verbs::All, NONE, Sub::None),
    ("v1", "Namespace", "namespaces", &["ns"], false, Verbs::NoCollection, NONE, Sub::Status),
    ("v1", "Node", "nodes", &["no"], false, Verbs::All, NONE, Sub::Status),
    ("v1", "PersistentVolumeClaim", "persistentvolumeclaims", &["pvc"], true, Verbs::All, NONE, Sub::Status),
    ("v1", "PersistentVolume", "persistentvolumes", &["pv"], false, Verbs::All, NONE, Sub::Status),
    ("v1", "Pod", "pods", &["po"], true, Verbs::All, ALL, Sub::Status),
    ("v1", "PodTemplate", "podtemplates", NONE, true, Verbs::All, NONE, Sub::None),
    ("v1", "ReplicationController", "replicationcontrollers", &["rc"], true, Verbs::All, ALL, Sub::Scale),
    ("v1", "ResourceQuota", "resourcequotas", &["quota"], true, Verbs::All, NONE, Sub::Status),
    ("v1", "Secret", "secrets", NONE, true, Verbs::All, NONE, Sub::None),
    ("v1", "ServiceAccount", "serviceaccounts", &["sa"], true, Verbs::All, NONE, Sub::None),
    ("v1", "Service", "services", &["svc"], true, Verbs::All, ALL, Sub::Status),
    ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations", NONE, false, Verbs::All, EXT, Sub::None),
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy", "validatingadmissionpolicies", NONE, false, Verbs::All, EXT, Sub::Status),
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding", "validatingadmissionpolicybindings", NONE, false, Verbs::All, EXT, Sub::None),
    ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "validatingwebhookconfigurations", NONE, false, Verbs::All, EXT, Sub::None),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions", &["crd", "crds"], false, Verbs::All, EXT, Sub::Status),
    ("apps/v1", "ControllerRevision", "controllerrevisions", NONE, true, Verbs::All, NONE, Sub::None),
    ("apps/v1", "DaemonSet", "daemonsets", &["ds"], true, Verbs::All, ALL, Sub::Status),
    ("apps/v1", "Deployment", "deployments", &["deploy"], true, Verbs::All, ALL, Sub::Scale),
    ("apps/v1", "ReplicaSet", "replicasets", &["rs"], true, Verbs::All, ALL, Sub::Scale),
    ("apps/v1", "StatefulSet", "statefulsets", &["sts"], true, Verbs::All, ALL, Sub::Scale),
    ("authentication.k8s.io/v1", "SelfSubjectReview", "selfsubjectreviews", NONE, false, Verbs::Create, NONE, Sub::None),
    ("authentication.k8s.io/v1", "TokenReview", "tokenreviews", NONE, false, Verbs::Create, NONE, Sub::None),
    ("authorization.k8s.io/v1", "LocalSubjectAccessReview", "localsubjectaccessreviews", NONE, true, Verbs::Create, NONE, Sub::None),
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", NONE, false, Verbs::Create, NONE, Sub::None),
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews", NONE, false, Verbs::Create, NONE, Sub::None),
    ("authorization.k8s.io/v1", "SubjectAccessReview", "subjectaccessreviews", NONE, false, Verbs::Create, NONE, Sub::None),
    ("autoscaling/v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers", &["hpa"], true, Verbs::All, ALL, Sub::Status),
    ("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", &["hpa"], true, Verbs::All, ALL, Sub::Status),
    ("batch/v1", "CronJob", "cronjobs", &["cj"], true, Verbs::All, ALL, Sub::Status),
    ("batch/v1", "Job", "jobs", NONE, true, Verbs::All, ALL, Sub::Status),
    ("certificates.k8s.io/v1", "CertificateSigningRequest", "certificatesigningrequests", &["csr"], false, Verbs::All, NONE, Sub::Status),
    ("coordination.k8s.io/v1", "Lease", "leases", NONE, true, Verbs::All, NONE, Sub::None),
    ("discovery.k8s.io/v1", "EndpointSlice", "endpointslices", NONE, true, Verbs::All, NONE, Sub::None),
    ("events.k8s.io/v1", "Event", "events", &["ev"], true, Verbs::All, NONE, Sub::None),
    ("networking.k8s.io/v1", "IngressClass", "ingressclasses", NONE, false, Verbs::All, NONE, Sub::None),
    ("networking.k8s.io/v1", "Ingress", "ingresses", &["ing"], true, Verbs::All, NONE, Sub::Status),
    ("networking.k8s.io/v1", "IPAddress", "ipaddresses", &["ip"], false, Verbs::All, NONE, Sub::None),
    ("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", &["netpol"], true, Verbs::All, NONE, Sub::None),
    ("networking.k8s.io/v1", "ServiceCIDR", "servicecidrs", NONE, false, Verbs::All, NONE, Sub::Status),
    ("node.k8s.io/v1", "RuntimeClass", "runtimeclasses", NONE, false, Verbs::All, NONE, Sub::None),
    ("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets", &["pdb"], true, Verbs::All, NONE, Sub::Status),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "clusterrolebindings", NONE, false, Verbs::All, NONE, Sub::None),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", NONE, false, Verbs::All, NONE, Sub::None),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings", NONE, true, Verbs::All, NONE, Sub::None),
    ("rbac.authorization.k8s.io/v1", "Role", "roles", NONE, true, Verbs::All, NONE, Sub::None),
    ("scheduling.k8s.io/v1", "PriorityClass", "priorityclasses", &["pc"], false, Verbs::All, NONE, Sub::None),
    ("storage.k8s.io/v1", "CSIDriver", "csidrivers", NONE, false, Verbs::All, NONE, Sub::None),
    ("storage.k8s.io/v1", "CSINode", "csinodes", NONE, false, Verbs::All, NONE, Sub::None),
    ("storage.k8s.io/v1", "CSIStorageCapacity", "csistoragecapacities", NONE, true, Verbs::All, NONE, Sub::None),
    ("storage.k8s.io/v1", "StorageClass", "storageclasses", &["sc"], false, Verbs::All, NONE, Sub::None),
    ("storage.k8s.io/v1", "VolumeAttachment", "volumeattachments", NONE, false, Verbs::All, NONE, Sub::Status),
    ("storage.k8s.io/v1", "VolumeAttributesClass", "volumeattributesclasses", &["vac"], false, Verbs::All, NONE, Sub::None),
];

/// Every built-in resource type, in the order of [`ROWS`].
pub(super) fn resources() -> Vec<ResourceType> {
    ROWS.iter()
        .map(
            |&(gv, kind, plural, shorts, namespaced, verbs, categories, sub)| {
                let (group, version) = gv.rsplit_once('/').unwrap_or(("", gv));
                let strings = |names: &[&str]| names.iter().map(|s| s.to_string()).collect();
                ResourceType {
                    group: group.to_string(),
                    version: version.to_string(),
                    kind: kind.to_string(),
                    plural: plural.to_string(),
                    singular: kind.to_ascii_lowercase(),
                    short_names: strings(shorts),
                    namespaced,
                    verbs: strings(verbs.names()),
                    categories: strings(categories),
                    status_subresource: sub != Sub::None,
                    scale_subresource: (sub == Sub::Scale).then(|| ScaleSubresource {
                        spec_replicas_path: ".spec.replicas".to_string(),
                        status_replicas_path: ".status.replicas".to_string(),
                        label_selector_path: Some(".spec.selector".to_string()),
                    }),
                    custom: false,
                }
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::Catalog;

    #[test]
    fn catalog_builtin_has_upstream_names() {
        let catalog = Catalog::builtin();
        let deploy = catalog
            .find("apps", "v1", "deployments")
            .expect("deployments");
        assert_eq!(deploy.kind, "Deployment");
        assert_eq!(deploy.singular, "deployment");
        assert_eq!(deploy.short_names, ["deploy"]);
        assert_eq!(deploy.categories, ["all"]);
        assert!(deploy.namespaced && deploy.status_subresource);
        assert!(deploy.scale_subresource.is_some());
        assert_eq!(deploy.verbs.len(), 8);
        let ns = catalog
            .find_kind("", "v1", "Namespace")
            .expect("namespaces");
        assert!(!ns.namespaced);
        assert!(!ns.verbs.contains(&"deletecollection".to_string()));
        let crd = catalog
            .find("apiextensions.k8s.io", "v1", "customresourcedefinitions")
            .expect("crds");
        assert_eq!(crd.short_names, ["crd", "crds"]);
        assert_eq!(crd.api_version(), "apiextensions.k8s.io/v1");
    }

    #[test]
    fn catalog_builtin_covers_required_groups() {
        let catalog = Catalog::builtin();
        for (group, version, plural) in [
            ("", "v1", "pods"),
            ("", "v1", "persistentvolumeclaims"),
            ("batch", "v1", "cronjobs"),
            ("autoscaling", "v1", "horizontalpodautoscalers"),
            ("autoscaling", "v2", "horizontalpodautoscalers"),
            ("networking.k8s.io", "v1", "networkpolicies"),
            ("rbac.authorization.k8s.io", "v1", "clusterroles"),
            ("policy", "v1", "poddisruptionbudgets"),
            ("storage.k8s.io", "v1", "storageclasses"),
            ("coordination.k8s.io", "v1", "leases"),
            ("discovery.k8s.io", "v1", "endpointslices"),
            ("scheduling.k8s.io", "v1", "priorityclasses"),
        ] {
            assert!(catalog.find(group, version, plural).is_some(), "{plural}");
        }
        assert!(catalog.find("apps", "v1", "pods").is_none());
    }
}
