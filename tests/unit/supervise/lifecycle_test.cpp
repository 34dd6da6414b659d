// The lifecycle state machine, driven event by event on a fake clock.
#include "supervise/lifecycle.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <optional>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

using namespace std::chrono_literals;
using herd::config::RestartPolicy;
using herd::config::RestartPreset;
using herd::supervise::Action;
using herd::supervise::ActionKind;
using herd::supervise::Desired;
using herd::supervise::Duration;
using herd::supervise::Event;
using herd::supervise::ExitSeen;
using herd::supervise::LivenessFailed;
using herd::supervise::Machine;
using herd::supervise::PrepareDone;
using herd::supervise::ProbeFailed;
using herd::supervise::ProbeOk;
using herd::supervise::ReconcileResult;
using herd::supervise::RestartTracker;
using herd::supervise::StartDone;
using herd::supervise::StartRequested;
using herd::supervise::State;
using herd::supervise::StopDone;
using herd::supervise::StopRequested;
using herd::supervise::StreamGap;
using herd::supervise::TimePoint;
using herd::supervise::TimerFired;
using herd::supervise::Transition;
using Actions = std::vector<Action>;

namespace {

int64_t ms_since_epoch(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace

namespace Catch {
template <>
struct StringMaker<State> {
  static std::string convert(State s) { return std::string(herd::supervise::to_string(s)); }
};
template <>
struct StringMaker<Action> {
  static std::string convert(const Action& a) {
    std::ostringstream out;
    out << herd::supervise::to_string(a.kind);
    if (a.kind == ActionKind::kArmTimer) out << "(" << a.delay.count() << "ms)";
    if (a.kind == ActionKind::kStopTask || a.kind == ActionKind::kShortenStop) {
      out << "(@" << ms_since_epoch(a.deadline) << "ms)";
    }
    return out.str();
  }
};
}  // namespace Catch

namespace {

constexpr uint32_t kPid = 100;

Action act(ActionKind k) { return Action{k, Duration{0}, TimePoint{}}; }
Action arm(Duration d) { return Action{ActionKind::kArmTimer, d, TimePoint{}}; }
Action stop_task(TimePoint deadline) {
  return Action{ActionKind::kStopTask, Duration{0}, deadline};
}
Action shorten(TimePoint deadline) {
  return Action{ActionKind::kShortenStop, Duration{0}, deadline};
}

template <class T>
std::string opt(const std::optional<T>& v) {
  if (!v) return "-";
  if constexpr (std::is_same_v<T, TimePoint>) {
    return std::to_string(ms_since_epoch(*v));
  } else {
    return std::to_string(*v);
  }
}

// Every field of a machine, to check that an ignored event changed nothing.
std::string dump(const Machine& m) {
  std::ostringstream out;
  out << "state=" << herd::supervise::to_string(m.state)
      << " desired=" << (m.desired == Desired::kRun ? "run" : "stop") << " pid=" << m.pid
      << " exit=" << opt(m.last_exit_code) << "@" << opt(m.last_exit_at)
      << " ready_since=" << opt(m.ready_since) << " stop_deadline=" << opt(m.stop_deadline)
      << " error='" << m.last_error << "' reconciling=" << m.reconciling
      << " liveness_failed=" << m.liveness_failed << " prepared=" << m.prepared << " early_exit="
      << (m.early_exit
              ? std::to_string(m.early_exit->pid) + ":" + std::to_string(m.early_exit->exit_code)
              : "-")
      << "@" << opt(m.early_exit_at) << " consecutive=" << m.restarts.consecutive()
      << " total=" << m.restarts.total() << " tracker_ready=" << opt(m.restarts.ready_since());
  return out.str();
}

// A machine and a fake clock that only moves when told to.
struct Sim {
  explicit Sim(RestartPolicy policy = RestartPolicy::from_preset(RestartPreset::kDefault)) {
    m.restarts = RestartTracker(policy);
  }

  Actions on(const Event& e) {
    Transition t = herd::supervise::step(m, e, now);
    m = std::move(t.machine);
    return t.actions;
  }
  void advance(Duration d) { now += d; }

  // pending -> waiting_ready with task `pid`.
  void to_waiting_ready(uint32_t pid = kPid) {
    REQUIRE(on(StartRequested{}) == Actions{act(ActionKind::kPrepare)});
    REQUIRE(on(PrepareDone{.ok = true}) == Actions{act(ActionKind::kStartTask)});
    REQUIRE(on(StartDone{.ok = true, .pid = pid}) == Actions{act(ActionKind::kStartProbe)});
    REQUIRE(m.state == State::kWaitingReady);
  }
  void to_ready(uint32_t pid = kPid) {
    to_waiting_ready(pid);
    REQUIRE(on(ProbeOk{}).empty());
    REQUIRE(m.state == State::kReady);
  }
  // backing_off -> waiting_ready with the new task `pid` (same container).
  void restart(uint32_t pid) {
    REQUIRE(m.state == State::kBackingOff);
    REQUIRE(on(TimerFired{}) == Actions{act(ActionKind::kStartTask)});
    REQUIRE(on(StartDone{.ok = true, .pid = pid}) == Actions{act(ActionKind::kStartProbe)});
    REQUIRE(m.state == State::kWaitingReady);
  }

  Machine m;
  TimePoint now = TimePoint{} + 1h;
};

RestartPolicy job(herd::config::RestartOn on, std::vector<uint32_t> prevent = {}) {
  RestartPolicy p = RestartPolicy::from_preset(RestartPreset::kDefault);
  p.on = on;
  p.prevent_exit_codes = std::move(prevent);
  return p;
}

RestartPolicy one_restart() {
  RestartPolicy p = RestartPolicy::from_preset(RestartPreset::kDefault);
  p.max_restarts = 1;
  return p;
}

// A Sim (policy: one restart allowed) brought into `s` by real events.
// Task pids: kPid, then kPid + 1 after the restart. kCompleted: a job
// (restart.on "on-failure") whose task exited 0. kBackingOff: the default
// policy (no limit) after two failures, so that a real backoff (`base`,
// not the immediate first restart) is pending.
Sim reach(State s) {
  Sim sim(s == State::kCompleted    ? job(herd::config::RestartOn::kOnFailure)
          : s == State::kBackingOff ? RestartPolicy::from_preset(RestartPreset::kDefault)
                                    : one_restart());
  switch (s) {
    case State::kPending:
      break;
    case State::kPreparing:
      sim.on(StartRequested{});
      break;
    case State::kStarting:
      sim.on(StartRequested{});
      sim.on(PrepareDone{.ok = true});
      break;
    case State::kWaitingReady:
      sim.to_waiting_ready();
      break;
    case State::kReady:
      sim.to_ready();
      break;
    case State::kBackingOff:
      sim.to_waiting_ready();
      REQUIRE(sim.on(ExitSeen{.pid = kPid, .exit_code = 1}) ==
              Actions{act(ActionKind::kCancelProbe), arm(0ms)});
      sim.restart(kPid + 1);
      REQUIRE(sim.on(ExitSeen{.pid = kPid + 1, .exit_code = 1}) ==
              Actions{act(ActionKind::kCancelProbe), arm(2s)});
      break;
    case State::kStopping:
      sim.to_ready();
      sim.on(StopRequested{.deadline = sim.now + 30s});
      break;
    case State::kStopped:
      sim.to_ready();
      sim.on(StopRequested{.deadline = sim.now + 30s});
      sim.on(StopDone{.ok = true});
      break;
    case State::kFailed:
      sim.to_waiting_ready();
      sim.on(ExitSeen{.pid = kPid, .exit_code = 1});
      sim.restart(kPid + 1);
      sim.on(ExitSeen{.pid = kPid + 1, .exit_code = 1});
      break;
    case State::kCompleted:
      sim.to_ready();
      sim.on(ExitSeen{.pid = kPid, .exit_code = 0});
      break;
  }
  REQUIRE(sim.m.state == s);
  return sim;
}

const std::vector<State> kAllStates = {
    State::kPending, State::kPreparing,  State::kStarting, State::kWaitingReady,
    State::kReady,   State::kBackingOff, State::kStopping, State::kStopped,
    State::kFailed,  State::kCompleted,
};

}  // namespace

TEST_CASE("Lifecycle: to_string names every state, action and event") {
  const std::vector<std::pair<State, std::string>> states = {
      {State::kPending, "pending"},   {State::kPreparing, "preparing"},
      {State::kStarting, "starting"}, {State::kWaitingReady, "waiting_ready"},
      {State::kReady, "ready"},       {State::kBackingOff, "backing_off"},
      {State::kStopping, "stopping"}, {State::kStopped, "stopped"},
      {State::kFailed, "failed"},     {State::kCompleted, "completed"},
  };
  for (const auto& [s, name] : states) CHECK(herd::supervise::to_string(s) == name);
  CHECK(herd::supervise::to_string(static_cast<State>(99)) == "unknown");

  const std::vector<std::pair<ActionKind, std::string>> actions = {
      {ActionKind::kPrepare, "prepare"},
      {ActionKind::kStartTask, "start_task"},
      {ActionKind::kStartProbe, "start_probe"},
      {ActionKind::kCancelProbe, "cancel_probe"},
      {ActionKind::kArmTimer, "arm_timer"},
      {ActionKind::kCancelTimer, "cancel_timer"},
      {ActionKind::kCancelInFlight, "cancel_in_flight"},
      {ActionKind::kStopTask, "stop_task"},
      {ActionKind::kShortenStop, "shorten_stop"},
      {ActionKind::kKillTask, "kill_task"},
      {ActionKind::kReconcile, "reconcile"},
      {ActionKind::kTerminateTask, "terminate_task"},
  };
  for (const auto& [k, name] : actions) CHECK(herd::supervise::to_string(k) == name);
  CHECK(herd::supervise::to_string(static_cast<ActionKind>(99)) == "unknown");

  const std::vector<std::pair<Event, std::string>> events = {
      {StartRequested{}, "StartRequested"},
      {StopRequested{}, "StopRequested"},
      {PrepareDone{}, "PrepareDone"},
      {StartDone{}, "StartDone"},
      {ExitSeen{}, "ExitSeen"},
      {ProbeOk{}, "ProbeOk"},
      {ProbeFailed{}, "ProbeFailed"},
      {TimerFired{}, "TimerFired"},
      {StopDone{}, "StopDone"},
      {StreamGap{}, "StreamGap"},
      {ReconcileResult{}, "ReconcileResult"},
      {herd::supervise::OomSeen{}, "OomSeen"},
      {LivenessFailed{}, "LivenessFailed"},
  };
  REQUIRE(events.size() == std::variant_size_v<Event>);
  for (const auto& [e, name] : events) CHECK(herd::supervise::event_name(e) == name);
}

TEST_CASE("Lifecycle: a start runs pending -> preparing -> starting -> waiting_ready -> ready") {
  Sim s;
  CHECK(s.m.state == State::kPending);
  CHECK(s.m.desired == Desired::kStop);

  CHECK(s.on(StartRequested{}) == Actions{act(ActionKind::kPrepare)});
  CHECK(s.m.state == State::kPreparing);
  CHECK(s.m.desired == Desired::kRun);
  CHECK_FALSE(s.m.prepared);

  CHECK(s.on(PrepareDone{.ok = true}) == Actions{act(ActionKind::kStartTask)});
  CHECK(s.m.state == State::kStarting);
  CHECK(s.m.prepared);

  CHECK(s.on(StartDone{.ok = true, .pid = kPid}) == Actions{act(ActionKind::kStartProbe)});
  CHECK(s.m.state == State::kWaitingReady);
  CHECK(s.m.pid == kPid);
  CHECK_FALSE(s.m.ready_since.has_value());

  s.advance(3s);
  CHECK(s.on(ProbeOk{}).empty());
  CHECK(s.m.state == State::kReady);
  CHECK(s.m.ready_since == s.now);
  CHECK(s.m.restarts.ready_since() == s.now);
  CHECK(s.m.pid == kPid);
}

TEST_CASE("Lifecycle: an adopted running task goes straight to waiting_ready") {
  Sim s;
  s.on(StartRequested{});
  CHECK(s.on(PrepareDone{.ok = true, .adopted = true, .pid = 42}) ==
        Actions{act(ActionKind::kStartProbe)});
  CHECK(s.m.state == State::kWaitingReady);
  CHECK(s.m.pid == 42);
  CHECK(s.m.prepared);
  CHECK(s.on(ProbeOk{}).empty());
  CHECK(s.m.state == State::kReady);
  // Its exit is supervised like any other: restart 1, immediate.
  CHECK(s.on(ExitSeen{.pid = 42, .exit_code = 9}) == Actions{arm(0ms)});
  CHECK(s.m.state == State::kBackingOff);
}

TEST_CASE("Lifecycle: crash -> backoff -> restart in the same container, delays per policy") {
  Sim s;
  s.to_ready();
  // Restart 1 at once, then base doubling up to max.
  const std::vector<Duration> expected = {0s, 2s, 4s, 8s, 16s, 32s, 60s, 60s};
  uint32_t pid = kPid;
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO("crash " << i + 1);
    s.advance(10s);  // ready, but far shorter than the reset window
    REQUIRE(s.m.state == State::kReady);
    CHECK(s.on(ExitSeen{.pid = pid, .exit_code = 1}) == Actions{arm(expected[i])});
    CHECK(s.m.state == State::kBackingOff);
    CHECK(s.m.pid == 0);
    CHECK(s.m.last_exit_code == 1u);
    CHECK(s.m.last_exit_at == s.now);
    CHECK_FALSE(s.m.ready_since.has_value());
    CHECK(s.m.restarts.consecutive() == i + 1);
    CHECK(s.m.prepared);  // the container stays: no prepare on restart

    s.advance(expected[i]);
    s.restart(++pid);
    CHECK(s.m.pid == pid);
    CHECK(s.on(ProbeOk{}).empty());
  }
  CHECK(s.m.restarts.total() == expected.size());
}

TEST_CASE("Lifecycle: an exit while waiting for readiness is seen at once, the probe cancelled") {
  Sim s;
  s.to_waiting_ready();
  s.advance(500ms);
  CHECK(s.on(ExitSeen{.pid = kPid, .exit_code = 137}) ==
        Actions{act(ActionKind::kCancelProbe), arm(0ms)});
  CHECK(s.m.state == State::kBackingOff);
  CHECK(s.m.pid == 0);
  CHECK(s.m.last_exit_code == 137u);
  CHECK(s.m.last_exit_at == s.now);

  // A probe result that raced with the exit is ignored.
  const std::string before = dump(s.m);
  CHECK(s.on(ProbeOk{}).empty());
  CHECK(s.on(ProbeFailed{.error = "late"}).empty());
  CHECK(dump(s.m) == before);
}

TEST_CASE("Lifecycle: exits from waiting_ready keep doubling, however far apart") {
  // Not ready, so never reset: the window runs from readiness, not from
  // the last restart attempt (else crashes spaced wider than the window
  // would restart at once forever). Only restart 1 is immediate.
  Sim s;
  s.to_waiting_ready();
  const std::vector<Duration> expected = {0s, 2s, 4s, 8s, 16s, 32s, 60s};
  uint32_t pid = kPid;
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO("crash " << i + 1);
    s.advance(10min);
    CHECK(s.on(ExitSeen{.pid = pid, .exit_code = 1}) ==
          Actions{act(ActionKind::kCancelProbe), arm(expected[i])});
    s.restart(++pid);
  }
}

