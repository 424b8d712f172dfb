"""The Python docker SDK against berth and an htpasswd-protected berth registry: login,
images.push (streamed progress with the pushed digest), images.pull by tag and by digest
(same image id). Arguments: registry host:port, user, password, expected image id.
Prints OK at the end; any failure raises."""
import sys

import docker

host, user, password, image_id = sys.argv[1:5]
client = docker.from_env()
repo = f"{host}/py/bb"

try:
    client.images.pull(repo, tag="v1")
    raise AssertionError("pull of a missing image must fail")
except docker.errors.APIError as e:
    assert e.status_code in (401, 404, 500), e

try:
    client.login(username=user, password="wrong", registry=host)
    raise AssertionError("login with a wrong password must fail")
except docker.errors.APIError as e:
    assert e.status_code == 401, e

res = client.login(username=user, password=password, registry=host)
assert res["Status"] == "Login Succeeded", res

assert client.images.get("busybox:latest").tag(repo, "v1")
auth = {"username": user, "password": password}
digest = None
for msg in client.images.push(repo, tag="v1", auth_config=auth, stream=True, decode=True):
    assert "error" not in msg, msg
    if "aux" in msg:
        digest = msg["aux"]["Digest"]
assert digest and digest.startswith("sha256:"), digest

client.images.remove(f"{repo}:v1")
img = client.images.pull(repo, tag="v1", auth_config=auth)
assert img.id == image_id, (img.id, image_id)
assert f"{repo}@{digest}" in img.attrs["RepoDigests"], img.attrs["RepoDigests"]

client.images.remove(f"{repo}:v1")
img = client.images.pull(f"{repo}@{digest}", auth_config=auth)
assert img.id == image_id, (img.id, image_id)
print("OK")
