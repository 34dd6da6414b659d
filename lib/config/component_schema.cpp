// One entry of `components` in the config schema: reads it (mounts,
// rlimits, ready, restart, env, labels, stop signal...) into a
// config::Component and records every problem; plus the stop signals herd
// accepts and the reading helpers the top level (config.cpp) shares with
// it (schema.h).
#include "config/schema.h"

#include <arpa/inet.h>

#include <algorithm>
#include <limits>
#include <map>

#include "config/checks.h"
#include "config/dependencies.h"
#include "config/json_reader.h"

namespace herd::config {

using internal::check_component_name;
using internal::DependencyNode;
using internal::did_you_mean;
using internal::Errors;
using internal::get_array;
using internal::get_choice;
using internal::get_map;
using internal::get_path;
using internal::Json;
using internal::ObjectReader;
using internal::pointer_append;
using internal::Problem;
using internal::quote;
using internal::report;
using internal::type_phrase;

namespace {

constexpr std::string_view kRlimitTypes[] = {
    "nofile", "nproc", "core",     "memlock", "stack",  "as",         "fsize", "cpu",
    "data",   "locks", "msgqueue", "nice",    "rtprio", "sigpending", "rss",   "rttime"};

struct SignalName {
  std::string_view name;
  int number;
};
constexpr SignalName kSignals[] = {{"SIGTERM", SIGTERM}, {"SIGINT", SIGINT},   {"SIGQUIT", SIGQUIT},
                                   {"SIGHUP", SIGHUP},   {"SIGUSR1", SIGUSR1}, {"SIGUSR2", SIGUSR2},
                                   {"SIGKILL", SIGKILL}};

constexpr uint32_t kMaxId = 4294967294;

// `"a", "b" or "c"` for messages.
std::string one_of(const std::vector<std::string_view>& choices) {
  std::string out;
  for (size_t i = 0; i < choices.size(); ++i) {
    if (i > 0) out += i + 1 == choices.size() ? " or " : ", ";
    out += quote(choices[i]);
  }
  return out;
}

}  // namespace

// --- reading helpers shared with the top level (schema.h) -------------------

namespace internal {

void report(Errors& errors, const std::string& path, const Problem& problem) {
  if (problem) errors.add(path, *problem);
}

// A string key that must be one of `choices`; returns its index.
std::optional<size_t> get_choice(ObjectReader& r, std::string_view key,
                                 const std::vector<std::string_view>& choices) {
  std::optional<std::string> s = r.get_string(key);
  if (!s) return std::nullopt;
  for (size_t i = 0; i < choices.size(); ++i) {
    if (choices[i] == *s) return i;
  }
  r.error(key, "must be " + one_of(choices) + ", got " + quote(*s) + did_you_mean(*s, choices));
  return std::nullopt;
}

// A string key holding an absolute path; returned normalised.
std::optional<std::string> get_path(ObjectReader& r, std::string_view key) {
  std::optional<std::string> s = r.get_string(key);
  if (!s) return std::nullopt;
  Result<std::string> path = internal::normalize_absolute_path(*s);
  if (!path.ok()) {
    r.error(key, path.status().message());
    return std::nullopt;
  }
  return std::move(path).value();
}

// The array at `key`, or nullptr when absent or not an array (reported).
const Json* get_array(ObjectReader& r, std::string_view key) {
  const Json* v = r.find(key);
  if (v == nullptr) return nullptr;
  if (!v->is_array()) {
    r.error(key, "expected an array, got " + type_phrase(*v));
    return nullptr;
  }
  return v;
}

// The object at `key` (for maps such as env), or nullptr.
const Json* get_map(ObjectReader& r, std::string_view key) {
  const Json* v = r.find(key);
  if (v == nullptr) return nullptr;
  if (!v->is_object()) {
    r.error(key, "expected an object, got " + type_phrase(*v));
    return nullptr;
  }
  return v;
}

}  // namespace internal

namespace {

// --- mounts ---------------------------------------------------------------

std::vector<Mount> read_mounts(const Json& list, const std::string& path, Errors& errors) {
  std::vector<Mount> mounts;
  std::map<std::string, std::string> targets;         // target -> its mount's path
  std::map<std::string, size_t> data_dirs;            // data name -> index in mounts
  std::map<std::string, std::string> data_dir_paths;  // data name -> its mount's path
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string mount_path = pointer_append(path, i);
    ObjectReader r(list[i], mount_path,
                   {"data", "target", "mode", "uid", "gid", "bind", "readonly"}, errors);
    if (!r.is_object()) continue;
    const size_t errors_before = errors.count();
    Mount m;
    const bool is_data = r.has("data");
    const bool is_bind = r.has("bind");
    if (is_data && is_bind) {
      errors.add(mount_path, "must have exactly one of \"data\" or \"bind\", got both");
    } else if (!is_data && !is_bind) {
      errors.add(mount_path,
                 "must have exactly one of \"data\" (a data directory) or \"bind\" (a host path)");
    } else if (is_data) {
      m.kind = Mount::Kind::kData;
      if (r.has("readonly")) r.error("readonly", "only allowed in a bind mount");
    } else {
      m.kind = Mount::Kind::kBind;
      for (std::string_view key : {"mode", "uid", "gid"}) {
        if (r.has(key)) r.error(key, "only allowed in a data mount");
      }
    }

    if (r.require("target")) {
      if (std::optional<std::string> target = get_path(r, "target")) {
        m.target = *target;
        if (Problem p = internal::check_mount_target(m.target)) {
          r.error("target", *p);
        } else if (auto [it, inserted] = targets.emplace(m.target, mount_path); !inserted) {
          r.error("target",
                  "duplicate mount target " + quote(m.target) + " (also at " + it->second + ")");
        }
      }
    }
    if (std::optional<std::string> data = r.get_string("data")) {
      report(errors, r.path_of("data"), internal::check_data_name(*data));
      m.data = *data;
    }
    if (const Json* mode = r.find("mode")) {
      if (mode->is_string()) {
        Result<uint32_t> parsed = internal::parse_mode(mode->get_ref<const std::string&>());
        if (parsed.ok()) {
          m.mode = *parsed;
        } else {
          r.error("mode", parsed.status().message());
        }
      } else {
        r.error("mode",
                "expected an octal mode string such as \"0755\", got " + type_phrase(*mode));
      }
    }
    if (auto uid = r.get_int("uid", 0, kMaxId)) m.uid = static_cast<uint32_t>(*uid);
    if (auto gid = r.get_int("gid", 0, kMaxId)) m.gid = static_cast<uint32_t>(*gid);
    if (std::optional<std::string> bind = get_path(r, "bind")) m.bind = *bind;
    if (std::optional<bool> readonly = r.get_bool("readonly")) m.readonly = *readonly;

    // The same data directory twice must agree on how it is created.
    if (errors.count() == errors_before && m.kind == Mount::Kind::kData && is_data) {
      auto [it, inserted] = data_dirs.emplace(m.data, mounts.size());
      if (inserted) {
        data_dir_paths[m.data] = mount_path;
      } else {
        const Mount& first = mounts[it->second];
        if (first.mode != m.mode || first.uid != m.uid || first.gid != m.gid) {
          r.error("data", "data directory " + quote(m.data) + " is also mounted at " +
                              data_dir_paths[m.data] + " with a different mode, uid or gid");
        }
      }
    }
    mounts.push_back(std::move(m));
  }
  return mounts;
}

// --- rlimits --------------------------------------------------------------

std::string rlimit_text(uint64_t v) {
  return v == kRlimitUnlimited ? std::string("unlimited") : std::to_string(v);
}

std::optional<uint64_t> read_rlimit_value(const Json& v, const std::string& path, Errors& errors) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_string() && v.get_ref<const std::string&>() == "unlimited") return kRlimitUnlimited;
  if (v.is_number_integer()) {
    errors.add(path, "must not be negative, got " + v.dump());
  } else if (v.is_string()) {
    errors.add(path, "expected a non-negative integer or \"unlimited\", got " +
                         quote(v.get_ref<const std::string&>()));
  } else {
    errors.add(path, "expected a non-negative integer or \"unlimited\", got " +
                         (v.is_number() ? v.dump() : type_phrase(v)));
  }
  return std::nullopt;
}

