// The functions of config.h's model: the names of its enums, the restart
// presets (RestartPolicy::from_preset), the lookups on a Config and the
// text of ConfigError and ParseResult.
#include <sched.h>

#include <algorithm>
#include <map>
#include <thread>

#include "config/config.h"
#include "config/dependencies.h"

namespace herd::config {

std::string_view to_string(Restore restore) {
  return restore == Restore::kStandby ? "standby" : "in_place";
}

std::string_view to_string(PullPolicy policy) {
  switch (policy) {
    case PullPolicy::kIfNotPresent:
      return "if_not_present";
    case PullPolicy::kAlways:
      return "always";
    case PullPolicy::kNever:
      return "never";
  }
  return "unknown";
}

std::string_view to_string(Network network) {
  switch (network) {
    case Network::kHost:
      return "host";
    case Network::kNone:
      return "none";
  }
  return "unknown";
}

std::string_view to_string(RestartPreset preset) {
  switch (preset) {
    case RestartPreset::kDefault:
      return "default";
    case RestartPreset::kAggressive:
      return "aggressive";
  }
  return "unknown";
}

std::string_view to_string(RestartOn on) {
  switch (on) {
    case RestartOn::kAlways:
      return "always";
    case RestartOn::kOnFailure:
      return "on-failure";
    case RestartOn::kNever:
      return "never";
  }
  return "unknown";
}

std::string Rlimit::oci_type() const {
  std::string out = "RLIMIT_";
  for (char c : type) out += static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  return out;
}

RestartPolicy RestartPolicy::from_preset(RestartPreset preset) {
  RestartPolicy p;  // the member defaults (config.h) are the "default" preset
  p.preset = preset;
  if (preset == RestartPreset::kAggressive) {
    p.base = std::chrono::milliseconds{500};
    p.max = std::chrono::seconds{10};
    p.reset_window = std::chrono::minutes{2};
  }
  return p;
}

uint32_t Config::effective_max_concurrent_starts() const {
  if (max_concurrent_starts > 0) return max_concurrent_starts;
  cpu_set_t set;
  CPU_ZERO(&set);
  long cpus = 0;
  if (::sched_getaffinity(0, sizeof set, &set) == 0) cpus = CPU_COUNT(&set);
  if (cpus <= 0) cpus = static_cast<long>(std::thread::hardware_concurrency());
  return static_cast<uint32_t>(std::clamp<long>(2 * cpus, 2, 1024));
}

const Component* Config::find(std::string_view name) const {
  for (const Component& c : components) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

std::vector<std::string> Config::start_order() const {
  std::map<std::string_view, size_t> index;
  for (size_t i = 0; i < components.size(); ++i) index.emplace(components[i].name, i);
  std::vector<std::vector<size_t>> deps(components.size());
  for (size_t i = 0; i < components.size(); ++i) {
    for (const std::string& d : components[i].depends_on) {
      auto it = index.find(d);
      if (it != index.end()) deps[i].push_back(it->second);
    }
  }
  std::vector<std::string> order;
  for (size_t i : internal::start_order(deps)) order.push_back(components[i].name);
  return order;
}

std::string Config::data_dir(std::string_view component, std::string_view data_name) const {
  std::string dir = data_path;
  if (dir.empty() || dir.back() != '/') dir += '/';
  dir += component;
  dir += '/';
  dir += data_name;
  return dir;
}

std::vector<ConfigError> check_host(const Config& config,
                                    const std::function<bool(const std::string&)>& exists) {
  std::vector<ConfigError> out;
  for (size_t i = 0; i < config.components.size(); ++i) {
    if (!config.components[i].init) continue;
    std::error_code ec;
    const bool there = exists ? exists(kInitBinary) : std::filesystem::exists(kInitBinary, ec);
    if (there) continue;
    out.push_back(ConfigError{"/components/" + std::to_string(i) + "/init",
                              std::string("init: true needs ") + kInitBinary +
                                  ", which is missing: install Debian's package " + kInitPackage +
                                  " (apt-get install " + kInitPackage + ")"});
  }
  return out;
}

std::string ConfigError::to_string() const {
  if (path.empty()) return message;
  return path + ": " + message;
}

std::string ParseResult::error_text() const {
  std::string out;
  for (const ConfigError& e : errors) {
    if (!out.empty()) out += '\n';
    out += e.to_string();
  }
  return out;
}

}  // namespace herd::config
