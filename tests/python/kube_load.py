"""Clients creating ConfigMaps as fast as they can, for the durability tests.

Usage: kube_load.py OUT_DIR STOP_FILE CLIENTS (KUBECONFIG in the environment).
Each client is a thread with its own connection pool and no retries (a POST whose answer
was lost is not re-sent); every acknowledged create (201) is appended to
OUT_DIR/acked-N.txt as "name resourceVersion uid" and flushed before the next request.
Failures (the server is down) are counted in OUT_DIR/errors-N.txt, rewritten after each
one, so a reader knows when every client has noticed the server went away (and so has
recorded every create acknowledged before). Runs until STOP_FILE exists.
"""
import os
import sys
import threading
import time

from kubernetes import client, config
from kubernetes.client.rest import ApiException

out, stop, clients = sys.argv[1], sys.argv[2], int(sys.argv[3])
config.load_kube_config()


def worker(n):
    cfg = client.Configuration.get_default_copy()
    cfg.retries = False
    api = client.CoreV1Api(client.ApiClient(cfg))
    errors = 0

    def failed():
        nonlocal errors
        errors += 1
        with open(os.path.join(out, f"errors-{n}.txt.new"), "w") as f:
            f.write(str(errors))
        os.replace(os.path.join(out, f"errors-{n}.txt.new"), os.path.join(out, f"errors-{n}.txt"))
        time.sleep(0.02)

    with open(os.path.join(out, f"acked-{n}.txt"), "w") as acked:
        i = 0
        while not os.path.exists(stop):
            name = f"load-{n}-{i}"
            i += 1
            body = {"metadata": {"name": name}, "data": {"client": str(n), "seq": str(i)}}
            try:
                cm = api.create_namespaced_config_map("default", body, _request_timeout=10)
            except ApiException as e:
                # 0: the client reports a TLS connection cut by the crash this way.
                if e.status not in (0, 409, 500, 503, 504):
                    print(f"client {n}: unexpected {e.status}: {e.body}", file=sys.stderr)
                failed()
                continue
            except Exception:  # connection refused or reset while the server is down
                failed()
                continue
            acked.write(f"{name} {cm.metadata.resource_version} {cm.metadata.uid}\n")
            acked.flush()


threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
for t in threads:
    t.start()
for t in threads:
    t.join()
