#!/usr/bin/env python3
"""A registry that wants Bearer tokens, and its token server, in one process
on 127.0.0.1 (for registry_resolver_test). Prints "PORT <n>" first.

  GET /token              Basic user:pass -> {"token": ..., "expires_in": 300};
                          anything else 401. Counts the tokens issued.
  HEAD|GET /v2/<repo>/manifests/<x>
                          without "Bearer <token>": 401 with a Bearer challenge
                          (realm = /token here); with it: a fixed OCI manifest
                          and its real digest, except repository "lie", which
                          answers every digest with that same body (a lying
                          registry: the client must notice the mismatch).
  Without auth, for faults: repositories "flaky" (503 twice, then the
  manifest), "busy" (429 with Retry-After: 1 once), "broken" (500 always),
  "throttled" (429 with Retry-After: 10, always),
  "nohead" (405 to HEAD, the manifest to GET, no digest header), "old" (a
  schema 1 manifest); and any request with "ns=" in its query (a mirror
  request) is recorded and answered 404.
  GET /stats              {"tokens": n, "hits": {repo: requests}, "ns": last ns}
"""
import hashlib
import http.server
import json
import sys
import urllib.parse

TOKEN = "tok-7f3a"
BASIC = "Basic dXNlcjpwYXNz"  # user:pass
MANIFEST = json.dumps({
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
               "digest": "sha256:" + "a" * 64, "size": 2},
    "layers": [],
}).encode()
DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
tokens = 0
hits = {}
last_ns = ""


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, code, body, headers=(), head=False):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def answer(self, head):
        global tokens, last_ns
        path, _, query = self.path.partition("?")
        if path == "/token":
            if self.headers.get("Authorization") != BASIC:
                return self.send(401, b'{"details":"bad credentials"}')
            tokens += 1
            return self.send(200, json.dumps({"token": TOKEN, "expires_in": 300}).encode(),
                             [("Content-Type", "application/json")])
        if path == "/stats":
            return self.send(200, json.dumps({"tokens": tokens, "hits": hits, "ns": last_ns}).encode())
        parts = path.split("/")
        if len(parts) < 5 or parts[1] != "v2" or parts[-2] != "manifests":
            return self.send(404, b"{}", head=head)
        repo = "/".join(parts[2:-2])
        hits[repo] = hits.get(repo, 0) + 1
        n = hits[repo]
        oci = [("Content-Type", "application/vnd.oci.image.manifest.v1+json")]
        if "ns=" in query:
            last_ns = urllib.parse.unquote(query.split("ns=", 1)[1].split("&")[0])
            return self.send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"not here"}]}', head=head)
        if repo == "flaky" and n <= 2:
            return self.send(503, b"busy", head=head)
        if repo == "busy" and n == 1:
            return self.send(429, b"slow down", [("Retry-After", "1")], head)
        if repo == "throttled":
            return self.send(429, b"slow down", [("Retry-After", "10")], head)
        if repo == "broken":
            return self.send(500, b"broken", head=head)
        if repo == "nohead":
            if head:
                return self.send(405, b"", head=head)
            return self.send(200, MANIFEST, oci)
        if repo == "old":
            return self.send(200, b'{"schemaVersion":1}',
                             [("Content-Type", "application/vnd.docker.distribution.manifest.v1+prettyjws")], head)
        if repo in ("flaky", "busy"):
            return self.send(200, MANIFEST, oci + [("Docker-Content-Digest", DIGEST)], head)
        if self.headers.get("Authorization") != "Bearer " + TOKEN:
            port = self.server.server_address[1]
            challenge = ('Bearer realm="http://127.0.0.1:%d/token",service="fake",'
                         'scope="repository:%s:pull"' % (port, repo))
            body = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
            return self.send(401, body, [("WWW-Authenticate", challenge)], head)
        obj = parts[-1]
        if repo != "lie" and obj not in ("latest", DIGEST):
            return self.send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}', head=head)
        headers = [("Content-Type", "application/vnd.oci.image.manifest.v1+json")]
        if repo != "lie":
            headers.append(("Docker-Content-Digest", DIGEST))
        return self.send(200, MANIFEST, headers, head)

    def do_GET(self):
        self.answer(False)

    def do_HEAD(self):
        self.answer(True)


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print("PORT %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
