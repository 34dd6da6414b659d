// herd's typed configuration: the one JSON file herdd reads, parsed and
// validated into plain structs.
//
// Contract: parse_config() either returns a Config in which every rule below
// holds (and every default is filled in), or no Config and the complete
// list of problems: validation does not stop at the first error. Each error
// names the place with an RFC 6901 JSON pointer ("/components/2/ready/tcp/port";
// "" is the whole document) and says what is wrong and what was found.
// Unknown keys are errors (with a "did you mean" hint for near misses), and
// so are duplicate keys in one JSON object, wrong JSON types, values out of
// range, duplicate component names and unknown, self, duplicate or cyclic
// depends_on entries. A Config therefore never needs re-checking by its
// users; a hand-built Config (tests) carries no such guarantee.
//
// Nothing here touches the system beyond load_config() reading one file:
// whether a bind source exists, or an image is present, is checked when the
// component is started.
//
// Thread-safety: pure functions over plain values, no shared state. No
// exception escapes this module (nlohmann_json's are caught and reported).
//
// The reference for users is docs/configuration.md; keep both in step.
#pragma once

#include <csignal>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "config/duration.h"

namespace herd::config {

// ---------------------------------------------------------------------------
// Model. Every default below is the value a key gets when it is absent.

// Where containerd is and which of its namespaces herd owns.
struct ContainerdConfig {
  // `address`: containerd's gRPC unix socket, an absolute path. A
  // "unix://" prefix is accepted and removed.
  std::string address = "/run/containerd/containerd.sock";
  // `namespace`: the containerd namespace holding herd's containers, images
  // and snapshots. containerd's identifier rules: 1-76 chars of
  // [A-Za-z0-9] separated by single '.', '_' or '-'.
  std::string namespace_name = "herd";
  friend bool operator==(const ContainerdConfig&, const ContainerdConfig&) = default;
};

// `registry` (top level): where pulls find credentials and hosts. Both
// files are read only when a pull needs them.
struct RegistryConfig {
  // `auth_file`: docker's config.json format (`auths`: `auth`, or
  // `username`/`password`). Absent = /root/.docker/config.json when it
  // exists (kDefaultAuthFile), else anonymous pulls only.
  std::optional<std::string> auth_file;
  // `hosts_dir`: containerd's certs.d layout (<dir>/<host:port>/hosts.toml).
  std::string hosts_dir = "/etc/containerd/certs.d";
  friend bool operator==(const RegistryConfig&, const RegistryConfig&) = default;
};
inline constexpr char kDefaultAuthFile[] = "/root/.docker/config.json";

// `pull` (component): when the image is fetched from its registry.
enum class PullPolicy {
  kIfNotPresent,  // "if_not_present" (default): only when containerd lacks it
  kAlways,        // "always": re-resolved when herdd starts or reloads the component
  kNever,         // "never": the image must be present (or come from image_archive)
};
std::string_view to_string(PullPolicy policy);

// `restore` (component): how a restart brings the component back.
enum class Restore {
  kInPlace,  // "in_place" (default): a new task in the same container
  kStandby,  // "standby": a second container's task, created and waiting, is started
};
std::string_view to_string(Restore restore);

enum class Network {
  kHost,  // "host": share the host's network namespace
  kNone,  // "none": a private network namespace with loopback only
};
std::string_view to_string(Network network);

// `user`: "root", "<uid>" or "<uid>:<gid>" (numeric ids only; names would
// need the image's /etc/passwd).
struct User {
  uint32_t uid = 0;
  std::optional<uint32_t> gid;  // absent for "<uid>"; 0 for "root"
  friend bool operator==(const User&, const User&) = default;
};

// One entry of `mounts`: exactly one of `data` or `bind`.
struct Mount {
  enum class Kind {
    kData,  // {"data": NAME, "target": ..., "mode": "0755", "uid": n, "gid": n}
    kBind,  // {"bind": HOST_PATH, "target": ..., "readonly": false}
  };
  Kind kind = Kind::kData;
  // `target`: absolute path inside the container; not "/", no "." or ".."
  // segments, not /proc, /sys, /dev or below. Stored normalised (no
  // repeated or trailing '/'); unique within a component.
  std::string target;

