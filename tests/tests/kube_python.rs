//! The Python `kubernetes` client against berth: CRUD, selectors, pagination, optimistic
//! concurrency (409), watch from a resourceVersion, status subresource, and a
//! CustomResourceDefinition served for CRUD and watch.

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

fn run(s: &KubeServer, script: &str) -> Option<String> {
    match s.python(script) {
        Ok(out) => {
            assert!(
                out.status.success(),
                "python failed:\n{}\n{}\nserver log:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                s.log()
            );
            Some(String::from_utf8_lossy(&out.stdout).into_owned())
        }
        Err(why) => {
            eprintln!("skipping: {why}");
            None
        }
    }
}

const CRUD: &str = r#"
import threading, time
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException
config.load_kube_config()
v1 = client.CoreV1Api()
for i in range(5):
    v1.create_namespaced_config_map("default", client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=f"cm{i}", labels={"n": str(i), "group": "g"}), data={"i": str(i)}))
gen = v1.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(generate_name="gen-")))
assert gen.metadata.name.startswith("gen-") and len(gen.metadata.name) == 9, gen.metadata.name
lst = v1.list_namespaced_config_map("default", label_selector="group=g,n in (1,3)")
assert sorted(c.metadata.name for c in lst.items) == ["cm1", "cm3"]
page = v1.list_namespaced_config_map("default", label_selector="group", limit=2)
assert len(page.items) == 2 and page.metadata._continue
rest = v1.list_namespaced_config_map("default", label_selector="group", limit=10, _continue=page.metadata._continue)
assert len(rest.items) == 3, [c.metadata.name for c in rest.items]
cm = v1.read_namespaced_config_map("cm0", "default")
stale = cm.metadata.resource_version
cm.data = {"i": "changed"}
v1.replace_namespaced_config_map("cm0", "default", cm)
cm.metadata.resource_version = stale
try:
    v1.replace_namespaced_config_map("cm0", "default", cm)
    raise SystemExit("stale update accepted")
except ApiException as e:
    assert e.status == 409, e.status
try:
    v1.read_namespaced_config_map("nope", "default")
    raise SystemExit("missing object found")
except ApiException as e:
    assert e.status == 404
start = v1.list_namespaced_config_map("default").metadata.resource_version
def writer():
    time.sleep(0.5)
    v1.patch_namespaced_config_map("cm1", "default", {"data": {"i": "patched"}},
                                   _content_type="application/merge-patch+json")
    v1.delete_namespaced_config_map("cm2", "default")
threading.Thread(target=writer).start()
seen = []
w = watch.Watch()
for ev in w.stream(v1.list_namespaced_config_map, "default", resource_version=start, timeout_seconds=5):
    seen.append((ev["type"], ev["object"].metadata.name))
    if len(seen) == 2:
        w.stop()
