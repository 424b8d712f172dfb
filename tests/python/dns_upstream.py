"""A stand-in upstream DNS server for the embedded-DNS forwarding tests.

Usage: dns_upstream.py LISTEN_IP ANSWER_IP READY_FILE
Answers every A query with ANSWER_IP (TTL 60), anything else with NOERROR and no data;
touches READY_FILE once bound. Runs until killed.
"""
import socket
import struct
import sys

listen, answer, ready = sys.argv[1], sys.argv[2], sys.argv[3]
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind((listen, 53))
open(ready, "w").close()
while True:
    query, peer = sock.recvfrom(4096)
    if len(query) < 12:
        continue
    pos = 12
    while pos < len(query) and query[pos] != 0:
        pos += query[pos] + 1
    qend = pos + 5
    if qend > len(query):
        continue
    qtype = struct.unpack("!H", query[pos + 1:pos + 3])[0]
    question = query[12:qend]
    ancount = 1 if qtype == 1 else 0
    header = query[:2] + struct.pack("!HHHHH", 0x8180, 1, ancount, 0, 0)
    body = question
    if ancount:
        body += struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton(answer)
    sock.sendto(header + body, peer)
