"""The Python docker SDK against berth's networks, volumes and published ports:
networks.create/connect/disconnect/remove, volumes.create/list/remove and
containers.run(ports=..., volumes=..., network=...). argv[1] is the network namespace the
daemon manages (published ports are reached there). Prints OK at the end; any failure raises."""
import subprocess
import sys
import time

import docker

hostnet = sys.argv[1]
client = docker.from_env()


def fetch(url):
    """wget from inside the daemon's managed namespace."""
    for _ in range(100):
        r = subprocess.run(
            ["nsenter", "--net=" + hostnet, "/bin/busybox", "timeout", "5",
             "/bin/busybox", "wget", "-qO-", url],
            capture_output=True)
        if r.returncode == 0:
            return r.stdout
        time.sleep(0.1)
    raise AssertionError("no answer from " + url)


ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet="10.88.0.0/24")])
net = client.networks.create("pynet", driver="bridge", ipam=ipam, labels={"team": "py"})
assert net.attrs["IPAM"]["Config"][0]["Subnet"] == "10.88.0.0/24", net.attrs
assert [n.name for n in client.networks.list(names=["pynet"])] == ["pynet"]

vol = client.volumes.create("pyvol", labels={"a": "b"})
assert vol.attrs["Mountpoint"].endswith("/volumes/pyvol/_data"), vol.attrs
assert [v.name for v in client.volumes.list(filters={"label": "a=b"})] == ["pyvol"]
client.containers.run("busybox", ["sh", "-c", "echo from-volume > /data/x"],
                      volumes=["pyvol:/data"], remove=True)

web = client.containers.run(
    "busybox",
    ["sh", "-c", "mkdir -p /www && cp /data/x /www/x && exec busybox httpd -f -p 80 -h /www"],
    detach=True, name="pyweb", ports={"80/tcp": 8090},
    volumes={"pyvol": {"bind": "/data", "mode": "ro"}}, network="pynet")
try:
    web.reload()
    ip = web.attrs["NetworkSettings"]["Networks"]["pynet"]["IPAddress"]
    assert ip.startswith("10.88.0."), ip
    assert web.ports["80/tcp"][0]["HostPort"] == "8090", web.ports
    assert fetch("http://127.0.0.1:8090/x") == b"from-volume\n"

    other = client.containers.run("busybox", ["sleep", "60"], detach=True, name="pyother")
    try:
        net.connect(other, aliases=["buddy"])
        net.reload()
        assert {c.name for c in net.containers} == {"pyweb", "pyother"}, net.containers
        out = client.containers.run("busybox", ["busybox", "nslookup", "buddy"],
                                    network="pynet", remove=True)
        other.reload()
        assert other.attrs["NetworkSettings"]["Networks"]["pynet"]["IPAddress"].encode() in out, out
        net.disconnect(other)
        other.reload()
        assert "pynet" not in other.attrs["NetworkSettings"]["Networks"]
    finally:
        other.remove(force=True)
    try:
        net.remove()
        raise AssertionError("a network in use was removed")
    except docker.errors.APIError as e:
        assert "active endpoints" in str(e), e
finally:
    web.remove(force=True)

net.remove()
assert not client.networks.list(names=["pynet"])
vol.remove()
assert "pyvol" not in [v.name for v in client.volumes.list()]
try:
    client.networks.get("pynet")
    raise AssertionError("removed network still found")
except docker.errors.NotFound:
    pass
print("OK")