TEST_CASE("Lifecycle: ready for the reset window starts the count over: immediate, then base") {
  Sim s;
  s.to_waiting_ready();
  uint32_t pid = kPid;
  for (Duration d : {0s, 2s, 4s}) {
    CHECK(s.on(ExitSeen{.pid = pid, .exit_code = 1}) ==
          Actions{act(ActionKind::kCancelProbe), arm(d)});
    s.restart(++pid);
  }
  REQUIRE(s.m.restarts.consecutive() == 3);

  SECTION("ready for the whole window: restart 1 again, immediate, then base and doubling") {
    CHECK(s.on(ProbeOk{}).empty());
    s.advance(5min);
    CHECK(s.on(ExitSeen{.pid = pid, .exit_code = 1}) == Actions{arm(0ms)});
    CHECK(s.m.restarts.consecutive() == 1);
    CHECK(s.m.restarts.total() == 4);
    s.restart(++pid);
    CHECK(s.on(ExitSeen{.pid = pid, .exit_code = 1}) ==
          Actions{act(ActionKind::kCancelProbe), arm(2s)});
    s.restart(++pid);
    CHECK(s.on(ExitSeen{.pid = pid, .exit_code = 1}) ==
          Actions{act(ActionKind::kCancelProbe), arm(4s)});
  }
  SECTION("ready for just under the window: no reset") {
    CHECK(s.on(ProbeOk{}).empty());
    s.advance(5min - 1ms);
    CHECK(s.on(ExitSeen{.pid = pid, .exit_code = 1}) == Actions{arm(8s)});
    CHECK(s.m.restarts.consecutive() == 4);
  }
  SECTION("merely started for the window (never ready): no reset") {
    s.advance(1h);
    CHECK(s.on(ExitSeen{.pid = pid, .exit_code = 1}) ==
          Actions{act(ActionKind::kCancelProbe), arm(8s)});
    CHECK(s.m.restarts.consecutive() == 4);
  }
  SECTION("a failed liveness probe after a long ready run: the kill's exit restarts at once") {
    CHECK(s.on(ProbeOk{}).empty());
    s.advance(2h);
    CHECK(s.on(ProbeFailed{.error = "unhealthy"}) ==
          Actions{act(ActionKind::kCancelProbe), act(ActionKind::kKillTask)});
    CHECK(s.on(ExitSeen{.pid = pid, .exit_code = 137}) == Actions{arm(0ms)});
    CHECK(s.m.restarts.consecutive() == 1);
  }
}

