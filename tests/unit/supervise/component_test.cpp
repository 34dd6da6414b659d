// Component, the actor, driven by fake operations on a fake clock
// (fakes.h): no containerd, no sleeping. Each test settles the io_context
// after every step, so what it checks is what the actor did with
// everything it could do.
#include "supervise/component.h"

#include <catch2/catch.hpp>

#include "fakes.h"

using namespace std::chrono_literals;
using herd::supervise::Component;
using herd::supervise::ComponentStatus;
using herd::supervise::State;
using herd::supervise::fakes::FakeRuntime;
using herd::supervise::fakes::FakeTime;
using herd::supervise::fakes::settle;
namespace asio = boost::asio;

namespace {

herd::config::Component component_config(const std::string& extra = "") {
  const std::string text =
      R"({"components": [{"name": "a", "image": "herd.local/a:1")" + extra + "}]}";
  auto parsed = herd::config::parse_config(text);
  INFO(parsed.error_text());
  REQUIRE(parsed.ok());
  return parsed.config->components.at(0);
}

struct Rig {
  // The fakes outlive the io_context: its handlers hold actors, whose
  // timers and ops point at them.
  FakeRuntime rt;
  FakeTime time;
  asio::io_context io;
  std::vector<ComponentStatus> seen;
  std::shared_ptr<Component> c;

  explicit Rig(const std::string& extra = R"(, "restart": {"base": "1s", "max": "8s"})") {
    Component::Env env;
    env.runtime = &rt;
    env.time = &time;
    env.random = [] { return 0.5; };
    c = Component::create(asio::make_strand(io), std::move(env), component_config(extra),
                          [this](const ComponentStatus& s) { seen.push_back(s); });
  }
  ~Rig() {
    // Let every waiting fake finish, so no coroutine outlives the rig.
    for (auto& call : rt.calls) FakeRuntime::release(call);
    settle(io);
    // Whatever holds an executor of `io` goes before it: the calls' gates,
    // the timers' handlers (which hold actors), the subscription.
    rt.calls.clear();
    time.clear();
    rt.subscription.reset();
  }
  State state() const { return c->state(); }
  ComponentStatus status() const { return c->status(); }
  void exit(uint32_t pid, uint32_t code) {
    herd::containerd::TaskEvent e;
    e.kind = herd::containerd::TaskEvent::Kind::kExit;
    e.container_id = "a";
    e.exec_id = "a";
    e.pid = pid;
    e.exit_status = code;
    c->on_task_event(e);
    settle(io);
  }
  // Start and reach ready (no probe configured: ready once the task runs).
  void up() {
    c->start();
    settle(io);
    REQUIRE(state() == State::kReady);
  }
};

}  // namespace

TEST_CASE("component: start prepares, starts the task and is ready with its pid", "[component]") {
  Rig r;
  r.up();
  CHECK(r.rt.ops_of("a") == std::vector<std::string>{"prepare", "start"});
  CHECK(r.status().pid == 100);
  CHECK(r.status().restarts == 0);
  REQUIRE(!r.seen.empty());
  CHECK(r.seen.back().state == State::kReady);
}

TEST_CASE(
    "component: a first exit restarts at once, a second backs off for the policy's base on "
    "the fake clock; both restart the task in the same container",
    "[component]") {
  Rig r;
  r.up();
  r.exit(100, 1);
  CHECK(r.state() == State::kBackingOff);
  CHECK(r.status().last_exit_code == 1u);
  // Restart 1: a timer of 0, on the fake clock too.
  REQUIRE(r.time.next_timer() == std::chrono::milliseconds(0));
  r.time.advance(0ms);
  settle(r.io);
  CHECK(r.state() == State::kReady);
  CHECK(r.status().pid == 101);
  CHECK(r.status().restarts == 1);

  // Restart 2: base (1 s).
  r.exit(101, 2);
  CHECK(r.state() == State::kBackingOff);
  CHECK(r.status().last_exit_code == 2u);
  REQUIRE(r.time.next_timer() == std::chrono::milliseconds(1000));
  r.time.advance(999ms);
  settle(r.io);
  CHECK(r.state() == State::kBackingOff);
  r.time.advance(1ms);
  settle(r.io);
  CHECK(r.state() == State::kReady);
  CHECK(r.status().pid == 102);
  CHECK(r.status().restarts == 2);
  // Restarts reuse the prepared container: one prepare, three starts.
  CHECK(r.rt.ops_of("a") == std::vector<std::string>{"prepare", "start", "start", "start"});
}

