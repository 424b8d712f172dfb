//! kubectl as users use it: apply of multi-document YAML and re-apply, get in every output
//! format with label and field selectors, patch of each type, label, annotate, edit, scale,
//! create of namespaces, configmaps and secrets, diff, server-side apply with conflicts.

use berth_tests::kube::{KubeServer, arg};

fn server() -> Option<KubeServer> {
    match KubeServer::start() {
        Ok(s) => Some(s),
        Err(why) => {
            eprintln!("skipping: {why}");
            None
        }
    }
}

const TWO_MAPS: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: one
  labels: {app: web, tier: fe}
data:
  k: v
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: two
  labels: {app: db}
data:
  k: v2
";

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        ports:
        - containerPort: 80
";

fn names(out: &str) -> Vec<String> {
    let mut v: Vec<String> = out
        .lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect();
    v.sort();
    v
}

#[test]
fn apply_get_and_selectors() {
    let Some(s) = server() else { return };
    let file = s.write_file("maps.yaml", TWO_MAPS);
    let out = s.ok(&["apply", "-f", arg(&file)]);
    assert!(
        out.contains("configmap/one created") && out.contains("configmap/two created"),
        "{out}"
    );
    let out = s.ok(&["apply", "-f", arg(&file)]);
    assert!(out.contains("configmap/one unchanged"), "{out}");
    let changed = s.write_file("maps.yaml", &TWO_MAPS.replace("k: v\n", "k: changed\n"));
    let out = s.ok(&["apply", "-f", arg(&changed)]);
    assert!(out.contains("configmap/one configured"), "{out}");
    assert_eq!(
        s.ok(&["get", "cm", "one", "-o", "jsonpath={.data.k}"]),
        "changed"
    );

    assert_eq!(
        names(&s.ok(&["get", "cm", "-l", "app=web", "-o", "name"])),
        ["configmap/one"]
    );
    assert_eq!(
        names(&s.ok(&["get", "cm", "-l", "app in (web,db)", "-o", "name"])),
        ["configmap/one", "configmap/two"]
    );
    assert_eq!(
        names(&s.ok(&["get", "cm", "-l", "app,!tier", "-o", "name"])),
        ["configmap/two"]
    );
    assert_eq!(
        names(&s.ok(&["get", "cm", "-l", "app notin (web)", "-o", "name"])),
        ["configmap/two"]
    );
    assert_eq!(
        names(&s.ok(&[
            "get",
            "cm",
            "--field-selector",
            "metadata.name=two",
            "-o",
            "name"
        ])),
        ["configmap/two"]
    );
    assert_eq!(
        names(&s.ok(&[
            "get",
            "cm",
            "-A",
            "--field-selector",
            "metadata.namespace=default",
            "-l",
            "app",
            "-o",
            "name"
        ])),
        ["configmap/one", "configmap/two"]
    );
    let cols = s.ok(&[
        "get",
        "cm",
        "-l",
        "app",
        "-o",
        "custom-columns=NAME:.metadata.name,K:.data.k",
    ]);
    assert!(
        cols.contains("NAME") && cols.contains("one") && cols.contains("changed"),
        "{cols}"
    );
    let table = s.ok(&["get", "cm", "-l", "app", "--show-labels"]);
    assert!(
        table.contains("NAME") && table.contains("DATA") && table.contains("app=db"),
        "{table}"
    );
    let yaml = s.ok(&["get", "cm", "one", "-o", "yaml"]);
    assert!(
        yaml.contains("resourceVersion:") && yaml.contains("uid:"),
        "{yaml}"
    );
    let list = s.json(&["get", "cm", "-l", "app"]);
    assert_eq!(list["items"].as_array().map(Vec::len), Some(2));
    let paged = s.ok(&["get", "cm", "-l", "app", "--chunk-size=1", "-o", "name"]);
    assert_eq!(names(&paged), ["configmap/one", "configmap/two"]);
    let err = s.fails(&["get", "cm", "missing"]);
    assert!(err.contains("configmaps \"missing\" not found"), "{err}");
    let out = s.ok(&["delete", "-f", arg(&file)]);
    assert!(out.contains("configmap \"one\" deleted"), "{out}");
}