TEST_CASE("Lifecycle: the aggressive preset's 2 min window") {
  Sim s(RestartPolicy::from_preset(RestartPreset::kAggressive));
  s.to_ready();
  CHECK(s.on(ExitSeen{.pid = kPid, .exit_code = 1}) == Actions{arm(0ms)});
  s.restart(kPid + 1);
  s.on(ProbeOk{});
  s.advance(119s);  // under the window: restart 2, base
  CHECK(s.on(ExitSeen{.pid = kPid + 1, .exit_code = 1}) == Actions{arm(500ms)});
  s.restart(kPid + 2);
  s.on(ProbeOk{});
  s.advance(120s);  // the whole window: restart 1 again
  CHECK(s.on(ExitSeen{.pid = kPid + 2, .exit_code = 1}) == Actions{arm(0ms)});
  CHECK(s.m.restarts.consecutive() == 1);
}

TEST_CASE("Lifecycle: stop in every state cancels at once, its deadline only gets shorter") {
  struct Row {
    State from;
    Actions cancels;  // before kStopTask
    bool straight_to_stopped;
  };
  const std::vector<Row> rows = {
      {State::kPending, {}, true},
      {State::kPreparing, {act(ActionKind::kCancelInFlight)}, false},  // create in flight
      {State::kStarting, {act(ActionKind::kCancelInFlight)}, false},
      {State::kWaitingReady, {act(ActionKind::kCancelProbe)}, false},
      {State::kReady, {}, false},
      {State::kBackingOff, {act(ActionKind::kCancelTimer)}, false},
      {State::kFailed, {}, false},     // its container may still exist
      {State::kCompleted, {}, false},  // its exited task and container do
      {State::kStopped, {}, true},
  };
  for (const Row& row : rows) {
    INFO("stop from " << herd::supervise::to_string(row.from));
    Sim s = reach(row.from);
    const TimePoint deadline = s.now + 30s;
    Actions actions = s.on(StopRequested{.deadline = deadline});
    CHECK(s.m.desired == Desired::kStop);

    if (row.straight_to_stopped) {
      CHECK(actions.empty());
      CHECK(s.m.state == State::kStopped);
      CHECK(s.on(StopRequested{.deadline = deadline - 10s}).empty());
      CHECK(s.m.state == State::kStopped);
      continue;
    }

    Actions expected = row.cancels;
    expected.push_back(stop_task(deadline));
    CHECK(actions == expected);
    CHECK(s.m.state == State::kStopping);
    CHECK(s.m.stop_deadline == deadline);
    CHECK_FALSE(s.m.ready_since.has_value());
    CHECK_FALSE(s.m.restarts.ready_since().has_value());

    // A second stop with a later (or the same) deadline does not lengthen it.
    CHECK(s.on(StopRequested{.deadline = deadline + 10s}).empty());
    CHECK(s.on(StopRequested{.deadline = deadline}).empty());
    CHECK(s.m.stop_deadline == deadline);
    // An earlier one shortens it.
    CHECK(s.on(StopRequested{.deadline = deadline - 10s}) == Actions{shorten(deadline - 10s)});
    CHECK(s.m.stop_deadline == deadline - 10s);
    CHECK(s.m.state == State::kStopping);

    // Late results of the cancelled work change nothing.
    const std::string before = dump(s.m);
    for (const Event& late :
         std::vector<Event>{PrepareDone{.ok = true}, StartDone{.ok = true, .pid = 555}, ProbeOk{},
                            ProbeFailed{.error = "x"}, TimerFired{}, StreamGap{},
                            ReconcileResult{.running = true, .pid = 555}}) {
      INFO("late " << herd::supervise::event_name(late));
      CHECK(s.on(late).empty());
    }
    CHECK(dump(s.m) == before);

    CHECK(s.on(StopDone{.ok = true}).empty());
    CHECK(s.m.state == State::kStopped);
    CHECK(s.m.pid == 0);
    CHECK_FALSE(s.m.stop_deadline.has_value());
    CHECK_FALSE(s.m.prepared);
  }
}

