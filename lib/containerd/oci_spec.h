// OCI runtime spec builder: turns an image's config and a component's
// settings into the runtime-spec (1.0.2) JSON document that herd stores in a
// containerd container (as the JSON bytes of the container's `spec` Any) and
// that runc 1.1 executes.
//
// The spec mirrors containerd 1.6's own default Linux spec (what `ctr run`
// produces): the same default mounts, capabilities, masked and read-only
// paths, device cgroup rule, namespaces and RLIMIT_NOFILE 1024, with
// cgroupsPath "/<namespace>/<container id>". On top of that come the
// component's command, environment, user, working directory, bind mounts,
// rlimits and network mode. With the host network, the host's /etc/hosts
// and /etc/resolv.conf are bind-mounted read-only and the hostname defaults
// to the host's, as `ctr run --net-host` does. Deliberate differences from
// `ctr run`:
//   - user names other than "root" are rejected instead of being looked up
//     in the image's /etc/passwd (herd does not read the image's files), so
//     there are no additionalGids;
//   - no linux.devices and no device allow rules: runc 1.1 adds its default
//     devices (/dev/null, /dev/zero, /dev/tty, ...) and their allow rules
//     after the deny-all rule by itself.
//
// Every function returns a Result: an ok value, or an InvalidArgument status
// whose message names the offending input (a JSON path for image configs,
// the option for spec options). No exception escapes.
//
// Thread-safety: pure functions of their arguments, safe to call from any
// thread. The single read of host state is gethostname(2), made by
// build_runtime_spec only for a host-network container without an explicit
// hostname.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace herd::containerd {

// The part of an OCI image config (`config` object of the config blob) that
// decides how a container runs. Absent fields are empty.
struct ImageConfig {
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::vector<std::string> env;  // "KEY=value" entries, in image order
  std::string working_dir;
  std::string user;
};

// Parses an OCI image config blob
// ({"config": {"Entrypoint", "Cmd", "Env", "WorkingDir", "User"}, ...}).
// A missing or null `config`, or a missing or null field, yields empty
// values. Fails with InvalidArgument on malformed JSON, a non-object
// document, or a field of the wrong type (message names its JSON path, e.g.
// "/config/Env/2").
Result<ImageConfig> parse_image_config(std::string_view oci_image_config_json);

// Returns rootfs.diff_ids of an OCI image config blob: the digests of the
// uncompressed layers, bottom layer first, each "sha256:<64 hex>" or
// "sha512:<128 hex>". Fails with InvalidArgument on malformed JSON, a missing
// rootfs, a rootfs.type other than "layers", or a malformed digest.
Result<std::vector<std::string>> parse_diff_ids(std::string_view oci_image_config_json);

// A host directory or file made visible in the container ("bind" mount with
// options rbind plus ro or rw). Both paths must be absolute.
struct BindMount {
  std::string source;  // path on the host
  std::string target;  // path in the container
  bool readonly = false;
};

// A POSIX resource limit. `type` is the short name ("nofile", "nproc",
// "core", ...) or the full name ("RLIMIT_NOFILE"), case-insensitive.
struct Rlimit {
  std::string type;
  uint64_t soft = 0;
  uint64_t hard = 0;
};

// cgroup limits (linux.resources); each absent = no limit.
struct ResourceLimits {
  // memory.limit in bytes; memory.swap (memory + swap) is set to the same,
  // so the container cannot swap (runc: memory.memsw.limit_in_bytes on v1,
  // memory.swap.max = 0 on v2). At least 6 MiB.
  std::optional<uint64_t> memory;
  // cpu.quota = round(cpus * 100000) us per cpu.period of 100000 us
  // (runc: cpu.cfs_quota_us/cfs_period_us on v1, cpu.max on v2); > 0.
  std::optional<double> cpus;
  // pids.limit (pids.max on both); >= 1.
  std::optional<int64_t> pids;
};