std::vector<Rlimit> read_rlimits(const Json& map, const std::string& path, Errors& errors) {
  std::vector<Rlimit> out;
  const std::vector<std::string_view> types(std::begin(kRlimitTypes), std::end(kRlimitTypes));
  for (const auto& item : map.items()) {
    const std::string& type = item.key();
    const std::string item_path = pointer_append(path, type);
    const Json& v = item.value();
    if (std::find(types.begin(), types.end(), type) == types.end()) {
      errors.add(item_path, "unknown rlimit " + quote(type) + did_you_mean(type, types));
      continue;
    }
    Rlimit limit{type, 0, 0};
    if (v.is_object()) {
      ObjectReader r(v, item_path, {"soft", "hard"}, errors);
      std::optional<uint64_t> soft;
      std::optional<uint64_t> hard;
      if (r.require("soft")) soft = read_rlimit_value(*r.find("soft"), r.path_of("soft"), errors);
      if (r.require("hard")) hard = read_rlimit_value(*r.find("hard"), r.path_of("hard"), errors);
      if (!soft || !hard) continue;
      if (*soft > *hard) {
        r.error("soft",
                "must not exceed hard (" + rlimit_text(*hard) + "), got " + rlimit_text(*soft));
        continue;
      }
      limit.soft = *soft;
      limit.hard = *hard;
    } else {
      std::optional<uint64_t> both = read_rlimit_value(v, item_path, errors);
      if (!both) {
        continue;
      }
      limit.soft = limit.hard = *both;
    }
    out.push_back(std::move(limit));
  }
  return out;
}