  // kData: `data`, a simple name ([A-Za-z0-9_.-]{1,255}, not "." or "..");
  // the directory is <data_path>/<component>/<data> (see Config::data_dir),
  // created if missing.
  std::string data;
  // kData: `mode`, an octal string of 3-4 digits ("0700"); default "0755".
  uint32_t mode = 0755;
  // kData: `uid` / `gid` to chown the directory to (0..4294967294);
  // absent = left as created (root).
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;

  // kBind: `bind`, an absolute host path (normalised; existence is checked
  // at start, not here).
  std::string bind;
  // kBind: `readonly`, default false.
  bool readonly = false;
  friend bool operator==(const Mount&, const Mount&) = default;
};

// RLIMIT_INFINITY as written "unlimited".
inline constexpr uint64_t kRlimitUnlimited = std::numeric_limits<uint64_t>::max();

// One entry of `rlimits`: {"nofile": 65536}, {"core": "unlimited"} or
// {"nofile": {"soft": 1024, "hard": 65536}}; soft <= hard.
struct Rlimit {
  // The key: one of nofile nproc core memlock stack as fsize cpu data locks
  // msgqueue nice rtprio sigpending rss rttime.
  std::string type;
  uint64_t soft = 0;
  uint64_t hard = 0;

  // "RLIMIT_NOFILE": the name the OCI runtime spec uses.
  std::string oci_type() const;
  friend bool operator==(const Rlimit&, const Rlimit&) = default;
};

// `ready` and `liveness`: how to tell that a component is ready, and that
// a ready one still works. Exactly one of `tcp` {"host", "port"}, `http`
// {"host", "port", "path", "status"}, `exec` {"command"} or `grpc`
// {"host", "port", "service"}. `liveness` has the same shape without
// `max_wait` and `success_threshold`, plus `initial_delay`.
struct ReadyProbe {
  enum class Kind {
    kTcp,   // success when a TCP connect to host:port succeeds
    kHttp,  // success when GET http://host:port<path> answers within `status`
    kExec,  // success when `command`, run in the container, exits 0
    kGrpc,  // success when grpc.health.v1.Health/Check of `service` answers SERVING
  };
  Kind kind = Kind::kTcp;
  // `exec.command` (exec only): argv, 1-256 strings, the first non-empty.
  std::vector<std::string> command;
  // `grpc.service` (grpc only): the service name asked about, at most
  // 1024 bytes; default "" (the server as a whole).
  std::string service;
  // `host`: default "127.0.0.1" (components share the host network by
  // default; never "localhost", which may resolve to ::1 first).
  std::string host = "127.0.0.1";
  // `port`: required, 1-65535.
  uint16_t port = 0;
  // `path` (http only): default "/", must start with '/'.
  std::string path = "/";
  // `scheme` (http only): "http" (default) or "https".
  bool https = false;
  // `tls_verify` (http only): with https, check the server's certificate
  // (system CAs, host name); default false (loopback, self-signed).
  bool tls_verify = false;
  // `status` (http only): [min, max], the inclusive range of status codes
  // that count as success, 100-599, min <= max; default [200, 399].
  uint16_t status_min = 200;
  uint16_t status_max = 399;
  // `interval`: time between probe attempts, > 0; default 1s.
  Duration interval = std::chrono::seconds{1};
  // `timeout`: deadline of one attempt, > 0; default 1s.
  Duration timeout = std::chrono::seconds{1};
  // `max_wait`: how long a start may take to become ready before it counts
  // as failed; 0 = wait forever. Default 60s.
  Duration max_wait = std::chrono::seconds{60};
  // `success_threshold`: consecutive successes that make the component
  // ready, >= 1; default 1.
  uint32_t success_threshold = 1;
  // `failure_threshold`: consecutive failures that make a ready component
  // not ready: for `liveness`, consecutive failures of a ready component
  // that make herd stop and restart it; >= 1; default 3. (`ready` parses
  // it for compatibility; readiness itself ends only at `max_wait`.)
  uint32_t failure_threshold = 3;
  // `initial_delay` (liveness only): time after the component became ready
  // before the first liveness attempt, >= 0; default 0s.
  Duration initial_delay = Duration::zero();
  friend bool operator==(const ReadyProbe&, const ReadyProbe&) = default;
};

enum class RestartPreset {
  kDefault,     // "default": unlimited, base 2s, max 60s, reset window 5m
  kAggressive,  // "aggressive": unlimited, base 500ms, max 10s, reset window 2m
};
std::string_view to_string(RestartPreset preset);

// `restart.on`: which exits are restarted.
enum class RestartOn {
  kAlways,     // "always" (default): every exit, clean or not
  kOnFailure,  // "on-failure": a non-zero exit; exit code 0 -> `completed` (a job)
  kNever,      // "never": none; exit code 0 -> `completed`, any other -> `failed`
};
std::string_view to_string(RestartOn on);

// `restart`: backoff after an unexpected exit. Restart 1 of a run of
// failures is immediate; restart n >= 2 waits base * 2^(n-2), capped at max,
// with optional jitter. The count resets once the component has been ready
// for reset_window (its next failure is restart 1 again). A prepare or start call that
// containerd refused waits at least 100 ms, doubling to 5 s, whatever the
// base. supervise/restart_policy.h applies all of this. The preset fills
// every field; explicit keys override it.
//
// The presets are defined here only: the member defaults below are the
// "default" preset, and from_preset() writes the "aggressive" one.
struct RestartPolicy {
  // `preset`: default "default".
  RestartPreset preset = RestartPreset::kDefault;
  // `base`: first delay; may be 0 (restart at once); base <= max.
  Duration base = std::chrono::seconds{2};
  // `max`: cap of the delay.
  Duration max = std::chrono::seconds{60};
  // `reset_window`: ready this long => the restart count starts over.
  Duration reset_window = std::chrono::minutes{5};
  // `max_restarts`: restarts before the component is marked failed;
  // 0 = unlimited (the default in both presets).
  uint32_t max_restarts = 0;
  // `jitter`: each delay is scaled by a random factor in [1-j, 1+j];
  // 0.0-1.0, default 0 (deterministic, as the seed).
  double jitter = 0.0;
  // `on`: see RestartOn; default "always". Not part of a preset. A
  // component whose `on` is not "always" is a job: its dependants wait
  // for it to be completed, not ready.
  RestartOn on = RestartOn::kAlways;
  // `prevent_exit_codes`: exit codes (1-255, each at most once, at most
  // 256 entries) after which restarting will not help (systemd's
  // RestartPreventExitStatus): the component fails at once, whatever `on`
  // says. Default empty. Not part of a preset.
  std::vector<uint32_t> prevent_exit_codes;

