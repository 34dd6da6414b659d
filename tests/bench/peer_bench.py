"""The peer benchmarks of scripts/bench (issue 15): herd side by side with
the tools an operator would pick instead to keep a container running on one
node, Docker (`--restart=always`) and podman, each at its shipped defaults,
in the same run and against the same busybox image.

    run(env, results, opts, herdd_factory)    measures; results["peers2"]
    report(results, measurement, percentile)  (measurements, goals)

What it measures (names as docs/benchmarks.md shows them):
  isolated crash: TOOL   SIGKILL of a busybox httpd (host network) that has
                         been up longer than the tool's reset window (Docker:
                         10 s; herd gets `reset_window: "10s"` so both mean
                         the same, `herd defaults` is herd as shipped, and
                         `herd standby` is herd with reset_window 10s and
                         `"restore": "standby"`, issue 16);
                         time from the kill until the port answers again.
                         Every tool runs at once, each on its own port, and
                         the kills go round-robin in a shuffled order, at
                         least 11 s after the tool's previous restore.
  crash loop: TOOL       `exit 1` at once, in a loop: restarts in the first
                         60 s and the time to the first restart, read from
                         /proc/uptime lines the container appends to a file
                         of a data mount at every start (the same clock for
                         every tool).
  node overhead N: TOOL  the PSS (smaps_rollup) of every process the tool
                         adds to the node, idle, once N httpd components
                         answer: herdd, its shims and herd-logger; dockerd,
                         its own containerd, its shims and docker-proxy;
                         podman's conmons. A process counts when it is the
                         tool's daemon, a child of it, or a shim/conmon whose
                         command line names the tool's private socket or
                         root, and is in the host's pid namespace (the
                         components themselves are not counted).
  cold boot N: TOOL      N components defined and nothing running: time
                         from the tool's start (herdd exec; dockerd exec with
                         N restart=always containers it stopped at its last
                         shutdown; `podman start --all`, what podman's own
                         podman-restart.service runs at boot) until all N
                         ports answer.

Each daemon has a private root under BUILD/peers/ and is started and stopped
by its pid; containers use the host network on 127.0.0.1 ports only (dockerd
runs with --iptables=false --bridge=none). The image goes to Docker and
podman as a docker-archive made with skopeo from the OCI archive herd uses.
"""

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time

DOCKER = "/usr/bin/docker"  # Debian's docker.io client (matches its dockerd)
DOCKERD = "/usr/sbin/dockerd"
PODMAN = "/usr/bin/podman"
IMAGE = "herd.local/busybox:latest"
PACKAGES = ("docker.io", "podman", "skopeo")