// --- ready ------------------------------------------------------------------

bool is_ip_literal(const std::string& host) {
  unsigned char buf[sizeof(struct in6_addr)];
  return ::inet_pton(AF_INET, host.c_str(), buf) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// `ready` (liveness = false) and `liveness` (liveness = true) share one
// shape: one probe kind plus timing; see ReadyProbe.
ReadyProbe read_probe(const Json& value, const std::string& path, Errors& errors, bool liveness) {
  ReadyProbe probe;
  std::vector<std::string_view> top{
      "tcp", "http", "exec", "grpc", "interval", "timeout", "failure_threshold"};
  if (liveness) {
    top.push_back("initial_delay");
  } else {
    top.push_back("max_wait");
    top.push_back("success_threshold");
  }
  ObjectReader r(value, path, top, errors);
  if (!r.is_object()) return probe;
  const int kinds =
      int(r.has("tcp")) + int(r.has("http")) + int(r.has("exec")) + int(r.has("grpc"));
  if (kinds > 1) {
    errors.add(path, "must have exactly one of \"tcp\", \"http\", \"exec\" or \"grpc\", got " +
                         std::to_string(kinds));
  } else if (kinds == 0) {
    errors.add(path, "must have exactly one of \"tcp\", \"http\", \"exec\" or \"grpc\"");
  }
  if (const Json* exec = r.find("exec")) {
    ObjectReader e(*exec, r.path_of("exec"), {"command"}, errors);
    if (e.is_object()) {
      if (kinds == 1) probe.kind = ReadyProbe::Kind::kExec;
      constexpr size_t kMaxArgs = 256;
      const Json* command = e.require("command") ? get_array(e, "command") : nullptr;
      if (command != nullptr && (command->empty() || command->size() > kMaxArgs)) {
        e.error("command", "must have 1-" + std::to_string(kMaxArgs) + " strings, got " +
                               std::to_string(command->size()));
        command = nullptr;
      }
      for (size_t i = 0; command != nullptr && i < command->size(); ++i) {
        const std::string arg_path = pointer_append(e.path_of("command"), i);
        if (auto arg = internal::read_string((*command)[i], arg_path, errors)) {
          report(errors, arg_path, internal::check_no_nul(*arg));
          if (i == 0 && arg->empty()) errors.add(arg_path, "must not be empty (the program)");
          probe.command.push_back(*arg);
        }
      }
    }
  }
  for (std::string_view kind : {"tcp", "http", "grpc"}) {
    const Json* target = r.find(kind);
    if (target == nullptr) continue;
    const bool http = kind == "http";
    const bool grpc = kind == "grpc";
    std::vector<std::string_view> keys{"host", "port"};
    if (http) {
      keys.push_back("path");
      keys.push_back("status");
      keys.push_back("scheme");
      keys.push_back("tls_verify");
    }
    if (grpc) keys.push_back("service");
    ObjectReader t(*target, r.path_of(kind), keys, errors);
    if (!t.is_object()) continue;
    if (kinds == 1) {
      probe.kind = http   ? ReadyProbe::Kind::kHttp
                   : grpc ? ReadyProbe::Kind::kGrpc
                          : ReadyProbe::Kind::kTcp;
    }
    if (grpc) {
      if (std::optional<std::string> service = t.get_string("service")) {
        report(errors, t.path_of("service"), internal::check_no_nul(*service));
        if (service->size() > 1024) t.error("service", "is longer than 1024 bytes");
        probe.service = *service;
      }
    }
    if (std::optional<std::string> host = t.get_string("host")) {
      report(errors, t.path_of("host"), internal::check_probe_host(*host));
      probe.host = *host;
    }
    if (t.require("port")) {
      if (auto port = t.get_int("port", 1, 65535)) probe.port = static_cast<uint16_t>(*port);
    }
    if (http) {
      if (std::optional<std::string> p = t.get_string("path")) {
        report(errors, t.path_of("path"), internal::check_http_path(*p));
        probe.path = *p;
      }
      if (auto scheme = get_choice(t, "scheme", {"http", "https"})) probe.https = *scheme == 1;
      if (auto verify = t.get_bool("tls_verify")) probe.tls_verify = *verify;
      if (const Json* range = get_array(t, "status")) {
        const std::string range_path = t.path_of("status");
        if (range->size() != 2) {
          errors.add(range_path,
                     "must be [min, max], got " + std::to_string(range->size()) + " entries");
        } else {
          std::optional<int64_t> lo, hi;
          for (size_t i = 0; i < 2; ++i) {
            const Json& v = (*range)[i];
            const std::string item_path = pointer_append(range_path, i);
            if (!v.is_number_integer() || v.get<int64_t>() < 100 || v.get<int64_t>() > 599) {
              errors.add(item_path, "must be an HTTP status code 100-599, got " + v.dump());
              continue;
            }
            (i == 0 ? lo : hi) = v.get<int64_t>();
          }
          if (lo && hi && *lo > *hi) {
            errors.add(range_path,
                       "min " + std::to_string(*lo) + " is above max " + std::to_string(*hi));
          } else if (lo && hi) {
            probe.status_min = static_cast<uint16_t>(*lo);
            probe.status_max = static_cast<uint16_t>(*hi);
          }
        }
      }
    }
  }
  if (auto d = r.get_duration("interval", Duration(1))) probe.interval = *d;
  if (auto d = r.get_duration("timeout", Duration(1))) probe.timeout = *d;
  if (auto d = r.get_duration("max_wait")) probe.max_wait = *d;
  if (auto d = r.get_duration("initial_delay")) probe.initial_delay = *d;
  constexpr int64_t kMaxThreshold = std::numeric_limits<int32_t>::max();
  if (auto n = r.get_int("success_threshold", 1, kMaxThreshold)) {
    probe.success_threshold = static_cast<uint32_t>(*n);
  }
  if (auto n = r.get_int("failure_threshold", 1, kMaxThreshold)) {
    probe.failure_threshold = static_cast<uint32_t>(*n);
  }
  return probe;
}

// --- restart ------------------------------------------------------------------

// `restart.prevent_exit_codes`: 1-255, each once. 0 is a clean exit, which
// `restart.on` decides about.
std::vector<uint32_t> read_exit_codes(const Json& list, const std::string& path, Errors& errors) {
  std::vector<uint32_t> out;
  constexpr size_t kMaxCodes = 256;
  if (list.size() > kMaxCodes) {
    errors.add(path, "has " + std::to_string(list.size()) + " entries, more than the maximum of " +
                         std::to_string(kMaxCodes));
    return out;
  }
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string code_path = pointer_append(path, i);
    if (list[i].is_number_integer() && list[i].get<int64_t>() == 0) {
      errors.add(code_path, "0 is a clean exit, not a failure (use restart.on to decide about it)");
      continue;
    }
    std::optional<int64_t> code = internal::read_int(list[i], code_path, 1, 255, errors);
    if (!code) continue;
    const auto c = static_cast<uint32_t>(*code);
    if (std::find(out.begin(), out.end(), c) != out.end()) {
      errors.add(code_path, "duplicate exit code " + std::to_string(c));
      continue;
    }
    out.push_back(c);
  }
  return out;
}

