"""The registry pull benchmark of scripts/bench (issue 10): `herdctl image
pull` (herdd's registry::Puller) against `ctr images pull --plain-http`, on
the bench's private containerd, from a Debian docker-registry of our own on
127.0.0.1, every sample cold.

    run(env, results, samples, start_herdd)   measures; results["pull"]
    report(results, measurement, percentile)  (measurements, goals)
    render(results)                           the per-sample markdown table
    plot(results, out_svg, plot_dir)          pull times by sample (gnuplot)

The image is tests/bench/make_pull_image.py's: 3 gzip'd layers of random
bytes (20 MiB each) and a config, pushed with skopeo. Before each sample
the image is removed from both namespaces (`ctr images rm --sync`, which
runs containerd's garbage collector before it returns), its blobs too
(`ctr content rm`), and the sample waits until no namespace lists any of
its digests, no blob file of it is left in the content store's directory,
no ingest is active and neither namespace has a snapshot or a lease: both
tools start every sample equally cold. Samples alternate herd, ctr, herd,
ctr ... after one unrecorded warm-up pair (kept under raw as "warmup").

Timed: from the command's exec to its exit (wait4), stdout read through a
pipe for both. herdd's memory: /proc/PID/clear_refs "5" resets VmHWM just
before the command; VmRSS is also sampled every 20 ms; growth = max(VmHWM
after, sampled peak) - VmRSS before. CPU: utime+stime of herdd and of
containerd over the sample, and the client's own (rusage).
"""

import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
NS_HERD = "bench-pull-herd"
NS_CTR = "bench-pull-ctr"
SEED = 10


def _log(msg):
    import sys
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _proc_kb(pid, keys):
    vals = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in keys:
                vals[k] = int(v.split()[0])
    return vals


def _cpu_ms(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000.0 / os.sysconf("SC_CLK_TCK")


class Registry:
    """docker-registry serve on 127.0.0.1:<ephemeral>, storage under DIR."""

    def __init__(self, env):
        self.dir = os.path.join(env.build, "registry")
        if os.path.exists(self.dir):
            shutil.rmtree(self.dir)
        os.makedirs(self.dir)
        self.port = _free_port()
        self.host = f"127.0.0.1:{self.port}"
        cfg = os.path.join(self.dir, "config.yml")
        with open(cfg, "w") as f:
            f.write("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
                    f"storage:\n  filesystem:\n    rootdirectory: {self.dir}/storage\n"
                    f"  delete:\n    enabled: true\nhttp:\n  addr: {self.host}\n")
        os.makedirs(env.logs, exist_ok=True)
        self.log = open(os.path.join(env.logs, "registry.log"), "ab")
        self.proc = subprocess.Popen(["/usr/bin/docker-registry", "serve", cfg],
                                     stdout=self.log, stderr=self.log)
        env.children.append(self.proc)
        self.env = env
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1).read()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("docker-registry did not answer")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc in self.env.children:
            self.env.children.remove(self.proc)
        self.log.close()


def make_image(env):
    """The OCI layout (cached by its parameters) and its digests."""
    layout = os.path.join(env.images, "pull-bench-oci")
    subprocess.run([os.path.join(HERE, "make_pull_image.py"), layout, "--seed", str(SEED)],
                   check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(layout, "index.json")) as f:
        mdesc = json.load(f)["manifests"][0]
    with open(os.path.join(layout, "blobs", "sha256", mdesc["digest"].split(":")[1])) as f:
        manifest = json.load(f)
    digests = [mdesc["digest"], manifest["config"]["digest"]]
    digests += [l["digest"] for l in manifest["layers"]]
    size = mdesc["size"] + manifest["config"]["size"] + sum(l["size"] for l in manifest["layers"])
    return layout, digests, size


