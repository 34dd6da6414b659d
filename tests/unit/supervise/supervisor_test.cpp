// Supervisor driven by fake operations, a fake events subscription and a
// fake clock (fakes.h): dependency order, the events stream, stop order,
// reload diffing and the guard against a replaced actor's late report.
#include "supervise/supervisor.h"

#include <catch2/catch.hpp>

#include <algorithm>

#include "fakes.h"

using namespace std::chrono_literals;
using herd::supervise::ComponentStatus;
using herd::supervise::State;
using herd::supervise::Supervisor;
using herd::supervise::fakes::FakeRuntime;
using herd::supervise::fakes::FakeTime;
using herd::supervise::fakes::settle;
namespace asio = boost::asio;

namespace {

herd::config::Config config_of(const std::string& components) {
  auto parsed = herd::config::parse_config(R"({"components": [)" + components + "]}");
  INFO(parsed.error_text());
  REQUIRE(parsed.ok());
  return *parsed.config;
}

// a <- b (b depends on a), and c on its own.
const char* kThree =
    R"({"name": "a", "image": "herd.local/a:1", "restart": {"base": "1s"}},
       {"name": "b", "image": "herd.local/b:1", "depends_on": ["a"], "restart": {"base": "1s"}},
       {"name": "c", "image": "herd.local/c:1", "restart": {"base": "1s"}})";

struct Rig {
  // The fakes outlive the io_context: its handlers hold actors, whose
  // timers and ops point at them.
  FakeRuntime rt;
  FakeTime time;
  asio::io_context io;
  std::vector<ComponentStatus> seen;
  std::shared_ptr<Supervisor> sup;

  explicit Rig(const std::string& components = kThree) {
    Supervisor::Options o;
    o.time = &time;
    o.random = [] { return 0.5; };
    sup = Supervisor::create(
        io.get_executor(), rt, config_of(components),
        [this](const ComponentStatus& s) { seen.push_back(s); }, o);
  }
  ~Rig() {
    for (auto& call : rt.calls) FakeRuntime::release(call);
    settle(io);
    // Whatever holds an executor of `io` goes before it: the calls' gates,
    // the timers' handlers (which hold actors), the subscription.
    rt.calls.clear();
    time.clear();
    rt.subscription.reset();
  }
  State state(const std::string& name) const {
    const ComponentStatus* s = sup->status(name);
    REQUIRE(s);
    return s->state;
  }
  uint32_t pid(const std::string& name) const { return sup->status(name)->pid; }
  void boot() {
    sup->start();
    settle(io);
    REQUIRE(rt.subscription);
    rt.subscription->go_live(true);
    settle(io);
  }
};

}  // namespace

TEST_CASE("supervisor: nothing starts before the events stream is live", "[supervisor]") {
  Rig r;
  r.sup->start();
  settle(r.io);
  REQUIRE(r.rt.subscription);
  CHECK(r.rt.subscription->started);
  CHECK(r.rt.calls.empty());
  CHECK(r.state("a") == State::kPending);
  r.rt.subscription->go_live(true);
  settle(r.io);
  CHECK(r.state("a") == State::kReady);
  CHECK(r.state("b") == State::kReady);
  CHECK(r.state("c") == State::kReady);
}

TEST_CASE("supervisor: a component starts only once what it depends on is ready", "[supervisor]") {
  Rig r;
  r.rt.manual = {"start"};
  r.boot();
  // a and c (independent) prepare and start together; b waits for a.
  REQUIRE(r.rt.pending("a", "start"));
  REQUIRE(r.rt.pending("c", "start"));
  CHECK(r.rt.count("b", "prepare") == 0);
  CHECK(r.state("b") == State::kPending);
  FakeRuntime::ok(r.rt.pending("c", "start"), 300);
  settle(r.io);
  CHECK(r.rt.count("b", "prepare") == 0);  // c is not what b needs
  FakeRuntime::ok(r.rt.pending("a", "start"), 100);
  settle(r.io);
  CHECK(r.rt.count("b", "prepare") == 1);
  FakeRuntime::ok(r.rt.pending("b", "start"), 200);
  settle(r.io);
  CHECK(r.state("b") == State::kReady);
}