TEST_CASE("Lifecycle: stop while already stopping: later ignored, earlier shortens") {
  Sim s = reach(State::kStopping);
  const TimePoint first = *s.m.stop_deadline;
  CHECK(s.on(StopRequested{.deadline = first + 1h}).empty());
  CHECK(s.m.stop_deadline == first);
  CHECK(s.on(StopRequested{.deadline = first - 1ms}) == Actions{shorten(first - 1ms)});
  CHECK(s.m.stop_deadline == first - 1ms);
}

TEST_CASE("Lifecycle: while stopping, the task's exit is recorded, StopDone's error is kept") {
  Sim s;
  s.to_ready();
  s.on(StopRequested{.deadline = s.now + 30s});
  s.advance(2s);
  CHECK(s.on(ExitSeen{.pid = kPid - 1, .exit_code = 9}).empty());  // an old task
  CHECK(s.m.pid == kPid);
  CHECK(s.on(ExitSeen{.pid = kPid, .exit_code = 143}).empty());
  CHECK(s.m.state == State::kStopping);
  CHECK(s.m.pid == 0);
  CHECK(s.m.last_exit_code == 143u);
  CHECK(s.m.last_exit_at == s.now);

  SECTION("a failed stop") {
    CHECK(
        s.on(StopDone{.ok = false, .error = "containers.delete etcd: deadline exceeded"}).empty());
    CHECK(s.m.state == State::kStopped);
    CHECK(s.m.last_error == "containers.delete etcd: deadline exceeded");
  }
  SECTION("a clean stop keeps the previous error") {
    s.m.last_error = "probe: not ready";
    CHECK(s.on(StopDone{.ok = true}).empty());
    CHECK(s.m.state == State::kStopped);
    CHECK(s.m.last_error == "probe: not ready");
  }
}

TEST_CASE("Lifecycle: a start while stopping prepares again once the stop is done") {
  Sim s;
  s.to_waiting_ready();
  s.on(ExitSeen{.pid = kPid, .exit_code = 1});
  s.restart(kPid + 1);
  s.on(ExitSeen{.pid = kPid + 1, .exit_code = 1});
  REQUIRE(s.m.restarts.consecutive() == 2);
  REQUIRE(s.m.state == State::kBackingOff);

  const TimePoint deadline = s.now + 30s;
  CHECK(s.on(StopRequested{.deadline = deadline}) ==
        Actions{act(ActionKind::kCancelTimer), stop_task(deadline)});
  CHECK(s.on(StartRequested{}).empty());
  CHECK(s.m.state == State::kStopping);
  CHECK(s.m.desired == Desired::kRun);

  SECTION("StopDone then prepares; the count starts over (an operator's restart)") {
    CHECK(s.on(StopDone{.ok = true}) == Actions{act(ActionKind::kPrepare)});
    CHECK(s.m.state == State::kPreparing);
    CHECK(s.m.restarts.consecutive() == 0);
    CHECK(s.m.restarts.total() == 2);
    CHECK_FALSE(s.m.stop_deadline.has_value());
    s.on(PrepareDone{.ok = true});
    s.on(StartDone{.ok = true, .pid = 300});
    // Restart 1 of a new run (not 3): immediate.
    CHECK(s.on(ExitSeen{.pid = 300, .exit_code = 1}) ==
          Actions{act(ActionKind::kCancelProbe), arm(0ms)});
    CHECK(s.m.restarts.consecutive() == 1);
  }
  SECTION("a newer stop wins over the start, even with a later deadline") {
    CHECK(s.on(StopRequested{.deadline = deadline + 1min}).empty());
    CHECK(s.m.desired == Desired::kStop);
    CHECK(s.m.stop_deadline == deadline);
    CHECK(s.on(StopDone{.ok = true}).empty());
    CHECK(s.m.state == State::kStopped);
  }
}