class Cold:
    """Takes the image out of containerd completely (see the module doc)."""

    def __init__(self, env, ref, digests):
        self.env, self.ref, self.digests = env, ref, digests
        self.blob_dir = os.path.join(env.ctrd_dir, "root", "io.containerd.content.v1.content",
                                     "blobs", "sha256")

    def ctr(self, ns, *a):
        return self.env.ctr(ns, *a, check=False)

    def leftovers(self):
        left = []
        namespaces = self.env.ctr("default", "namespaces", "ls", "-q",
                                  check=False).stdout.split()
        for ns in set(namespaces) | {NS_HERD, NS_CTR}:
            listed = set(self.ctr(ns, "content", "ls", "-q").stdout.split())
            left += [f"{ns}: content {d}" for d in self.digests if d in listed]
        for ns in (NS_HERD, NS_CTR):
            snaps = self.ctr(ns, "snapshots", "ls").stdout.splitlines()[1:]
            left += [f"{ns}: snapshot {s.split()[0]}" for s in snaps if s.strip()]
            left += [f"{ns}: lease {l}" for l in self.ctr(ns, "leases", "ls", "-q").stdout.split()]
            active = self.ctr(ns, "content", "active").stdout.splitlines()[1:]
            left += [f"{ns}: ingest {a.split()[0]}" for a in active if a.strip()]
        left += [f"blob file {d}" for d in self.digests
                 if os.path.exists(os.path.join(self.blob_dir, d.split(":")[1]))]
        return left

    def make(self):
        for ns in (NS_HERD, NS_CTR):
            for lease in self.ctr(ns, "leases", "ls", "-q").stdout.split():
                self.ctr(ns, "leases", "rm", lease)
            self.ctr(ns, "images", "rm", self.ref)
            for d in self.digests:
                self.ctr(ns, "content", "rm", d)
        left = []
        for _ in range(50):
            # A lease removed with --sync runs the collector before it returns.
            lease = self.ctr(NS_CTR, "leases", "create").stdout.split()
            if lease:
                self.ctr(NS_CTR, "leases", "rm", "--sync", lease[0])
            left = self.leftovers()
            if not left:
                return
            time.sleep(0.2)
        raise RuntimeError("pull bench: the image is still in containerd: " + "; ".join(left))


class RssSampler:
    """VmRSS of a pid every 20 ms, in a thread, between start() and stop()."""

    def __init__(self, pid):
        self.pid, self.peak, self.n = pid, 0, 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while not self.done.is_set():
            try:
                self.peak = max(self.peak, _proc_kb(self.pid, ("VmRSS",))["VmRSS"])
                self.n += 1
            except OSError:
                return
            self.done.wait(0.02)

    def start(self):
        self.thread.start()

    def stop(self):
        self.done.set()
        self.thread.join()


def timed(cmd, herdd_pid, ctrd_pid, out_path):
    """Runs cmd; returns its sample: elapsed ms, stdout lines with their ms
    offsets, herdd's memory and CPU, containerd's CPU, the client's rusage."""
    with open(f"/proc/{herdd_pid}/clear_refs", "w") as f:
        f.write("5")
    before = _proc_kb(herdd_pid, ("VmRSS", "VmHWM", "RssAnon", "RssFile"))
    cpu_h0, cpu_c0 = _cpu_ms(herdd_pid), _cpu_ms(ctrd_pid)
    sampler = RssSampler(herdd_pid)
    sampler.start()
    lines = []
    with open(out_path + ".stderr", "wb") as err:
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
        for raw in p.stdout:
            lines.append(((time.monotonic() - t0) * 1000.0, raw.decode(errors="replace")))
        _, status, ru = os.wait4(p.pid, 0)
        t1 = time.monotonic()
        p.returncode = os.waitstatus_to_exitcode(status)
    sampler.stop()
    after = _proc_kb(herdd_pid, ("VmRSS", "VmHWM", "RssAnon", "RssFile"))
    with open(out_path, "w") as f:
        for t, line in lines:
            f.write(f"{t:9.1f} {line.rstrip()}\n")
    if p.returncode != 0:
        with open(out_path + ".stderr", errors="replace") as f:
            raise RuntimeError(f"{' '.join(cmd)}: exit {p.returncode}: {f.read()[-2000:]}")
    peak = max(after["VmHWM"], sampler.peak)
    return {"ms": (t1 - t0) * 1000.0, "lines": lines,
            "rss_before_kb": before["VmRSS"], "rss_peak_kb": peak,
            "rss_after_kb": after["VmRSS"], "rss_growth_kb": peak - before["VmRSS"],
            "rss_anon_before_kb": before["RssAnon"], "rss_anon_after_kb": after["RssAnon"],
            "rss_file_before_kb": before["RssFile"], "rss_file_after_kb": after["RssFile"],
            "rss_sampled_peak_kb": sampler.peak, "rss_samples": sampler.n,
            "herdd_cpu_ms": _cpu_ms(herdd_pid) - cpu_h0,
            "containerd_cpu_ms": _cpu_ms(ctrd_pid) - cpu_c0,
            "client_cpu_ms": (ru.ru_utime + ru.ru_stime) * 1000.0,
            "client_maxrss_kb": ru.ru_maxrss}


def herd_spans(sample):
    """From herdctl --json's events: exec -> first event, first event -> last
    layer finished, last layer finished -> result, result -> exit."""
    first = last_layer = result = None
    for t, line in sample["lines"]:
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if ev.get("event") == "progress":
            first = t if first is None else first
            if ev.get("kind") == "layer" and ev.get("finished"):
                last_layer = t
        elif ev.get("event") == "result":
            result = t
    if None in (first, last_layer, result):
        return {}
    return {"to_first_event_ms": first, "transfer_ms": last_layer - first,
            "unpack_ms": result - last_layer, "exit_after_result_ms": sample["ms"] - result}


