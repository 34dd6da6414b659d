#include "supervise/lifecycle.h"

#include <algorithm>
#include <string>
#include <type_traits>
#include <utility>

namespace herd::supervise {

std::string_view to_string(State s) {
  switch (s) {
    case State::kPending:
      return "pending";
    case State::kPreparing:
      return "preparing";
    case State::kStarting:
      return "starting";
    case State::kWaitingReady:
      return "waiting_ready";
    case State::kReady:
      return "ready";
    case State::kBackingOff:
      return "backing_off";
    case State::kStopping:
      return "stopping";
    case State::kStopped:
      return "stopped";
    case State::kFailed:
      return "failed";
    case State::kCompleted:
      return "completed";
  }
  return "unknown";
}

std::string_view to_string(ActionKind k) {
  switch (k) {
    case ActionKind::kPrepare:
      return "prepare";
    case ActionKind::kStartTask:
      return "start_task";
    case ActionKind::kStartProbe:
      return "start_probe";
    case ActionKind::kCancelProbe:
      return "cancel_probe";
    case ActionKind::kArmTimer:
      return "arm_timer";
    case ActionKind::kCancelTimer:
      return "cancel_timer";
    case ActionKind::kCancelInFlight:
      return "cancel_in_flight";
    case ActionKind::kStopTask:
      return "stop_task";
    case ActionKind::kShortenStop:
      return "shorten_stop";
    case ActionKind::kKillTask:
      return "kill_task";
    case ActionKind::kReconcile:
      return "reconcile";
    case ActionKind::kTerminateTask:
      return "terminate_task";
  }
  return "unknown";
}

std::string_view event_name(const Event& e) {
  return std::visit(
      [](const auto& ev) -> std::string_view {
        using T = std::decay_t<decltype(ev)>;
        if constexpr (std::is_same_v<T, StartRequested>)
          return "StartRequested";
        else if constexpr (std::is_same_v<T, StopRequested>)
          return "StopRequested";
        else if constexpr (std::is_same_v<T, PrepareDone>)
          return "PrepareDone";
        else if constexpr (std::is_same_v<T, StartDone>)
          return "StartDone";
        else if constexpr (std::is_same_v<T, ExitSeen>)
          return "ExitSeen";
        else if constexpr (std::is_same_v<T, ProbeOk>)
          return "ProbeOk";
        else if constexpr (std::is_same_v<T, ProbeFailed>)
          return "ProbeFailed";
        else if constexpr (std::is_same_v<T, TimerFired>)
          return "TimerFired";
        else if constexpr (std::is_same_v<T, StopDone>)
          return "StopDone";
        else if constexpr (std::is_same_v<T, StreamGap>)
          return "StreamGap";
        else if constexpr (std::is_same_v<T, ReconcileResult>)
          return "ReconcileResult";
        else if constexpr (std::is_same_v<T, OomSeen>)
          return "OomSeen";
        else if constexpr (std::is_same_v<T, LivenessFailed>)
          return "LivenessFailed";
        else
          static_assert(!sizeof(T), "event_name: an Event alternative has no name");
      },
      e);
}

namespace {

Action act(ActionKind k) { return Action{k, Duration{0}, TimePoint{}}; }
Action arm_timer(Duration d) { return Action{ActionKind::kArmTimer, d, TimePoint{}}; }
Action with_deadline(ActionKind k, TimePoint deadline) { return Action{k, Duration{0}, deadline}; }

constexpr uint32_t kSigkillExit = 128 + 9;

bool live_task(State s) { return s == State::kWaitingReady || s == State::kReady; }

// One event applied to one machine. Each handler either changes `m` and
// appends to `out`, or returns without touching either (the event does not
// apply in this state).
class Stepper {
 public:
  Stepper(Machine& m, TimePoint now, std::vector<Action>& out) : m_(m), now_(now), out_(out) {}

  // Desired = run. Starts from pending, stopped and failed (an operator's
  // start: the consecutive count starts over). While stopping, the stop
  // finishes first and StopDone then prepares again.
  void operator()(const StartRequested&) {
    switch (m_.state) {
      case State::kStopped:
      case State::kFailed:
      case State::kCompleted:
        m_.restarts.reset();
        [[fallthrough]];
      case State::kPending:
        m_.desired = Desired::kRun;
        m_.last_error.clear();
        begin_prepare();
        return;
      case State::kStopping:
        m_.desired = Desired::kRun;
        return;
      default:
        return;  // already running toward kRun
    }
  }

