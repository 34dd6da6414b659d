// The lifecycle's exit rules (restart.on, restart.prevent_exit_codes) and
// its `completed` state, on a fake clock.
#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "supervise/lifecycle.h"

using namespace std::chrono_literals;
using herd::config::RestartOn;
using herd::config::RestartPolicy;
using herd::config::RestartPreset;
using herd::supervise::Action;
using herd::supervise::ActionKind;
using herd::supervise::Duration;
using herd::supervise::Event;
using herd::supervise::ExitSeen;
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
using Actions = std::vector<Action>;

namespace Catch {
template <>
struct StringMaker<State> {
  static std::string convert(State s) { return std::string(herd::supervise::to_string(s)); }
};
template <>
struct StringMaker<Action> {
  static std::string convert(const Action& a) {
    return std::string(herd::supervise::to_string(a.kind)) + "(" + std::to_string(a.delay.count()) +
           "ms)";
  }
};
}  // namespace Catch

namespace {

constexpr uint32_t kPid = 100;

Action act(ActionKind k) { return Action{k, Duration{0}, TimePoint{}}; }
Action arm(Duration d) { return Action{ActionKind::kArmTimer, d, TimePoint{}}; }

RestartPolicy policy(RestartOn on, std::vector<uint32_t> prevent = {}) {
  RestartPolicy p = RestartPolicy::from_preset(RestartPreset::kDefault);  // base 2 s
  p.on = on;
  p.prevent_exit_codes = std::move(prevent);
  return p;
}

struct Sim {
  explicit Sim(RestartPolicy p) { m.restarts = RestartTracker(std::move(p)); }
  Actions on(const Event& e) {
    auto t = herd::supervise::step(m, e, now);
    m = std::move(t.machine);
    return t.actions;
  }
  void to_ready(uint32_t pid = kPid) {
    REQUIRE(on(StartRequested{}) == Actions{act(ActionKind::kPrepare)});
    REQUIRE(on(PrepareDone{.ok = true}) == Actions{act(ActionKind::kStartTask)});
    REQUIRE(on(StartDone{.ok = true, .pid = pid}) == Actions{act(ActionKind::kStartProbe)});
    REQUIRE(on(ProbeOk{}).empty());
    REQUIRE(m.state == State::kReady);
  }
  Machine m;
  TimePoint now = TimePoint{} + 1h;
};

}  // namespace

TEST_CASE("Jobs: restart.on decides what a clean and a failing exit lead to") {
  struct Row {
    RestartOn on;
    uint32_t code;
    State to;
    bool restarts;  // backing_off; restart 1 of the run, so immediate
  };
  const std::vector<Row> rows = {
      {RestartOn::kAlways, 0, State::kBackingOff, true},  // as before: every exit restarts
      {RestartOn::kAlways, 1, State::kBackingOff, true},
      {RestartOn::kOnFailure, 0, State::kCompleted, false},
      {RestartOn::kOnFailure, 1, State::kBackingOff, true},
      {RestartOn::kOnFailure, 137, State::kBackingOff, true},
      {RestartOn::kNever, 0, State::kCompleted, false},
      {RestartOn::kNever, 1, State::kFailed, false},
      {RestartOn::kNever, 255, State::kFailed, false},
  };
  for (const Row& row : rows) {
    INFO("on=" << herd::config::to_string(row.on) << " exit " << row.code);
    Sim s(policy(row.on));
    s.to_ready();
    const Actions actions = s.on(ExitSeen{.pid = kPid, .exit_code = row.code});
    CHECK(s.m.state == row.to);
    CHECK(s.m.pid == 0);
    CHECK(s.m.last_exit_code == row.code);
    CHECK_FALSE(s.m.ready_since.has_value());
    CHECK_FALSE(s.m.restarts.ready_since().has_value());
    if (row.restarts) {
      CHECK(actions == Actions{arm(0ms)});
      CHECK(s.m.restarts.total() == 1);
    } else {
      CHECK(actions.empty());
      CHECK(s.m.restarts.total() == 0);
    }
    if (row.to == State::kCompleted) CHECK(s.m.last_error.empty());
    if (row.to == State::kFailed) {
      CHECK(s.m.last_error ==
            "exit code " + std::to_string(row.code) + ", not restarted (restart.on: never)");
    }
  }
}