RestartPolicy read_restart(const Json& value, const std::string& path, Errors& errors) {
  ObjectReader r(value, path,
                 {"preset", "base", "max", "reset_window", "max_restarts", "jitter", "on",
                  "prevent_exit_codes"},
                 errors);
  RestartPolicy policy;
  const size_t errors_before = errors.count();  // base <= max only if all of these read well
  if (auto preset = get_choice(r, "preset", {"default", "aggressive"})) {
    policy = RestartPolicy::from_preset(*preset == 0 ? RestartPreset::kDefault
                                                     : RestartPreset::kAggressive);
  }
  if (auto d = r.get_duration("base")) policy.base = *d;
  if (auto d = r.get_duration("max")) policy.max = *d;
  if (errors.count() == errors_before && policy.base > policy.max) {
    // Blame the key that was written; base when both were.
    if (r.has("base")) {
      r.error("base", "must not exceed max (" + format_duration(policy.max) + "), got " +
                          format_duration(policy.base));
    } else {
      r.error("max", "must not be less than base (" + format_duration(policy.base) + "), got " +
                         format_duration(policy.max));
    }
  }
  if (auto d = r.get_duration("reset_window")) policy.reset_window = *d;
  if (auto n = r.get_int("max_restarts", 0, std::numeric_limits<uint32_t>::max())) {
    policy.max_restarts = static_cast<uint32_t>(*n);
  }
  if (auto j = r.get_number("jitter")) {
    if (*j >= 0.0 && *j <= 1.0) {
      policy.jitter = *j;
    } else {
      r.error("jitter", "must be between 0.0 and 1.0, got " + r.find("jitter")->dump());
    }
  }
  if (auto on = get_choice(r, "on", {"always", "on-failure", "never"})) {
    policy.on = *on == 1   ? RestartOn::kOnFailure
                : *on == 2 ? RestartOn::kNever
                           : RestartOn::kAlways;
  }
  if (const Json* codes = get_array(r, "prevent_exit_codes")) {
    policy.prevent_exit_codes = read_exit_codes(*codes, r.path_of("prevent_exit_codes"), errors);
  }
  return policy;
}

