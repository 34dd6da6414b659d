#!/usr/bin/env python3
"""make_pull_image.py DIR [--seed S] [--layers N] [--layer-mib M]

The image of the registry pull benchmark (scripts/bench, "pull"): an OCI
image layout in DIR (oci-layout, index.json, blobs/sha256/...) with N
layers (default 3), each a gzip'd tar holding one file of M MiB (default
20) of pseudo-random bytes from Python's Random(seed + layer) — data gzip
cannot shrink, so what goes over the wire is what lands on disk — plus an
OCI image config for linux/<host arch>. Tagged "1" (the ref.name
annotation), for `skopeo copy oci:DIR:1 docker://...`.

Reproducible: the same seed, sizes and zlib give the same digests (tar
entries with mtime 0, uid/gid 0, no user names; gzip with mtime 0 and no
file name). Prints the manifest digest. Rewrites DIR only when its
recorded parameters differ (DIR/params.json).
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import platform
import random
import shutil
import sys
import tarfile

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


def host_arch():
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(m, m)


def layer_tar(seed, index, mib):
    """One uncompressed tar: a directory and a file of random bytes."""
    rng = random.Random(seed * 1000 + index)
    data = rng.randbytes(mib * 1024 * 1024)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        d = tarfile.TarInfo(f"bench{index}")
        d.type = tarfile.DIRTYPE
        d.mode = 0o755
        tar.addfile(d)
        f = tarfile.TarInfo(f"bench{index}/random.bin")
        f.size = len(data)
        f.mode = 0o644
        tar.addfile(f, io.BytesIO(data))
    return buf.getvalue()


def write_blob(blobs, data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, digest), "wb") as f:
        f.write(data)
    return "sha256:" + digest


def make(out, seed, layers, mib):
    params = {"seed": seed, "layers": layers, "layer_mib": mib, "arch": host_arch()}
    pfile = os.path.join(out, "params.json")
    try:
        with open(pfile) as f:
            old = json.load(f)
        if old.get("params") == params:
            return old["manifest"]
    except (OSError, ValueError, KeyError):
        pass
    if os.path.exists(out):
        shutil.rmtree(out)
    blobs = os.path.join(out, "blobs", "sha256")
    os.makedirs(blobs)
    layer_descs, diff_ids = [], []
    for i in range(layers):
        tar = layer_tar(seed, i, mib)
        diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
        gz = gzip.compress(tar, compresslevel=1, mtime=0)
        layer_descs.append({"mediaType": OCI_LAYER_GZIP, "digest": write_blob(blobs, gz),
                            "size": len(gz)})
    config = {
        "architecture": params["arch"], "os": "linux",
        "config": {"Cmd": ["/bench0/random.bin"], "Env": ["PATH=/"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": f"make_pull_image.py layer {i}"} for i in range(layers)],
    }
    cbytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    manifest = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": write_blob(blobs, cbytes),
                   "size": len(cbytes)},
        "layers": layer_descs,
    }
    mbytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    mdigest = write_blob(blobs, mbytes)
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": OCI_MANIFEST, "digest": mdigest, "size": len(mbytes),
        "annotations": {"org.opencontainers.image.ref.name": "1"}}]}
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump(index, f)
    with open(os.path.join(out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(pfile, "w") as f:
        json.dump({"params": params, "manifest": mdigest}, f)
    return mdigest


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("dir")
    p.add_argument("--seed", type=int, default=10)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--layer-mib", type=int, default=20)
    a = p.parse_args()
    print(make(os.path.abspath(a.dir), a.seed, a.layers, a.layer_mib))
    return 0


if __name__ == "__main__":
    sys.exit(main())