TEST_CASE("component: an exit of another pid (an old task) changes nothing", "[component]") {
  Rig r;
  r.up();
  r.exit(99, 1);
  CHECK(r.state() == State::kReady);
  CHECK(r.status().pid == 100);
}

TEST_CASE(
    "component: a stop during prepare cancels it, waits for it to unwind, and its "
    "late result is dropped",
    "[component][stop]") {
  Rig r;
  r.rt.manual = {"prepare"};
  r.c->start();
  settle(r.io);
  auto prepare = r.rt.pending("a", "prepare");
  REQUIRE(prepare);
  r.c->stop(r.time.now() + 10s);
  settle(r.io);
  CHECK(prepare->cancel->cancelled());
  CHECK(r.state() == State::kStopping);
  // The stop waits: a prepare still unwinding could create a container
  // after the stop removed it.
  CHECK(r.rt.count("a", "stop") == 0);
  FakeRuntime::ok(prepare);
  settle(r.io);
  CHECK(r.rt.count("a", "stop") == 1);
  CHECK(r.state() == State::kStopped);
  CHECK(r.rt.count("a", "start") == 0);
}

TEST_CASE("component: a stop during the task start never reports the started task as ready",
          "[component][stop]") {
  Rig r;
  r.rt.manual = {"start"};
  r.c->start();
  settle(r.io);
  auto start = r.rt.pending("a", "start");
  REQUIRE(start);
  r.c->stop(r.time.now() + 10s);
  settle(r.io);
  CHECK(start->cancel->cancelled());
  CHECK(r.rt.count("a", "stop") == 0);
  FakeRuntime::ok(start, 7);
  settle(r.io);
  CHECK(r.state() == State::kStopped);
  for (const auto& s : r.seen) CHECK(s.state != State::kReady);
}

TEST_CASE("component: a stop while backing off cancels the restart timer", "[component][stop]") {
  Rig r;
  r.up();
  // Fail twice: the first restart is immediate, the second waits base (1 s).
  r.exit(100, 1);
  REQUIRE(r.time.next_timer() == std::chrono::milliseconds(0));
  r.time.advance(0ms);
  settle(r.io);
  REQUIRE(r.state() == State::kReady);
  r.exit(101, 1);
  REQUIRE(r.state() == State::kBackingOff);
  REQUIRE(r.time.armed() == 1);
  REQUIRE(r.time.next_timer() == std::chrono::milliseconds(1000));
  r.c->stop(r.time.now() + 10s);
  settle(r.io);
  CHECK(r.state() == State::kStopped);
  CHECK(r.time.armed() == 0);
  r.time.advance(1h);
  settle(r.io);
  CHECK(r.rt.count("a", "start") == 2);
}

TEST_CASE("component: a second stop with an earlier deadline shortens the running stop",
          "[component][stop]") {
  Rig r;
  r.rt.manual = {"stop"};
  r.up();
  const auto t0 = r.time.now();
  r.c->stop(t0 + 10s);
  settle(r.io);
  auto stop = r.rt.pending("a", "stop");
  REQUIRE(stop);
  REQUIRE(stop->deadline);
  CHECK(stop->deadline() == t0 + 10s);
  r.c->stop(t0 + 1s);
  settle(r.io);
  CHECK(stop->deadline() == t0 + 1s);
  // A later deadline does not lengthen it.
  r.c->stop(t0 + 20s);
  settle(r.io);
  CHECK(stop->deadline() == t0 + 1s);
  CHECK(r.rt.count("a", "stop") == 1);
  FakeRuntime::ok(stop);
  settle(r.io);
  CHECK(r.state() == State::kStopped);
}

