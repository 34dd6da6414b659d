#!/usr/bin/env python3
"""Checks scripts/build-images: reproducible output and well-formed OCI archives.

Usage: test_build_images.py [PATH/TO/build-images]

Runs build-images twice into two fresh directories and requires byte-identical
archives and identical digests, then once more with another SOURCE_DATE_EPOCH
and requires different digests and the new mtime everywhere. It then opens
every archive and checks its structure: oci-layout, the index annotations
containerd's import uses, blob digests and sizes, the image config's fields,
diff_id == sha256 of the uncompressed layer, a gzip header without mtime and
file name, and each image's expected files. Exits 1 listing every failure.
"""

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SCRIPT = os.path.join(HERE, "..", "..", "scripts", "build-images")
DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
OTHER_EPOCH = 1700000000

EXPECTED = {
    # archive stem: (image name, ref tag, Entrypoint, Cmd)
    "busybox": ("herd.local/busybox:latest", "latest", None, ["sh"]),
    "etcd": ("herd.local/etcd:3.4", "3.4", ["/usr/bin/etcd"], None),
    "victoria-metrics": ("herd.local/victoria-metrics:1.79", "1.79",
                         ["/usr/bin/victoria-metrics"], None),
}

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
    return condition


def run_build(script, outdir, epoch=None):
    env = dict(os.environ)
    env.pop("SOURCE_DATE_EPOCH", None)
    if epoch is not None:
        env["SOURCE_DATE_EPOCH"] = str(epoch)
    out = subprocess.run([script, outdir], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"FAIL: {script} {outdir} exited {out.returncode}:\n{out.stderr}")
    with open(os.path.join(outdir, "images.json")) as f:
        listing = json.load(f)
    return out.stdout, listing


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def check_tar_members(what, tar, mtime):
    names = [m.name for m in tar.getmembers()]
    check(names == sorted(names), f"{what}: entries not sorted")
    for m in tar.getmembers():
        check((m.uid, m.gid, m.uname, m.gname) == (0, 0, "", ""),
              f"{what}: {m.name} owned by {m.uid}:{m.gid} ({m.uname!r}:{m.gname!r})")
        check(m.mtime == mtime, f"{what}: {m.name} has mtime {m.mtime}, want {mtime}")


def dpkg_arch():
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=True).stdout.strip()
    return {"amd64": "amd64", "arm64": "arm64", "armhf": "arm", "armel": "arm", "i386": "386",
            "ppc64el": "ppc64le"}.get(arch, arch)


def check_layer_content(stem, layer):
    members = {m.name.rstrip("/"): m for m in layer.getmembers()}

    def has_file(path, executable=False):
        m = members.get(path)
        ok = check(m is not None and m.isfile(), f"{stem}: layer lacks file {path}")
        if ok and executable:
            check(m.mode & 0o111, f"{stem}: {path} is not executable")
        return ok

    check("tmp" in members and members["tmp"].isdir() and members["tmp"].mode == 0o1777,
          f"{stem}: /tmp missing or not mode 1777")
    if stem == "busybox":
        has_file("bin/busybox", executable=True)
        sh = members.get("bin/sh")
        check(sh is not None and sh.issym() and sh.linkname == "busybox",
              f"{stem}: bin/sh is not a symlink to busybox")
        applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True,
                                 check=True).stdout.split()
        missing = [a for a in applets if a != "busybox" and "bin/" + a not in members]
        check(not missing, f"{stem}: applet symlinks missing: {missing[:5]}")
        if has_file("etc/passwd") and has_file("etc/group"):
            passwd = layer.extractfile(members["etc/passwd"]).read().decode()
            group = layer.extractfile(members["etc/group"]).read().decode()
            for name in ("root", "nobody"):
                check(f"\n{name}:" in "\n" + passwd, f"{stem}: /etc/passwd lacks {name}")
                check(f"\n{name}:" in "\n" + group, f"{stem}: /etc/group lacks {name}")
        check("var/www" in members and members["var/www"].isdir(), f"{stem}: /var/www missing")
    else:
        binaries = {"etcd": ["usr/bin/etcd", "usr/bin/etcdctl"],
                    "victoria-metrics": ["usr/bin/victoria-metrics"]}[stem]
        for b in binaries:
            if has_file(b, executable=True):
                ldd = subprocess.run(["ldd", "/" + b], capture_output=True, text=True).stdout
                for line in ldd.splitlines():
                    path = line.split("=>")[-1].split()[0] if line.strip() else ""
                    if path.startswith("/"):
                        has_file(path.lstrip("/"))


