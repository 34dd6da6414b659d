// The component lifecycle as a pure state machine:
//   step(machine, event, now) -> (machine', actions)
//
// It decides; the component actor (component.h) performs the actions with
// the containerd client, timers and probes, and feeds their results back in
// as events. No I/O, no clock reads, no randomness of its own (jitter comes
// in through the RestartTracker's random source), so every path is unit
// tested on a fake clock without sleeping.
//
// Timeline of one component (s6 calls "up" and "ready" different events;
// so does herd):
//
//   pending --Start--> preparing --PrepareDone(ok)--> starting
//     --StartDone(ok)--> waiting_ready --ProbeOk--> ready
//   preparing --PrepareDone(adopted running task)--> waiting_ready
//   waiting_ready|ready --Exit--> backing_off (or failed at max_restarts)
//   waiting_ready|ready --Exit(0), restart.on "on-failure"|"never"--> completed
//   waiting_ready|ready --Exit(n != 0), restart.on "never"--> failed
//   waiting_ready|ready --Exit(n in prevent_exit_codes)--> failed (at once)
//   backing_off --TimerFired--> starting          (same container)
//   preparing|starting --error--> backing_off (or failed at max_restarts)
//     (a refused prepare or start counts as a restart like an exit does,
//     and waits at least the refused-start floor: restart_policy.h)
//   waiting_ready --ProbeFailed (max_wait)--> backing_off (the task is killed)
//   ready --LivenessFailed--> ready, terminating (stop_signal, stop_grace,
//     SIGKILL; the container stays) --Exit--> backing_off (or failed)
//   any --Stop--> stopping --StopDone--> stopped
//   stopped|failed|completed --Start--> preparing
//   completed --Stop--> stopping (the exited task and its container go)
//
// Desired state is coalesced (kubelet pod workers): a Start or Stop
// overwrites the previous wish; the machine moves toward the latest one.
// A stop cancels whatever is in flight at once (backoff timer, probe,
// prepare, start) and its deadline can only get shorter.
//
// After an events-stream gap, every machine gets StreamGap: it asks for a
// Reconcile of the real task state, and ReconcileResult then either
// confirms the task or turns into the same path as an Exit. A lost stream
// is not a crash: taking it for one would "restart" a task that still
// runs, and that restart would fail on the running task.
//
// Details the timeline leaves open (step() documents each event in
// lifecycle.cpp; the unit tests pin them):
// - Leaving waiting_ready/ready by a failure or a stop ends any Reconcile
//   in flight (reconciling = false), so a late ReconcileResult about the
//   old task can never fail a newer one; and a result carries the pid it
//   was asked about (asked_pid), so one that arrives while a newer gap's
//   reconcile of the new task is pending is ignored too (the component
//   also drops an abandoned reconcile's answer by its generation).
// - A Stop while stopping always sets desired = kStop (it undoes a Start
//   that came in between) even when its deadline is not shorter.
// - Start during stopping, then StopDone -> preparing: that is an
//   operator's (re)start, so the consecutive restart count starts over,
//   as it does for Start from stopped or failed.
// - Giving up keeps last_error if it is set; otherwise it becomes
//   "gave up after N restarts" (plus the last exit code when known).
// - OOM: OomSeen (containerd's TaskOOM for the container) counts in
//   oom_kills and marks the current task; its next exit, when by SIGKILL
//   (137), is an OOM kill (last_exit_oom). When the exit was seen first
//   (the two events race), an OomSeen while no task runs marks that last
//   SIGKILL exit instead.
// - Lost by the runtime: an exit reported for a task whose shim had died
//   (ExitSeen runtime_lost), or a task found gone by a reconcile, sets
//   last_exit_lost and last_error says which; otherwise it takes the
//   path of any exit with that code (restart.on, prevent_exit_codes).
// - Liveness: the actor runs the liveness probe while the machine is
//   ready (from the moment it became ready; it goes when the machine
//   leaves ready). LivenessFailed (failure_threshold consecutive failures)
//   applies in ready only and once per task: last_error = "liveness: ..."
//   and TerminateTask. The task's exit that follows, whatever its code, is
//   a failure: it backs off (or gives up at max_restarts) and counts for
//   the backoff like a crash; with restart.on "never" it fails. In every
//   other state, and again while terminating, LivenessFailed changes
//   nothing. A Stop while terminating is an ordinary stop.
// - Which exit restarts (restart_policy.h has the backoff): an exit code in
//   restart.prevent_exit_codes fails at once, last_error naming the code,
//   whatever restart.on says; otherwise a clean exit (0) of a job
//   (restart.on "on-failure" or "never") completes it, and with "never"
//   any other exit fails it (last_error names the code). Neither counts
//   as a restart. The same holds for an exit found by a reconcile and for
//   a task that died before StartDone told its pid. A refused prepare or
//   start (herd's own call, not the process) backs off whatever
//   restart.on says: it is not an exit of the component.
//
// Thread-safety: pure values and functions; a component's Machine lives on
// that component's strand (the actor's).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "supervise/restart_policy.h"

