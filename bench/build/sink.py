# bench/build/sink.py SOCKET - the cheapest server a `docker build` can talk to: answers every
# request with 200, reads a POST /build body to its end (chunked or Content-Length, 4 MiB
# reads into one buffer, nothing kept) and only then answers a one-step finished build.
# Timing the docker CLI against it gives the floor of a no-change rebuild: the CLI's own
# context walk, tar and upload. Logs each build body's size and receive time on stderr.
import socket, os, sys, threading, time, json
path = sys.argv[1]
try: os.unlink(path)
except FileNotFoundError: pass
s = socket.socket(socket.AF_UNIX); s.bind(path); s.listen(16)
class R:
    def __init__(self, c): self.c = c; self.b = bytearray(); self.p = 0
    def fill(self):
        if self.p > (1 << 20):
            del self.b[:self.p]; self.p = 0
        d = self.c.recv(4 << 20)
        if not d: raise EOFError
        self.b += d
    def until(self, sep):
        while True:
            i = self.b.find(sep, self.p)
            if i >= 0:
                out = bytes(self.b[self.p:i]); self.p = i + len(sep); return out
            self.fill()
    def skip(self, n):
        while len(self.b) - self.p < n:
            n -= len(self.b) - self.p; self.p = len(self.b); self.fill()
        self.p += n
END = b"\r\n0\r\n\r\n"  # a chunked body's last chunk (the CLI sends no trailers)
def handle(c):
    r = R(c)
    scratch = bytearray(4 << 20)
    view = memoryview(scratch)
    try:
        while True:
            head = r.until(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            h = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
            t0 = time.time(); n = 0
            if h.get("transfer-encoding", "").lower() == "chunked":
                # Not parsed chunk by chunk (that costs this sink more CPU than the CLI's
                # upload): the body ends with the last chunk's bytes, seen at the end of a
                # read with nothing after them. Random data ending a read with exactly these 7
                # bytes is a 2^-56 event.
                tail = bytes(r.b[r.p:])
                n = len(tail); r.b = bytearray(); r.p = 0
                if not (tail == b"0\r\n\r\n" or tail.endswith(END)):
                    tail = (b"\r\n" + tail)[-7:]  # the stream so far (headers end in CRLF)
                    while True:
                        got = c.recv_into(view)
                        if not got: raise EOFError
                        n += got
                        tail = (tail + bytes(view[max(0, got - 7):got]))[-7:]
                        if tail == END: break
            else:
                cl = int(h.get("content-length", "0")); r.skip(cl); n = cl
            if "/build" in target:
                sys.stderr.write("body %d bytes read in %.3f s\n" % (n, time.time() - t0))
                body = (json.dumps({"stream": "Step 1/1 : FROM x\n"}) + "\n" +
                        json.dumps({"aux": {"ID": "sha256:" + "a" * 64}}) + "\n" +
                        json.dumps({"stream": "Successfully built aaaaaaaaaaaa\n"}) + "\n").encode()
                ctype = b"application/json"
            else:
                body = b"OK"; ctype = b"text/plain"
            resp = (b"HTTP/1.1 200 OK\r\nApi-Version: 1.47\r\nOstype: linux\r\nContent-Type: " + ctype +
                    b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n")
            c.sendall(resp + (b"" if method == "HEAD" else body))
    except (EOFError, ConnectionError):
        pass
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
