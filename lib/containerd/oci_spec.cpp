#include "containerd/oci_spec.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstring>
#include <exception>
#include <initializer_list>
#include <limits>

namespace herd::containerd {
namespace {

using nlohmann::json;

// --- image config ----------------------------------------------------------

Result<json> parse_object(std::string_view text) {
  json doc = json::parse(text.begin(), text.end(), /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Status::InvalidArgument("image config: not valid JSON");
  if (!doc.is_object()) return Status::InvalidArgument("image config: not a JSON object");
  return doc;
}

Status type_error(std::string_view path, std::string_view expected) {
  return Status::InvalidArgument("image config: " + std::string(path) + ": expected " +
                                 std::string(expected));
}

// Reads obj[key] into `out`; a missing or null field leaves `out` as is.
Status read_string(const json& obj, const char* key, std::string_view path, std::string& out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Status::Ok();
  if (!it->is_string()) return type_error(path, "a string");
  out = it->get<std::string>();
  return Status::Ok();
}

Status read_string_list(const json& obj, const char* key, std::string_view path,
                        std::vector<std::string>& out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Status::Ok();
  if (!it->is_array()) return type_error(path, "an array of strings");
  out.clear();
  for (size_t i = 0; i < it->size(); ++i) {
    const json& item = (*it)[i];
    if (!item.is_string())
      return type_error(std::string(path) + "/" + std::to_string(i), "a string");
    out.push_back(item.get<std::string>());
  }
  return Status::Ok();
}

Result<ImageConfig> parse_image_config_impl(std::string_view text) {
  Result<json> doc = parse_object(text);
  if (!doc.ok()) return doc.status();
  ImageConfig out;
  auto config = doc->find("config");
  if (config == doc->end() || config->is_null()) return out;
  if (!config->is_object()) return type_error("/config", "an object");
  for (Status s : {read_string_list(*config, "Entrypoint", "/config/Entrypoint", out.entrypoint),
                   read_string_list(*config, "Cmd", "/config/Cmd", out.cmd),
                   read_string_list(*config, "Env", "/config/Env", out.env),
                   read_string(*config, "WorkingDir", "/config/WorkingDir", out.working_dir),
                   read_string(*config, "User", "/config/User", out.user)}) {
    if (!s.ok()) return s;
  }
  return out;
}

bool is_lower_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool is_valid_digest(std::string_view d) {
  auto colon = d.find(':');
  if (colon == std::string_view::npos) return false;
  std::string_view alg = d.substr(0, colon), hex = d.substr(colon + 1);
  size_t want = alg == "sha256" ? 64 : alg == "sha512" ? 128 : 0;
  return want != 0 && hex.size() == want && is_lower_hex(hex);
}

Result<std::vector<std::string>> parse_diff_ids_impl(std::string_view text) {
  Result<json> doc = parse_object(text);
  if (!doc.ok()) return doc.status();
  auto rootfs = doc->find("rootfs");
  if (rootfs == doc->end() || !rootfs->is_object()) return type_error("/rootfs", "an object");
  std::string type;
  if (Status s = read_string(*rootfs, "type", "/rootfs/type", type); !s.ok()) return s;
  if (type != "layers") {
    return Status::InvalidArgument("image config: /rootfs/type: expected \"layers\", got \"" +
                                   type + "\"");
  }
  std::vector<std::string> ids;
  if (!rootfs->contains("diff_ids")) return type_error("/rootfs/diff_ids", "an array of strings");
  if (Status s = read_string_list(*rootfs, "diff_ids", "/rootfs/diff_ids", ids); !s.ok()) return s;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!is_valid_digest(ids[i])) {
      return Status::InvalidArgument("image config: /rootfs/diff_ids/" + std::to_string(i) +
                                     ": not a sha256/sha512 digest: \"" + ids[i] + "\"");
    }
  }
  return ids;
}

// --- runtime spec ------------------------------------------------------------

// containerd's identifiers.Validate: [A-Za-z0-9]+ separated by single
// '.', '_' or '-', at most 76 characters.
bool is_identifier(std::string_view s) {
  if (s.empty() || s.size() > 76) return false;
  bool after_separator = true;  // the first character must be alphanumeric
  for (char c : s) {
    if (std::isalnum(static_cast<unsigned char>(c))) {
      after_separator = false;
    } else if (c == '.' || c == '_' || c == '-') {
      if (after_separator) return false;
      after_separator = true;
    } else {
      return false;
    }
  }
  return !after_separator;
}

// One part of a user spec: "root" or a decimal id below 2^32-1 (which is
// (uid_t)-1, "no change" to the kernel).
std::optional<uint32_t> parse_id(std::string_view s) {
  if (s == "root") return 0;
  if (s.empty() || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() ||
      v >= std::numeric_limits<uint32_t>::max()) {
    return std::nullopt;
  }
  return static_cast<uint32_t>(v);
}

Result<std::pair<uint32_t, uint32_t>> parse_user(std::string_view user) {
  if (user.empty()) return std::pair<uint32_t, uint32_t>{0, 0};
  auto colon = user.find(':');
  std::optional<uint32_t> uid = parse_id(user.substr(0, colon));
  std::optional<uint32_t> gid = colon == std::string_view::npos ? std::optional<uint32_t>(0)
                                                                : parse_id(user.substr(colon + 1));
  if (!uid || !gid) {
    return Status::InvalidArgument("user \"" + std::string(user) +
                                   "\": expected root, UID or UID:GID (numeric ids; user names "
                                   "are not looked up in the image)");
  }
  return std::pair{*uid, *gid};
}

std::string_view env_key(std::string_view entry) { return entry.substr(0, entry.find('=')); }

Result<std::vector<std::string>> merge_env(const ImageConfig& image, const SpecOptions& options) {
  std::vector<std::string> env = image.env;
  if (env.empty()) env.emplace_back(kDefaultPathEnv);
  for (const auto& [key, value] : options.env) {
    if (key.empty() || key.find('=') != std::string::npos) {
      return Status::InvalidArgument("env key \"" + key + "\": must be non-empty without '='");
    }
    std::string entry = key + "=" + value;
    auto same = std::find_if(env.begin(), env.end(),
                             [&key = key](const std::string& e) { return env_key(e) == key; });
    if (same != env.end()) {
      *same = std::move(entry);
    } else {
      env.push_back(std::move(entry));
    }
  }
  return env;
}

constexpr std::array<std::string_view, 16> kRlimitTypes = {
    "RLIMIT_AS",     "RLIMIT_CORE",   "RLIMIT_CPU",        "RLIMIT_DATA",
    "RLIMIT_FSIZE",  "RLIMIT_LOCKS",  "RLIMIT_MEMLOCK",    "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE",   "RLIMIT_NOFILE", "RLIMIT_NPROC",      "RLIMIT_RSS",
    "RLIMIT_RTPRIO", "RLIMIT_RTTIME", "RLIMIT_SIGPENDING", "RLIMIT_STACK",
};

std::optional<std::string> rlimit_type_name(std::string_view type) {
  std::string name;
  for (char c : type)
    name.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  if (!name.starts_with("RLIMIT_")) name.insert(0, "RLIMIT_");
  if (std::find(kRlimitTypes.begin(), kRlimitTypes.end(), name) == kRlimitTypes.end()) {
    return std::nullopt;
  }
  return name;
}

Result<json> build_rlimits(const std::vector<Rlimit>& rlimits) {
  // containerd's default, replaced when the options name the same type.
  json out = json::array({{{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 1024}}});
  std::vector<std::string> seen;
  for (const Rlimit& r : rlimits) {
    std::optional<std::string> name = rlimit_type_name(r.type);
    if (!name) return Status::InvalidArgument("rlimit \"" + r.type + "\": unknown type");
    if (std::find(seen.begin(), seen.end(), *name) != seen.end()) {
      return Status::InvalidArgument("rlimit \"" + r.type + "\": given more than once");
    }
    seen.push_back(*name);
    if (r.soft > r.hard) {
      return Status::InvalidArgument("rlimit \"" + r.type + "\": soft limit " +
                                     std::to_string(r.soft) + " above hard limit " +
                                     std::to_string(r.hard));
    }
    json entry = {{"type", *name}, {"hard", r.hard}, {"soft", r.soft}};
    auto same =
        std::find_if(out.begin(), out.end(), [&](const json& e) { return e["type"] == *name; });
    if (same != out.end()) {
      *same = std::move(entry);
    } else {
      out.push_back(std::move(entry));
    }
  }
  return out;
}

json mount(std::string_view destination, std::string_view type, std::string_view source,
           std::initializer_list<std::string_view> options) {
  return {{"destination", destination},
          {"type", type},
          {"source", source},
          {"options", std::vector<std::string_view>(options)}};
}

json bind_mount(std::string_view source, std::string_view target, bool readonly) {
  return mount(target, "bind", source, {"rbind", readonly ? "ro" : "rw"});
}

// containerd 1.6 oci.defaultMounts().
json default_mounts() {
  return json::array({
      mount("/proc", "proc", "proc", {"nosuid", "noexec", "nodev"}),
      mount("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}),
      mount("/dev/pts", "devpts", "devpts",
            {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}),
      mount("/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}),
      mount("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}),
      mount("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}),
      mount("/run", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}),
  });
}

std::string octal(uint32_t mode) {
  std::string out;
  do {
    out.insert(out.begin(), static_cast<char>('0' + (mode & 7)));
    mode >>= 3;
  } while (mode != 0);
  while (out.size() < 4) out.insert(out.begin(), '0');
  return out;
}

Result<json> build_mounts(const SpecOptions& options) {
  json mounts = default_mounts();
  std::vector<std::string_view> targets;
  for (const TmpfsMount& t : options.tmpfs) {
    if (!t.target.starts_with('/')) {
      return Status::InvalidArgument("tmpfs target \"" + t.target + "\": not an absolute path");
    }
    targets.push_back(t.target);
  }
  if (options.init_path) {
    if (!options.init_path->starts_with('/')) {
      return Status::InvalidArgument("init \"" + *options.init_path + "\": not an absolute path");
    }
    targets.push_back(kInitTarget);
  }
  for (const BindMount& m : options.mounts) {
    if (!m.source.starts_with('/') || !m.target.starts_with('/')) {
      return Status::InvalidArgument("bind mount \"" + m.source + "\" -> \"" + m.target +
                                     "\": source and target must be absolute paths");
    }
    if (std::find(targets.begin(), targets.end(), m.target) != targets.end()) {
      return Status::InvalidArgument("bind mount target \"" + m.target +
                                     "\": given more than once");
    }
    targets.push_back(m.target);
  }
  if (options.host_network) {
    for (std::string_view file : {"/etc/hosts", "/etc/resolv.conf"}) {
      if (std::find(targets.begin(), targets.end(), file) == targets.end()) {
        mounts.push_back(bind_mount(file, file, /*readonly=*/true));
      }
    }
  }
  for (const BindMount& m : options.mounts)
    mounts.push_back(bind_mount(m.source, m.target, m.readonly));
  for (const TmpfsMount& t : options.tmpfs) {
    json opts = json::array({"nosuid", "nodev", "mode=" + octal(t.mode)});
    if (t.size) opts.push_back("size=" + std::to_string(*t.size));
    mounts.push_back({{"destination", t.target},
                      {"type", "tmpfs"},
                      {"source", "tmpfs"},
                      {"options", std::move(opts)}});
  }
  if (options.init_path) {
    mounts.push_back(bind_mount(*options.init_path, kInitTarget, /*readonly=*/true));
  }
  return mounts;
}

Result<std::string> host_hostname() {
  char buf[HOST_NAME_MAX + 1] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) {
    return Status::Internal(std::string("gethostname: ") + std::strerror(errno));
  }
  return std::string(buf);
}

// containerd 1.6's default set, less cap_drop, plus cap_add.
Result<json> build_capabilities(const SpecOptions& options) {
  std::vector<std::string> caps = {
      "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
      "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
      "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
      "CAP_KILL",    "CAP_AUDIT_WRITE"};
  for (const std::string& d : options.cap_drop) {
    if (d == "ALL") {
      caps.clear();
      continue;
    }
    if (!d.starts_with("CAP_")) {
      return Status::InvalidArgument("capability \"" + d + "\": expected a CAP_ name or ALL");
    }
    caps.erase(std::remove(caps.begin(), caps.end(), d), caps.end());
  }
  for (const std::string& a : options.cap_add) {
    if (!a.starts_with("CAP_")) {
      return Status::InvalidArgument("capability \"" + a + "\": expected a CAP_ name");
    }
    if (std::find(caps.begin(), caps.end(), a) == caps.end()) caps.push_back(a);
  }
  return json(caps);
}

Result<json> build_resources(const ResourceLimits& r) {
  json res = {{"devices", json::array({{{"allow", false}, {"access", "rwm"}}})}};
  if (r.memory) {
    if (*r.memory < (6u << 20)) {
      return Status::InvalidArgument("memory limit " + std::to_string(*r.memory) + ": below 6 MiB");
    }
    res["memory"] = {{"limit", *r.memory}, {"swap", *r.memory}};
  }
  if (r.cpus) {
    constexpr int64_t kPeriod = 100000;  // 100 ms
    const auto quota = static_cast<int64_t>(std::llround(*r.cpus * kPeriod));
    if (!(*r.cpus > 0) || quota < 1000) {
      return Status::InvalidArgument("cpus " + std::to_string(*r.cpus) + ": below 0.01");
    }
    res["cpu"] = {{"quota", quota}, {"period", kPeriod}};
  }
  if (r.pids) {
    if (*r.pids < 1) {
      return Status::InvalidArgument("pids limit " + std::to_string(*r.pids) + ": below 1");
    }
    res["pids"] = {{"limit", *r.pids}};
  }
  return res;
}

json build_linux(const SpecOptions& options, json resources) {
  json namespaces = json::array();
  for (std::string_view type : {"pid", "ipc", "uts", "mount", "network"}) {
    if (type == "network" && options.host_network) continue;
    namespaces.push_back({{"type", type}});
  }
  return {
      {"maskedPaths",
       {"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
        "/proc/scsi"}},
      {"readonlyPaths", {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}},
      {"cgroupsPath", "/" + options.ns + "/" + options.container_id},
      {"resources", std::move(resources)},
      {"namespaces", std::move(namespaces)},
  };
}

Result<json> build_runtime_spec_impl(const ImageConfig& image, const SpecOptions& options) {
  const std::string& id = options.container_id;
  if (!is_identifier(id)) {
    return Status::InvalidArgument("container id \"" + id +
                                   "\": not a valid containerd identifier");
  }
  if (!is_identifier(options.ns)) {
    return Status::InvalidArgument("namespace \"" + options.ns +
                                   "\": not a valid containerd identifier");
  }
  auto fail = [&id](const Status& s) { return s.with_context("spec for " + id); };

  std::vector<std::string> args = options.args;
  if (args.empty()) {
    args = image.entrypoint;
    args.insert(args.end(), image.cmd.begin(), image.cmd.end());
  }
  if (args.empty()) {
    return fail(Status::InvalidArgument(
        "no command: neither args nor the image's Entrypoint/Cmd give one"));
  }
  if (args.front().empty()) return fail(Status::InvalidArgument("command: first word is empty"));
  if (options.init_path) {
    args.insert(args.begin(), {std::string(kInitTarget), "--"});
  }

  Result<std::vector<std::string>> env = merge_env(image, options);
  if (!env.ok()) return fail(env.status());

  Result<std::pair<uint32_t, uint32_t>> user = parse_user(options.user.value_or(image.user));
  if (!user.ok()) return fail(user.status());

  std::string cwd = options.working_dir.value_or(image.working_dir);
  if (cwd.empty()) cwd = "/";
  if (!cwd.starts_with('/')) {
    return fail(Status::InvalidArgument("working directory \"" + cwd + "\": not an absolute path"));
  }

  Result<json> rlimits = build_rlimits(options.rlimits);
  if (!rlimits.ok()) return fail(rlimits.status());

  Result<json> mounts = build_mounts(options);
  if (!mounts.ok()) return fail(mounts.status());

  Result<std::string> hostname = options.hostname       ? Result<std::string>(*options.hostname)
                                 : options.host_network ? host_hostname()
                                                        : Result<std::string>(id);
  if (!hostname.ok()) return fail(hostname.status());

  Result<json> caps = build_capabilities(options);
  if (!caps.ok()) return fail(caps.status());
  Result<json> resources = build_resources(options.resources);
  if (!resources.ok()) return fail(resources.status());
  if (options.oom_score_adj && (*options.oom_score_adj < -1000 || *options.oom_score_adj > 1000)) {
    return fail(Status::InvalidArgument("oom_score_adj " + std::to_string(*options.oom_score_adj) +
                                        ": outside -1000..1000"));
  }
  json process = {
      {"terminal", false},
      {"user", {{"uid", user->first}, {"gid", user->second}}},
      {"args", std::move(args)},
      {"env", std::move(*env)},
      {"cwd", std::move(cwd)},
      {"capabilities", {{"bounding", *caps}, {"effective", *caps}, {"permitted", *caps}}},
      {"rlimits", std::move(*rlimits)},
      {"noNewPrivileges", true}};
  if (options.oom_score_adj) process["oomScoreAdj"] = *options.oom_score_adj;
  if (options.shim_group && options.shim_group->empty()) {
    return fail(Status::InvalidArgument("shim_group must not be empty"));
  }
  json spec{
      {"ociVersion", "1.0.2"},
      {"process", std::move(process)},
      {"root", {{"path", "rootfs"}, {"readonly", options.read_only_rootfs}}},
      {"hostname", std::move(*hostname)},
      {"mounts", std::move(*mounts)},
      {"linux", build_linux(options, std::move(*resources))},
  };
  if (options.shim_group) spec["annotations"] = {{kShimGroupAnnotation, *options.shim_group}};
  return spec;
}

// Runs `f` and turns any exception (allocation failure, a library bug) into
// an Internal status, so none crosses the module line.
template <class F>
auto no_throw(std::string_view what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::exception& e) {
    return Status::Internal(std::string(what) + ": " + e.what());
  }
}

}  // namespace

Result<ImageConfig> parse_image_config(std::string_view oci_image_config_json) {
  return no_throw("parse_image_config",
                  [&] { return parse_image_config_impl(oci_image_config_json); });
}

Result<std::vector<std::string>> parse_diff_ids(std::string_view oci_image_config_json) {
  return no_throw("parse_diff_ids", [&] { return parse_diff_ids_impl(oci_image_config_json); });
}

Result<nlohmann::json> build_runtime_spec(const ImageConfig& image, const SpecOptions& options) {
  return no_throw("build_runtime_spec", [&] { return build_runtime_spec_impl(image, options); });
}

}  // namespace herd::containerd
