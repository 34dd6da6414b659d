// The containment keys of a component (issue 13): `resources`, `init`,
// `capabilities`, `read_only_rootfs`, `tmpfs` and `oom_score_adj`, read
// into a config::Component with every problem at its JSON path; plus the
// size and capability-name parsers (schema.h).
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <map>

#include "config/schema.h"

namespace herd::config {

using internal::Errors;
using internal::get_array;
using internal::get_map;
using internal::Json;
using internal::ObjectReader;
using internal::pointer_append;
using internal::quote;
using internal::type_phrase;

namespace {

// The kernel's capabilities (include/uapi/linux/capability.h, up to
// CAP_CHECKPOINT_RESTORE, Linux 5.9), without the CAP_ prefix.
constexpr std::array<std::string_view, 41> kCapabilities = {"CHOWN",
                                                            "DAC_OVERRIDE",
                                                            "DAC_READ_SEARCH",
                                                            "FOWNER",
                                                            "FSETID",
                                                            "KILL",
                                                            "SETGID",
                                                            "SETUID",
                                                            "SETPCAP",
                                                            "LINUX_IMMUTABLE",
                                                            "NET_BIND_SERVICE",
                                                            "NET_BROADCAST",
                                                            "NET_ADMIN",
                                                            "NET_RAW",
                                                            "IPC_LOCK",
                                                            "IPC_OWNER",
                                                            "SYS_MODULE",
                                                            "SYS_RAWIO",
                                                            "SYS_CHROOT",
                                                            "SYS_PTRACE",
                                                            "SYS_PACCT",
                                                            "SYS_ADMIN",
                                                            "SYS_BOOT",
                                                            "SYS_NICE",
                                                            "SYS_RESOURCE",
                                                            "SYS_TIME",
                                                            "SYS_TTY_CONFIG",
                                                            "MKNOD",
                                                            "LEASE",
                                                            "AUDIT_WRITE",
                                                            "AUDIT_CONTROL",
                                                            "SETFCAP",
                                                            "MAC_OVERRIDE",
                                                            "MAC_ADMIN",
                                                            "SYSLOG",
                                                            "WAKE_ALARM",
                                                            "BLOCK_SUSPEND",
                                                            "AUDIT_READ",
                                                            "PERFMON",
                                                            "BPF",
                                                            "CHECKPOINT_RESTORE"};

// Memory below this cannot start a runc container (docker's floor too).
constexpr uint64_t kMinMemory = 6ull << 20;
constexpr double kMaxCpus = 1024.0;
constexpr int64_t kMaxPids = 4194304;  // the kernel's PID_MAX_LIMIT
constexpr size_t kMaxTmpfs = 64;

std::optional<uint64_t> read_size(ObjectReader& r, std::string_view key) {
  const Json* v = r.find(key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_string()) {
    r.error(key, "expected a size string such as \"512MiB\" (B, KiB, MiB, GiB), got " +
                     (v->is_number() ? v->dump() : type_phrase(*v)));
    return std::nullopt;
  }
  Result<uint64_t> size = internal::parse_size(v->get_ref<const std::string&>());
  if (!size.ok()) {
    r.error(key, size.status().message());
    return std::nullopt;
  }
  return *size;
}

Resources read_resources(const Json& value, const std::string& path, Errors& errors) {
  Resources res;
  ObjectReader r(value, path, {"memory", "cpus", "pids"}, errors);
  if (!r.is_object()) return res;
  if (auto memory = read_size(r, "memory")) {
    if (*memory < kMinMemory) {
      r.error("memory",
              "must be at least 6MiB, got " + quote(r.find("memory")->get<std::string>()));
    } else {
      res.memory = *memory;
    }
  }
  if (auto cpus = r.get_number("cpus")) {
    // The CFS quota is in microseconds per 100 ms: 0.01 CPU = 1 ms.
    if (!(*cpus >= 0.01 && *cpus <= kMaxCpus)) {
      r.error("cpus", "must be between 0.01 and 1024, got " + r.find("cpus")->dump());
    } else {
      res.cpus = *cpus;
    }
  }
  if (auto pids = r.get_int("pids", 1, kMaxPids)) res.pids = *pids;
  return res;
}

// One list of capability names; `allow_all` for drop.
std::vector<std::string> read_cap_list(const Json& list, const std::string& path, bool allow_all,
                                       Errors& errors) {
  std::vector<std::string> out;
  const std::vector<std::string_view> known(kCapabilities.begin(), kCapabilities.end());
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string item_path = pointer_append(path, i);
    std::optional<std::string> name = internal::read_string(list[i], item_path, errors);
    if (!name) continue;
    std::optional<std::string> cap = internal::capability_name(*name);
    if (!cap) {
      std::string bare = name->starts_with("CAP_") ? name->substr(4) : *name;
      errors.add(item_path, "unknown capability " + quote(*name) +
                                internal::did_you_mean(bare, known) +
                                " (names as in capabilities(7), e.g. \"CAP_NET_ADMIN\")");
      continue;
    }
    if (*cap == "ALL" && !allow_all) {
      errors.add(item_path, "\"ALL\" is only allowed in capabilities.drop");
      continue;
    }
    if (std::find(out.begin(), out.end(), *cap) != out.end()) {
      errors.add(item_path, "duplicate capability " + quote(*cap));
      continue;
    }
    out.push_back(*cap);
  }
  return out;
}

Capabilities read_capabilities(const Json& value, const std::string& path, Errors& errors) {
  Capabilities caps;
  ObjectReader r(value, path, {"add", "drop"}, errors);
  if (!r.is_object()) return caps;
  if (const Json* add = get_array(r, "add"))
    caps.add = read_cap_list(*add, r.path_of("add"), false, errors);
  if (const Json* drop = get_array(r, "drop"))
    caps.drop = read_cap_list(*drop, r.path_of("drop"), true, errors);
  for (const std::string& a : caps.add) {
    if (std::find(caps.drop.begin(), caps.drop.end(), a) != caps.drop.end()) {
      r.error("add", "capability " + quote(a) + " is both added and dropped");
    }
  }
  return caps;
}

std::vector<Tmpfs> read_tmpfs(const Json& list, const std::string& path, Errors& errors) {
  std::vector<Tmpfs> out;
  if (list.size() > kMaxTmpfs) {
    errors.add(path, "has " + std::to_string(list.size()) + " entries, more than the maximum of " +
                         std::to_string(kMaxTmpfs));
    return out;
  }
  for (size_t i = 0; i < list.size(); ++i) {
    ObjectReader r(list[i], pointer_append(path, i), {"target", "size", "mode"}, errors);
    if (!r.is_object()) continue;
    Tmpfs t;
    if (r.require("target")) {
      if (auto target = internal::get_path(r, "target")) {
        if (internal::Problem p = internal::check_mount_target(*target)) {
          r.error("target", *p);
        } else {
          t.target = *target;
        }
      }
    }
    if (auto size = read_size(r, "size")) t.size = *size;
    if (auto mode = r.get_string("mode")) {
      Result<uint32_t> parsed = internal::parse_mode(*mode);
      if (parsed.ok()) {
        t.mode = *parsed;
      } else {
        r.error("mode", parsed.status().message());
      }
    }
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace

namespace internal {

Result<uint64_t> parse_size(std::string_view text) {
  const auto bad = [&] {
    return Status::InvalidArgument(
        "must be a whole number with a unit B, KiB, MiB or GiB (e.g. \"512MiB\"), got " +
        quote(text));
  };
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || digits > 12) return bad();
  uint64_t n = 0;
  for (size_t i = 0; i < digits; ++i) n = n * 10 + static_cast<uint64_t>(text[i] - '0');
  const std::string_view unit = text.substr(digits);
  static const std::map<std::string_view, unsigned> kShift = {
      {"B", 0}, {"KiB", 10}, {"MiB", 20}, {"GiB", 30}};
  auto it = kShift.find(unit);
  if (it == kShift.end()) return bad();
  // 12 digits of GiB would overflow: at most 1 PiB.
  const uint64_t limit = 1ull << 50;
  if (n > (limit >> it->second)) {
    return Status::InvalidArgument("must be at most 1048576GiB, got " + quote(text));
  }
  return n << it->second;
}

std::optional<std::string> capability_name(std::string_view name) {
  if (name == "ALL") return std::string("ALL");
  std::string_view bare = name.starts_with("CAP_") ? name.substr(4) : name;
  for (std::string_view c : kCapabilities) {
    if (c == bare) return "CAP_" + std::string(c);
  }
  return std::nullopt;
}

void read_containment(ObjectReader& r, Component& c) {
  Errors& errors = r.errors();
  if (const Json* res = r.find("resources"))
    c.resources = read_resources(*res, r.path_of("resources"), errors);
  if (auto init = r.get_bool("init")) c.init = *init;
  if (const Json* caps = r.find("capabilities"))
    c.capabilities = read_capabilities(*caps, r.path_of("capabilities"), errors);
  if (auto ro = r.get_bool("read_only_rootfs")) c.read_only_rootfs = *ro;
  if (const Json* tmpfs = get_array(r, "tmpfs")) {
    c.tmpfs = read_tmpfs(*tmpfs, r.path_of("tmpfs"), errors);
    for (size_t i = 0; i < c.tmpfs.size(); ++i) {
      const std::string& target = c.tmpfs[i].target;
      if (target.empty()) continue;
      const std::string at = pointer_append(pointer_append(r.path_of("tmpfs"), i), "target");
      for (size_t j = 0; j < i; ++j) {
        if (c.tmpfs[j].target == target) errors.add(at, "duplicate tmpfs target " + quote(target));
      }
      for (const Mount& m : c.mounts) {
        if (m.target == target) {
          errors.add(at, "tmpfs target " + quote(target) + " is also a target of mounts");
        }
      }
    }
  }
  if (auto adj = r.get_int("oom_score_adj", -1000, 1000)) c.oom_score_adj = static_cast<int>(*adj);
  if (auto group = r.get_string("shim_group")) {
    // "" = a shim of its own even when the top level names a group.
    if (!group->empty()) report(errors, r.path_of("shim_group"), check_shim_group(*group));
    c.shim_group = *group;
  }
}

}  // namespace internal
}  // namespace herd::config
