#include "control/convert.h"

#include <array>

namespace herd::control {

namespace {

using supervise::State;

constexpr std::array kAllStates = {
    State::kPending,  State::kPreparing,  State::kStarting,
    State::kWaitingReady, State::kReady, State::kBackingOff,
    State::kStopping, State::kStopped,    State::kFailed,
};

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

std::optional<State> state_from_string(std::string_view s) {
  for (State st : kAllStates) {
    if (supervise::to_string(st) == s) return st;
  }
  return std::nullopt;
}

herd::v1::ComponentStatus to_proto(const supervise::ComponentStatus& s) {
  herd::v1::ComponentStatus p;
  p.set_name(s.name);
  p.set_image(s.image);
  p.set_state(std::string(supervise::to_string(s.state)));
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

supervise::ComponentStatus from_proto(const herd::v1::ComponentStatus& p, bool* known_state) {
  supervise::ComponentStatus s;
  s.name = p.name();
  s.image = p.image();
  std::optional<State> st = state_from_string(p.state());
  if (known_state != nullptr) *known_state = st.has_value();
  s.state = st.value_or(State::kPending);
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
