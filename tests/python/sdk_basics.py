"""The Python docker SDK against berth: images.load/list, containers.run attached and
detached, logs, exec_run, stop, remove. Prints OK at the end; any failure raises."""
import sys

import docker

archive_path = sys.argv[1]
client = docker.from_env()

with open(archive_path, "rb") as f:
    loaded = client.images.load(f.read())
assert [i.tags for i in loaded] == [["busybox:latest"]], loaded
assert any("busybox:latest" in i.tags for i in client.images.list()), client.images.list()

out = client.containers.run("busybox", ["sh", "-c", "echo attached"], remove=True)
assert out == b"attached\n", out

c = client.containers.run("busybox", ["sh", "-c", "echo detached; sleep 1000"], detach=True, name="pydetached")
try:
    c.reload()
    assert c.status == "running", c.status
    code, output = c.exec_run(["sh", "-c", "echo in-exec; exit 4"])
    assert code == 4 and output == b"in-exec\n", (code, output)
    code, output = c.exec_run("id -u", user="app")
    assert code == 0 and output == b"1000\n", (code, output)
    for _ in range(50):
        if b"detached" in c.logs():
            break
    assert c.logs() == b"detached\n", c.logs()
    c.stop(timeout=1)
    c.reload()
    assert c.status == "exited", c.status
finally:
    c.remove(force=True)

names = [x.name for x in client.containers.list(all=True)]
assert "pydetached" not in names, names
try:
    client.containers.get("pydetached")
    raise AssertionError("removed container still found")
except docker.errors.NotFound:
    pass
print("OK")
