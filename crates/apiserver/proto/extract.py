#!/usr/bin/env python3
"""Writes k8s-descriptors.pb.gz: the protobuf descriptors (FileDescriptorSet) of the
Kubernetes API groups berth serves, taken from the kubectl binary, which registers each
`generated.proto` as a gzipped FileDescriptorProto. The API server reads field numbers,
names and types from it to decode `application/vnd.kubernetes.protobuf` request bodies.

Usage: extract.py [/usr/bin/kubectl] (run from this directory).
"""
import gzip
import re
import sys
import zlib

WANTED = re.compile(
    r"^k8s\.io/(api/(core|apps|batch|networking|rbac|policy|storage|coordination|discovery|"
    r"scheduling|authentication)/v1|api/autoscaling/v[12]|"
    r"apimachinery/pkg/(apis/meta/v1|api/resource|util/intstr|runtime|runtime/schema))"
    r"/generated\.proto$"
)


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def main():
    binary = open(sys.argv[1] if len(sys.argv) > 1 else "/usr/bin/kubectl", "rb").read()
    files = {}
    pos = 0
    while True:
        pos = binary.find(b"\x1f\x8b\x08\x00", pos)
        if pos < 0:
            break
        try:
            out = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(binary[pos : pos + 4_000_000])
        except zlib.error:
            out = b""
        pos += 1
        # FileDescriptorProto field 1 (name) comes first.
        if len(out) > 2 and out[0] == 0x0A and out[1] < 0x80:
            name = out[2 : 2 + out[1]].decode("latin-1")
            if WANTED.match(name):
                files[name] = out
    if len(files) < 17:
        sys.exit(f"found only {sorted(files)}")
    body = b"".join(b"\x0a" + varint(len(f)) + f for _, f in sorted(files.items()))
    with gzip.GzipFile("k8s-descriptors.pb.gz", "wb", mtime=0) as out:
        out.write(body)
    print("\n".join(sorted(files)))


if __name__ == "__main__":
    main()