#[test]
fn patch_label_annotate_and_edit() {
    let Some(s) = server() else { return };
    s.ok_stdin(&["apply", "-f", "-"], TWO_MAPS);
    s.ok(&[
        "patch",
        "cm",
        "one",
        "--type",
        "merge",
        "-p",
        r#"{"data":{"m":"1"}}"#,
    ]);
    s.ok(&[
        "patch",
        "cm",
        "one",
        "--type",
        "json",
        "-p",
        r#"[{"op":"add","path":"/data/j","value":"2"}]"#,
    ]);
    s.ok(&["patch", "cm", "one", "-p", r#"{"data":{"s":"3"}}"#]);
    let data = s.json(&["get", "cm", "one"]);
    assert_eq!(
        data["data"],
        serde_json::json!({"k": "v", "m": "1", "j": "2", "s": "3"})
    );
    s.ok(&["label", "cm", "one", "env=prod"]);
    s.ok(&["annotate", "cm", "one", "note=hello"]);
    s.ok(&["label", "cm", "one", "tier-"]);
    let o = s.json(&["get", "cm", "one"]);
    assert_eq!(
        o["metadata"]["labels"],
        serde_json::json!({"app": "web", "env": "prod"})
    );
    assert_eq!(o["metadata"]["annotations"]["note"], "hello");
    let editor = s.write_file(
        "editor.sh",
        "#!/bin/sh\nsed -i 's/^  k: v$/  k: edited/' \"$1\"\n",
    );
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let out = s.kubectl_env(
        &["edit", "cm", "one"],
        &[("KUBE_EDITOR", arg(&editor))],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        s.ok(&["get", "cm", "one", "-o", "jsonpath={.data.k}"]),
        "edited"
    );
    let rv = s.ok(&[
        "get",
        "cm",
        "one",
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ]);
    let stale = format!(
        r#"{{"metadata":{{"resourceVersion":"{}"}},"data":{{"x":"y"}}}}"#,
        rv.parse::<i64>().unwrap_or(2) - 1
    );
    let err = s.fails(&["patch", "cm", "one", "--type", "merge", "-p", &stale]);
    assert!(err.contains("the object has been modified"), "{err}");
}

#[test]
fn deployments_scale_and_strategic_merge() {
    let Some(s) = server() else { return };
    s.ok_stdin(&["apply", "-f", "-"], DEPLOYMENT);
    let out = s.ok(&["scale", "deployment", "web", "--replicas=3"]);
    assert!(out.contains("scaled"), "{out}");
    assert_eq!(
        s.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "3"
    );
    let scale = s.ok(&[
        "get",
        "--raw",
        "/apis/apps/v1/namespaces/default/deployments/web/scale",
    ]);
    let scale: serde_json::Value = serde_json::from_str(&scale).expect("scale json");
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 3);
    s.ok(&[
        "patch",
        "deploy",
        "web",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"side","image":"busybox"}]}}}}"#,
    ]);
    let d = s.json(&["get", "deploy", "web"]);
    let containers: Vec<&str> = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(containers, ["web", "side"]);
    assert!(
        d["metadata"]["generation"].as_i64().unwrap_or(0) >= 3,
        "{d}"
    );
    let wide = s.ok(&["get", "deploy", "-o", "wide"]);
    assert!(wide.contains("NAME") && wide.contains("web"), "{wide}");
    let describe = s.ok(&["describe", "deployment", "web"]);
    assert!(
        describe.contains("Name:") && describe.contains("web"),
        "{describe}"
    );
}

