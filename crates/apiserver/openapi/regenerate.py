#!/usr/bin/env python3
"""Rebuilds the gzip files here from upstream's OpenAPI documents (Apache-2.0 data).

Usage: regenerate.py SPEC_DIR  (SPEC_DIR holds swagger.json and v3/*.json of one release).
Documents are minified (key order kept) and gzipped with mtime 0 so the output is stable.
"""
import glob, gzip, json, os, sys

# Group versions berth serves; upstream documents of other groups are not shipped.
SKIP = ("apiregistration", "flowcontrol", "resource.k8s.io")


def write(src, dst):
    body = json.dumps(json.load(open(src)), separators=(",", ":"), ensure_ascii=False).encode()
    with open(dst, "wb") as out:
        with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, compresslevel=9, filename="") as gz:
            gz.write(body)


spec = sys.argv[1]
here = os.path.dirname(os.path.abspath(__file__))
write(os.path.join(spec, "swagger.json"), os.path.join(here, "v2.json.gz"))
os.makedirs(os.path.join(here, "v3"), exist_ok=True)
for path in sorted(glob.glob(os.path.join(spec, "v3", "*.json"))):
    name = os.path.basename(path)
    if not any(s in name for s in SKIP):
        write(path, os.path.join(here, "v3", name + ".gz"))