TEST_CASE("Lifecycle: max_restarts gives up visibly, a start from failed begins afresh") {
  RestartPolicy p = RestartPolicy::from_preset(RestartPreset::kDefault);
  p.max_restarts = 2;
  Sim s(p);
  s.to_waiting_ready();
  CHECK(s.on(ExitSeen{.pid = kPid, .exit_code = 1}) ==
        Actions{act(ActionKind::kCancelProbe), arm(0ms)});
  s.restart(kPid + 1);
  CHECK(s.on(ExitSeen{.pid = kPid + 1, .exit_code = 2}) ==
        Actions{act(ActionKind::kCancelProbe), arm(2s)});
  s.restart(kPid + 2);

  SECTION("an exit: the message says so") {
    CHECK(s.on(ExitSeen{.pid = kPid + 2, .exit_code = 3}) ==
          Actions{act(ActionKind::kCancelProbe)});
    CHECK(s.m.state == State::kFailed);
    CHECK(s.m.last_error == "gave up after 2 restarts; last exit code 3");
  }
  SECTION("a start error: the real error is kept") {
    s.on(StopRequested{.deadline = s.now + 30s});  // get back to starting cleanly
    s.on(StopDone{.ok = true});
    s.on(StartRequested{});
    REQUIRE(s.m.restarts.consecutive() == 0);
    s.on(PrepareDone{.ok = true});
    // Refused: restart 1 waits the floor's 100 ms, restart 2 the policy's 2 s.
    CHECK(s.on(StartDone{.ok = false, .error = "e1"}) == Actions{arm(100ms)});
    CHECK(s.on(TimerFired{}) == Actions{act(ActionKind::kPrepare)});
    CHECK(s.on(PrepareDone{.ok = false, .error = "e2"}) == Actions{arm(2s)});
    CHECK(s.on(TimerFired{}) == Actions{act(ActionKind::kPrepare)});
    CHECK(s.on(PrepareDone{.ok = false, .error = "image etcd: not found"}).empty());
    CHECK(s.m.state == State::kFailed);
    CHECK(s.m.last_error == "image etcd: not found");
  }

  CHECK(s.m.pid == 0);
  CHECK(s.m.restarts.consecutive() == 2);
  // Failed stays failed: nothing but a start or stop moves it.
  const std::string before = dump(s.m);
  CHECK(s.on(TimerFired{}).empty());
  CHECK(s.on(ExitSeen{.pid = kPid + 2, .exit_code = 3}).empty());
  CHECK(dump(s.m) == before);

  CHECK(s.on(StartRequested{}) == Actions{act(ActionKind::kPrepare)});
  CHECK(s.m.state == State::kPreparing);
  CHECK(s.m.desired == Desired::kRun);
  CHECK(s.m.last_error.empty());
  CHECK(s.m.restarts.consecutive() == 0);
  s.on(PrepareDone{.ok = true});
  s.on(StartDone{.ok = true, .pid = 500});
  CHECK(s.on(ExitSeen{.pid = 500, .exit_code = 1}) ==
        Actions{act(ActionKind::kCancelProbe), arm(0ms)});
  CHECK(s.m.restarts.consecutive() == 1);
}

TEST_CASE("Lifecycle: a start error is retried with backoff, the next attempt prepares") {
  Sim s;
  s.on(StartRequested{});
  s.on(PrepareDone{.ok = true});
  // Restart 1: the policy says at once, the refused-start floor 100 ms.
  CHECK(s.on(StartDone{.ok = false, .error = "tasks.create etcd: already exists"}) ==
        Actions{arm(100ms)});
  CHECK(s.m.state == State::kBackingOff);
  CHECK(s.m.last_error == "tasks.create etcd: already exists");
  CHECK_FALSE(s.m.prepared);
  CHECK(s.m.pid == 0);

  s.advance(100ms);
  CHECK(s.on(TimerFired{}) == Actions{act(ActionKind::kPrepare)});
  CHECK(s.m.state == State::kPreparing);
  // Restart 2: the policy's base, 2 s.
  CHECK(s.on(PrepareDone{.ok = false, .error = "snapshot busy"}) == Actions{arm(2s)});
  CHECK(s.m.last_error == "snapshot busy");
  s.advance(2s);
  CHECK(s.on(TimerFired{}) == Actions{act(ActionKind::kPrepare)});
  CHECK(s.on(PrepareDone{.ok = true}) == Actions{act(ActionKind::kStartTask)});
  CHECK(s.m.prepared);
  CHECK(s.on(StartDone{.ok = true, .pid = kPid}) == Actions{act(ActionKind::kStartProbe)});
  CHECK(s.m.state == State::kWaitingReady);
  CHECK(s.m.restarts.consecutive() == 2);
}

// The refused-start floor itself is RestartTracker's (restart_policy_test):
// here, that the machine reports failed prepares and starts as refused and
// exits as exits.
TEST_CASE("Lifecycle: with a zero base a refused start still backs off, a crash does not") {
  RestartPolicy zero = RestartPolicy::from_preset(RestartPreset::kDefault);
  zero.base = 0ms;
  Sim s(zero);
  s.on(StartRequested{});
  // containerd refuses the start again and again: 100 ms, 200 ms, 400 ms ...
  CHECK(s.on(PrepareDone{.ok = true}) == Actions{act(ActionKind::kStartTask)});
  CHECK(s.on(StartDone{.ok = false, .error = "tasks.create c: file exists"}) ==
        Actions{arm(100ms)});
  s.advance(100ms);
  CHECK(s.on(TimerFired{}) == Actions{act(ActionKind::kPrepare)});
  CHECK(s.on(PrepareDone{.ok = false, .error = "snapshot busy"}) == Actions{arm(200ms)});
  s.advance(200ms);
  CHECK(s.on(TimerFired{}) == Actions{act(ActionKind::kPrepare)});
  CHECK(s.on(PrepareDone{.ok = true}) == Actions{act(ActionKind::kStartTask)});
  CHECK(s.on(StartDone{.ok = false, .error = "again"}) == Actions{arm(400ms)});
  CHECK(s.m.restarts.consecutive() == 3);  // refused starts count as restarts
  Sim c(zero);
  c.to_ready();
  c.advance(1s);
  // The process crashing is the policy's business: at once.
  CHECK(c.on(ExitSeen{.pid = kPid, .exit_code = 1}) == Actions{arm(0ms)});
  // So is a task that dies before StartDone (an exit, not a refusal).
  c.restart(kPid + 1);
  CHECK(c.on(ExitSeen{.pid = kPid + 1, .exit_code = 1}) ==
        Actions{act(ActionKind::kCancelProbe), arm(0ms)});
  REQUIRE(c.on(TimerFired{}) == Actions{act(ActionKind::kStartTask)});
  CHECK(c.on(ExitSeen{.pid = kPid + 2, .exit_code = 1}).empty());
  CHECK(c.on(StartDone{.ok = true, .pid = kPid + 2}) == Actions{arm(0ms)});
}

