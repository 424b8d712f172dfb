//! Access and discovery with the real clients: TLS with the generated kubeconfig, bearer
//! tokens, 401 for anonymous requests, `/version`, health, discovery, `api-resources`,
//! `api-versions` and `explain`.

use std::process::Command;

use berth_tests::kube::KubeServer;

fn server() -> Option<KubeServer> {
    match KubeServer::start() {
        Ok(s) => Some(s),
        Err(why) => {
            eprintln!("skipping: {why}");
            None
        }
    }
}

fn curl(args: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args(["-sk", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or((&text, ""));
    (body.to_string(), code.to_string())
}

#[test]
fn anonymous_requests_get_401_and_the_token_is_accepted() {
    let Some(s) = server() else { return };
    let url = format!("https://{}/api/v1/namespaces", s.addr);
    let (body, code) = curl(&[&url]);
    assert_eq!(code, "401", "{body}");
    let status: serde_json::Value = serde_json::from_str(&body).expect("Status JSON");
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "Unauthorized");
    let header = format!("Authorization: Bearer {}", s.token());
    let (body, code) = curl(&["-H", &header, &url]);
    assert_eq!(code, "200", "{body}");
    assert!(body.contains("\"kube-system\""), "{body}");
    let (_, code) = curl(&["-H", "Authorization: Bearer wrong", &url]);
    assert_eq!(code, "401");
}

#[test]
fn kubeconfig_works_for_version_and_health() {
    let Some(s) = server() else { return };
    let version = s.ok(&["version", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&version).expect("json");
    assert_eq!(v["serverVersion"]["major"], "1");
    for path in ["/healthz", "/livez", "/readyz"] {
        assert_eq!(s.ok(&["get", "--raw", path]), "ok");
    }
    let namespaces = s.ok(&["get", "namespaces", "-o", "name"]);
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(
            namespaces.contains(&format!("namespace/{ns}")),
            "{namespaces}"
        );
    }
}

#[test]
fn discovery_answers_api_resources_and_versions() {
    let Some(s) = server() else { return };
    let resources = s.ok(&["api-resources"]);
    for needle in [
        "configmaps",
        "deployments",
        "customresourcedefinitions",
        "cronjobs",
    ] {
        assert!(
            resources.contains(needle),
            "{needle} missing in:\n{resources}"
        );
    }
    let namespaced = s.ok(&["api-resources", "--namespaced=false", "-o", "name"]);
    assert!(namespaced.contains("namespaces"), "{namespaced}");
    assert!(
        !namespaced.lines().any(|l| l == "configmaps"),
        "{namespaced}"
    );
    let versions = s.ok(&["api-versions"]);
    for gv in [
        "v1",
        "apps/v1",
        "batch/v1",
        "autoscaling/v2",
        "rbac.authorization.k8s.io/v1",
    ] {
        assert!(
            versions.lines().any(|l| l == gv),
            "{gv} missing in:\n{versions}"
        );
    }
    let raw = s.ok(&["get", "--raw", "/apis/apps/v1"]);
    assert!(raw.contains("deployments/scale"), "{raw}");
}

#[test]
fn explain_reads_the_openapi_schema() {
    let Some(s) = server() else { return };
    let text = s.ok(&["explain", "deployment.spec.strategy"]);
    assert!(text.contains("strategy"), "{text}");
    assert!(text.contains("rollingUpdate"), "{text}");
}

#[test]
fn create_token_issues_a_service_account_token_that_authenticates() {
    let Some(s) = server() else { return };
    s.ok(&["create", "serviceaccount", "robot"]);
    let token = s.ok(&["create", "token", "robot", "--duration=20m"]);
    let token = token.trim();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    let url = format!("https://{}/api/v1/namespaces/default/configmaps", s.addr);
    let header = format!("Authorization: Bearer {token}");
    let (body, code) = curl(&["-H", &header, &url]);
    assert_eq!(code, "200", "{body}");
    // A tampered token is refused.
    let tampered = format!("Authorization: Bearer {token}x");
    let (_, code) = curl(&["-H", &tampered, &url]);
    assert_eq!(code, "401");
    let err = s.fails(&["create", "token", "nobody"]);
    assert!(
        err.contains("serviceaccounts \"nobody\" not found"),
        "{err}"
    );
    let err = s.fails(&["create", "token", "robot", "--duration=1m"]);
    assert!(err.contains("spec.expirationSeconds"), "{err}");
}