#[test]
fn create_namespace_configmap_and_secret() {
    let Some(s) = server() else { return };
    s.ok(&["create", "namespace", "team"]);
    s.ok(&[
        "create",
        "configmap",
        "c1",
        "--from-literal=a=b",
        "-n",
        "team",
    ]);
    s.ok(&[
        "create",
        "secret",
        "generic",
        "s1",
        "--from-literal=p=q",
        "-n",
        "team",
    ]);
    assert_eq!(
        s.ok(&[
            "get",
            "secret",
            "s1",
            "-n",
            "team",
            "-o",
            "jsonpath={.data.p}"
        ]),
        "cQ=="
    );
    let err = s.fails(&[
        "create",
        "configmap",
        "c1",
        "--from-literal=a=b",
        "-n",
        "team",
    ]);
    assert!(err.contains("already exists"), "{err}");
    let err = s.fails(&["create", "configmap", "c2", "-n", "nope"]);
    assert!(err.contains("namespaces \"nope\" not found"), "{err}");
    s.ok(&["config", "set-context", "--current", "--namespace", "team"]);
    assert_eq!(names(&s.ok(&["get", "cm", "-o", "name"])), ["configmap/c1"]);
    s.ok(&[
        "config",
        "set-context",
        "--current",
        "--namespace",
        "default",
    ]);
    let out = s.ok(&["delete", "namespace", "team", "--timeout=30s"]);
    assert!(out.contains("deleted"), "{out}");
    let err = s.fails(&["get", "namespace", "team"]);
    assert!(err.contains("not found"), "{err}");
    let err = s.fails(&["get", "cm", "c1", "-n", "team"]);
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn server_side_apply_tracks_managers_and_conflicts() {
    let Some(s) = server() else { return };
    let first =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: one\n  b: two\n";
    let out = s.ok_stdin(&["apply", "--server-side", "-f", "-"], first);
    assert!(out.contains("serverside-applied"), "{out}");
    let o = s.json(&["get", "cm", "ssa", "--show-managed-fields"]);
    let managers = o["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields");
    assert!(
        managers
            .iter()
            .any(|m| m["manager"] == "kubectl" && m["operation"] == "Apply"),
        "{o}"
    );
    let other = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: mine\n";
    let out = s.kubectl_env(
        &["apply", "--server-side", "--field-manager=other", "-f", "-"],
        &[],
        Some(other),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("conflict") && err.contains(".data.a"), "{err}");
    s.ok_stdin(
        &[
            "apply",
            "--server-side",
            "--field-manager=other",
            "--force-conflicts",
            "-f",
            "-",
        ],
        other,
    );
    assert_eq!(
        s.ok(&["get", "cm", "ssa", "-o", "jsonpath={.data.a}"]),
        "mine"
    );
    let dropped = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  c: three\n";
    s.ok_stdin(&["apply", "--server-side", "-f", "-"], dropped);
    let data = s.json(&["get", "cm", "ssa"])["data"].clone();
    assert_eq!(data, serde_json::json!({"a": "mine", "c": "three"}));
}

#[test]
fn diff_and_dry_run_do_not_write() {
    let Some(s) = server() else { return };
    s.ok_stdin(&["apply", "-f", "-"], TWO_MAPS);
    let changed = s.write_file("changed.yaml", &TWO_MAPS.replace("k: v2", "k: v3"));
    let out = s.kubectl(&["diff", "-f", arg(&changed)]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("+  k: v3"), "{text}");
    s.ok(&["apply", "-f", arg(&changed), "--dry-run=server"]);
    s.ok(&["create", "configmap", "dry", "--dry-run=server"]);
    assert_eq!(
        s.ok(&["get", "cm", "two", "-o", "jsonpath={.data.k}"]),
        "v2"
    );
    s.fails(&["get", "cm", "dry"]);
}

#[test]
fn create_subcommands_of_typed_clients_send_protobuf_that_decodes() {
    let Some(s) = server() else { return };
    // kubectl's typed clients send these bodies as application/vnd.kubernetes.protobuf.
    s.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1.25",
        "--replicas=0",
        "--port=80",
    ]);
    let d = s.json(&["get", "deployment", "web"]);
    assert_eq!(d["spec"]["replicas"], 0, "{d}");
    assert_eq!(d["spec"]["selector"]["matchLabels"]["app"], "web", "{d}");
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "nginx:1.25", "{d}");
    assert_eq!(c["ports"][0]["containerPort"], 80, "{d}");
    // Go zero values of non-pointer fields are not stored as empty strings.
    assert!(d["metadata"].get("generateName").is_none(), "{d}");
    s.ok(&[
        "create",
        "job",
        "once",
        "--image=busybox",
        "--",
        "echo",
        "hi",
    ]);
    let j = s.json(&["get", "job", "once"]);
    assert_eq!(
        j["spec"]["template"]["spec"]["containers"][0]["command"],
        serde_json::json!(["echo", "hi"]),
        "{j}"
    );
    assert_eq!(
        j["spec"]["template"]["spec"]["restartPolicy"], "Never",
        "{j}"
    );
    s.ok(&[
        "create",
        "cronjob",
        "tick",
        "--image=busybox",
        "--schedule=*/5 * * * *",
        "--",
        "date",
    ]);
    assert_eq!(
        s.ok(&["get", "cronjob", "tick", "-o", "jsonpath={.spec.schedule}"]),
        "*/5 * * * *"
    );
    s.ok(&["create", "job", "manual", "--from=cronjob/tick"]);
    let m = s.json(&["get", "job", "manual"]);
    assert_eq!(
        m["metadata"]["ownerReferences"][0]["kind"], "CronJob",
        "{m}"
    );
    s.ok(&["create", "service", "clusterip", "api", "--tcp=80:8080"]);
    let svc = s.json(&["get", "service", "api"]);
    assert_eq!(svc["spec"]["ports"][0]["port"], 80, "{svc}");
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 8080, "{svc}");
    s.ok(&[
        "create",
        "service",
        "externalname",
        "ext",
        "--external-name=example.com",
    ]);
    assert_eq!(
        s.ok(&[
            "get",
            "service",
            "ext",
            "-o",
            "jsonpath={.spec.externalName}"
        ]),
        "example.com"
    );
    s.ok(&["create", "quota", "q", "--hard=pods=2,requests.cpu=500m"]);
    assert_eq!(
        s.ok(&[
            "get",
            "quota",
            "q",
            "-o",
            "jsonpath={.spec.hard.requests\\.cpu}"
        ]),
        "500m"
    );
    s.ok(&[
        "create",
        "pdb",
        "budget",
        "--selector=app=web",
        "--min-available=50%",
    ]);
    assert_eq!(
        s.ok(&[
            "get",
            "pdb",
            "budget",
            "-o",
            "jsonpath={.spec.minAvailable}"
        ]),
        "50%"
    );
    s.ok(&["create", "ingress", "ing", "--rule=example.com/api=api:80"]);
    let ing = s.json(&["get", "ingress", "ing"]);
    let path = &ing["spec"]["rules"][0]["http"]["paths"][0];
    assert_eq!(path["backend"]["service"]["port"]["number"], 80, "{ing}");
    s.ok(&["create", "priorityclass", "high", "--value=1000"]);
    s.ok(&["autoscale", "deployment", "web", "--min=2", "--max=5"]);
    assert_eq!(
        s.ok(&["get", "hpa", "web", "-o", "jsonpath={.spec.maxReplicas}"]),
        "5"
    );
    s.ok(&["expose", "deployment", "web", "--port=80", "--name=web-svc"]);
    s.ok(&["set", "image", "deployment/web", "nginx=nginx:1.26"]);
    assert_eq!(
        s.ok(&[
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}"
        ]),
        "nginx:1.26"
    );
    let out = s.ok(&[
        "get",
        "deployment,job,cronjob,service,quota,pdb,ingress,hpa",
        "-o",
        "name",
    ]);
    for name in [
        "deployment.apps/web",
        "job.batch/once",
        "job.batch/manual",
        "cronjob.batch/tick",
        "service/api",
        "service/web-svc",
        "resourcequota/q",
        "poddisruptionbudget.policy/budget",
        "ingress.networking.k8s.io/ing",
        "horizontalpodautoscaler.autoscaling/web",
    ] {
        assert!(out.lines().any(|l| l == name), "{name} missing from {out}");
    }
}

