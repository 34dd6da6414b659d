#!/usr/bin/env python3
"""A loopback HTTP server for herd's HTTP client tests.

Binds 127.0.0.1 on an ephemeral port and prints "PORT <n>" on stdout.
Paths:
  /blob/N          N bytes, byte i = (i * 7 + 3) & 0xff; honours Range: bytes=K-
  /redirect/N      307 to /blob/N
  /status/C        status C, Retry-After: 1, body "status C"
  /hang            reads the request and never answers
  /cut/N           announces N bytes, sends N // 2, closes the connection
  /echo-headers    the request's headers as the body, one per line
  /many-headers    a response with 70 KiB of headers (100 of 700 bytes)
"""
import http.server
import sys
import threading
import time


def blob(n, start=0):
    return bytes(((i * 7 + 3) & 0xFF) for i in range(start, n))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_body(self, code, body, headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        parts = self.path.split("/")
        kind = parts[1] if len(parts) > 1 else ""
        arg = parts[2] if len(parts) > 2 else ""
        if kind == "blob":
            n = int(arg)
            rng = self.headers.get("Range")
            if rng and rng.startswith("bytes=") and rng.endswith("-"):
                start = int(rng[6:-1])
                self.send_body(206, blob(n, start),
                               [("Content-Range", "bytes %d-%d/%d" % (start, n - 1, n))])
            else:
                self.send_body(200, blob(n), [("Docker-Content-Digest", "sha256:test")])
        elif kind == "redirect":
            self.send_body(307, b"", [("Location", "/blob/" + arg)])
        elif kind == "status":
            code = int(arg)
            self.send_body(code, b"status %d" % code, [("Retry-After", "1")])
        elif kind == "hang":
            time.sleep(3600)
        elif kind == "cut":
            n = int(arg)
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.end_headers()
            self.wfile.write(blob(n)[: n // 2])
            self.wfile.flush()
            self.close_connection = True
        elif kind == "echo-headers":
            body = "".join("%s: %s\n" % (k, v) for k, v in self.headers.items())
            self.send_body(200, body.encode())
        elif kind == "many-headers":
            headers = [("X-Filler-%d" % i, "x" * 700) for i in range(100)]
            self.send_body(200, b"ok", headers)
        else:
            self.send_body(404, b"not found")


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.handle_error = lambda *a: None  # clients that hang up are part of the tests
    print("PORT %d" % server.server_address[1], flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    import signal
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    main()