namespace herd::supervise {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Duration = std::chrono::milliseconds;

enum class State {
  kPending,       // configured, not asked to run yet (or waiting for deps)
  kPreparing,     // image, adopt-or-clean-up, container: in flight
  kStarting,      // task (re)create + start in flight
  kWaitingReady,  // task running, readiness probe in flight
  kReady,         // task running and ready
  kBackingOff,    // waiting for the restart timer
  kStopping,      // stop in flight (SIGTERM, grace, SIGKILL, delete)
  kStopped,       // stopped on request; nothing left in containerd
  kFailed,        // max_restarts reached, or an exit not to restart; startable again
  kCompleted,     // a job (restart.on not "always") exited 0; startable again
};
std::string_view to_string(State s);

// What the machine asks the actor to do, in order.
enum class ActionKind {
  kPrepare,     // resolve image, adopt or clean up leftovers, ensure container
  kStartTask,   // delete any old task (killing it), create + start a new one
  kStartProbe,  // begin readiness probing of the current task
  kCancelProbe,
  kArmTimer,  // restart timer: fire TimerFired after `delay`
  kCancelTimer,
  kCancelInFlight,  // abort a pending prepare/start call (Canceller)
  kStopTask,        // stop: SIGTERM, wait until `deadline`, SIGKILL, delete task+container
  kShortenStop,     // a stop is running; its deadline is now `deadline`
  kKillTask,        // the task must die now (failed readiness): SIGKILL, keep container
  kReconcile,       // query the task's real state (after a stream gap)
  kTerminateTask,   // failed liveness: stop_signal, stop_grace, SIGKILL; keep container
};
std::string_view to_string(ActionKind k);

struct Action {
  ActionKind kind;
  Duration delay{0};     // kArmTimer
  TimePoint deadline{};  // kStopTask, kShortenStop
  bool operator==(const Action&) const = default;
};

// --- events
struct StartRequested {};
struct StopRequested {
  TimePoint deadline{};  // the whole stop must be done by then
};
struct PrepareDone {
  bool ok = false;
  // ok && adopted: a running task of the same spec was found and kept.
  bool adopted = false;
  uint32_t pid = 0;  // adopted task's pid
  std::string error{};
};
struct StartDone {
  bool ok = false;
  uint32_t pid = 0;
  std::string error{};
};
struct ExitSeen {
  uint32_t pid = 0;  // an exit of another pid (an old task) is ignored
  uint32_t exit_code = 0;
  // The task's shim had died: containerd reported the exit for it (the
  // runtime lost the task; the process did not exit on its own).
  bool runtime_lost = false;
};
struct ProbeOk {};
struct ProbeFailed {
  std::string error{};  // max_wait elapsed, or failure_threshold after ready
};
struct LivenessFailed {
  std::string error{};  // what failed, e.g. "3 consecutive failures, last error: ..."
};
struct TimerFired {};
struct StopDone {
  bool ok = false;
  std::string error{};
};
struct StreamGap {};
struct OomSeen {};  // the kernel's OOM killer acted in the container
struct ReconcileResult {
  bool running = false;  // the task exists and its process runs
  uint32_t pid = 0;
  uint32_t exit_code = 0;  // when !running and the task had exited
  // The task the reconcile was asked about (Machine::pid when it was
  // issued; 0 = not told). A result about another task than the current
  // one is ignored: it can only be stale.
  uint32_t asked_pid = 0;
};
using Event = std::variant<StartRequested, StopRequested, PrepareDone, StartDone, ExitSeen, ProbeOk,
                           ProbeFailed, TimerFired, StopDone, StreamGap, ReconcileResult, OomSeen,
                           LivenessFailed>;
std::string_view event_name(const Event& e);

enum class Desired { kRun, kStop };

// Everything the machine knows; also what status reporting shows.
struct Machine {
  State state = State::kPending;
  Desired desired = Desired::kStop;
  uint32_t pid = 0;  // current task, 0 if none
  std::optional<uint32_t> last_exit_code;
  std::optional<TimePoint> last_exit_at;
  std::optional<TimePoint> ready_since;
  std::optional<TimePoint> stop_deadline;  // while stopping
  std::string last_error;
  bool reconciling = false;  // a Reconcile is in flight
  // The container is in place (PrepareDone ok). A failed start clears it,
  // so the next attempt prepares again (which is cheap when all is well).
  bool prepared = false;
  // An exit seen while starting, before StartDone told the pid: applied
  // when StartDone arrives with that pid (a task that dies at once).
  std::optional<ExitSeen> early_exit;
  std::optional<TimePoint> early_exit_at;  // when early_exit was seen
  RestartTracker restarts;                 // count, backoff, reset window
  bool oom_pending = false;                // an OOM event since the current task started
  bool last_exit_oom = false;              // the last exit was an OOM kill
  // The last exit was not the process's own: its shim died (ExitSeen
  // runtime_lost) or it was found by a reconcile, the events stream never
  // having told it. Reported as "containerd_lost".
  bool last_exit_lost = false;
  uint64_t oom_kills = 0;  // OOM events seen
  // Liveness failed for the current task; it is being terminated and its
  // exit is a failure whatever its code.
  bool liveness_failed = false;
};

struct Transition {
  Machine machine;
  std::vector<Action> actions;
};

// The whole lifecycle. Events that do not apply in a state are ignored
// (return the machine unchanged, no actions), never an error.
Transition step(Machine m, const Event& e, TimePoint now);

}  // namespace herd::supervise