TEST_CASE("supervisor: an exit event reaches the component whose container it names",
          "[supervisor]") {
  Rig r;
  r.boot();
  r.rt.subscription->exit("b", r.pid("b"), 3);
  settle(r.io);
  CHECK(r.state("b") == State::kBackingOff);
  CHECK(r.sup->status("b")->last_exit_code == 3u);
  CHECK(r.state("a") == State::kReady);
  CHECK(r.state("c") == State::kReady);
  r.rt.subscription->exit("nobody", 1, 1);  // not ours: ignored
  settle(r.io);
  r.time.advance(1s);
  settle(r.io);
  CHECK(r.state("b") == State::kReady);
  CHECK(r.sup->status("b")->restarts == 1);
}

TEST_CASE(
    "supervisor: after a stream gap every actor reconciles, and a task that died in "
    "the gap is restarted",
    "[supervisor][gap]") {
  Rig r;
  r.boot();
  const uint32_t a_pid = r.pid("a");
  r.rt.subscription->go_down();
  settle(r.io);
  r.rt.reconcile_running = false;
  r.rt.subscription->go_live(false);
  settle(r.io);
  CHECK(r.sup->gaps() == 1);
  for (const char* n : {"a", "b", "c"}) {
    INFO(n);
    CHECK(r.rt.count(n, "reconcile") == 1);
    CHECK(r.state(n) == State::kBackingOff);
  }
  r.rt.reconcile_running = true;
  r.time.advance(1s);
  settle(r.io);
  CHECK(r.state("a") == State::kReady);
  CHECK(r.pid("a") != a_pid);
  CHECK(r.sup->status("a")->restarts == 1);
}

TEST_CASE("supervisor: stop goes in reverse dependency order, then reports done",
          "[supervisor][stop]") {
  Rig r;
  r.rt.manual = {"stop"};
  r.boot();
  bool done = false;
  r.sup->stop([&] { done = true; });
  settle(r.io);
  // b depends on a: a waits for b's stop; c stops at once.
  REQUIRE(r.rt.pending("b", "stop"));
  REQUIRE(r.rt.pending("c", "stop"));
  CHECK(r.rt.count("a", "stop") == 0);
  FakeRuntime::ok(r.rt.pending("b", "stop"));
  settle(r.io);
  REQUIRE(r.rt.pending("a", "stop"));
  FakeRuntime::ok(r.rt.pending("a", "stop"));
  FakeRuntime::ok(r.rt.pending("c", "stop"));
  settle(r.io);
  CHECK(done);
  CHECK(r.rt.subscription->stopped);
  for (const char* n : {"a", "b", "c"}) CHECK(r.state(n) == State::kStopped);
}

TEST_CASE(
    "supervisor: reload starts what was added, stops what was removed, hands a "
    "changed component to a new actor and leaves the rest alone",
    "[supervisor][reload]") {
  Rig r;
  r.boot();
  const uint32_t a_pid = r.pid("a");
  Supervisor::ReloadSummary summary;
  bool got = false;
  r.sup->reload(config_of(R"({"name": "a", "image": "herd.local/a:1", "restart": {"base": "1s"}},
      {"name": "b", "image": "herd.local/b:1", "depends_on": ["a"], "args": ["x"],
       "restart": {"base": "1s"}},
      {"name": "d", "image": "herd.local/d:1"})"),
                [&](Supervisor::ReloadSummary s) {
                  summary = std::move(s);
                  got = true;
                });
  settle(r.io);
  REQUIRE(got);
  CHECK(summary.status.ok());
  CHECK(summary.added == std::vector<std::string>{"d"});
  CHECK(summary.removed == std::vector<std::string>{"c"});
  CHECK(summary.changed == std::vector<std::string>{"b"});
  CHECK(summary.unchanged == std::vector<std::string>{"a"});
  // a: untouched.
  CHECK(r.rt.ops_of("a") == std::vector<std::string>{"prepare", "start"});
  CHECK(r.pid("a") == a_pid);
  // b: a new actor (a new ContainerOps) prepared it; the old one did not stop it.
  CHECK(r.rt.count("b", "stop") == 0);
  CHECK(r.rt.count("b", "prepare") == 2);
  std::set<uint64_t> b_ops;
  for (const auto& c : r.rt.calls)
    if (c->component == "b") b_ops.insert(c->ops_id);
  CHECK(b_ops.size() == 2);
  // c: stopped and gone; d: started.
  CHECK(r.rt.count("c", "stop") == 1);
  CHECK(r.sup->status("c") == nullptr);
  CHECK(r.state("d") == State::kReady);
}