TEST_CASE("Lifecycle: a stream gap asks for a reconcile, whose result decides") {
  SECTION("ready, the task is dead: backoff") {
    Sim s;
    s.to_ready();
    CHECK(s.on(StreamGap{}) == Actions{act(ActionKind::kReconcile)});
    CHECK(s.m.reconciling);
    CHECK(s.m.state == State::kReady);
    s.advance(1s);
    CHECK(s.on(ReconcileResult{.running = false, .pid = kPid, .exit_code = 2}) ==
          Actions{arm(0ms)});
    CHECK(s.m.state == State::kBackingOff);
    CHECK_FALSE(s.m.reconciling);
    CHECK(s.m.last_exit_code == 2u);
    CHECK(s.m.last_exit_at == s.now);
    CHECK(s.m.pid == 0);
  }
  SECTION("ready, the task is alive: nothing") {
    Sim s;
    s.to_ready();
    s.on(StreamGap{});
    CHECK(s.on(ReconcileResult{.running = true, .pid = kPid}).empty());
    CHECK(s.m.state == State::kReady);
    CHECK(s.m.pid == kPid);
    CHECK_FALSE(s.m.reconciling);
  }
  SECTION("waiting_ready, the task is gone: the probe is cancelled, backoff") {
    Sim s;
    s.to_waiting_ready();
    CHECK(s.on(StreamGap{}) == Actions{act(ActionKind::kReconcile)});
    CHECK(s.on(ReconcileResult{.running = false}) ==
          Actions{act(ActionKind::kCancelProbe), arm(0ms)});
    CHECK(s.m.state == State::kBackingOff);
  }
  SECTION("another task runs than ours: ours is gone") {
    Sim s;
    s.to_ready();
    s.on(StreamGap{});
    CHECK(s.on(ReconcileResult{.running = true, .pid = kPid + 7}) == Actions{arm(0ms)});
    CHECK(s.m.state == State::kBackingOff);
  }
  SECTION("a result nobody asked for is ignored") {
    Sim s;
    s.to_ready();
    const std::string before = dump(s.m);
    CHECK(s.on(ReconcileResult{.running = false}).empty());
    CHECK(dump(s.m) == before);
  }
  SECTION("the exit arrived first: the late result cannot fail the new task") {
    Sim s;
    s.to_ready();
    s.on(StreamGap{});
    CHECK(s.on(ExitSeen{.pid = kPid, .exit_code = 1}) == Actions{arm(0ms)});
    CHECK_FALSE(s.m.reconciling);
    s.restart(kPid + 1);
    CHECK(s.on(ReconcileResult{.running = false, .pid = kPid, .exit_code = 1}).empty());
    CHECK(s.m.state == State::kWaitingReady);
    CHECK(s.m.pid == kPid + 1);
  }
  SECTION("a new gap's reconcile is pending: a result about the older task is ignored") {
    Sim s;
    s.to_ready();
    s.on(StreamGap{});
    s.on(ExitSeen{.pid = kPid, .exit_code = 1});
    s.restart(kPid + 1);
    CHECK(s.on(StreamGap{}) == Actions{act(ActionKind::kReconcile)});
    CHECK(s.on(ReconcileResult{.running = false, .pid = kPid, .exit_code = 1, .asked_pid = kPid})
              .empty());
    CHECK(s.m.state == State::kWaitingReady);
    CHECK(s.m.pid == kPid + 1);
    CHECK(s.m.reconciling);  // still waiting for the answer about kPid + 1
    CHECK(s.on(ReconcileResult{.running = true, .pid = kPid + 1, .asked_pid = kPid + 1}).empty());
    CHECK_FALSE(s.m.reconciling);
  }
  SECTION("a gap where no task is live is ignored") {
    for (State st : {State::kPending, State::kPreparing, State::kStarting, State::kBackingOff,
                     State::kStopping, State::kStopped, State::kFailed}) {
      INFO(herd::supervise::to_string(st));
      Sim s = reach(st);
      const std::string before = dump(s.m);
      CHECK(s.on(StreamGap{}).empty());
      CHECK(dump(s.m) == before);
    }
  }
}

TEST_CASE("Lifecycle: an exit during starting is applied when StartDone tells the pid") {
  Sim s;
  s.on(StartRequested{});
  s.on(PrepareDone{.ok = true});
  s.advance(10ms);
  const TimePoint exit_time = s.now;
  CHECK(s.on(ExitSeen{.pid = 200, .exit_code = 1}).empty());
  CHECK(s.m.state == State::kStarting);
  REQUIRE(s.m.early_exit.has_value());
  s.advance(5ms);

  SECTION("same pid: the task died at once, restart 1 (immediate)") {
    CHECK(s.on(StartDone{.ok = true, .pid = 200}) == Actions{arm(0ms)});
    CHECK(s.m.state == State::kBackingOff);
    CHECK(s.m.last_exit_code == 1u);
    CHECK(s.m.last_exit_at == exit_time);
    CHECK(s.m.pid == 0);
    CHECK_FALSE(s.m.early_exit.has_value());
    CHECK(s.m.restarts.consecutive() == 1);
  }
  SECTION("another pid (an old task's exit): the new task is probed") {
    CHECK(s.on(StartDone{.ok = true, .pid = 201}) == Actions{act(ActionKind::kStartProbe)});
    CHECK(s.m.state == State::kWaitingReady);
    CHECK(s.m.pid == 201);
    CHECK_FALSE(s.m.early_exit.has_value());
    CHECK_FALSE(s.m.last_exit_code.has_value());
  }
  SECTION("the start failed: a plain start error (refused: the floor's 100 ms)") {
    CHECK(s.on(StartDone{.ok = false, .error = "start: exec format error"}) == Actions{arm(100ms)});
    CHECK_FALSE(s.m.early_exit.has_value());
    CHECK(s.m.last_error == "start: exec format error");
  }
}