const TYPO_DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: typo
spec:
  replicas: 1
  bogus: 1
  selector:
    matchLabels: {app: typo}
  template:
    metadata:
      labels: {app: typo}
    spec:
      containers:
      - name: web
        image: nginx
        imagee: nginx:typo
";

#[test]
fn field_validation_strict_warn_and_ignore() {
    let Some(s) = server() else { return };
    let file = s.write_file("typo.yaml", TYPO_DEPLOYMENT);
    // kubectl's default is --validate=strict (fieldValidation=Strict): nothing is written.
    let err = s.fails(&["apply", "-f", arg(&file)]);
    assert!(
        err.contains(
            "Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: unknown field \"spec.bogus\", unknown field \"spec.template.spec.containers[0].imagee\""
        ),
        "{err}"
    );
    s.fails(&["get", "deployment", "typo"]);
    // Server-side apply names the fields the way structured merge diff does.
    let err = s.fails(&["apply", "--server-side", "-f", arg(&file)]);
    assert!(
        err.contains(".spec.bogus: field not declared in schema"),
        "{err}"
    );
    // Warn: created, one warning per unknown field, the fields dropped.
    let out = s.kubectl(&["apply", "--validate=warn", "-f", arg(&file)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Warning: unknown field \"spec.bogus\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("Warning: unknown field \"spec.template.spec.containers[0].imagee\""),
        "{stderr}"
    );
    let d = s.json(&["get", "deployment", "typo"]);
    assert!(d["spec"].get("bogus").is_none(), "{d}");
    assert!(
        d["spec"]["template"]["spec"]["containers"][0]
            .get("imagee")
            .is_none(),
        "{d}"
    );
    assert_eq!(d["spec"]["replicas"], 1, "{d}");
    // A strict re-apply is a patch: upstream's 422 naming the patch.
    let changed = TYPO_DEPLOYMENT.replace("replicas: 1", "replicas: 2");
    let file = s.write_file("typo.yaml", &changed);
    let err = s.fails(&["apply", "-f", arg(&file)]);
    assert!(
        err.contains("The request is invalid: patch: Invalid value:"),
        "{err}"
    );
    assert!(
        err.contains("strict decoding error: unknown field"),
        "{err}"
    );
    assert_eq!(
        s.ok(&[
            "get",
            "deployment",
            "typo",
            "-o",
            "jsonpath={.spec.replicas}"
        ]),
        "1"
    );
    // Ignore: applied without a word.
    let out = s.kubectl(&["apply", "--validate=false", "-f", arg(&file)]);
    assert!(out.status.success());
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("Warning"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        s.ok(&[
            "get",
            "deployment",
            "typo",
            "-o",
            "jsonpath={.spec.replicas}"
        ]),
        "2"
    );
}