  // A job: restart.on is not "always".
  bool is_job() const { return on != RestartOn::kAlways; }

  // The policy a preset stands for (jitter 0, unlimited restarts).
  static RestartPolicy from_preset(RestartPreset preset);
  friend bool operator==(const RestartPolicy&, const RestartPolicy&) = default;
};

// `resources`: cgroup limits of the component's container (the OCI spec's
// linux.resources; runc writes them to cgroup v1 or v2 files). Each absent
// = no limit. Part of the spec hash: a change re-creates the container.
struct Resources {
  // `memory`: "<n>B|KiB|MiB|GiB", at least 6MiB, at most 1048576GiB. Swap
  // is limited to the same (memory + swap = memory: no swap).
  std::optional<uint64_t> memory;
  // `cpus`: a decimal number of CPUs, 0.01-1024; the CFS quota
  // round(cpus * 100000) us over a period of 100000 us (100 ms).
  std::optional<double> cpus;
  // `pids`: the most tasks (processes and threads) at once, 1-4194304.
  std::optional<int64_t> pids;
  friend bool operator==(const Resources&, const Resources&) = default;
};

// `capabilities`: changes to containerd's default capability set (the
// bounding, effective and permitted sets alike). Names as in
// capabilities(7), "CAP_NET_ADMIN" or "NET_ADMIN", stored with the CAP_
// prefix; each at most once; "ALL" only in `drop` (stored as "ALL": start
// from none). Drop applies first, then add; a name may not be in both.
struct Capabilities {
  std::vector<std::string> add;
  std::vector<std::string> drop;
  friend bool operator==(const Capabilities&, const Capabilities&) = default;
};

// One entry of `tmpfs`: {"target": "/tmp", "size": "64MiB", "mode": "1777"}.
struct Tmpfs {
  // `target`: required; the same rules as a mount target, unique among
  // tmpfs and mounts targets.
  std::string target;
  // `size`: like resources.memory's units; absent = the kernel's default
  // (half the RAM).
  std::optional<uint64_t> size;
  // `mode`: octal string, default "1777".
  uint32_t mode = 01777;
  friend bool operator==(const Tmpfs&, const Tmpfs&) = default;
};

// Where herd finds the init of `init: true` (Debian's package `tini`).
inline constexpr char kInitBinary[] = "/usr/bin/tini-static";
inline constexpr char kInitPackage[] = "tini";

// One entry of `components`: a supervised container.
struct Component {
  // `name`: required; ^[a-z0-9][a-z0-9_.-]{0,62}$ and, as it becomes the
  // containerd container id, no two separators in a row and no separator
  // at the end. Unique.
  std::string name;
  // `image`: required image reference ("herd.local/busybox:latest"):
  // non-empty, no whitespace.
  std::string image;
  // `image_archive`: absolute path of an OCI image archive (tar) to import when
  // the image is not present locally (the offline source). Absent = pull
  // from the registry (unless `pull` is "never").
  std::optional<std::string> image_archive;
  // `pull`: see PullPolicy; default "if_not_present".
  PullPolicy pull = PullPolicy::kIfNotPresent;
  // `args`: the full argv. Empty/absent = the image's Entrypoint + Cmd.
  std::vector<std::string> args;
  // `env`: extra environment, added to (and overriding) the image's.
  // Keys match [A-Za-z_][A-Za-z0-9_]*.
  std::map<std::string, std::string> env;
  // `mounts`: data directories and bind mounts (see Mount).
  std::vector<Mount> mounts;
  // `network`: "host" (default) or "none".
  Network network = Network::kHost;
  // `hostname`: optional; RFC 1123 labels, at most 64 chars. Absent = the
  // runtime default.
  std::optional<std::string> hostname;
  // `user`: optional; absent = the image's user.
  std::optional<User> user;
  // `workdir`: optional absolute path; absent = the image's.
  std::optional<std::string> workdir;
  // `rlimits`: per-process resource limits, in the order written.
  std::vector<Rlimit> rlimits;
  // `ready`: optional; absent = ready as soon as the task has started.
  std::optional<ReadyProbe> ready;
  // `liveness`: optional; absent = a ready component is never probed again.
  // While ready, `failure_threshold` consecutive failures stop the task
  // (stop_signal, stop_grace, SIGKILL) and the restart policy restarts it,
  // counted as a failure. max_wait and success_threshold do not apply.
  std::optional<ReadyProbe> liveness;
  // `restart`: always set (default preset when absent).
  RestartPolicy restart;
  // `depends_on`: components that must be ready before this one starts
  // (a job, restart.on not "always": completed); each names another
  // component, at most once, without cycles.
  std::vector<std::string> depends_on;
  // `stop_grace`: time between stop_signal and SIGKILL; default 30s.
  Duration stop_grace = std::chrono::seconds{30};
  // `stop_signal`: one of SIGTERM (default) SIGINT SIGQUIT SIGHUP SIGUSR1
  // SIGUSR2 SIGKILL, stored as the signal number.
  int stop_signal = SIGTERM;
  // `resources`: see Resources; default no limits.
  Resources resources;
  // `init`: run the command under a minimal init as PID 1 (kInitBinary,
  // bind-mounted read-only and prepended to argv), which forwards signals
  // and reaps zombies; default false.
  bool init = false;
  // `capabilities`: see Capabilities; default containerd's set.
  Capabilities capabilities;
  // `read_only_rootfs`: the container's root file system is read-only;
  // default false. Mounts and tmpfs stay writable.
  bool read_only_rootfs = false;
  // `tmpfs`: tmpfs mounts, in order; at most 64.
  std::vector<Tmpfs> tmpfs;
  // `oom_score_adj`: -1000..1000 for the component's processes; absent =
  // inherited (the shim's).
  std::optional<int> oom_score_adj;
  // `shim_group`: components of one group (in one namespace) share one
  // containerd-shim-runc-v2 process (containerd's io.containerd.runc.v2.group
  // annotation). Absent: the top-level `shim_group`; "" or neither: a shim
  // of its own. After read_config this is the resolved group (nullopt =
  // own shim). [A-Za-z0-9_.-], at most 64 characters. Part of the spec.
  std::optional<std::string> shim_group;
  // `priority`: -1000..1000, default 0. Pending starts and restarts are
  // admitted highest priority first (see Config::max_concurrent_starts);
  // dependency order still holds. Not part of the spec.
  int priority = 0;
  // `restore`: "in_place" (default) or "standby": herd keeps a second
  // container (id NAME.B; component names are lower case, so it is never
  // another component's) whose task is created but not started, and a
  // restart starts it (a fresh root file system). See
  // supervise/standby.h. Not part of the spec hash (both containers run
  // the same spec), but a change re-makes the component on reload.
  Restore restore = Restore::kInPlace;
  // `labels`: extra containerd container labels. Keys are non-empty and
  // must not start with "io.herd." (herd's own); key + value <= 4096 bytes.
  std::map<std::string, std::string> labels;
  friend bool operator==(const Component&, const Component&) = default;
};

// The whole file.
// `metrics`: herdd's Prometheus endpoint (GET /metrics). Absent = off.
struct MetricsConfig {
  // `listen`: required. "HOST:PORT" with HOST an IPv4 literal or a
  // bracketed IPv6 literal ("127.0.0.1:9464", "[::1]:9464", port 1..65535),
  // or an absolute unix socket path of at most 107 bytes.
  std::string listen;
};

// `output`: component output written to files (herdd without journald).
struct OutputConfig {
  // `max_file_bytes`: a file is rotated before it would pass this size,
  // 4096..1099511627776 (1 TiB). Default 10485760 (10 MiB).
  uint64_t max_file_bytes = 10u << 20;
  // `max_files`: files kept per component, the current one included
  // (NAME.log, NAME.log.1 ... NAME.log.<max_files - 1>), 1..100. Default 5.
  uint32_t max_files = 5;
};

// OK, or InvalidArgument saying what is wrong with a metrics.listen value.
Status check_metrics_listen(std::string_view listen);

struct Config {
  // `containerd`: see ContainerdConfig.
  ContainerdConfig containerd;
  // `registry`: see RegistryConfig.
  RegistryConfig registry;
  // `data_path`: absolute; root of the components' data directories.
  // Default "/var/lib/herd".
  std::string data_path = "/var/lib/herd";
  // `control_socket`: absolute path of herdd's control API socket (at most
  // 107 bytes, the unix socket limit). Default "/run/herd/control.sock".
  std::string control_socket = "/run/herd/control.sock";
  // `control_group`: optional group (name or numeric gid) given access to
  // the control socket; absent = root only.
  std::optional<std::string> control_group;
  // `stop_budget`: overall deadline of a shutdown, > 0; default 90s. Keep
  // it below systemd's TimeoutStopSec.
  Duration stop_budget = std::chrono::seconds{90};
  // `shim_group`: the default shim group of components that name none
  // (see Component::shim_group); absent = a shim per component.
  std::optional<std::string> shim_group;
  // `metrics`: see MetricsConfig; nullopt = no metrics endpoint.
  std::optional<MetricsConfig> metrics;
  // `output`: see OutputConfig.
  OutputConfig output;
  // `reconcile_interval`: every this long, herd lists containerd's tasks
  // and checks each running component's task, so an exit containerd never
  // published is found; > 0 (at least 1s); default 60s.
  Duration reconcile_interval = std::chrono::seconds{60};
  // `max_concurrent_starts`: at most this many component starts (prepare,
  // or a task's create + start) are in flight at once, 1..1024; the others
  // wait, highest `priority` first. Absent (0 here) = 2 x the CPUs herdd
  // may run on (effective_max_concurrent_starts()).
  uint32_t max_concurrent_starts = 0;
  // `components`: required key, may be empty. Names are unique.
  std::vector<Component> components;