// A tmpfs mount (options nosuid, nodev, mode, size).
struct TmpfsMount {
  std::string target;            // absolute
  std::optional<uint64_t> size;  // bytes; absent = the kernel's default
  uint32_t mode = 01777;
};

// Where `init_path` appears in the container (bind-mounted read-only).
inline constexpr std::string_view kInitTarget = "/herd-init";

struct SpecOptions {
  // containerd identifier ([A-Za-z0-9]+ joined by single '.', '_' or '-',
  // at most 76 characters). Also the default hostname without host network.
  std::string container_id;
  // containerd namespace (same identifier rules); cgroupsPath "/<ns>/<id>".
  std::string ns;
  // The full command line. Empty: the image's Entrypoint followed by its
  // Cmd. Non-empty: replaces both.
  std::vector<std::string> args;
  // Applied in order over the image's Env (or over the default PATH when the
  // image has none): an entry whose key the image sets replaces it in place,
  // others are appended. Keys must be non-empty and contain no '='.
  std::vector<std::pair<std::string, std::string>> env;
  // Added after the default mounts, in order; targets must be distinct.
  std::vector<BindMount> mounts;
  // true: share the host's network namespace (no "network" namespace entry),
  // bind the host's /etc/hosts and /etc/resolv.conf read-only (unless a bind
  // mount above targets them), hostname defaults to the host's.
  bool host_network = true;
  std::optional<std::string> hostname;     // overrides the defaults above
  std::optional<std::string> user;         // overrides the image's User
  std::optional<std::string> working_dir;  // overrides the image's WorkingDir
  // Override containerd's default (RLIMIT_NOFILE 1024/1024) for the same
  // type and add others. Each type at most once; soft <= hard.
  std::vector<Rlimit> rlimits;
  ResourceLimits resources;
  // A host path of a static init (tini): bind-mounted read-only at
  // kInitTarget and prepended to the command as `kInitTarget --`.
  std::optional<std::string> init_path;
  // Capabilities ("CAP_X") dropped from containerd's default set ("ALL":
  // all of them), then added; applied to the bounding, effective and
  // permitted sets.
  std::vector<std::string> cap_drop;
  std::vector<std::string> cap_add;
  bool read_only_rootfs = false;     // root.readonly
  std::vector<TmpfsMount> tmpfs;     // after the bind mounts; targets distinct from theirs
  std::optional<int> oom_score_adj;  // process.oomScoreAdj, -1000..1000
  // annotations["io.containerd.runc.v2.group"] (kShimGroupAnnotation):
  // containerd's runc shim serves every task of one group (per namespace)
  // from one process. Non-empty when set.
  std::optional<std::string> shim_group;
};

inline constexpr char kShimGroupAnnotation[] = "io.containerd.runc.v2.group";

// The PATH a container gets when its image sets no environment at all
// (containerd's default).
inline constexpr std::string_view kDefaultPathEnv =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// Builds the runtime spec for one container. `image` is usually the result
// of parse_image_config for the container's image.
//
// User ("" and "root" mean 0:0; otherwise "uid" (gid 0) or "uid:gid", each
// part numeric or "root"): from options.user, else the image's User.
// Working directory: options.working_dir, else the image's WorkingDir, else
// "/"; it must be absolute.
//
// Fails with InvalidArgument (message says which input and why) when: the
// container id or namespace is not a valid identifier; there is no command
// (no args and neither Entrypoint nor Cmd) or its first word is empty; a
// user is a name other than root or out of range; the working directory is
// relative; an env key is empty or contains '='; a bind mount path is not
// absolute or a target repeats; an rlimit type is unknown or repeats, or
// soft > hard; a resource limit is out of range (memory < 6 MiB, cpus <= 0,
// pids < 1); a capability name does not start with CAP_ ("ALL" only in
// cap_drop); a tmpfs target is relative or repeats a mount's; the
// oom_score_adj is outside -1000..1000; init_path is relative. Fails with Internal if the host's
// hostname cannot be read.
Result<nlohmann::json> build_runtime_spec(const ImageConfig& image, const SpecOptions& options);

}  // namespace herd::containerd