TEST_CASE("supervisor: a replaced actor's late report cannot overwrite its successor's status",
          "[supervisor][reload]") {
  Rig r;
  r.boot();
  const uint32_t old_pid = r.pid("b");
  // The new actor's prepare waits, so its status stays "preparing".
  r.rt.manual = {"prepare"};
  // The old actor sees an exit just before the reload replaces it: its
  // report (backing_off) reaches the supervisor after the new actor is in.
  r.rt.subscription->exit("b", old_pid, 1);
  r.sup->reload(config_of(R"({"name": "a", "image": "herd.local/a:1", "restart": {"base": "1s"}},
      {"name": "b", "image": "herd.local/b:1", "depends_on": ["a"], "args": ["y"],
       "restart": {"base": "1s"}},
      {"name": "c", "image": "herd.local/c:1", "restart": {"base": "1s"}})"),
                [](Supervisor::ReloadSummary) {});
  settle(r.io);
  bool old_reported = false;
  for (const auto& s : r.seen) old_reported |= s.name == "b" && s.state == State::kBackingOff;
  CHECK(old_reported);                        // the observer hears it (a retiring actor's report)
  CHECK(r.state("b") != State::kBackingOff);  // the supervisor's status does not keep it
  REQUIRE(r.rt.pending("b", "prepare"));
  FakeRuntime::ok(r.rt.pending("b", "prepare"));
  settle(r.io);
  CHECK(r.state("b") == State::kReady);
  CHECK(r.sup->status("b")->restarts == 0);
}

TEST_CASE("supervisor: operator requests name the component, and an unknown one is NotFound",
          "[supervisor]") {
  Rig r;
  r.boot();
  herd::Status st;
  r.sup->restart_component("nobody", [&](herd::Status s) { st = s; });
  settle(r.io);
  CHECK(st.is_not_found());
  CHECK(st.to_string().find("nobody") != std::string::npos);
  r.sup->stop_component("c", [&](herd::Status s) { st = s; });
  settle(r.io);
  CHECK(st.ok());
  CHECK(r.state("c") == State::kStopped);
  r.sup->start_component("c", [&](herd::Status s) { st = s; });
  settle(r.io);
  CHECK(st.ok());
  CHECK(r.state("c") == State::kReady);
}

TEST_CASE("supervisor: the periodic reconcile lists tasks every reconcile_interval",
          "[supervisor][reconcile]") {
  Rig r;
  r.boot();
  // Default interval 60s; nothing before it.
  r.time.advance(59s);
  settle(r.io);
  CHECK(r.rt.lists == 0);
  const uint32_t a_pid = r.pid("a");
  const uint32_t b_pid = r.pid("b");
  const uint32_t c_pid = r.pid("c");
  // a runs as expected; b is listed with another pid; c is not listed.
  herd::supervise::TaskList list;
  list["a"] = herd::supervise::ListedTask{true, a_pid};
  list["b"] = herd::supervise::ListedTask{true, b_pid + 1000};
  r.rt.task_list = list;
  r.rt.reconcile_running = false;
  r.time.advance(1s);
  settle(r.io);
  CHECK(r.rt.lists == 1);
  CHECK(r.sup->periodic_reconciles() == 1);
  // A task found running with the expected pid is left alone...
  CHECK(r.rt.count("a", "reconcile") == 0);
  CHECK(r.state("a") == State::kReady);
  CHECK(r.pid("a") == a_pid);
  // ...the others are checked with a reconcile, which found them gone.
  CHECK(r.rt.count("b", "reconcile") == 1);
  CHECK(r.rt.count("c", "reconcile") == 1);
  CHECK(r.state("b") == State::kBackingOff);
  CHECK(r.state("c") == State::kBackingOff);
  CHECK(r.sup->status("c")->restarts == 1);
  (void)c_pid;
  // And again one interval later.
  r.rt.reconcile_running = true;
  r.rt.task_list.reset();  // no answer: nothing concluded
  r.time.advance(60s);
  settle(r.io);
  CHECK(r.rt.lists == 2);
  CHECK(r.sup->periodic_reconciles() == 1);
  CHECK(r.state("a") == State::kReady);
  CHECK(r.pid("a") == a_pid);
}