// --- component ---------------------------------------------------------------

std::optional<int> read_signal(ObjectReader& r, std::string_view key) {
  std::optional<std::string> name = r.get_string(key);
  if (!name) return std::nullopt;
  if (std::optional<int> number = parse_signal(*name)) return number;
  std::vector<std::string_view> names;
  for (const SignalName& s : kSignals) names.push_back(s.name);
  std::string hint;
  if (parse_signal("SIG" + *name)) {
    hint = " (did you mean \"SIG" + *name + "\"?)";
  } else {
    hint = did_you_mean(*name, names);
  }
  r.error(key, "unknown signal " + quote(*name) + hint +
                   "; accepted: SIGTERM, SIGINT, SIGQUIT, "
                   "SIGHUP, SIGUSR1, SIGUSR2, SIGKILL");
  return std::nullopt;
}

// Reads an object of string values; `check` validates each (key, value).
template <class Check>
std::map<std::string, std::string> read_string_map(const Json& map, const std::string& path,
                                                   Errors& errors, Check check) {
  std::map<std::string, std::string> out;
  for (const auto& item : map.items()) {
    const std::string item_path = pointer_append(path, item.key());
    std::optional<std::string> value = internal::read_string(item.value(), item_path, errors);
    if (!value) continue;
    if (Problem p = check(item.key(), *value)) {
      errors.add(item_path, *p);
      continue;
    }
    out.emplace(item.key(), *value);
  }
  return out;
}

}  // namespace

