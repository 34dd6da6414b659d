// herd::daemon::ExitHistory: the last exits of every component, derived
// from the statuses the Supervisor reports (herdctl status NAME, its JSON,
// the Get RPC).
//
// Contract:
// - observe() is handed every status of every component, in the order the
//   Supervisor reported them. A status whose last_exit_at differs from the
//   last exit recorded for that component (and has an exit code) is a new
//   exit (a status without any exit in between changes nothing):
//   it is recorded with exit_reason() below. An OOM report that arrives
//   after the exit (the status keeps last_exit_at and its reason turns to
//   "oom_killed") changes the newest record's reason instead.
// - At most kKeep records per component (the oldest go first); records of
//   a component removed by a reload stay until a component of that name
//   exits again or herdd restarts (names come from root's config).
// - The reason is derived, in this order: "oom_killed" (the status says
//   so, issue 13), "containerd_lost" (the status says so: the task's shim
//   died, or a reconcile found an exit the events stream never told),
//   "liveness" (last_error starts with "liveness:" and the
//   task was waiting_ready or ready: a liveness probe had it killed),
//   "readiness_timeout" (last_error starts with "readiness:" and the task
//   was waiting_ready), "operator_stop" (the exit happened while the
//   component was stopping: herdctl stop/restart, a reload, herdd's own
//   stop), else "exited". Derived, not told: last_error stays until the next operator start, so
//   an ordinary crash of a task restarted after a liveness kill (or, while
//   waiting_ready, after a readiness timeout) is shown with the earlier
//   reason.
//
// Thread-safety: none; herdd uses it on the event loop only.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>

#include "supervise/component.h"

namespace herd::daemon {

struct ExitRecord {
  std::chrono::system_clock::time_point at{};
  uint32_t exit_code = 0;
  std::string reason;
};

// Whether two statuses' last_exit_at name the same exit. The supervisor
// converts its steady exit time to wall clock anew for every status, so
// the same exit comes with times a few microseconds apart: within 20 ms
// is the same exit (a task is never created, started and gone that fast).
// A step of the wall clock makes the next status look like a new exit.
bool same_exit(const std::optional<std::chrono::system_clock::time_point>& a,
               const std::optional<std::chrono::system_clock::time_point>& b);

// The reason of the exit `next` reports; `prev` is the component's status
// before it (null: none seen).
std::string exit_reason(const supervise::ComponentStatus* prev,
                        const supervise::ComponentStatus& next);

class ExitHistory {
 public:
  static constexpr std::size_t kKeep = 20;

  // True when `s` reported a new exit (recorded).
  bool observe(const supervise::ComponentStatus& s);
  // Oldest first; empty for a name never seen to exit.
  const std::deque<ExitRecord>& exits(const std::string& name) const;

 private:
  struct Entry {
    supervise::ComponentStatus last;  // the previous status
    // The last exit recorded: statuses without an exit (a new actor after
    // a reload, a waiting reason) do not make the next one look new.
    std::optional<std::chrono::system_clock::time_point> exit_at;
    std::deque<ExitRecord> exits;
  };
  std::map<std::string, Entry> by_name_;
};

}  // namespace herd::daemon