def _log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def install_packages():
    missing = [p for p in PACKAGES
               if "install ok installed" not in subprocess.run(
                   ["dpkg-query", "-W", "-f=${Status}", p], capture_output=True,
                   text=True).stdout]
    if not missing:
        return
    _log(f"installing {' '.join(missing)} (services not started: policy-rc.d)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    policy = "/usr/sbin/policy-rc.d"
    ours = not os.path.exists(policy)
    if ours:
        with open(policy, "w") as f:
            f.write("#!/bin/sh\nexit 101\n")
        os.chmod(policy, 0o755)
    try:
        if subprocess.run(["apt-get", "install", "-y", "-q", *missing], env=env).returncode:
            subprocess.run(["apt-get", "update", "-q"], env=env, check=True)
            subprocess.run(["apt-get", "install", "-y", "-q", *missing], env=env, check=True)
    finally:
        if ours:
            os.unlink(policy)


def port_answers(port, timeout=0.5):
    s = socket.socket()
    s.settimeout(timeout)
    try:
        s.connect(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def wait_all_answer(ports, timeout):
    """Seconds until every port answers (polled every 5 ms), or None."""
    t0 = time.monotonic()
    left = set(ports)
    while left:
        for p in list(left):
            if port_answers(p, 0.05):
                left.discard(p)
        if time.monotonic() - t0 > timeout:
            return None
        if left:
            time.sleep(0.005)
    return time.monotonic() - t0


# ------------------------------------------------------------ process sets

def _procs():
    """pid -> (ppid, cmdline, in the host's pid namespace)."""
    me = os.readlink("/proc/self/ns/pid")
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            host = os.readlink(f"/proc/{d}/ns/pid") == me
        except OSError:
            continue
        out[int(d)] = (ppid, cmd, host)
    return out


def tool_processes(roots, markers):
    """The host-pid-namespace processes a tool adds: `roots` (pids) and
    their descendants, and every process whose command line holds every
    string of one of `markers` (tuples), with its descendants."""
    procs = _procs()
    seeds = {p for p in roots if p in procs}
    for pid, (_, cmd, _) in procs.items():
        if any(all(part in cmd for part in m) for m in markers):
            seeds.add(pid)
    children = {}
    for pid, (ppid, _, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = set(), list(seeds)
    while todo:
        p = todo.pop()
        if p in found:
            continue
        found.add(p)
        todo.extend(children.get(p, []))
    return {p: procs[p][1] for p in found if procs[p][2]}


def pss_kb(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


def summarize_processes(procs):
    """{short name: count} of a process set, for the report."""
    names = {}
    for cmd in procs.values():
        exe = os.path.basename(cmd.split(" ", 1)[0]) if cmd else "?"
        names[exe] = names.get(exe, 0) + 1
    return names


# ------------------------------------------------------------ the peers

class _CliPeer:
    """What Docker's and podman's command lines share: `run` and `pid`.
    Subclasses define cli(*args, check=...) and RUN_EXTRA (extra `run`
    flags)."""
    RUN_EXTRA = ()

    def run(self, name, argv, port=None, mounts=(), restart="always"):
        a = ["run", "-d", f"--restart={restart}", "--network", "host", "--name", name,
             *self.RUN_EXTRA]
        for host, target in mounts:
            a += ["-v", f"{host}:{target}"]
        self.cli(*a, IMAGE, *argv)

    def pid(self, name):
        r = self.cli("inspect", "-f", "{{.State.Running}} {{.State.Pid}}", name, check=False)
        parts = r.stdout.split()
        if r.returncode == 0 and len(parts) == 2 and parts[0] == "true" and int(parts[1]) > 0:
            return int(parts[1])
        return None


class Docker(_CliPeer):
    name = "docker"

    def __init__(self, env):
        self.dir = os.path.join(env.build, "peers", "docker")
        self.root = os.path.join(self.dir, "root")
        self.exec_root = os.path.join(self.dir, "exec")
        self.sock = os.path.join(self.dir, "docker.sock")
        self.proc = None
        self.env = env

    def cli(self, *a, check=True, timeout=120):
        return subprocess.run([DOCKER, "-H", f"unix://{self.sock}", *a], check=check,
                              capture_output=True, text=True, timeout=timeout)

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        log = open(os.path.join(self.dir, "dockerd.log"), "ab")
        t0 = time.monotonic()
        # Shipped defaults, except what keeps it private and on loopback.
        self.proc = subprocess.Popen(
            [DOCKERD, "--data-root", self.root, "--exec-root", self.exec_root,
             "-H", f"unix://{self.sock}", "--pidfile", os.path.join(self.dir, "dockerd.pid"),
             "--iptables=false", "--ip6tables=false", "--bridge=none"],
            stdout=log, stderr=log)
        self.env.children.append(self.proc)
        for _ in range(1200):
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockerd exited ({self.proc.returncode}); see {self.dir}")
            if os.path.exists(self.sock) and self.cli("version", check=False).returncode == 0:
                return time.monotonic() - t0
            time.sleep(0.05)
        raise RuntimeError("dockerd did not answer within 60 s")

    def stop(self):
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.env.children.remove(self.proc)
        self.proc = None

    def load(self, docker_archive):
        if self.cli("image", "inspect", IMAGE, check=False).returncode != 0:
            self.cli("load", "-i", docker_archive)

    def remove_all(self):
        ids = self.cli("ps", "-aq", check=False).stdout.split()
        for i in range(0, len(ids), 20):
            self.cli("rm", "-f", *ids[i:i + 20], check=False, timeout=300)

    def processes(self):
        roots = [self.proc.pid] if self.proc else []
        return tool_processes(roots, [(self.exec_root,)])


class Podman(_CliPeer):
    name = "podman"
    # podman's own rlimit defaults (nofile 1048576, nproc 4194304) are above
    # a hard limit that cannot be raised without CAP_SYS_RESOURCE (runc
    # fails with EPERM), so it gets containerd's nofile default, what Docker
    # and herd give, and an nproc that fits.
    RUN_EXTRA = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024")

    def __init__(self, env):
        self.dir = os.path.join(env.build, "peers", "podman")
        self.root = os.path.join(self.dir, "root")
        self.runroot = os.path.join(self.dir, "run")
        self.env = env

    def cli(self, *a, check=True, timeout=300):
        # cgroupfs: no systemd on a bench machine; file events: no journald
        # needed. Everything else is podman's default.
        return subprocess.run([PODMAN, "--root", self.root, "--runroot", self.runroot,
                               "--cgroup-manager", "cgroupfs", "--events-backend", "file",
                               *a], check=check, capture_output=True, text=True, timeout=timeout)

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        return 0.0  # daemonless

    def stop(self):
        pass

    def load(self, docker_archive):
        if self.cli("image", "exists", IMAGE, check=False).returncode != 0:
            self.cli("load", "-i", docker_archive)

    def remove_all(self):
        # A container in a fast restart loop can be restarting while rm
        # runs and survive it: ask again until none is left (bounded).
        for _ in range(20):
            self.cli("rm", "-a", "-f", "-t", "0", check=False)
            if not self.cli("ps", "-aq", check=False).stdout.split():
                return
            time.sleep(0.5)
        _log("podman: containers left after rm -a -f")

    def processes(self):
        return tool_processes([], [(self.root,)])


class Herd:
    """herdd through scripts/bench's Herdd wrapper (herdd_factory)."""
    name = "herd"

    def __init__(self, env, factory, ns, restart=None, label="herd", extra=None):
        self.env, self.factory, self.ns = env, factory, ns
        self.restart = restart
        self.extra = dict(extra or {})  # more component keys ("restore": "standby")
        self.name = label
        self.components = []
        self.h = None

    def add(self, name, argv, port=None, mounts=(), restart="always"):
        c = {"name": name, "image": IMAGE, "image_archive": self.env.archive, "args": argv,
             "stop_grace": "0"}
        if port:
            c["ready"] = {"tcp": {"port": port}, "interval": "100ms"}
        if self.restart is not None:
            c["restart"] = dict(self.restart)
        if mounts:
            c["mounts"] = [{"data": d, "target": t} for d, t in mounts]
        c.update(self.extra)
        self.components.append(c)

    def start(self):
        t0 = time.monotonic()
        self.h = self.factory(self.ns, self.components)
        return time.monotonic() - t0

    def stop(self, clean=True):
        """clean=False: herdd exits (SIGUSR2) and leaves every container."""
        if self.h:
            self.h.stop(clean=clean)
            self.h = None

    def kill_tasks(self):
        """Every task of the namespace killed and deleted, containers kept:
        what a node reboot leaves in containerd's metadata."""
        tasks = self.env.ctr(self.ns, "tasks", "ls", "-q", check=False).stdout.split()
        for t in tasks:
            self.env.ctr(self.ns, "tasks", "kill", "-a", "-s", "SIGKILL", t, check=False)
        for t in tasks:
            for _ in range(50):
                if self.env.ctr(self.ns, "tasks", "delete", t, check=False).returncode == 0:
                    break
                time.sleep(0.1)

    def data_dir(self, comp, data):
        return os.path.join(self.env.work, self.ns, comp, data)

    def pid(self, name):
        # restore: standby: the running task is NAME's or NAME.B's.
        return self.env.task_pid(self.ns, name) or self.env.task_pid(self.ns, name + ".B")

    def processes(self):
        if not self.h:
            return {}
        # containerd-shim-runc-v2 -namespace NS -id C -address SOCK
        return tool_processes([self.h.proc.pid],
                              [(f"-namespace {self.ns} ", f"-address {self.env.sock}")])


# ------------------------------------------------------------ measurements

def httpd(port):
    return ["httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", "/var/www"]


def kill_wait(env, pid, port):
    r = subprocess.run([env.bench_bin, "kill-wait", "--pid", str(pid), "--port", str(port),
                        "--timeout-ms", "60000"], stdout=subprocess.PIPE, text=True)
    if r.returncode != 0:
        return None
    return json.loads(r.stdout.splitlines()[-1])["samples"]["answer_ms"][0]


def isolated_crash(env, tools, iterations, out):
    """tools: [(label, tool, container name, port)], all running."""
    last = {label: time.monotonic() for label, *_ in tools}
    failed = {label: 0 for label, *_ in tools}
    for it in range(iterations):
        order = list(tools)
        random.shuffle(order)
        for label, tool, name, port in order:
            if failed[label] >= 3:
                continue
            # Up longer than the reset window (10 s) since the last restore.
            wait = 11.0 + random.uniform(0, 0.5) - (time.monotonic() - last[label])
            if wait > 0:
                time.sleep(wait)
            pid = None
            for _ in range(600):
                pid = tool.pid(name)
                if pid and port_answers(port):
                    break
                time.sleep(0.05)
            ms = kill_wait(env, pid, port) if pid else None
            last[label] = time.monotonic()
            if ms is None:
                failed[label] += 1
                _log(f"isolated crash: {label}: iteration {it} failed")
                continue
            out.setdefault(f"isolated crash: {label}", []).append(ms)
        _log(f"isolated crash {it + 1}/{iterations}: " + ", ".join(
            f"{label} {out.get('isolated crash: ' + label, [0])[-1]:.0f} ms"
            for label, *_ in tools))


def read_starts(path):
    try:
        with open(path) as f:
            return [float(line.split()[0]) for line in f if line.strip()]
    except OSError:
        return []


def crash_loop_result(starts, window=60.0):
    if not starts:
        return None
    t0 = starts[0]
    restarts = sum(1 for t in starts[1:] if t - t0 <= window)
    first = (starts[1] - t0) * 1000 if len(starts) > 1 else None
    return restarts, first


CRASH = ["sh", "-c", "cat /proc/uptime >> /starts/starts; exit 1"]


def run(env, results, opts, herdd_factory):
    """opts: iterations, loops, count (node overhead / cold boot), which
    (a set of isolated, crashloop, overhead, coldboot)."""
    install_packages()
    out = results.setdefault("peers2", {})
    # A part measured again replaces its samples of an earlier run.
    prefixes = {"isolated": ("isolated crash: ",), "crashloop": ("crash loop: ",),
                "overhead": ("node overhead ",), "coldboot": ("cold boot ",)}
    for part in opts["which"]:
        for key in [k for k in out if k.startswith(prefixes.get(part, ("\0",)))]:
            del out[key]
    info = out.setdefault("info", {})
    archive = os.path.join(env.build, "peers", "busybox-docker.tar")
    os.makedirs(os.path.dirname(archive), exist_ok=True)
    if not os.path.exists(archive):
        subprocess.run(["skopeo", "copy", "-q", f"oci-archive:{env.archive}",
                        f"docker-archive:{archive}:{IMAGE}"], check=True)
    docker, podman = Docker(env), Podman(env)
    info["docker"] = subprocess.run([DOCKERD, "--version"], capture_output=True,
                                    text=True).stdout.strip()
    info["podman"] = subprocess.run([PODMAN, "--version"], capture_output=True,
                                    text=True).stdout.strip()
    docker.start()
    try:
        docker.load(archive)
        podman.load(archive)
        for t in (docker, podman):
            t.remove_all()
        if "isolated" in opts["which"]:
            _isolated(env, out, opts, docker, podman, herdd_factory)
        if "crashloop" in opts["which"]:
            _crash_loop(env, out, opts, docker, podman, herdd_factory)
        if "overhead" in opts["which"] or "coldboot" in opts["which"]:
            _at_scale(env, out, opts, docker, podman, herdd_factory)
    finally:
        for t in (docker, podman):
            t.remove_all()
        docker.stop()


def _isolated(env, out, opts, docker, podman, factory):
    herd_tuned = Herd(env, factory, "bench-iso-herd", {"reset_window": "10s"}, "herd")
    herd_default = Herd(env, factory, "bench-iso-herd-defaults", None, "herd defaults")
    herd_standby = Herd(env, factory, "bench-iso-herd-standby", {"reset_window": "10s"},
                        "herd standby", {"restore": "standby"})
    ports = {"docker": 16101, "podman": 16102, "herd": 16103, "herd defaults": 16104,
             "herd standby": 16105}
    docker.run("iso", httpd(ports["docker"]))
    podman.run("iso", httpd(ports["podman"]))
    herd_tuned.add("iso", httpd(ports["herd"]), port=ports["herd"])
    herd_default.add("iso", httpd(ports["herd defaults"]), port=ports["herd defaults"])
    herd_standby.add("iso", httpd(ports["herd standby"]), port=ports["herd standby"])
    herd_tuned.start()
    herd_default.start()
    herd_standby.start()
    try:
        if wait_all_answer(ports.values(), 120) is None:
            raise RuntimeError("isolated crash: not every tool's httpd answers")
        isolated_crash(env, [("docker", docker, "iso", ports["docker"]),
                             ("podman", podman, "iso", ports["podman"]),
                             ("herd", herd_tuned, "iso", ports["herd"]),
                             ("herd defaults", herd_default, "iso", ports["herd defaults"]),
                             ("herd standby", herd_standby, "iso", ports["herd standby"])],
                       opts["iterations"], out)
    finally:
        herd_tuned.stop()
        herd_default.stop()
        herd_standby.stop()
        docker.remove_all()
        podman.remove_all()


def _crash_loop(env, out, opts, docker, podman, factory):
    for loop in range(opts["loops"]):
        dirs = {}
        for label in ("docker", "podman"):
            d = os.path.join(env.build, "peers", f"crash-{label}")
            shutil.rmtree(d, ignore_errors=True)
            os.makedirs(d)
            dirs[label] = d
        herd = Herd(env, factory, f"bench-crash-herd-{loop}", None, "herd")
        shutil.rmtree(os.path.join(env.work, herd.ns), ignore_errors=True)
        herd.add("crash", CRASH, mounts=[("starts", "/starts")])
        dirs["herd"] = herd.data_dir("crash", "starts")
        # At once, so the three loops share the machine equally.
        docker.run("crash", CRASH, mounts=[(dirs["docker"], "/starts")])
        podman.run("crash", CRASH, mounts=[(dirs["podman"], "/starts")])
        herd.start()
        time.sleep(65)
        for label in ("docker", "podman", "herd"):
            r = crash_loop_result(read_starts(os.path.join(dirs[label], "starts")))
            if r is None:
                _log(f"crash loop: {label}: no start recorded")
                continue
            restarts, first = r
            out.setdefault(f"crash loop: {label}: restarts in 60 s", []).append(restarts)
            if first is not None:
                out.setdefault(f"crash loop: {label}: first restart", []).append(first)
            _log(f"crash loop {loop + 1}: {label}: {restarts} restarts in 60 s, first after "
                 f"{first if first is None else round(first)} ms")
        herd.stop()
        docker.remove_all()
        podman.remove_all()


def _at_scale(env, out, opts, docker, podman, factory):
    n = opts["count"]
    base = 32000
    ports = list(range(base, base + n))
    # herd, a shim per component and with one shim group: herdd exec ->
    # every port answers, then idle PSS; cold boot: herdd leaves (SIGUSR2),
    # every task is killed and deleted with the containers kept (a node's
    # reboot), and a new herdd starts them all.
    for label, group in (("herd", None), ("herd shim_group", "all")):
        herd = Herd(env, factory, f"bench-node-{'group' if group else 'herd'}-{n}", None,
                    label)
        for i, p in enumerate(ports):
            herd.add(f"c{i}", httpd(p), port=p)
            if group:
                herd.components[-1]["shim_group"] = group
        herd.start()  # returns at READY=1
        if wait_all_answer(ports, 600) is None:
            raise RuntimeError(f"node overhead: {label}: not every port answers")
        time.sleep(5)
        pss, procs = _pss_now(herd)
        boot = None
        if "coldboot" in opts["which"]:
            herd.stop(clean=False)
            herd.kill_tasks()
            t0 = time.monotonic()
            herd.start()
            if wait_all_answer(ports, 600) is not None:
                boot = time.monotonic() - t0
        _record_scale(out, n, label, boot, pss, procs)
        herd.stop()

    for tool in (docker, podman):
        tool.remove_all()
        for i, p in enumerate(ports):
            tool.run(f"c{i}", httpd(p))
        if wait_all_answer(ports, 600) is None:
            raise RuntimeError(f"node overhead: {tool.name}: not every port answers")
        time.sleep(5)
        pss, procs = _pss_now(tool)
        boot = None
        if "coldboot" in opts["which"]:
            boot = _cold_boot(tool, ports)
        _record_scale(out, n, tool.name, boot, pss, procs)
        tool.remove_all()


def _pss_now(tool):
    procs = tool.processes()
    return pss_kb(procs), procs


def _cold_boot(tool, ports):
    if isinstance(tool, Docker):
        # dockerd stops every container on its shutdown (live-restore off,
        # the default) and starts the restart=always ones when it comes up.
        tool.stop()
        t0 = time.monotonic()
        tool.start()
        t = wait_all_answer(ports, 600)
        return (time.monotonic() - t0) if t is not None else None
    tool.cli("stop", "-a", "-t", "0")
    t0 = time.monotonic()
    tool.cli("start", "--all", "--filter", "restart-policy=always")
    t = wait_all_answer(ports, 600)
    return (time.monotonic() - t0) if t is not None else None


def _record_scale(out, n, label, boot_s, pss, procs):
    out.setdefault(f"node overhead {n}: {label}", []).append(pss)
    out.setdefault("processes", {})[f"{label} {n}"] = summarize_processes(procs)
    if boot_s is not None:
        out.setdefault(f"cold boot {n}: {label}", []).append(boot_s * 1000)
    _log(f"node overhead {n}: {label}: PSS {pss / 1024:.1f} MB over {len(procs)} processes "
         f"{summarize_processes(procs)}; cold boot "
         f"{'-' if boot_s is None else f'{boot_s * 1000:.0f} ms'}")


def report(results, measurement, percentile):
    p = results.get("peers2")
    if not p:
        return [], []
    ms, goals = [], []

    def get(k):
        return p.get(k) or []

    herd_iso = get("isolated crash: herd")
    for label in ("herd", "herd defaults", "herd standby", "docker", "podman"):
        vals = get(f"isolated crash: {label}")
        if vals:
            ms.append(measurement(f"isolated crash: {label}", "ms", vals,
                                  None if label == "herd" else "isolated crash: herd",
                                  None if label == "herd" else herd_iso))
    for peer in ("docker", "podman"):
        v = get(f"isolated crash: {peer}")
        if v and herd_iso and percentile(herd_iso, 50) > 0:
            r = percentile(v, 50) / percentile(herd_iso, 50)
            goals.append((f"Isolated crash: {peer}/herd ≥ 2 at p50", f"{r:.2f}", r >= 2))
        herd_sb = get("isolated crash: herd standby")
        if v and herd_sb and percentile(herd_sb, 50) > 0:
            r = percentile(v, 50) / percentile(herd_sb, 50)
            goals.append((f"Isolated crash: {peer}/herd standby ≥ 2 at p50", f"{r:.2f}", r >= 2))
    for label in ("herd", "docker", "podman"):
        for what, unit in (("restarts in 60 s", "restarts"), ("first restart", "ms")):
            vals = get(f"crash loop: {label}: {what}")
            if vals:
                ms.append(measurement(f"crash loop: {label}: {what}", unit, vals))
    hr, dr = get("crash loop: herd: restarts in 60 s"), get("crash loop: docker: restarts in 60 s")
    hf, df = get("crash loop: herd: first restart"), get("crash loop: docker: first restart")
    if hr and dr and hf and df:
        goals.append(("Crash loop: herd restarts no more often than Docker in 60 s (p50)",
                      f"{percentile(hr, 50)} vs {percentile(dr, 50)}",
                      percentile(hr, 50) <= percentile(dr, 50)))
        goals.append(("Crash loop: herd's first restart comes sooner than Docker's (p50)",
                      f"{percentile(hf, 50):.0f} ms vs {percentile(df, 50):.0f} ms",
                      percentile(hf, 50) < percentile(df, 50)))
    for key in sorted(k for k in p if k.startswith("node overhead ") and k.endswith(": herd")):
        n = key.split()[2].rstrip(":")
        herd_v = get(key)
        grouped = get(f"node overhead {n}: herd shim_group")
        ms.append(measurement(key, "kB", herd_v))
        if grouped:
            ms.append(measurement(f"node overhead {n}: herd shim_group", "kB", grouped,
                                  f"node overhead {n}: herd", herd_v))
        for peer in ("docker", "podman"):
            v = get(f"node overhead {n}: {peer}")
            if v:
                ms.append(measurement(f"node overhead {n}: {peer}", "kB", v,
                                      f"node overhead {n}: herd", herd_v))
                for label, hv in (("herd", herd_v), ("herd shim_group", grouped)):
                    if hv and percentile(v, 50) > 0:
                        r = percentile(hv, 50) / percentile(v, 50)
                        goals.append((f"Node overhead {n}: {label} ≤ 0.5× {peer}",
                                      f"{r:.2f}×", r <= 0.5))
        for label in ("herd", "herd shim_group", "docker", "podman"):
            v = get(f"cold boot {n}: {label}")
            if v:
                ms.append(measurement(f"cold boot {n}: {label}", "ms", v))
    return ms, goals