TEST_CASE("Jobs: an exit code in prevent_exit_codes fails at once, naming the code") {
  for (RestartOn on : {RestartOn::kAlways, RestartOn::kOnFailure, RestartOn::kNever}) {
    INFO("on=" << herd::config::to_string(on));
    Sim s(policy(on, {2, 78}));
    s.to_ready();
    CHECK(s.on(ExitSeen{.pid = kPid, .exit_code = 78}).empty());
    CHECK(s.m.state == State::kFailed);
    CHECK(s.m.last_error == "exit code 78 is in restart.prevent_exit_codes: not restarted");
    CHECK(s.m.restarts.total() == 0);
    CHECK(s.m.last_exit_code == 78u);
  }
  // Other codes take the usual path.
  Sim s(policy(RestartOn::kAlways, {2}));
  s.to_ready();
  CHECK(s.on(ExitSeen{.pid = kPid, .exit_code = 3}) == Actions{arm(0ms)});
  CHECK(s.m.state == State::kBackingOff);
  // ... and a later prevented code still fails at once, from the restarted task.
  CHECK(s.on(TimerFired{}) == Actions{act(ActionKind::kStartTask)});
  CHECK(s.on(StartDone{.ok = true, .pid = kPid + 1}) == Actions{act(ActionKind::kStartProbe)});
  CHECK(s.on(ExitSeen{.pid = kPid + 1, .exit_code = 2}) == Actions{act(ActionKind::kCancelProbe)});
  CHECK(s.m.state == State::kFailed);
  CHECK(s.m.last_error == "exit code 2 is in restart.prevent_exit_codes: not restarted");
}

TEST_CASE("Jobs: a task that dies before StartDone, and a reconcile, follow the same rules") {
  Sim early(policy(RestartOn::kOnFailure));
  REQUIRE(early.on(StartRequested{}) == Actions{act(ActionKind::kPrepare)});
  REQUIRE(early.on(PrepareDone{.ok = true}) == Actions{act(ActionKind::kStartTask)});
  CHECK(early.on(ExitSeen{.pid = kPid, .exit_code = 0}).empty());
  CHECK(early.on(StartDone{.ok = true, .pid = kPid}).empty());
  CHECK(early.m.state == State::kCompleted);
  CHECK(early.m.last_exit_code == 0u);

  Sim gap(policy(RestartOn::kNever, {9}));
  gap.to_ready();
  CHECK(gap.on(StreamGap{}) == Actions{act(ActionKind::kReconcile)});
  CHECK(gap.on(ReconcileResult{.running = false, .pid = kPid, .exit_code = 9}).empty());
  CHECK(gap.m.state == State::kFailed);
  CHECK(gap.m.last_error == "exit code 9 is in restart.prevent_exit_codes: not restarted");

  // A job whose probe gave up: the kill's exit (137) is a failure.
  Sim probe(policy(RestartOn::kNever));
  REQUIRE(probe.on(StartRequested{}) == Actions{act(ActionKind::kPrepare)});
  REQUIRE(probe.on(PrepareDone{.ok = true}) == Actions{act(ActionKind::kStartTask)});
  REQUIRE(probe.on(StartDone{.ok = true, .pid = kPid}) == Actions{act(ActionKind::kStartProbe)});
  CHECK(probe.on(ProbeFailed{.error = "readiness: timed out"}) ==
        Actions{act(ActionKind::kCancelProbe), act(ActionKind::kKillTask)});
  probe.on(ExitSeen{.pid = kPid, .exit_code = 137});
  CHECK(probe.m.state == State::kFailed);
  CHECK(probe.m.last_error ==
        "readiness: timed out; exit code 137, not restarted (restart.on: never)");
}