  // max_concurrent_starts, or its default for this machine (at least 2).
  uint32_t effective_max_concurrent_starts() const;

  // The component called `name`, or nullptr.
  const Component* find(std::string_view name) const;

  // Component names, dependencies before dependants. Among components whose
  // dependencies are all placed, the one first in the config comes first.
  // Unknown dependency names are ignored; components left in a cycle (only
  // possible in a hand-built Config) are appended in config order.
  std::vector<std::string> start_order() const;

  // Host directory of a data mount: <data_path>/<component>/<data_name>.
  std::string data_dir(std::string_view component, std::string_view data_name) const;
};

// ---------------------------------------------------------------------------
// Signals accepted for `stop_signal`.

// SIGTERM for "SIGTERM" etc., or nullopt for any other text.
std::optional<int> parse_signal(std::string_view name);
// "SIGTERM" for SIGTERM etc.; "" for a signal not in the accepted list.
std::string_view signal_name(int signal);

// ---------------------------------------------------------------------------
// Limits. herdd parses the config as root; whatever its bytes, parsing takes
// bounded time and memory, and going over a limit is an error like any
// other (at its JSON pointer, or "" with a line and column for the syntax
// level ones). docs/configuration.md lists them.

// The file (and the text given to parse_config), checked before parsing.
inline constexpr std::size_t kMaxConfigBytes = 4u << 20;  // 4 MiB
// Arrays and objects nested in each other: kMaxJsonDepth
// (common/json_limits.h), checked before parsing.
// Keys in one JSON object, and bytes in one key (the JSON objects herd
// reads keep document order, which makes inserting a key linear).
inline constexpr std::size_t kMaxObjectKeys = 256;
inline constexpr std::size_t kMaxKeyBytes = 4096;
// Entries of `components`, and of one component's `depends_on`.
inline constexpr std::size_t kMaxComponents = 1000;
inline constexpr std::size_t kMaxDependsOn = 64;
// Errors listed; past it one last error says how many more there were.
inline constexpr std::size_t kMaxErrors = 100;
// Durations: kMaxDuration (duration.h), 10 years.

// ---------------------------------------------------------------------------
// Parsing.

struct ConfigError {
  std::string path;     // JSON pointer; "" = the whole document / the file
  std::string message;  // what is wrong, with the value found