#[test]
fn apply_prune_with_a_label_selector_deletes_what_left_the_files() {
    let Some(s) = server() else { return };
    let map = |name: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  labels: {{app: shop}}\ndata: {{k: v}}\n"
        )
    };
    for name in ["a", "b", "c"] {
        s.write_file(&format!("shop/{name}.yaml"), &map(name));
    }
    s.write_file(
        "shop/web.yaml",
        &DEPLOYMENT.replace("labels: {app: web}\nspec", "labels: {app: shop}\nspec"),
    );
    let dir = s.dir.path().join("shop");
    // Labelled like the set but not created by apply: prune leaves it alone.
    s.ok(&["create", "configmap", "manual"]);
    s.ok(&["label", "configmap", "manual", "app=shop"]);
    // Created by apply but outside the selector: also kept.
    s.ok_stdin(
        &["apply", "-f", "-"],
        &map("other").replace("app: shop", "app: else"),
    );
    let out = s.ok(&["apply", "-f", arg(&dir), "--prune", "-l", "app=shop"]);
    assert!(out.contains("configmap/a created"), "{out}");
    std::fs::remove_file(dir.join("b.yaml")).expect("remove b");
    std::fs::remove_file(dir.join("web.yaml")).expect("remove web");
    let out = s.ok(&["apply", "-f", arg(&dir), "--prune", "-l", "app=shop"]);
    assert!(out.contains("configmap/b pruned"), "{out}");
    assert!(out.contains("deployment.apps/web pruned"), "{out}");
    assert_eq!(
        names(&s.ok(&["get", "configmaps", "-o", "name"])),
        [
            "configmap/a",
            "configmap/c",
            "configmap/manual",
            "configmap/other"
        ]
    );
    s.fails(&["get", "deployment", "web"]);
}