TEST_CASE("Jobs: a refused start backs off even with restart.on never (not the job's exit)") {
  Sim s(policy(RestartOn::kNever));
  REQUIRE(s.on(StartRequested{}) == Actions{act(ActionKind::kPrepare)});
  const Actions actions = s.on(PrepareDone{.ok = false, .error = "containerd refused"});
  REQUIRE(actions.size() == 1);
  CHECK(actions[0].kind == ActionKind::kArmTimer);
  CHECK(s.m.state == State::kBackingOff);
}

TEST_CASE("Jobs: completed starts afresh on a start, and a stop removes what is left") {
  Sim s(policy(RestartOn::kOnFailure));
  s.to_ready();
  s.on(ExitSeen{.pid = kPid, .exit_code = 1});  // one restart first
  REQUIRE(s.m.restarts.consecutive() == 1);
  s.on(TimerFired{});
  s.on(StartDone{.ok = true, .pid = kPid + 1});
  s.on(ExitSeen{.pid = kPid + 1, .exit_code = 0});
  REQUIRE(s.m.state == State::kCompleted);

  // An operator's start runs the job again, from prepare, count reset.
  CHECK(s.on(StartRequested{}) == Actions{act(ActionKind::kPrepare)});
  CHECK(s.m.state == State::kPreparing);
  CHECK(s.m.restarts.consecutive() == 0);

  Sim t(policy(RestartOn::kNever));
  t.to_ready();
  t.on(ExitSeen{.pid = kPid, .exit_code = 0});
  REQUIRE(t.m.state == State::kCompleted);
  const TimePoint deadline = t.now + 30s;
  const Actions stop = t.on(StopRequested{.deadline = deadline});
  CHECK(stop == Actions{Action{ActionKind::kStopTask, Duration{0}, deadline}});
  CHECK(t.m.state == State::kStopping);
  CHECK(t.on(StopDone{.ok = true}).empty());
  CHECK(t.m.state == State::kStopped);
}

TEST_CASE("OOM: an OOM event, then the SIGKILL exit, is an OOM kill, counted per component") {
  using herd::supervise::OomSeen;
  Sim s(policy(RestartOn::kAlways));
  s.to_ready();
  CHECK(s.on(OomSeen{}).empty());
  CHECK(s.m.oom_kills == 1);
  CHECK(s.m.state == State::kReady);  // the event alone changes no state
  s.on(ExitSeen{.pid = kPid, .exit_code = 137});
  CHECK(s.m.state == State::kBackingOff);
  CHECK(s.m.last_exit_oom);
  // The next run's plain exit is not one.
  s.on(TimerFired{});
  s.on(StartDone{.ok = true, .pid = kPid + 1});
  s.on(ExitSeen{.pid = kPid + 1, .exit_code = 1});
  CHECK_FALSE(s.m.last_exit_oom);
  CHECK(s.m.oom_kills == 1);
}

TEST_CASE("OOM: the exit seen before the OOM event is still an OOM kill") {
  using herd::supervise::OomSeen;
  Sim s(policy(RestartOn::kNever));
  s.to_ready();
  s.on(ExitSeen{.pid = kPid, .exit_code = 137});
  REQUIRE(s.m.state == State::kFailed);
  CHECK_FALSE(s.m.last_exit_oom);
  CHECK(s.on(OomSeen{}).empty());
  CHECK(s.m.last_exit_oom);
  CHECK(s.m.oom_kills == 1);
  CHECK(s.m.state == State::kFailed);
}

TEST_CASE("OOM: an OOM kill of a child leaves the main process's other exits alone") {
  using herd::supervise::OomSeen;
  Sim s(policy(RestartOn::kAlways));
  s.to_ready();
  s.on(OomSeen{});  // a child was killed; the main process goes on
  s.on(ExitSeen{.pid = kPid, .exit_code = 2});
  CHECK_FALSE(s.m.last_exit_oom);  // not a SIGKILL: its own exit
  CHECK(s.m.oom_kills == 1);
  // And a late OOM event with no SIGKILL exit marks nothing.
  s.on(OomSeen{});
  CHECK_FALSE(s.m.last_exit_oom);
  CHECK(s.m.oom_kills == 2);
}
