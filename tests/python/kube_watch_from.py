"""Watches ConfigMaps in `default` from a resourceVersion for a few seconds and prints one
line per event: "TYPE name resourceVersion" (or "ERROR status" when the watch fails).

Usage: kube_watch_from.py RESOURCE_VERSION SECONDS (KUBECONFIG in the environment).
"""
import sys

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

config.load_kube_config()
api = client.CoreV1Api()
try:
    for event in watch.Watch().stream(
        api.list_namespaced_config_map,
        "default",
        resource_version=sys.argv[1],
        timeout_seconds=int(sys.argv[2]),
        allow_watch_bookmarks=False,
    ):
        obj = event["object"]
        print(event["type"], obj.metadata.name, obj.metadata.resource_version, flush=True)
except ApiException as e:
    print("ERROR", e.status, flush=True)