TEST_CASE("component: an operation that throws is that operation's failure", "[component]") {
  SECTION("prepare: the component backs off, names the error, and retries") {
    Rig r;
    r.rt.throwing = {"prepare"};
    r.c->start();
    settle(r.io);
    CHECK(r.state() == State::kBackingOff);
    CHECK(r.status().last_error.find("internal error: prepare threw") != std::string::npos);
    CHECK(r.status().last_error.find("fake prepare blew up") != std::string::npos);
    r.rt.throwing.clear();
    REQUIRE(r.time.next_timer());
    r.time.advance(*r.time.next_timer());
    settle(r.io);
    CHECK(r.state() == State::kReady);
    CHECK(r.rt.count("a", "prepare") == 2);
  }
  SECTION("stop: the stop still completes, with the error kept") {
    Rig r;
    r.up();
    r.rt.throwing = {"stop"};
    r.c->stop(r.time.now() + 10s);
    settle(r.io);
    CHECK(r.state() == State::kStopped);
    CHECK(r.status().last_error.find("internal error: stop threw") != std::string::npos);
  }
}

TEST_CASE("component: refused starts wait at least the error floor, whatever the base",
          "[component]") {
  Rig r(R"(, "restart": {"base": "0s", "max": "10s"})");
  r.rt.manual = {"start"};
  r.c->start();
  settle(r.io);
  FakeRuntime::fail(r.rt.pending("a", "start"), "containerd said no");
  settle(r.io);
  CHECK(r.state() == State::kBackingOff);
  CHECK(r.status().last_error.find("containerd said no") != std::string::npos);
  CHECK(r.time.next_timer() == std::chrono::milliseconds(100));
  r.time.advance(100ms);
  settle(r.io);
  // A failed start prepares again (the container may be what is wrong).
  CHECK(r.rt.count("a", "prepare") == 2);
  FakeRuntime::fail(r.rt.pending("a", "start"), "containerd said no");
  settle(r.io);
  CHECK(r.time.next_timer() == std::chrono::milliseconds(200));
}

TEST_CASE("component: after a stream gap the task's real state decides", "[component][gap]") {
  SECTION("still running: nothing changes") {
    Rig r;
    r.up();
    r.c->on_stream_gap();
    settle(r.io);
    CHECK(r.rt.count("a", "reconcile") == 1);
    CHECK(r.state() == State::kReady);
    CHECK(r.status().pid == 100);
  }
  SECTION("died during the gap: the same path as an exit") {
    Rig r;
    r.up();
    r.rt.reconcile_running = false;
    r.c->on_stream_gap();
    settle(r.io);
    CHECK(r.state() == State::kBackingOff);
    CHECK(r.status().last_exit_code == 137u);
    CHECK(r.time.next_timer() == std::chrono::milliseconds(0));  // restart 1: at once
    r.time.advance(0ms);
    settle(r.io);
    CHECK(r.state() == State::kReady);
    CHECK(r.status().restarts == 1);
  }
  SECTION("a reconcile that answers after the task has exited and restarted is dropped") {
    Rig r(R"(, "restart": {"base": "0s"})");
    r.rt.manual = {"reconcile"};
    r.up();
    r.c->on_stream_gap();
    settle(r.io);
    auto rec = r.rt.pending("a", "reconcile");
    REQUIRE(rec);
    r.exit(100, 1);
    r.time.advance(*r.time.next_timer());
    settle(r.io);
    REQUIRE(r.state() == State::kReady);
    REQUIRE(r.status().pid == 101);
    rec->running = false;  // about the old task
    rec->exit_code = 9;
    FakeRuntime::release(rec);
    settle(r.io);
    CHECK(r.state() == State::kReady);
    CHECK(r.status().pid == 101);
  }
}