  // "<path>: <message>", or just the message when path is "".
  std::string to_string() const;

  friend bool operator==(const ConfigError&, const ConfigError&) = default;
};

struct ParseResult {
  std::optional<Config> config;     // set iff errors is empty
  std::vector<ConfigError> errors;  // all of them, in the order found

  bool ok() const { return config.has_value() && errors.empty(); }
  // Every error's to_string(), one per line (no trailing newline).
  std::string error_text() const;
};

// Parses and validates `json_text`. A JSON syntax error is the only error
// reported for its document, as `invalid JSON at line L, column C: ...`
// with path "", and so are a text over kMaxConfigBytes and nesting deeper
// than kMaxJsonDepth (both found before parsing).
ParseResult parse_config(std::string_view json_text);

// Reads `file` and parses it. The file is opened O_NONBLOCK and must be a
// regular file of at most kMaxConfigBytes (checked with fstat before
// reading), so a FIFO or a device at the path never hangs the caller. A
// file that cannot be read gives one error with path "" naming the file and
// the OS error or what the file is.
ParseResult load_config(const std::filesystem::path& file);

// ---------------------------------------------------------------------------
// What a valid config needs of the host: every component with `init: true`
// needs kInitBinary. One error per such component, at its `init`
// ("/components/2/init"), naming the file and the Debian package. `exists`
// tells whether a path is there; the default asks the file system (a stat:
// call it off the event loop). herdd runs it with --check-config, at start
// and on reload.
std::vector<ConfigError> check_host(const Config& config,
                                    const std::function<bool(const std::string&)>& exists = {});

}  // namespace herd::config
