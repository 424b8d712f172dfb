"""images.build of the Python docker package against berth.

Usage: sdk_build.py CONTEXT_DIR (DOCKER_HOST in the environment). Builds CONTEXT_DIR with a
build arg, a label and two tags, prints the streamed log lines, then one JSON line with what
the checks need: image id, tags, labels, the log's "Successfully built" line, and the error
text of a build whose RUN fails.
"""
import json
import sys

import docker

ctx = sys.argv[1]
client = docker.from_env()
image, logs = client.images.build(
    path=ctx,
    tag="pybuilt:1",
    buildargs={"WHO": "python"},
    labels={"via": "sdk"},
    rm=True,
)
image.tag("pybuilt", "second")
image.reload()
lines = [chunk.get("stream", "") for chunk in logs]
for line in lines:
    sys.stdout.write(line)
failure = ""
try:
    client.images.build(path=ctx, dockerfile="Dockerfile.fail", rm=True, forcerm=True)
except docker.errors.BuildError as e:
    failure = str(e)
out = client.containers.run("pybuilt:1", remove=True).decode()
print(json.dumps({
    "id": image.id,
    "tags": sorted(image.tags),
    "labels": image.labels,
    "built": [l.strip() for l in lines if l.startswith("Successfully built")],
    "failure": failure,
    "run": out,
}))