TEST_CASE(
    "component: detach reports idle only once its in-flight calls have unwound, and "
    "reports nothing after",
    "[component]") {
  Rig r;
  r.rt.manual = {"prepare"};
  r.c->start();
  settle(r.io);
  auto prepare = r.rt.pending("a", "prepare");
  REQUIRE(prepare);
  bool idle = false;
  r.c->detach([&] { idle = true; });
  settle(r.io);
  CHECK(prepare->cancel->cancelled());
  CHECK_FALSE(idle);
  const size_t reports = r.seen.size();
  FakeRuntime::ok(prepare);
  settle(r.io);
  CHECK(idle);
  CHECK(r.seen.size() == reports);
  CHECK(r.rt.count("a", "start") == 0);
  CHECK(r.rt.count("a", "stop") == 0);  // the task is left for a successor
}

TEST_CASE("component: status times come from the time source", "[component]") {
  Rig r;
  r.up();
  const auto ready_wall = r.time.wall_now();
  r.time.advance(5min);
  auto s = r.status();
  REQUIRE(s.started_at);
  CHECK(*s.started_at == ready_wall);
  REQUIRE(s.ready_since);
  CHECK(*s.ready_since == ready_wall);
  CHECK(s.changed_at == ready_wall + std::chrono::minutes(5));
}

// --- liveness (exec probes run through the fake ops: no socket, no sleep)

TEST_CASE("component: a failing exec liveness check terminates the task and restarts it",
          "[component][liveness]") {
  Rig r(R"(, "restart": {"base": "1s"},
      "liveness": {"exec": {"command": ["false"]}, "failure_threshold": 1})");
  r.rt.manual = {"exec"};
  r.up();
  auto exec = r.rt.pending("a", "exec");
  REQUIRE(exec);
  exec->exit_code = 1;
  FakeRuntime::ok(exec);
  settle(r.io);
  CHECK(r.rt.count("a", "terminate") == 1);
  CHECK(r.state() == State::kReady);  // until the task is gone
  const std::string error = r.status().last_error;
  CHECK(error == "liveness: 1 consecutive failure, last error: exec [false]: exit code 1");
  REQUIRE(r.status().last_liveness_probe);
  CHECK(r.status().last_liveness_probe->kind == "exec");
  CHECK_FALSE(r.status().last_liveness_probe->ok);
  CHECK(r.status().last_liveness_probe->detail == "exec [false]: exit code 1");
  // No further attempt once it gave up.
  CHECK(r.rt.count("a", "exec") == 1);
  // The terminated task exits 0 (it handled SIGTERM): still a restart.
  r.exit(r.status().pid, 0);
  CHECK(r.state() == State::kBackingOff);
  CHECK(r.status().restarts == 1);
  CHECK(r.time.next_timer() == std::chrono::milliseconds(0));  // restart 1: at once
  r.time.advance(0ms);
  settle(r.io);
  CHECK(r.state() == State::kReady);
  // The new task gets its own liveness probe.
  CHECK(r.rt.pending("a", "exec"));
}

TEST_CASE("component: a stop during an exec probe waits until the exec is reaped",
          "[component][liveness][stop]") {
  Rig r(R"(, "liveness": {"exec": {"command": ["sleep", "1000"]}})");
  r.rt.manual = {"exec"};
  r.up();
  auto exec = r.rt.pending("a", "exec");
  REQUIRE(exec);
  r.c->stop(r.time.now() + 30s);
  settle(r.io);
  CHECK(r.state() == State::kStopping);
  REQUIRE(exec->cancel);
  CHECK(exec->cancel->cancelled());     // the probe's abort: the process is killed
  CHECK(r.rt.count("a", "stop") == 0);  // not before the exec is cleaned up
  FakeRuntime::ok(exec);
  settle(r.io);
  CHECK(r.rt.count("a", "stop") == 1);
  CHECK(r.state() == State::kStopped);
}