def ctr_spans(sample):
    """From ctr's output: exec -> "unpacking" (resolve + fetch), "unpacking"
    -> "done:" (unpack), "done:" -> exit."""
    unpacking = done = None
    for t, line in sample["lines"]:
        s = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", line).strip()
        if unpacking is None and s.startswith("unpacking "):
            unpacking = t
        elif unpacking is not None and done is None and s.startswith("done:"):
            done = t
    if unpacking is None or done is None:
        return {}
    return {"fetch_ms": unpacking, "unpack_ms": done - unpacking,
            "exit_after_done_ms": sample["ms"] - done}


def run(env, results, samples, start_herdd):
    """Measures `samples` herd and `samples` ctr pulls (ABAB, after a warm-up
    pair). start_herdd(ns) -> (herdd object with .proc and .stop(), control
    socket path)."""
    layout, digests, size = make_image(env)
    reg = Registry(env)
    herdd = None
    out_dir = os.path.join(env.logs, "pull")
    os.makedirs(out_dir, exist_ok=True)
    try:
        ref = f"{reg.host}/bench:1"
        subprocess.run(["skopeo", "--insecure-policy", "copy", "-q", "--dest-tls-verify=false",
                        f"oci:{layout}:1", f"docker://{ref}"], check=True)
        cold = Cold(env, ref, digests)
        herdd, control = start_herdd(NS_HERD)
        with open(os.path.join(env.ctrd_dir, "containerd.pid")) as f:
            ctrd_pid = int(f.read().strip())
        herdctl = os.path.join(env.build, "daemon", "herdctl")
        cmds = {
            "herd": [herdctl, "--socket", control, "image", "pull", ref, "--json"],
            "ctr": ["ctr", "--address", env.sock, "-n", NS_CTR, "images", "pull", "--plain-http",
                    ref],
        }
        out = {"ref": ref, "digests": digests, "bytes": size, "samples_per_tool": samples,
               "order": [], "herd": [], "ctr": [], "warmup": {},
               "commands": {k: " ".join(v) for k, v in cmds.items()},
               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
        plan = [("herd", True), ("ctr", True)]
        for _ in range(samples):
            plan += [("herd", False), ("ctr", False)]
        for i, (tool, warm) in enumerate(plan):
            cold.make()
            s = timed(cmds[tool], herdd.proc.pid, ctrd_pid,
                      os.path.join(out_dir, f"{i:02d}-{tool}.out"))
            s["spans"] = herd_spans(s) if tool == "herd" else ctr_spans(s)
            del s["lines"]
            if warm:
                out["warmup"][tool] = s
            else:
                out[tool].append(s)
                out["order"].append(tool)
            _log(f"pull {'warm-up' if warm else len(out[tool])} {tool}: {s['ms']:.0f} ms, "
                 f"herdd RSS +{s['rss_growth_kb']} kB (before {s['rss_before_kb']} kB), "
                 f"spans {', '.join(f'{k} {v:.0f}' for k, v in s['spans'].items())}")
        cold.make()
        out["loadavg_at_end"] = " ".join(open("/proc/loadavg").read().split()[:3])
        results["pull"] = out
    finally:
        if herdd is not None:
            herdd.stop()
        reg.stop()


def _ms(samples, key="ms"):
    return [s[key] for s in samples]


def report(results, measurement, percentile):
    r = results.get("pull")
    if not r or not r["herd"] or not r["ctr"]:
        return [], []
    herd, ctr = r["herd"], r["ctr"]
    ms = [measurement("pull: herd", "ms", _ms(herd), "pull: ctr", _ms(ctr),
                      goal="<= 1.0x ctr at p50"),
          measurement("pull: ctr", "ms", _ms(ctr))]
    growth = _ms(herd, "rss_growth_kb")
    first = r.get("warmup", {}).get("herd")
    all_growth = growth + ([first["rss_growth_kb"]] if first else [])
    ms.append(measurement("pull: herd, herdd VmRSS growth during the pull", "kB", growth,
                          goal="<= 8 MB"))
    if first:
        ms.append(measurement("pull: herd, herdd VmRSS growth, first pull after herdd's start "
                              "(the warm-up)", "kB", [first["rss_growth_kb"]], goal="<= 8 MB"))
    ms.append(measurement("pull: herd, herdd VmRSS before the pull", "kB",
                          _ms(herd, "rss_before_kb")))
    for tool, samples in (("herd", herd), ("ctr", ctr)):
        keys = sorted({k for s in samples for k in s["spans"]})
        for k in keys:
            ms.append(measurement(f"pull: {tool}, span {k.replace('_ms', '')}", "ms",
                                  [s["spans"][k] for s in samples if k in s["spans"]]))
    ms.append(measurement("pull: herd, herdd CPU", "ms", _ms(herd, "herdd_cpu_ms")))
    ms.append(measurement("pull: herd, containerd CPU", "ms", _ms(herd, "containerd_cpu_ms"),
                          "pull: ctr, containerd CPU", _ms(ctr, "containerd_cpu_ms")))
    ms.append(measurement("pull: ctr, ctr process CPU", "ms", _ms(ctr, "client_cpu_ms")))
    ratio = percentile(_ms(herd), 50) / percentile(_ms(ctr), 50)
    ratio95 = percentile(_ms(herd), 95) / percentile(_ms(ctr), 95)
    goals = [("Pull (cold, 3 layers, {:.0f} MB): herd ≤ 1.0× ctr at p50".format(r["bytes"] / 1e6),
              f"{ratio:.3f}× (p95 {ratio95:.3f}×)", ratio <= 1.0),
             ("Pull: herdd RSS growth ≤ 8 MB (max over all pulls, first included)",
              f"{max(all_growth) / 1024:.1f} MB (p50 {percentile(growth, 50) / 1024:.1f} MB)",
              max(all_growth) <= 8 * 1024)]
    return ms, goals


def render(results):
    r = results.get("pull")
    if not r:
        return "(not measured)"
    lines = [f"Image: `{r['ref'].split('/', 1)[1]}`, {r['bytes'] / 1e6:.1f} MB in "
             f"{len(r['digests'])} blobs (3 layers); {r['samples_per_tool']} samples per tool, "
             f"order herd, ctr, herd, ctr … after a warm-up pair; run {r['date']}, load "
             f"average at the end {r['loadavg_at_end']}.", "",
             "| sample | herd (ms) | herd: exec → first event / transfer / last layer → result "
             "(ms) | herdd VmRSS before → peak (kB) | herdd RssAnon / RssFile after (kB) | herdd CPU (ms) | containerd CPU, herd (ms) | "
             "ctr (ms) | ctr: fetch / unpack (ms) | containerd CPU, ctr (ms) |",
             "|---|---|---|---|---|---|---|---|---|---|"]

    def row(label, h, c):
        hs, cs = h.get("spans", {}), c.get("spans", {}) if c else {}
        hsp = " / ".join(f"{hs[k]:.0f}" for k in ("to_first_event_ms", "transfer_ms",
                                                   "unpack_ms") if k in hs) or "–"
        csp = " / ".join(f"{cs[k]:.0f}" for k in ("fetch_ms", "unpack_ms") if k in cs) or "–"
        split = (f"{h['rss_anon_after_kb']} / {h['rss_file_after_kb']}"
                 if "rss_anon_after_kb" in h else "–")
        return (f"| {label} | {h['ms']:.0f} | {hsp} | {h['rss_before_kb']} → {h['rss_peak_kb']} | "
                f"{split} | "
                f"{h['herdd_cpu_ms']:.0f} | {h['containerd_cpu_ms']:.0f} | "
                f"{c['ms']:.0f} | {csp} | {c['containerd_cpu_ms']:.0f} |" if c else "")
    w = r.get("warmup", {})
    if "herd" in w and "ctr" in w:
        lines.append(row("warm-up", w["herd"], w["ctr"]))
    for i, (h, c) in enumerate(zip(r["herd"], r["ctr"])):
        lines.append(row(str(i + 1), h, c))
    return "\n".join(lines)


def plot(results, out_svg, plot_dir):
    r = results.get("pull")
    if not r or not shutil.which("gnuplot"):
        return False
    os.makedirs(plot_dir, exist_ok=True)
    paths = {}
    for tool in ("herd", "ctr"):
        paths[tool] = os.path.join(plot_dir, f"pull-{tool}.dat")
        with open(paths[tool], "w") as f:
            for i, s in enumerate(r[tool]):
                f.write(f"{i + 1} {s['ms']:.1f} {s['rss_growth_kb'] / 1024:.2f}\n")
    script = f"""set terminal svg size 1000,520 dynamic font 'sans,12' background rgb 'white'
set output '{out_svg}'
set title 'Cold pull of a 3-layer {r["bytes"] / 1e6:.0f} MB image from a local registry (samples alternate herd, ctr)'
set xlabel 'sample'
set ylabel 'ms from exec to exit'
set y2label 'herdd VmRSS growth (MB)'
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:*]
set grid
set key below horizontal
plot '{paths["herd"]}' using 1:2 with linespoints lw 2 pt 7 title 'herdctl image pull', \\
     '{paths["ctr"]}' using 1:2 with linespoints lw 2 pt 5 title 'ctr images pull', \\
     '{paths["herd"]}' using 1:3 axes x1y2 with impulses lw 6 title 'herdd RSS growth (right axis)'
"""
    sp = os.path.join(plot_dir, "pull.gp")
    with open(sp, "w") as f:
        f.write(script)
    subprocess.run(["gnuplot", sp], check=True)
    return True