  // Desired = stop. Whatever is in flight is cancelled at once; a stop
  // already running can only get shorter.
  void operator()(const StopRequested& e) {
    m_.desired = Desired::kStop;
    m_.reconciling = false;
    m_.liveness_failed = false;
    clear_early_exit();
    switch (m_.state) {
      case State::kPending:
      case State::kStopped:
        m_.state = State::kStopped;
        return;
      case State::kFailed:     // its container may still exist
      case State::kCompleted:  // its container and exited task do
        break;
      case State::kPreparing:
      case State::kStarting:
        out_.push_back(act(ActionKind::kCancelInFlight));
        break;
      case State::kWaitingReady:
        out_.push_back(act(ActionKind::kCancelProbe));
        break;
      case State::kReady:
        m_.restarts.on_not_ready();
        m_.ready_since.reset();
        break;
      case State::kBackingOff:
        out_.push_back(act(ActionKind::kCancelTimer));
        break;
      case State::kStopping:
        if (!m_.stop_deadline || e.deadline < *m_.stop_deadline) {
          m_.stop_deadline = e.deadline;
          out_.push_back(with_deadline(ActionKind::kShortenStop, e.deadline));
        }
        return;
    }
    m_.state = State::kStopping;
    m_.stop_deadline = e.deadline;
    out_.push_back(with_deadline(ActionKind::kStopTask, e.deadline));
  }

  void operator()(const PrepareDone& e) {
    if (m_.state != State::kPreparing) return;
    if (!e.ok) {
      m_.last_error = e.error;
      m_.prepared = false;
      fail(FailureCause::kRefused);
      return;
    }
    m_.prepared = true;
    if (e.adopted) {
      m_.pid = e.pid;
      m_.state = State::kWaitingReady;
      out_.push_back(act(ActionKind::kStartProbe));
    } else {
      m_.state = State::kStarting;
      out_.push_back(act(ActionKind::kStartTask));
    }
  }

  void operator()(const StartDone& e) {
    if (m_.state != State::kStarting) return;
    std::optional<ExitSeen> early = std::exchange(m_.early_exit, std::nullopt);
    std::optional<TimePoint> early_at = std::exchange(m_.early_exit_at, std::nullopt);
    if (!e.ok) {
      m_.last_error = e.error;
      m_.prepared = false;
      fail(FailureCause::kRefused);
      return;
    }
    m_.pid = e.pid;
    if (early && early->pid == e.pid) {  // the new task died at once
      record_exit(early->exit_code, early_at.value_or(now_));
      exited(early->exit_code);
      return;
    }
    m_.state = State::kWaitingReady;
    out_.push_back(act(ActionKind::kStartProbe));
  }

  void operator()(const ExitSeen& e) {
    if (e.pid == 0) return;
    if (m_.state != State::kStarting && e.pid != m_.pid) return;  // an old task
    switch (m_.state) {
      case State::kStarting:  // pid not known yet: decide at StartDone
        m_.early_exit = e;
        m_.early_exit_at = now_;
        return;
      case State::kWaitingReady:
      case State::kReady:
        exit_of_live_task(e.exit_code, e.runtime_lost ? Lost::kShim : Lost::kNo);
        return;
      case State::kStopping:
        record_exit(e.exit_code, now_);
        m_.last_exit_lost = e.runtime_lost;
        m_.pid = 0;
        return;
      default:
        return;
    }
  }

  void operator()(const ProbeOk&) {
    if (m_.state != State::kWaitingReady) return;
    m_.state = State::kReady;
    m_.ready_since = now_;
    m_.restarts.on_ready(now_);
  }

  // The probe gave up: kill the task; its exit then drives the failure path.
  void operator()(const ProbeFailed& e) {
    if (!live_task(m_.state)) return;
    m_.last_error = e.error;
    out_.push_back(act(ActionKind::kCancelProbe));
    out_.push_back(act(ActionKind::kKillTask));
  }

  // Liveness gave up on a ready task: stop it gracefully; its exit then
  // takes the failure path (exit_of_live_task).
  void operator()(const LivenessFailed& e) {
    if (m_.state != State::kReady || m_.liveness_failed) return;
    m_.liveness_failed = true;
    m_.last_error = "liveness: " + e.error;
    out_.push_back(act(ActionKind::kTerminateTask));
  }

  void operator()(const TimerFired&) {
    if (m_.state != State::kBackingOff) return;
    if (m_.prepared) {
      m_.state = State::kStarting;
      out_.push_back(act(ActionKind::kStartTask));
    } else {
      begin_prepare();
    }
  }

  void operator()(const StopDone& e) {
    if (m_.state != State::kStopping) return;
    m_.pid = 0;
    m_.stop_deadline.reset();
    m_.prepared = false;
    if (!e.ok) m_.last_error = e.error;
    if (m_.desired == Desired::kRun) {  // a Start came in while stopping
      m_.restarts.reset();
      begin_prepare();
    } else {
      m_.state = State::kStopped;
    }
  }

  // A lost events stream is not a crash (the task may well still run, and
  // a restart would fail on it): ask for the task's real state.
  void operator()(const StreamGap&) {
    if (!live_task(m_.state)) return;
    m_.reconciling = true;
    out_.push_back(act(ActionKind::kReconcile));
  }

  void operator()(const OomSeen&) {
    ++m_.oom_kills;
    if (m_.state == State::kStarting || live_task(m_.state)) {
      m_.oom_pending = true;
      return;
    }
    // The exit came first: it was this OOM kill when it was a SIGKILL.
    if (m_.pid == 0 && m_.last_exit_code == kSigkillExit) m_.last_exit_oom = true;
  }