assert seen == [("MODIFIED", "cm1"), ("DELETED", "cm2")], seen
pod = v1.create_namespaced_pod("default", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
    "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
pod.status.phase = "Running"
v1.replace_namespaced_pod_status("p", "default", pod)
running = v1.list_namespaced_pod("default", field_selector="status.phase=Running")
assert [p.metadata.name for p in running.items] == ["p"]
v1.delete_collection_namespaced_config_map("default", label_selector="group")
assert v1.list_namespaced_config_map("default", label_selector="group").items == []
print("ok")
"#;

#[test]
fn python_client_crud_watch_and_conflicts() {
    let Some(s) = server() else { return };
    let Some(out) = run(&s, CRUD) else { return };
    assert!(out.contains("ok"), "{out}");
}

const CRD: &str = r#"
import time
from kubernetes import client, config, watch
config.load_kube_config()
ext = client.ApiextensionsV1Api()
crd = {
  "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
  "metadata": {"name": "widgets.example.com"},
  "spec": {"group": "example.com", "scope": "Namespaced",
    "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
    "versions": [{"name": "v1", "served": True, "storage": True,
      "subresources": {"status": {}},
      "schema": {"openAPIV3Schema": {"type": "object", "properties": {
        "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
        "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}}}}}]}}
ext.create_custom_resource_definition(crd)
for _ in range(50):
    got = ext.read_custom_resource_definition("widgets.example.com")
    conds = {c.type: c.status for c in (got.status.conditions or [])}
    if conds.get("Established") == "True":
        break
    time.sleep(0.1)
else:
    raise SystemExit("CRD never established")
co = client.CustomObjectsApi()
w = co.create_namespaced_custom_object("example.com", "v1", "default", "widgets",
    {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 3}})
assert w["metadata"]["uid"]
lst = co.list_namespaced_custom_object("example.com", "v1", "default", "widgets")
assert [i["metadata"]["name"] for i in lst["items"]] == ["w1"]
rv = lst["metadata"]["resourceVersion"]
co.patch_namespaced_custom_object("example.com", "v1", "default", "widgets", "w1", {"spec": {"size": 5}})
co.patch_namespaced_custom_object_status("example.com", "v1", "default", "widgets", "w1", {"status": {"ready": True}})
got = co.get_namespaced_custom_object("example.com", "v1", "default", "widgets", "w1")
assert got["spec"]["size"] == 5 and got["status"]["ready"] is True, got
seen = []
wt = watch.Watch()
for ev in wt.stream(co.list_namespaced_custom_object, "example.com", "v1", "default", "widgets",
                    resource_version=rv, timeout_seconds=5):
    seen.append(ev["type"])
    if len(seen) == 2:
        wt.stop()
assert seen == ["MODIFIED", "MODIFIED"], seen
ext.delete_custom_resource_definition("widgets.example.com")
print("ok")
"#;

#[test]
fn custom_resources_are_served_after_crd_creation() {
    let Some(s) = server() else { return };
    let Some(out) = run(&s, CRD) else { return };
    assert!(out.contains("ok"), "{out}");
    let resources = s.ok(&["api-resources", "--api-group=example.com"]);
    assert!(
        !resources.contains("widgets"),
        "deleted CRD still served: {resources}"
    );
}

const SERVED_AS_READ: &str = r#"
import json, threading
from kubernetes import client, config, watch
config.load_kube_config()
v1 = client.CoreV1Api()

def raw_list(**query):
    return json.loads(v1.list_namespaced_config_map("default", _preload_content=False, **query).data)

def raw_get(name):
    return json.loads(v1.read_namespaced_config_map(name, "default", _preload_content=False).data)

# Stored values that need care when served from their bytes: escapes, non-ASCII, an
# apiVersion and kind left out of the body.
names = []
for i in range(120):
    body = {"metadata": {"name": f"cm{i:03}", "labels": {"n": str(i % 3)},
                         "annotations": {"example.com/q": "a\"\\b\u00e9\u2603"}},
            "data": {"k": "line\nnext\t" + "x" * i, "u": "\u00fc\U0001F600"}}
    if i % 2:
        body.update(apiVersion="v1", kind="ConfigMap")
    v1.create_namespaced_config_map("default", body)
    names.append(f"cm{i:03}")
lst = raw_list()
assert lst["kind"] == "ConfigMapList" and lst["apiVersion"] == "v1", lst.keys()
assert [o["metadata"]["name"] for o in lst["items"]] == names
for item in lst["items"]:
    one = raw_get(item["metadata"]["name"])
    assert item == one, (item, one)
    assert item["apiVersion"] == "v1" and item["kind"] == "ConfigMap", item
    assert int(item["metadata"]["resourceVersion"]) <= int(lst["metadata"]["resourceVersion"])
assert lst["items"][5]["data"]["u"] == "\u00fc\U0001F600"
assert lst["items"][7]["metadata"]["annotations"]["example.com/q"] == "a\"\\b\u00e9\u2603"
sel = raw_list(label_selector="n=1")
assert [o["metadata"]["name"] for o in sel["items"]] == names[1::3]
assert sel["items"] == lst["items"][1::3]
page = raw_list(limit=50)
rest = raw_list(limit=100, _continue=page["metadata"]["continue"])
assert page["items"] + rest["items"] == lst["items"] and "continue" not in rest["metadata"]
# Watch events carry the objects as GET shows them, from a resourceVersion and initially.
start = lst["metadata"]["resourceVersion"]
def writer():
    v1.patch_namespaced_config_map("cm001", "default", {"data": {"k": "\u00e9\"\n"}})
    v1.delete_namespaced_config_map("cm002", "default")
seen = []
w = watch.Watch()
threading.Timer(0.5, writer).start()
for ev in w.stream(v1.list_namespaced_config_map, "default", resource_version=start,
                   timeout_seconds=30):
    seen.append(ev)
    if len(seen) == 2:
        w.stop()
assert [(e["type"], e["raw_object"]["metadata"]["name"]) for e in seen] == [("MODIFIED", "cm001"), ("DELETED", "cm002")], seen
now = raw_get("cm001")
assert seen[0]["raw_object"] == now, (seen[0]["raw_object"], now)
assert now["data"]["k"] == "\u00e9\"\n"
initial = []
for ev in w.stream(v1.list_namespaced_config_map, "default", label_selector="n=0", timeout_seconds=30):
    initial.append(ev["object"].metadata.name)
    if len(initial) == 40:
        w.stop()
assert initial == names[0::3], initial
print("ok")
"#;

/// Lists and watch events of plain JSON are written from the stored bytes: what the client
/// reads must be exactly the objects GET shows, through escapes, selectors and pages.
#[test]
fn lists_and_watches_serve_objects_as_get_shows_them() {
    let Some(s) = server() else { return };
    let Some(out) = run(&s, SERVED_AS_READ) else {
        return;
    };
    assert!(out.contains("ok"), "{out}");
    let table = s.ok(&["get", "configmaps", "-l", "n=2", "--no-headers"]);
    // cm002 was deleted by the script.
    assert_eq!(table.lines().count(), 39, "{table}");
    assert!(table.starts_with("cm005 "), "{table}");
}