def check_archive(stem, path, entry, mtime):
    name, tag, entrypoint, cmd = EXPECTED[stem]
    with open(path, "rb") as f:
        data = f.read()
    outer = tarfile.open(fileobj=io.BytesIO(data))
    check_tar_members(stem + ".tar", outer, mtime)

    def blob(digest):
        try:
            content = outer.extractfile("blobs/sha256/" + digest.split(":", 1)[1]).read()
        except KeyError:
            failures.append(f"{stem}: blob {digest} missing")
            return b""
        check(sha256(content) == digest, f"{stem}: blob {digest} has the wrong content")
        return content

    layout = json.loads(outer.extractfile("oci-layout").read())
    check(layout == {"imageLayoutVersion": "1.0.0"}, f"{stem}: oci-layout is {layout}")
    index = json.loads(outer.extractfile("index.json").read())
    check(len(index.get("manifests", [])) == 1, f"{stem}: index has not exactly one manifest")
    desc = index["manifests"][0]
    check(desc.get("annotations") == {"io.containerd.image.name": name,
                                      "org.opencontainers.image.ref.name": tag},
          f"{stem}: index annotations are {desc.get('annotations')}")
    check(desc["digest"] == entry["manifest_digest"], f"{stem}: index digest != images.json")
    manifest_bytes = blob(desc["digest"])
    check(len(manifest_bytes) == desc["size"], f"{stem}: manifest size mismatch")
    manifest = json.loads(manifest_bytes)
    check(manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json",
          f"{stem}: manifest mediaType {manifest['mediaType']}")
    check(manifest["config"]["digest"] == entry["config_digest"],
          f"{stem}: config digest != images.json")
    config_bytes = blob(manifest["config"]["digest"])
    check(len(config_bytes) == manifest["config"]["size"], f"{stem}: config size mismatch")
    config = json.loads(config_bytes)
    check(config.get("architecture") == dpkg_arch(), f"{stem}: architecture {config.get('architecture')}")
    check(config.get("os") == "linux", f"{stem}: os {config.get('os')}")
    check(isinstance(config.get("created"), str), f"{stem}: no created timestamp")
    run = config.get("config", {})
    check(run.get("Entrypoint") == entrypoint, f"{stem}: Entrypoint {run.get('Entrypoint')}")
    check(run.get("Cmd") == cmd, f"{stem}: Cmd {run.get('Cmd')}")
    check(run.get("Env") == [DEFAULT_PATH_ENV], f"{stem}: Env {run.get('Env')}")
    check(run.get("WorkingDir") == "/", f"{stem}: WorkingDir {run.get('WorkingDir')}")
    check(config.get("rootfs", {}).get("type") == "layers", f"{stem}: rootfs.type")
    diff_ids = config.get("rootfs", {}).get("diff_ids", [])
    check(len(manifest["layers"]) == 1 and len(diff_ids) == 1, f"{stem}: not exactly one layer")

    layer_desc = manifest["layers"][0]
    check(layer_desc["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip",
          f"{stem}: layer mediaType {layer_desc['mediaType']}")
    layer_gz = blob(layer_desc["digest"])
    check(len(layer_gz) == layer_desc["size"], f"{stem}: layer size mismatch")
    check(layer_gz[:3] == b"\x1f\x8b\x08", f"{stem}: layer is not gzip")
    check(not layer_gz[3] & 0x08, f"{stem}: gzip header carries a file name")
    check(layer_gz[4:8] == b"\0\0\0\0", f"{stem}: gzip header mtime is not 0")
    layer_tar = gzip.decompress(layer_gz)
    check(diff_ids and diff_ids[0] == sha256(layer_tar),
          f"{stem}: diff_id {diff_ids} != sha256 of the uncompressed layer {sha256(layer_tar)}")
    layer = tarfile.open(fileobj=io.BytesIO(layer_tar))
    check_tar_members(stem + " layer", layer, mtime)
    check_layer_content(stem, layer)


def main():
    script = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_SCRIPT)
    with tempfile.TemporaryDirectory(prefix="herd-images-test.") as tmp:
        dirs = [os.path.join(tmp, d) for d in ("a", "b", "c")]
        out_a, list_a = run_build(script, dirs[0])
        out_b, list_b = run_build(script, dirs[1])
        out_c, list_c = run_build(script, dirs[2], epoch=OTHER_EPOCH)

        lines = out_a.splitlines()
        check(len(lines) == len(EXPECTED), f"expected {len(EXPECTED)} output lines: {out_a!r}")
        check(out_a.replace(dirs[0], "X") == out_b.replace(dirs[1], "X"),
              "the two runs printed different digests")
        check([e["name"] for e in list_a] == [v[0] for v in EXPECTED.values()],
              f"images.json names: {[e['name'] for e in list_a]}")
        for line, entry in zip(lines, list_a):
            check(line == f"{entry['name']} {entry['manifest_digest']} {entry['archive']}",
                  f"output line {line!r} does not match images.json")

        for stem, entry_a, entry_b, entry_c in zip(EXPECTED, list_a, list_b, list_c):
            path_a, path_b = (os.path.join(d, stem + ".tar") for d in dirs[:2])
            check(entry_a["archive"] == path_a, f"{stem}: images.json archive {entry_a['archive']}")
            for key in ("manifest_digest", "config_digest"):
                check(entry_a[key] == entry_b[key], f"{stem}: {key} differs between runs")
                check(entry_a[key] != entry_c[key],
                      f"{stem}: {key} ignores SOURCE_DATE_EPOCH")
            with open(path_a, "rb") as fa, open(path_b, "rb") as fb:
                check(fa.read() == fb.read(), f"{stem}: archives differ between runs")
            check_archive(stem, path_a, entry_a, 0)
            check_archive(stem, os.path.join(dirs[2], stem + ".tar"), entry_c, OTHER_EPOCH)

    for f in failures:
        print("FAIL:", f)
    if failures:
        return 1
    print(f"ok: {len(EXPECTED)} images reproducible and well-formed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