  void operator()(const ReconcileResult& e) {
    if (!m_.reconciling) return;
    if (e.asked_pid != 0 && e.asked_pid != m_.pid) return;  // about an older task
    m_.reconciling = false;
    if (!live_task(m_.state)) return;
    if (e.running && e.pid == m_.pid) return;  // confirmed alive
    exit_of_live_task(e.exit_code, Lost::kReconcile);
  }

 private:
  void begin_prepare() {
    m_.oom_pending = false;
    m_.prepared = false;
    m_.state = State::kPreparing;
    out_.push_back(act(ActionKind::kPrepare));
  }

  void clear_early_exit() {
    m_.early_exit.reset();
    m_.early_exit_at.reset();
  }

  void record_exit(uint32_t code, TimePoint at) {
    m_.last_exit_code = code;
    m_.last_exit_at = at;
    m_.last_exit_oom = m_.oom_pending && code == kSigkillExit;
    m_.last_exit_lost = false;
    m_.oom_pending = false;
  }

  // Why an exit was not the process's own doing (lifecycle.h).
  enum class Lost { kNo, kShim, kReconcile };

  // The current task of waiting_ready/ready is gone.
  void exit_of_live_task(uint32_t code, Lost lost = Lost::kNo) {
    if (m_.state == State::kWaitingReady) out_.push_back(act(ActionKind::kCancelProbe));
    // Ready: readiness ends here. on_failure (in fail) both ends it in the
    // tracker and measures the stable run, so on_not_ready is not called.
    m_.ready_since.reset();
    record_exit(code, now_);
    // A task herd itself was ending (a liveness kill) is not lost, even
    // when its exit event was: last_error keeps saying why herd ended it.
    if (lost != Lost::kNo && !m_.liveness_failed) {
      m_.last_exit_lost = true;
      m_.last_error = lost == Lost::kShim
                          ? "containerd lost the task: its shim died (exit code " +
                                std::to_string(code) + " reported by containerd)"
                          : "containerd lost the task: its exit (code " + std::to_string(code) +
                                ") was never reported; a reconcile found it gone";
    }
    if (std::exchange(m_.liveness_failed, false)) {
      // herd ended it: a failure whatever the code (last_error says why).
      if (m_.restarts.policy().on == config::RestartOn::kNever) {
        end_run(State::kFailed);
        return;
      }
      fail(FailureCause::kExit);
      return;
    }
    exited(code);
  }

  // The task exited with `code` (recorded already): restart.on and
  // restart.prevent_exit_codes decide between completed, failed and the
  // restart path (see lifecycle.h).
  void exited(uint32_t code) {
    const config::RestartPolicy& p = m_.restarts.policy();
    const std::string code_text = std::to_string(code);
    const auto& prevent = p.prevent_exit_codes;
    if (std::find(prevent.begin(), prevent.end(), code) != prevent.end()) {
      end_run(State::kFailed);
      m_.last_error = "exit code " + code_text + " is in restart.prevent_exit_codes: not restarted";
      return;
    }
    if (code == 0 && p.on != config::RestartOn::kAlways) {
      end_run(State::kCompleted);
      m_.last_error.clear();
      return;
    }
    if (p.on == config::RestartOn::kNever) {
      const std::string why = "exit code " + code_text + ", not restarted (restart.on: never)";
      end_run(State::kFailed);
      m_.last_error = m_.last_error.empty() ? why : m_.last_error + "; " + why;
      return;
    }
    fail(FailureCause::kExit);
  }

  // The run ends without a restart: completed, or failed at once.
  void end_run(State to) {
    m_.restarts.on_not_ready();
    m_.liveness_failed = false;
    m_.pid = 0;
    m_.ready_since.reset();
    m_.reconciling = false;
    clear_early_exit();
    m_.state = to;
  }

  // The failure path: back off and retry, or give up visibly. The tracker
  // decides the delay; for kRefused (herd's own prepare or start failed,
  // containerd refused a call) it applies the refused-start floor, and
  // such a failure counts toward max_restarts like an exit.
  void fail(FailureCause cause) {
    const RestartTracker::Decision d = m_.restarts.on_failure(now_, cause);
    m_.liveness_failed = false;
    m_.pid = 0;
    m_.ready_since.reset();
    m_.reconciling = false;
    clear_early_exit();
    if (d.give_up) {
      m_.state = State::kFailed;
      if (m_.last_error.empty()) {
        m_.last_error = "gave up after " + std::to_string(m_.restarts.consecutive()) + " restarts";
        if (m_.last_exit_code) {
          m_.last_error += "; last exit code " + std::to_string(*m_.last_exit_code);
        }
      }
      return;
    }
    m_.state = State::kBackingOff;
    out_.push_back(arm_timer(d.delay));
  }

  Machine& m_;
  TimePoint now_;
  std::vector<Action>& out_;
};

}  // namespace

Transition step(Machine m, const Event& e, TimePoint now) {
  Transition t{std::move(m), {}};
  std::visit(Stepper(t.machine, now, t.actions), e);
  return t;
}

}  // namespace herd::supervise
