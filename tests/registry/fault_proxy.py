#!/usr/bin/env python3
"""A fault-injecting proxy in front of a real registry, on 127.0.0.1 (for
registry_puller_fault_test). Prints "PORT <n>" first.

  fault_proxy.py [--upstream http://127.0.0.1:<port>]

Requests other than /__* (and /token, see bearer) are forwarded to the
upstream (GET and HEAD; Authorization is not passed on in bearer mode) and
recorded. Faults are rules, tried in the order they were added; the first
that matches a request (its path contains "match", and its method is
"method" when given) and has uses left is applied and used once:

  POST /__fault {"match": "/blobs/sha256:..", "method": "GET", "count": 1,
                 "kind": ...}
    kind "status":       answer "status" (with "headers", "body") upstream
                         unasked
    kind "cut":          forward, send the headers (the whole
                         Content-Length) and "bytes" bytes of the body, then
                         close the connection
    kind "flip":         forward, with the body's byte at "at" (default: the
                         middle) inverted
    kind "ignore_range": forward without the Range header: a 200 with the
                         whole body
    kind "stall":        read the request and never answer
    "count": uses (default 1; -1: for ever)
  POST /__config {"static": DIR}     serve files under DIR for paths outside
                                     /v2/ (a blob store a registry's
                                     redirect middleware points at)
  POST /__config {"bearer": "user:pass"}
                                     /v2/ requests without the proxy's token
                                     get a 401 with a Bearer challenge whose
                                     realm is /token here; GET /token with
                                     Basic user:pass answers the token,
                                     anything else 401 ("" turns it off)
  GET /__log     [{"method", "path", "range", "auth", "fault", "status"}]
                 for every request handled (the control ones excepted)
  POST /__reset  drops the rules and the log
"""
import base64
import http.client
import http.server
import json
import os
import sys
import threading
import time
import urllib.parse

TOKEN = "fault-proxy-token"
lock = threading.Lock()
rules = []
log = []
config = {"static": "", "bearer": "", "upstream": None}


def take_rule(method, path):
    with lock:
        for r in rules:
            if r["count"] == 0:
                continue
            if r.get("method") and r["method"] != method:
                continue
            if r["match"] not in path:
                continue
            if r["count"] > 0:
                r["count"] -= 1
            return dict(r)
    return None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def record(self, fault, status):
        with lock:
            log.append({"method": self.command, "path": self.path,
                        "range": self.headers.get("Range", ""),
                        "auth": (self.headers.get("Authorization") or "").split(" ")[0],
                        "fault": fault, "status": status})

    def send(self, code, body, headers=(), head=False):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def control(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path == "/__fault":
            r = json.loads(body)
            r.setdefault("count", 1)
            with lock:
                rules.append(r)
        elif self.path == "/__config":
            with lock:
                config.update(json.loads(body))
        elif self.path == "/__reset":
            with lock:
                rules.clear()
                log.clear()
        elif self.path == "/__log":
            with lock:
                return self.send(200, json.dumps(log).encode())
        else:
            return self.send(404, b"no such control")
        self.send(200, b"{}")

    def bearer_refused(self, head):
        """The 401 of bearer mode, when it applies; else False."""
        if not config["bearer"] or not self.path.startswith("/v2/"):
            return False
        if self.headers.get("Authorization") == "Bearer " + TOKEN:
            return False
        parts = urllib.parse.urlsplit(self.path).path.split("/")
        repo = "/".join(parts[2:-2]) if len(parts) >= 5 else ""
        challenge = ('Bearer realm="http://127.0.0.1:%d/token",service="fault-proxy",'
                     'scope="repository:%s:pull"' % (self.server.server_address[1], repo))
        body = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
        self.record("bearer", 401)
        self.send(401, body, [("WWW-Authenticate", challenge),
                              ("Content-Type", "application/json")], head)
        return True

    def token(self):
        want = "Basic " + base64.b64encode(config["bearer"].encode()).decode()
        if self.headers.get("Authorization") != want:
            self.record("token", 401)
            return self.send(401, b'{"details":"bad credentials"}')
        self.record("token", 200)
        self.send(200, json.dumps({"token": TOKEN, "expires_in": 300}).encode(),
                  [("Content-Type", "application/json")])

    def static(self, head):
        root = config["static"]
        rel = os.path.normpath(urllib.parse.urlsplit(self.path).path).lstrip("/")
        path = os.path.join(root, rel)
        if not root or rel.startswith("..") or not os.path.isfile(path):
            self.record("static", 404)
            return self.send(404, b"not found", head=head)
        with open(path, "rb") as f:
            body = f.read()
        self.record("static", 200)
        self.send(200, body, [("Content-Type", "application/octet-stream")], head)

    def answer(self, head):
        if self.path.startswith("/__"):
            return self.control()
        if self.path.split("?")[0] == "/token" and config["bearer"]:
            return self.token()
        if self.bearer_refused(head):
            return None
        if not self.path.startswith("/v2"):
            return self.static(head)
        rule = take_rule(self.command, self.path)
        kind = rule["kind"] if rule else ""
        if kind == "stall":
            self.record(kind, 0)
            while True:
                time.sleep(3600)
        if kind == "status":
            body = rule.get("body", "").encode()
            self.record(kind, rule["status"])
            return self.send(rule["status"], body, list(rule.get("headers", {}).items()), head)
        return self.forward(head, rule, kind)

    def forward(self, head, rule, kind):
        up = urllib.parse.urlsplit(config["upstream"])
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
        headers = {}
        for name in ("Accept", "Range", "Authorization", "User-Agent"):
            value = self.headers.get(name)
            if value is None or (name == "Authorization" and config["bearer"]):
                continue
            if name == "Range" and kind == "ignore_range":
                continue
            headers[name] = value
        conn.request(self.command, self.path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        out = [(k, v) for k, v in resp.getheaders()
               if k.lower() not in ("content-length", "transfer-encoding", "connection")]
        self.record(kind, resp.status)
        if head:
            self.send_response(resp.status)
            for k, v in out:
                self.send_header(k, v)
            self.send_header("Content-Length", resp.getheader("Content-Length", "0"))
            self.end_headers()
            return None
        if kind == "flip" and body:
            at = int(rule.get("at", len(body) // 2))
            body = body[:at] + bytes([body[at] ^ 0xFF]) + body[at + 1:]
        if kind == "cut":
            self.send_response(resp.status)
            for k, v in out:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:int(rule["bytes"])])
            self.wfile.flush()
            self.close_connection = True
            return None
        return self.send(resp.status, body, out)

    def do_GET(self):
        self.answer(False)

    def do_HEAD(self):
        self.answer(True)

    def do_POST(self):
        if self.path.startswith("/__"):
            return self.control()
        return self.send(405, b"")


def main():
    args = sys.argv[1:]
    if len(args) == 2 and args[0] == "--upstream":
        config["upstream"] = args[1]
    elif args:
        print("usage: fault_proxy.py [--upstream URL]", file=sys.stderr)
        return 2
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print("PORT %d" % server.server_address[1], flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
