#include "daemon/exit_history.h"

namespace herd::daemon {

using supervise::ComponentStatus;
using supervise::State;

namespace {

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

bool same_exit(const std::optional<std::chrono::system_clock::time_point>& a,
               const std::optional<std::chrono::system_clock::time_point>& b) {
  if (!a || !b) return a.has_value() == b.has_value();
  const auto d = *a > *b ? *a - *b : *b - *a;
  return d <= std::chrono::milliseconds(20);
}

std::string exit_reason(const ComponentStatus* prev, const ComponentStatus& next) {
  if (next.last_exit_reason == "oom_killed") return "oom_killed";
  if (next.last_exit_reason == "containerd_lost") return "containerd_lost";
  const bool probing =
      prev != nullptr && (prev->state == State::kReady || prev->state == State::kWaitingReady);
  if (probing && starts_with(next.last_error, "liveness:")) return "liveness";
  if (prev != nullptr && prev->state == State::kWaitingReady &&
      starts_with(next.last_error, "readiness:"))
    return "readiness_timeout";
  const bool stopping = next.state == State::kStopping || next.state == State::kStopped ||
                        (prev != nullptr && prev->state == State::kStopping);
  if (stopping) return "operator_stop";
  return "exited";
}

bool ExitHistory::observe(const ComponentStatus& s) {
  auto it = by_name_.find(s.name);
  const bool seen = it != by_name_.end();
  if (!seen) it = by_name_.emplace(s.name, Entry{}).first;
  Entry& e = it->second;
  const ComponentStatus* prev = seen ? &e.last : nullptr;
  bool added = false;
  if (s.last_exit_code && s.last_exit_at && !same_exit(s.last_exit_at, e.exit_at)) {
    e.exit_at = s.last_exit_at;
    ExitRecord r;
    r.at = *s.last_exit_at;
    r.exit_code = *s.last_exit_code;
    r.reason = exit_reason(prev, s);
    e.exits.push_back(std::move(r));
    while (e.exits.size() > kKeep) e.exits.pop_front();
    added = true;
  } else if (!e.exits.empty() && s.last_exit_reason == "oom_killed" &&
             e.exits.back().reason != "oom_killed" && same_exit(s.last_exit_at, e.exit_at)) {
    e.exits.back().reason = "oom_killed";  // the OOM event came after the exit
  }
  e.last = s;
  return added;
}

const std::deque<ExitRecord>& ExitHistory::exits(const std::string& name) const {
  static const std::deque<ExitRecord> kNone;
  auto it = by_name_.find(name);
  return it == by_name_.end() ? kNone : it->second.exits;
}

}  // namespace herd::daemon