TEST_CASE("Lifecycle: exits of an old task, and of pid 0, are ignored") {
  Sim s;
  s.to_ready();
  for (State expect : {State::kReady, State::kWaitingReady, State::kBackingOff}) {
    INFO(herd::supervise::to_string(expect));
    if (expect == State::kWaitingReady) {
      s.on(ExitSeen{.pid = kPid, .exit_code = 1});
      s.restart(kPid + 1);
    }
    if (expect == State::kBackingOff) s.on(ExitSeen{.pid = kPid + 1, .exit_code = 1});
    REQUIRE(s.m.state == expect);
    const std::string before = dump(s.m);
    CHECK(s.on(ExitSeen{.pid = kPid - 1, .exit_code = 1}).empty());
    CHECK(s.on(ExitSeen{.pid = 0, .exit_code = 1}).empty());
    if (expect != State::kReady) CHECK(s.on(ExitSeen{.pid = kPid, .exit_code = 1}).empty());
    CHECK(dump(s.m) == before);
  }
}

TEST_CASE("Lifecycle: a failed probe kills the task, its exit then backs off") {
  SECTION("while waiting for readiness") {
    Sim s;
    s.to_waiting_ready();
    CHECK(s.on(ProbeFailed{.error = "not ready after 60s"}) ==
          Actions{act(ActionKind::kCancelProbe), act(ActionKind::kKillTask)});
    CHECK(s.m.state == State::kWaitingReady);
    CHECK(s.m.last_error == "not ready after 60s");
    CHECK(s.m.pid == kPid);
    CHECK(s.on(ExitSeen{.pid = kPid, .exit_code = 137}) ==
          Actions{act(ActionKind::kCancelProbe), arm(0ms)});
    CHECK(s.m.state == State::kBackingOff);
  }
  SECTION("after ready") {
    Sim s;
    s.to_ready();
    CHECK(s.on(ProbeFailed{.error = "3 failed checks"}) ==
          Actions{act(ActionKind::kCancelProbe), act(ActionKind::kKillTask)});
    CHECK(s.m.state == State::kReady);
    CHECK(s.on(ExitSeen{.pid = kPid, .exit_code = 137}) == Actions{arm(0ms)});
    CHECK(s.m.state == State::kBackingOff);
    CHECK(s.m.last_error == "3 failed checks");
  }
}

TEST_CASE("Lifecycle: events that do not apply leave the machine unchanged") {
  const Event start = StartRequested{};
  const Event prepared = PrepareDone{.ok = true};
  const Event started = StartDone{.ok = true, .pid = 900};
  const Event exit_ours = ExitSeen{.pid = kPid, .exit_code = 1};
  const Event exit_other = ExitSeen{.pid = 900, .exit_code = 1};
  const Event probe_ok = ProbeOk{};
  const Event probe_failed = ProbeFailed{.error = "x"};
  const Event timer = TimerFired{};
  const Event stop_done = StopDone{.ok = true};
  const Event gap = StreamGap{};
  const Event reconciled = ReconcileResult{.running = false};

  const std::vector<std::pair<State, std::vector<Event>>> table = {
      {State::kPending,
       {prepared, started, exit_ours, probe_ok, probe_failed, timer, stop_done, gap, reconciled}},
      {State::kPreparing,
       {start, started, exit_ours, probe_ok, probe_failed, timer, stop_done, gap, reconciled}},
      {State::kStarting,
       {start, prepared, ExitSeen{.pid = 0}, probe_ok, probe_failed, timer, stop_done, gap,
        reconciled}},
      {State::kWaitingReady, {start, prepared, started, exit_other, timer, stop_done, reconciled}},
      {State::kReady,
       {start, prepared, started, exit_other, probe_ok, timer, stop_done, reconciled}},
      {State::kBackingOff,
       {start, prepared, started, exit_ours, ExitSeen{.pid = kPid + 1, .exit_code = 1}, probe_ok,
        probe_failed, stop_done, gap, reconciled}},
      {State::kStopping,
       {prepared, started, exit_other, probe_ok, probe_failed, timer, gap, reconciled}},
      {State::kStopped,
       {prepared, started, exit_ours, probe_ok, probe_failed, timer, stop_done, gap, reconciled}},
      {State::kFailed,
       {prepared, started, exit_ours, probe_ok, probe_failed, timer, stop_done, gap, reconciled}},
      {State::kCompleted,
       {prepared, started, exit_ours, probe_ok, probe_failed, timer, stop_done, gap, reconciled}},
  };
  REQUIRE(table.size() == kAllStates.size());
  for (const auto& [state, events] : table) {
    for (const Event& e : events) {
      INFO(herd::supervise::event_name(e) << " in " << herd::supervise::to_string(state));
      Sim s = reach(state);
      const std::string before = dump(s.m);
      CHECK(s.on(e).empty());
      CHECK(dump(s.m) == before);
    }
  }
}

// --- liveness

TEST_CASE("Lifecycle: liveness failing while ready terminates the task, its exit backs off") {
  Sim s;
  s.to_ready();
  s.advance(10s);
  CHECK(s.on(LivenessFailed{"3 consecutive failures, last error: GET /: status 404"}) ==
        Actions{act(ActionKind::kTerminateTask)});
  CHECK(s.m.state == State::kReady);  // until the task is gone
  CHECK(s.m.liveness_failed);
  CHECK(s.m.last_error == "liveness: 3 consecutive failures, last error: GET /: status 404");
  // The task exits 0 on its stop_signal: still a failure, restart 1 (immediate).
  CHECK(s.on(ExitSeen{.pid = kPid, .exit_code = 0}) == Actions{arm(0ms)});
  CHECK(s.m.state == State::kBackingOff);
  CHECK(s.m.restarts.consecutive() == 1);
  CHECK(s.m.restarts.total() == 1);
  CHECK_FALSE(s.m.liveness_failed);
  CHECK(s.m.last_error == "liveness: 3 consecutive failures, last error: GET /: status 404");
  CHECK(s.m.last_exit_code == 0u);
  // The restart runs in the same container, and the count makes the next one wait base.
  s.restart(kPid + 1);
  CHECK(s.on(ProbeOk{}).empty());
  CHECK(s.on(LivenessFailed{"x"}) == Actions{act(ActionKind::kTerminateTask)});
  CHECK(s.on(ExitSeen{.pid = kPid + 1, .exit_code = 143}) == Actions{arm(2s)});
  CHECK(s.m.restarts.consecutive() == 2);
}

