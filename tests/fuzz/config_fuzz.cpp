// libFuzzer target: the whole config parser and its checks (parse_config),
// on any bytes. Besides the sanitizers' findings it traps when a parse
// breaks the contract of config.h: a Config together with errors, neither,
// a duration outside [0, kMaxDuration], duplicate component names, a start
// order that is not a permutation of the components.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "config/config.h"

namespace {

using herd::config::Duration;
using herd::config::kMaxDuration;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

void check_duration(Duration d) { check(d >= Duration::zero() && d <= kMaxDuration); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const herd::config::ParseResult r = herd::config::parse_config(text);
  check(r.config.has_value() != !r.errors.empty());
  check(r.errors.size() <= herd::config::kMaxErrors + 1);
  for (const herd::config::ConfigError& e : r.errors) {
    check(!e.message.empty());
    check(e.path.empty() || e.path.front() == '/');
  }
  (void)r.error_text();
  if (!r.config) return 0;

  const herd::config::Config& c = *r.config;
  check(c.components.size() <= herd::config::kMaxComponents);
  check_duration(c.stop_budget);
  std::set<std::string> names;
  for (const herd::config::Component& comp : c.components) {
    check(names.insert(comp.name).second);
    check(c.find(comp.name) == &comp);
    check_duration(comp.stop_grace);
    check_duration(comp.restart.base);
    check_duration(comp.restart.max);
    check_duration(comp.restart.reset_window);
    check(comp.restart.base <= comp.restart.max);
    check(comp.restart.jitter >= 0.0 && comp.restart.jitter <= 1.0);
    if (comp.ready) {
      check_duration(comp.ready->interval);
      check_duration(comp.ready->timeout);
      check_duration(comp.ready->max_wait);
      check(comp.ready->port >= 1);
    }
    for (const herd::config::Rlimit& l : comp.rlimits) check(l.soft <= l.hard);
    for (const herd::config::Mount& m : comp.mounts) {
      if (m.kind == herd::config::Mount::Kind::kData) (void)c.data_dir(comp.name, m.data);
    }
    check(!herd::config::signal_name(comp.stop_signal).empty());
  }
  const std::vector<std::string> order = c.start_order();
  check(order.size() == c.components.size());
  check(std::set<std::string>(order.begin(), order.end()) == names);
  return 0;
}