TEST_CASE("supervisor: reconcile_interval sets the period", "[supervisor][reconcile]") {
  auto parsed = herd::config::parse_config(
      R"({"reconcile_interval": "5s", "components": [{"name": "a", "image": "herd.local/a:1"}]})");
  REQUIRE(parsed.ok());
  FakeRuntime rt;
  FakeTime time;
  asio::io_context io;
  Supervisor::Options o;
  o.time = &time;
  auto sup = Supervisor::create(io.get_executor(), rt, *parsed.config, {}, o);
  sup->start();
  settle(io);
  rt.subscription->go_live(true);
  settle(io);
  for (int i = 1; i <= 3; ++i) {
    time.advance(5s);
    settle(io);
    CHECK(rt.lists == static_cast<size_t>(i));
  }
  bool stopped = false;
  sup->stop([&] { stopped = true; });
  settle(io);
  CHECK(stopped);
  time.advance(5s);
  settle(io);
  CHECK(rt.lists == 3);  // none after the stop
  for (auto& call : rt.calls) FakeRuntime::release(call);
  settle(io);
  rt.calls.clear();
  time.clear();
  rt.subscription.reset();
}

TEST_CASE("supervisor: at most max_concurrent_starts starts run, highest priority first",
          "[supervisor][priority]") {
  // Five independent components, two start slots; "etcd" has priority 100.
  std::string five;
  for (const char* name : {"w1", "w2", "w3", "w4"}) {
    five += R"({"name": ")" + std::string(name) + R"(", "image": "herd.local/w:1"},)";
  }
  five += R"({"name": "etcd", "image": "herd.local/etcd:1", "priority": 100})";
  auto cfg = config_of(five);
  cfg.max_concurrent_starts = 2;
  FakeRuntime rt;
  FakeTime time;
  asio::io_context io;
  rt.manual = {"prepare"};
  Supervisor::Options o;
  o.time = &time;
  o.random = [] { return 0.5; };
  auto sup = Supervisor::create(io.get_executor(), rt, cfg, {}, o);
  sup->start();
  settle(io);
  rt.subscription->go_live(true);
  settle(io);
  // etcd was started first (priority), then w1: the two slots.
  auto prepares = [&] {
    std::vector<std::string> v;
    for (const auto& c : rt.calls)
      if (c->op == "prepare") v.push_back(c->component);
    return v;
  };
  CHECK(prepares() == std::vector<std::string>{"etcd", "w1"});
  // A slot frees: the next in line goes, one at a time.
  FakeRuntime::ok(rt.pending("w1", "prepare"));
  settle(io);
  CHECK(prepares() == std::vector<std::string>{"etcd", "w1", "w2"});
  FakeRuntime::ok(rt.pending("etcd", "prepare"));
  FakeRuntime::ok(rt.pending("w2", "prepare"));
  settle(io);
  // etcd's and w2's task starts took the freed slots first (etcd's with
  // priority 100, ahead of w3 and w4 queued earlier), then w3 and w4.
  CHECK(prepares() == std::vector<std::string>{"etcd", "w1", "w2", "w3", "w4"});
  CHECK(sup->status("etcd")->state == State::kReady);

  // Later restarts wait their turn the same way: with both slots held by
  // w3 and w4, etcd's restart waits, and is admitted before anyone else.
  rt.manual = {"prepare", "start"};
  sup->restart_component("w1", [](herd::Status) {});
  settle(io);
  rt.subscription->exit("etcd", sup->status("etcd")->pid, 1);
  settle(io);
  time.advance(1min);  // etcd's backoff is over: its start waits for a slot
  settle(io);
  CHECK(rt.count("etcd", "start") == 1);  // the first start (prepare's) only
  FakeRuntime::ok(rt.pending("w3", "prepare"));
  settle(io);
  CHECK(rt.count("etcd", "start") == 2);  // etcd's restart took the freed slot
  CHECK(rt.count("w1", "prepare") == 1);  // w1's restart still waits
  for (auto& c : rt.calls) FakeRuntime::release(c);
  settle(io);
  sup->stop([] {});
  settle(io);
  for (auto& c : rt.calls) FakeRuntime::release(c);
  settle(io);
  rt.calls.clear();
  time.clear();
  rt.subscription.reset();
}