namespace internal {

Component read_component(const Json& value, const std::string& path, Errors& errors,
                         DependencyNode& node) {
  Component c;
  ObjectReader r(value, path, {"name",          "image",        "image_archive",    "pull",
                               "args",          "env",          "mounts",           "network",
                               "hostname",      "user",         "workdir",          "rlimits",
                               "ready",         "liveness",     "restart",          "depends_on",
                               "stop_grace",    "stop_signal",  "labels",           "resources",
                               "init",          "capabilities", "read_only_rootfs", "tmpfs",
                               "oom_score_adj", "shim_group",   "priority",         "restore"},
                 errors);
  if (!r.is_object()) return c;

  if (r.require("name")) {
    if (std::optional<std::string> name = r.get_string("name")) {
      report(errors, r.path_of("name"), check_component_name(*name));
      c.name = node.name = *name;
    }
  }
  if (r.require("image")) {
    if (std::optional<std::string> image = r.get_string("image")) {
      report(errors, r.path_of("image"), internal::check_image(*image));
      c.image = *image;
    }
  }
  if (r.has("image_archive")) c.image_archive = get_path(r, "image_archive");
  if (auto pull = get_choice(r, "pull", {"if_not_present", "always", "never"})) {
    c.pull = *pull == 1   ? PullPolicy::kAlways
             : *pull == 2 ? PullPolicy::kNever
                          : PullPolicy::kIfNotPresent;
  }
  if (const Json* args = get_array(r, "args")) {
    for (size_t i = 0; i < args->size(); ++i) {
      const std::string arg_path = pointer_append(r.path_of("args"), i);
      if (auto arg = internal::read_string((*args)[i], arg_path, errors)) {
        report(errors, arg_path, internal::check_no_nul(*arg));
        c.args.push_back(*arg);
      }
    }
  }
  if (const Json* env = get_map(r, "env")) {
    c.env = read_string_map(*env, r.path_of("env"), errors,
                            [](const std::string& k, const std::string& v) -> Problem {
                              if (Problem p = internal::check_env_name(k)) return p;
                              return internal::check_no_nul(v);
                            });
  }
  if (const Json* mounts = get_array(r, "mounts")) {
    c.mounts = read_mounts(*mounts, r.path_of("mounts"), errors);
  }
  if (auto network = get_choice(r, "network", {"host", "none"})) {
    c.network = *network == 0 ? Network::kHost : Network::kNone;
  }
  if (std::optional<std::string> hostname = r.get_string("hostname")) {
    report(errors, r.path_of("hostname"), internal::check_hostname(*hostname));
    c.hostname = *hostname;
  }
  if (std::optional<std::string> user = r.get_string("user")) {
    Result<User> parsed = internal::parse_user(*user);
    if (parsed.ok()) {
      c.user = *parsed;
    } else {
      r.error("user", parsed.status().message());
    }
  }
  if (r.has("workdir")) c.workdir = get_path(r, "workdir");
  if (const Json* rlimits = get_map(r, "rlimits")) {
    c.rlimits = read_rlimits(*rlimits, r.path_of("rlimits"), errors);
  }
  if (const Json* ready = r.find("ready")) {
    c.ready = read_probe(*ready, r.path_of("ready"), errors, /*liveness=*/false);
  }
  if (const Json* liveness = r.find("liveness")) {
    c.liveness = read_probe(*liveness, r.path_of("liveness"), errors, /*liveness=*/true);
  }
  // "network": "none": tcp/http/grpc probes connect inside the component's
  // own network namespace, where herdd resolves no names.
  if (c.network == Network::kNone) {
    for (const char* key : {"ready", "liveness"}) {
      const std::optional<ReadyProbe>& p = std::string_view(key) == "ready" ? c.ready : c.liveness;
      if (!p || p->kind == ReadyProbe::Kind::kExec || is_ip_literal(p->host)) continue;
      const char* kind = p->kind == ReadyProbe::Kind::kHttp   ? "http"
                         : p->kind == ReadyProbe::Kind::kGrpc ? "grpc"
                                                              : "tcp";
      errors.add(r.path_of(key) + "/" + kind + "/host",
                 "must be an IP address with \"network\": \"none\" (the probe connects inside "
                 "the component's network namespace), got \"" +
                     p->host + "\"");
    }
  }
  if (const Json* restart = r.find("restart")) {
    c.restart = read_restart(*restart, r.path_of("restart"), errors);
  }
  if (auto priority = r.get_int("priority", -1000, 1000)) c.priority = static_cast<int>(*priority);
  if (auto restore = get_choice(r, "restore", {"in_place", "standby"})) {
    c.restore = *restore == 1 ? Restore::kStandby : Restore::kInPlace;
  }
  const Json* deps = get_array(r, "depends_on");
  if (deps != nullptr && deps->size() > kMaxDependsOn) {
    r.error("depends_on", "has " + std::to_string(deps->size()) +
                              " entries, more than the maximum of " +
                              std::to_string(kMaxDependsOn));
    deps = nullptr;
  }
  if (deps != nullptr) {
    for (size_t i = 0; i < deps->size(); ++i) {
      const std::string dep_path = pointer_append(r.path_of("depends_on"), i);
      if (auto dep = internal::read_string((*deps)[i], dep_path, errors)) {
        node.depends_on.emplace_back(i, *dep);
        c.depends_on.push_back(*dep);
      }
    }
  }
  if (auto d = r.get_duration("stop_grace")) c.stop_grace = *d;
  if (auto signal = read_signal(r, "stop_signal")) c.stop_signal = *signal;
  internal::read_containment(r, c);
  if (const Json* labels = get_map(r, "labels")) {
    c.labels = read_string_map(*labels, r.path_of("labels"), errors, internal::check_label);
  }
  return c;
}

}  // namespace internal

// --- public: the accepted stop signals -----------------------------------------

std::optional<int> parse_signal(std::string_view name) {
  for (const SignalName& s : kSignals) {
    if (s.name == name) return s.number;
  }
  return std::nullopt;
}

std::string_view signal_name(int signal) {
  for (const SignalName& s : kSignals) {
    if (s.number == signal) return s.name;
  }
  return "";
}

}  // namespace herd::config
