#include "control/convert.h"

namespace herd::control {

namespace {

int64_t opt_to_nano(const std::optional<std::chrono::system_clock::time_point>& t) {
  return t ? to_unix_nano(*t) : 0;
}

std::optional<std::chrono::system_clock::time_point> nano_to_opt(int64_t ns) {
  if (ns == 0) return std::nullopt;
  return from_unix_nano(ns);
}

}  // namespace

int64_t to_unix_nano(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

std::chrono::system_clock::time_point from_unix_nano(int64_t ns) {
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::nanoseconds(ns)));
}

herd::v1::ComponentStatus to_proto(const ComponentView& s) {
  herd::v1::ComponentStatus p;
  p.set_name(s.name);
  p.set_image(s.image);
  p.set_state(s.state);
  p.set_pid(s.pid);
  p.set_restarts(s.restarts);
  if (s.last_exit_code) p.set_last_exit_code(*s.last_exit_code);
  p.set_last_exit_at_unix_nano(opt_to_nano(s.last_exit_at));
  p.set_ready_since_unix_nano(opt_to_nano(s.ready_since));
  p.set_started_at_unix_nano(opt_to_nano(s.started_at));
  p.set_changed_at_unix_nano(to_unix_nano(s.changed_at));
  p.set_last_error(s.last_error);
  p.set_adopted(s.adopted);
  return p;
}

ComponentView from_proto(const herd::v1::ComponentStatus& p) {
  ComponentView s;
  s.name = p.name();
  s.image = p.image();
  s.state = p.state();
  s.pid = p.pid();
  s.restarts = p.restarts();
  if (p.has_last_exit_code()) s.last_exit_code = p.last_exit_code();
  s.last_exit_at = nano_to_opt(p.last_exit_at_unix_nano());
  s.ready_since = nano_to_opt(p.ready_since_unix_nano());
  s.started_at = nano_to_opt(p.started_at_unix_nano());
  s.changed_at = from_unix_nano(p.changed_at_unix_nano());
  s.last_error = p.last_error();
  s.adopted = p.adopted();
  return s;
}

}  // namespace herd::control