TEST_CASE("Lifecycle: a liveness failure of a job is a failure, not a completion") {
  Sim s(job(herd::config::RestartOn::kOnFailure));
  s.to_ready();
  CHECK(s.on(LivenessFailed{"x"}) == Actions{act(ActionKind::kTerminateTask)});
  CHECK(s.on(ExitSeen{.pid = kPid, .exit_code = 0}) == Actions{arm(0ms)});
  CHECK(s.m.state == State::kBackingOff);

  Sim never(job(herd::config::RestartOn::kNever));
  never.to_ready();
  CHECK(never.on(LivenessFailed{"x"}) == Actions{act(ActionKind::kTerminateTask)});
  CHECK(never.on(ExitSeen{.pid = kPid, .exit_code = 0}).empty());
  CHECK(never.m.state == State::kFailed);
  CHECK(never.m.last_error == "liveness: x");
}

TEST_CASE("Lifecycle: a liveness failure at max_restarts gives up") {
  Sim s = reach(State::kReady);  // one restart allowed
  CHECK(s.on(LivenessFailed{"x"}) == Actions{act(ActionKind::kTerminateTask)});
  CHECK(s.on(ExitSeen{.pid = kPid, .exit_code = 137}) == Actions{arm(0ms)});
  s.restart(kPid + 1);
  CHECK(s.on(ProbeOk{}).empty());
  CHECK(s.on(LivenessFailed{"y"}) == Actions{act(ActionKind::kTerminateTask)});
  CHECK(s.on(ExitSeen{.pid = kPid + 1, .exit_code = 137}).empty());
  CHECK(s.m.state == State::kFailed);
  CHECK(s.m.last_error == "liveness: y");
}

TEST_CASE("Lifecycle: a second liveness failure while terminating changes nothing") {
  Sim s;
  s.to_ready();
  s.on(LivenessFailed{"first"});
  const std::string before = dump(s.m);
  CHECK(s.on(LivenessFailed{"second"}).empty());
  CHECK(dump(s.m) == before);
  CHECK(s.m.last_error == "liveness: first");
}

TEST_CASE("Lifecycle: a stop while terminating is an ordinary stop") {
  Sim s;
  s.to_ready();
  s.on(LivenessFailed{"x"});
  CHECK(s.on(StopRequested{.deadline = s.now + 30s}) == Actions{stop_task(s.now + 30s)});
  CHECK(s.m.state == State::kStopping);
  CHECK_FALSE(s.m.liveness_failed);
  // The terminated task's exit during the stop is only recorded.
  CHECK(s.on(ExitSeen{.pid = kPid, .exit_code = 143}).empty());
  CHECK(s.on(StopDone{.ok = true}).empty());
  CHECK(s.m.state == State::kStopped);
  CHECK(s.m.restarts.total() == 0);
}

TEST_CASE("Lifecycle: a reconcile that finds the terminated task gone backs off") {
  Sim s;
  s.to_ready();
  s.on(LivenessFailed{"x"});
  CHECK(s.on(StreamGap{}) == Actions{act(ActionKind::kReconcile)});
  CHECK(s.on(ReconcileResult{.running = false, .pid = kPid, .exit_code = 0}) == Actions{arm(0ms)});
  CHECK(s.m.state == State::kBackingOff);
  CHECK(s.m.last_error == "liveness: x");
}

TEST_CASE("Lifecycle: a liveness failure in any state but ready changes nothing") {
  for (State st : kAllStates) {
    if (st == State::kReady) continue;
    CAPTURE(st);
    Sim s = reach(st);
    const std::string before = dump(s.m);
    CHECK(s.on(LivenessFailed{"late"}).empty());
    CHECK(dump(s.m) == before);
    CHECK_FALSE(s.m.liveness_failed);
  }
}

TEST_CASE("Lifecycle: after a liveness restart a plain exit is judged as usual again") {
  Sim s(job(herd::config::RestartOn::kOnFailure));
  s.to_ready();
  s.on(LivenessFailed{"x"});
  s.on(ExitSeen{.pid = kPid, .exit_code = 0});
  s.restart(kPid + 1);
  CHECK(s.on(ProbeOk{}).empty());
  CHECK(s.on(ExitSeen{.pid = kPid + 1, .exit_code = 0}).empty());
  CHECK(s.m.state == State::kCompleted);
}

TEST_CASE("Lifecycle: an exit the runtime lost is marked, and restarts as any exit") {
  SECTION("the shim died: containerd's 137 is not the process's own") {
    Sim s;
    s.to_ready();
    CHECK(s.on(ExitSeen{.pid = kPid, .exit_code = 137, .runtime_lost = true}) == Actions{arm(0ms)});
    CHECK(s.m.state == State::kBackingOff);
    CHECK(s.m.last_exit_lost);
    CHECK(s.m.last_exit_code == 137u);
    CHECK_THAT(s.m.last_error, Catch::Contains("shim died"));
    // The next, ordinary exit is the process's own again.
    s.on(TimerFired{});
    s.on(StartDone{.ok = true, .pid = kPid + 1});
    s.on(ExitSeen{.pid = kPid + 1, .exit_code = 1});
    CHECK_FALSE(s.m.last_exit_lost);
  }
  SECTION("found gone by a reconcile") {
    Sim s;
    s.to_ready();
    s.on(StreamGap{});
    CHECK(s.on(ReconcileResult{.running = false, .pid = kPid, .exit_code = 0}) ==
          Actions{arm(0ms)});
    CHECK(s.m.last_exit_lost);
    CHECK_THAT(s.m.last_error, Catch::Contains("never reported"));
  }
  SECTION("an ordinary exit is not lost") {
    Sim s;
    s.to_ready();
    s.on(ExitSeen{.pid = kPid, .exit_code = 137});
    CHECK_FALSE(s.m.last_exit_lost);
    CHECK(s.m.last_error.empty());
  }
}
