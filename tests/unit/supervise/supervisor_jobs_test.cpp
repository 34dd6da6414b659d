// Supervisor with jobs (restart.on not "always"), on fake operations and a
// fake clock (fakes.h): a dependant waits for the job to complete, a failed
// job keeps it pending with a reason, reload leaves a completed job alone,
// and stop removes what a completed job left.
#include <catch2/catch.hpp>

#include "fakes.h"
#include "supervise/supervisor.h"

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

// migrate (a job) <- app.
std::string jobs(const std::string& on, const std::string& app_extra = "") {
  return R"({"name": "migrate", "image": "herd.local/m:1", "restart": {"on": ")" + on +
         R"("}}, {"name": "app", "image": "herd.local/a:1", "depends_on": ["migrate"])" +
         app_extra + "}";
}

struct Rig {
  FakeRuntime rt;
  FakeTime time;
  asio::io_context io;
  std::vector<ComponentStatus> seen;
  std::shared_ptr<Supervisor> sup;

  explicit Rig(const std::string& components) {
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
    rt.calls.clear();
    time.clear();
    rt.subscription.reset();
  }
  const ComponentStatus& status(const std::string& name) const {
    const ComponentStatus* s = sup->status(name);
    REQUIRE(s);
    return *s;
  }
  State state(const std::string& name) const { return status(name).state; }
  void boot() {
    sup->start();
    settle(io);
    REQUIRE(rt.subscription);
    rt.subscription->go_live(true);
    settle(io);
  }
  void exit(const std::string& name, uint32_t code) {
    rt.subscription->exit(name, status(name).pid, code);
    settle(io);
  }
};

}  // namespace

TEST_CASE("supervisor jobs: a dependant waits until the job has completed, not just run",
          "[supervisor][jobs]") {
  for (const char* on : {"on-failure", "never"}) {
    INFO("restart.on " << on);
    Rig r(jobs(on));
    r.boot();
    // The job runs (ready: it has no probe), and that is not enough.
    CHECK(r.state("migrate") == State::kReady);
    CHECK(r.rt.count("app", "prepare") == 0);
    CHECK(r.state("app") == State::kPending);
    r.exit("migrate", 0);
    CHECK(r.state("migrate") == State::kCompleted);
    CHECK(r.status("migrate").last_exit_code == 0u);
    CHECK(r.status("migrate").restarts == 0);
    CHECK(r.rt.count("app", "prepare") == 1);
    CHECK(r.state("app") == State::kReady);
    // Nothing restarts the completed job, however long we wait.
    r.time.advance(1h);
    settle(r.io);
    CHECK(r.rt.count("migrate", "start") == 1);
    CHECK(r.state("migrate") == State::kCompleted);
  }
}

TEST_CASE("supervisor jobs: a failed job keeps its dependant pending, saying why",
          "[supervisor][jobs]") {
  Rig r(jobs("never"));
  r.boot();
  r.exit("migrate", 3);
  CHECK(r.state("migrate") == State::kFailed);
  CHECK(r.rt.count("migrate", "start") == 1);  // never restarted
  CHECK(r.state("app") == State::kPending);
  CHECK(r.rt.count("app", "prepare") == 0);
  CHECK(r.status("app").last_error ==
        "waiting: job 'migrate' failed (exit code 3, not restarted (restart.on: never))");
  // The reason was reported to the observer too (herdctl watch sees it).
  bool reported = false;
  for (const auto& s : r.seen)
    reported = reported || (s.name == "app" && s.last_error.starts_with("waiting: job"));
  CHECK(reported);

  // The operator fixes what the job needed and starts it again: it
  // completes, and the dependant starts, its reason gone.
  bool ok = false;
  r.sup->start_component("migrate", [&](herd::Status s) { ok = s.ok(); });
  settle(r.io);
  CHECK(ok);
  CHECK(r.rt.count("migrate", "start") == 2);
  r.exit("migrate", 0);
  CHECK(r.state("migrate") == State::kCompleted);
  CHECK(r.state("app") == State::kReady);
  CHECK(r.status("app").last_error.empty());
}

TEST_CASE("supervisor jobs: a failing on-failure job is restarted, its dependant waits",
          "[supervisor][jobs]") {
  Rig r(jobs("on-failure"));
  r.boot();
  r.exit("migrate", 1);
  CHECK(r.state("migrate") == State::kBackingOff);
  CHECK(r.state("app") == State::kPending);
  CHECK(r.status("app").last_error.empty());  // not failed: no reason to give
  r.time.advance(2s);
  settle(r.io);
  CHECK(r.rt.count("migrate", "start") == 2);
  r.exit("migrate", 0);
  CHECK(r.state("migrate") == State::kCompleted);
  CHECK(r.state("app") == State::kReady);
}

TEST_CASE("supervisor jobs: reload does not re-run an unchanged completed job",
          "[supervisor][jobs][reload]") {
  Rig r(jobs("on-failure"));
  r.boot();
  r.exit("migrate", 0);
  REQUIRE(r.state("app") == State::kReady);
  Supervisor::ReloadSummary summary;
  r.sup->reload(config_of(jobs("on-failure", R"(, "args": ["changed"])")),
                [&](Supervisor::ReloadSummary s) { summary = std::move(s); });
  settle(r.io);
  CHECK(summary.unchanged == std::vector<std::string>{"migrate"});
  CHECK(summary.changed == std::vector<std::string>{"app"});
  CHECK(r.rt.ops_of("migrate") == std::vector<std::string>{"prepare", "start"});
  CHECK(r.state("migrate") == State::kCompleted);
  // The changed dependant's new actor starts at once: its job is done.
  CHECK(r.rt.count("app", "prepare") == 2);
  CHECK(r.state("app") == State::kReady);
}

TEST_CASE("supervisor jobs: stop removes what a completed job left, after its dependants",
          "[supervisor][jobs][stop]") {
  Rig r(jobs("never"));
  r.rt.manual = {"stop"};
  r.boot();
  r.exit("migrate", 0);
  REQUIRE(r.state("app") == State::kReady);
  bool done = false;
  r.sup->stop([&] { done = true; });
  settle(r.io);
  REQUIRE(r.rt.pending("app", "stop"));
  CHECK(r.rt.count("migrate", "stop") == 0);
  FakeRuntime::ok(r.rt.pending("app", "stop"));
  settle(r.io);
  REQUIRE(r.rt.pending("migrate", "stop"));  // its exited task and container go
  CHECK_FALSE(done);
  FakeRuntime::ok(r.rt.pending("migrate", "stop"));
  settle(r.io);
  CHECK(done);
  CHECK(r.state("migrate") == State::kStopped);
  CHECK(r.state("app") == State::kStopped);
}
