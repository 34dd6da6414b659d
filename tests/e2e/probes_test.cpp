// End-to-end tests of liveness, exec probes, probes inside a component's
// own network namespace and the periodic reconcile (issue 12), on the real
// containerd of the CTest fixture with real busybox components. Each test
// uses its own namespace and data directory and proves it left nothing.
#include <signal.h>

#include <filesystem>
#include <fstream>

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include "e2e_harness.h"
#include "github.com/containerd/containerd/api/services/version/v1/version.grpc.pb.h"

using namespace herd;
using namespace herd::supervise;
using namespace herd::e2e;
using namespace std::chrono_literals;

namespace {

std::string busybox(const std::string& name, const std::string& args_json,
                    const std::string& extra) {
  return R"({"name": ")" + name + R"(", "image": "herd.local/busybox:latest",
      "image_archive": ")" +
         image_archive("busybox.tar") + R"(", "args": )" + args_json +
         R"(, "stop_grace": "1s", "restart": {"base": "100ms", "max": "1s"})" + extra + "}";
}

void touch(const std::filesystem::path& p) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p) << "ok\n";
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// grpc++'s default health service runs only in a server with a sync
// service: this one (containerd's Version, every method unimplemented) is
// there for that alone.
struct HealthServer {
  ::containerd::services::version::v1::Version::Service placeholder;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  grpc::HealthCheckServiceInterface* health = nullptr;

  HealthServer() {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&placeholder);
    server = builder.BuildAndStart();
    if (server) health = server->GetHealthCheckService();
  }
  ~HealthServer() {
    if (server) server->Shutdown(std::chrono::system_clock::now() + 5s);
  }
};

}  // namespace

TEST_CASE("an http liveness endpoint answering 404 restarts the component", "[e2e][liveness]") {
  Herd h("live-http");
  const uint16_t port = free_port();
  const std::filesystem::path health = h.data / "web" / "www" / "health";
  touch(health);
  h.run(
      [&]() -> asio::awaitable<void> {
        const std::string p = std::to_string(port);
        h.start(busybox("web", R"(["httpd", "-f", "-p", "127.0.0.1:)" + p + R"(", "-h", "/www"])",
                        R"(, "mounts": [{"data": "www", "target": "/www"}],
        "ready": {"tcp": {"port": )" +
                            p + R"(}, "interval": "100ms"},
        "liveness": {"http": {"port": )" +
                            p + R"(, "path": "/health"},
                     "interval": "200ms", "failure_threshold": 3})"));
        REQUIRE(co_await eventually([&] { return h.state("web") == State::kReady; }));
        REQUIRE(co_await eventually([&] {
          auto l = h.st("web").last_liveness_probe;
          return l && l->ok;
        }));
        CHECK(h.st("web").last_liveness_probe->kind == "http");
        CHECK(contains(h.st("web").last_liveness_probe->detail, "status 200"));
        const uint32_t pid = h.st("web").pid;
        const auto removed = std::chrono::steady_clock::now();
        std::filesystem::remove(health);
        REQUIRE(co_await eventually([&] { return h.st("web").restarts == 1; }));
        const auto restarted = std::chrono::steady_clock::now();
        touch(health);  // healthy again for the next task
        const std::string error = h.st("web").last_error;
        INFO(error);
        CHECK(contains(error, "liveness: 3 consecutive failures"));
        CHECK(contains(error, "GET /health: status 404"));
        REQUIRE(co_await eventually([&] { return h.state("web") == State::kReady; }));
        CHECK(h.st("web").pid != pid);
        WARN("404 -> restart took "
             << std::chrono::duration_cast<std::chrono::milliseconds>(restarted - removed).count()
             << " ms (failure_threshold 3 x interval 200 ms)");
        REQUIRE(co_await eventually([&] {
          auto l = h.st("web").last_liveness_probe;
          return l && l->ok;
        }));
        co_await h.stop();
        co_await h.ns.finish();
      });
}

TEST_CASE("an exec liveness check that starts failing restarts the component",
          "[e2e][liveness][exec]") {
  Herd h("live-exec");
  const std::filesystem::path flag = h.data / "app" / "state" / "ok";
  touch(flag);
  h.run([&]() -> asio::awaitable<void> {
    h.start(busybox("app", R"(["sleep", "100000"])",
                    R"(, "mounts": [{"data": "state", "target": "/state"}],
        "liveness": {"exec": {"command": ["sh", "-c", "echo checking; test -f /state/ok"]},
                     "interval": "200ms", "timeout": "5s", "failure_threshold": 2})"));
    REQUIRE(co_await eventually([&] { return h.state("app") == State::kReady; }));
    REQUIRE(co_await eventually([&] {
      auto l = h.st("app").last_liveness_probe;
      return l && l->ok;
    }));
    CHECK(h.st("app").last_liveness_probe->kind == "exec");
    CHECK(contains(h.st("app").last_liveness_probe->detail, "exit code 0: checking"));
    std::filesystem::remove(flag);
    REQUIRE(co_await eventually([&] { return h.st("app").restarts == 1; }));
    touch(flag);
    const std::string error = h.st("app").last_error;
    INFO(error);
    CHECK(contains(error, "liveness: 2 consecutive failures"));
    CHECK(contains(error, "exit code 1: checking"));
    REQUIRE(co_await eventually([&] { return h.state("app") == State::kReady; }));
    co_await h.stop();
    co_await h.ns.finish();
  });
}

TEST_CASE("an exec probe hanging past its timeout is killed and leaves nothing",
          "[e2e][liveness][exec]") {
  Herd h("exec-hang");
  h.run([&]() -> asio::awaitable<void> {
    // One attempt per minute: after the first one times out, nothing of
    // it may be left while the next has not begun.
    h.start(busybox("hang", R"(["sleep", "100000"])", R"(,
        "liveness": {"exec": {"command": ["sleep", "1000"]},
                     "interval": "60s", "timeout": "500ms", "failure_threshold": 100})"));
    REQUIRE(co_await eventually([&] { return h.state("hang") == State::kReady; }));
    REQUIRE(co_await eventually([&] { return h.st("hang").last_liveness_probe.has_value(); }));
    const ProbeResult r = *h.st("hang").last_liveness_probe;
    INFO(r.detail);
    CHECK_FALSE(r.ok);
    CHECK(contains(r.detail, "exec [sleep 1000]: timeout after 500ms, killed"));
    CHECK(h.state("hang") == State::kReady);  // one failure of 100: nothing happens
    // The exec process is gone: only the init process is left...
    auto& c = h.ns.client();
    bool only_init = false;
    for (int i = 0; i < 200 && !only_init; ++i) {
      auto pids = co_await c.tasks_pids("hang");
      REQUIRE(pids.ok());
      only_init = pids->size() == 1 && pids->front() == h.st("hang").pid;
      if (!only_init) co_await test::sleep_for(20ms);
    }
    CHECK(only_init);
    // ...and its exec id was removed (ids: herd-probe-<pid>-<n>, n from 1
    // in this process, which runs this test case alone). The probe reports
    // its failure at the timeout; the kill, wait and delete of the exec
    // process follow, so the id goes a moment after the process.
    std::string left;
    for (int i = 0; i < 200; ++i) {
      left.clear();
      for (int n = 1; n <= 5; ++n) {
        const std::string id = "herd-probe-" + std::to_string(::getpid()) + "-" + std::to_string(n);
        auto p = co_await c.exec_get("hang", id);
        if (!p.status().is_not_found()) {
          left += id + ": " + (p.ok() ? std::string("present") : p.status().to_string()) + "; ";
        }
      }
      if (left.empty()) break;
      co_await test::sleep_for(20ms);
    }
    INFO(left);
    CHECK(left.empty());
    // And no captured output file either.
    std::error_code ec;
    CHECK(std::filesystem::is_empty(h.data / ".herd-probes", ec));
    co_await h.stop();
    co_await h.ns.finish();
  });
}

TEST_CASE("a stop in the middle of an exec probe reaps it and leaves nothing",
          "[e2e][liveness][exec]") {
  Herd h("exec-stop");
  h.run([&]() -> asio::awaitable<void> {
    h.start(busybox("busy", R"(["sleep", "100000"])", R"(,
        "liveness": {"exec": {"command": ["sleep", "1000"]}, "timeout": "60s"})"));
    REQUIRE(co_await eventually([&] { return h.state("busy") == State::kReady; }));
    // The exec process runs: the task has two processes.
    auto& c = h.ns.client();
    bool exec_running = false;
    for (int i = 0; i < 500 && !exec_running; ++i) {
      auto pids = co_await c.tasks_pids("busy");
      exec_running = pids.ok() && pids->size() == 2;
      if (!exec_running) co_await test::sleep_for(20ms);
    }
    REQUIRE(exec_running);
    co_await h.stop();
    CHECK(h.state("busy") == State::kStopped);
    CHECK(h.st("busy").last_error.empty());
    std::error_code ec;
    CHECK(std::filesystem::is_empty(h.data / ".herd-probes", ec));
    co_await h.ns.finish();  // no task, no container, nothing left
  });
}

TEST_CASE("a network none component with a tcp readiness probe becomes ready", "[e2e][netns]") {
  Herd h("netns");
  const uint16_t port = free_port();
  h.run([&]() -> asio::awaitable<void> {
    const std::string p = std::to_string(port);
    h.start(busybox("private", R"(["httpd", "-f", "-p", "127.0.0.1:)" + p + R"(", "-h", "/"])",
                    R"(, "network": "none",
        "ready": {"tcp": {"port": )" +
                        p + R"(}, "interval": "100ms", "max_wait": "30s"},
        "liveness": {"http": {"port": )" +
                        p + R"(, "path": "/", "status": [200, 499]},
                     "interval": "200ms"})"));
    REQUIRE(co_await eventually([&] { return h.state("private") == State::kReady; }));
    // The port is the component's own: nothing answers on the host's loopback.
    CHECK_FALSE(port_answers(port));
    REQUIRE(co_await eventually([&] {
      auto l = h.st("private").last_liveness_probe;
      return l && l->ok;
    }));
    CHECK(h.st("private").restarts == 0);
    co_await h.stop();
    co_await h.ns.finish();
  });
}

TEST_CASE("the periodic reconcile finds an exit the events stream did not deliver",
          "[e2e][reconcile]") {
  Herd h("reconcile");
  h.run([&]() -> asio::awaitable<void> {
    // herd never sees the exit events of "lost" (dropped on receipt, as if
    // containerd had not published them); "steady" gets its events.
    Supervisor::Options o;
    o.drop_event = [](const herd::containerd::TaskEvent& e) { return e.container_id == "lost"; };
    const std::string sleeper = R"(["sleep", "100000"])";
    h.sup = Supervisor::create(
        h.io.get_executor(), h.ns.client(),
        h.parse(busybox("lost", sleeper, "") + "," + busybox("steady", sleeper, ""),
                R"(, "reconcile_interval": "1s")"),
        [&h](const ComponentStatus& s) { h.changes.push_back(s); }, o);
    h.sup->start();
    REQUIRE(co_await eventually(
        [&] { return h.state("lost") == State::kReady && h.state("steady") == State::kReady; }));
    const uint32_t lost_pid = h.st("lost").pid;
    const uint32_t steady_pid = h.st("steady").pid;
    REQUIRE(::kill(static_cast<pid_t>(lost_pid), SIGKILL) == 0);
    REQUIRE(co_await eventually([&] { return h.st("lost").restarts == 1; }));
    CHECK(h.st("lost").last_exit_code == 137u);
    REQUIRE(co_await eventually([&] { return h.state("lost") == State::kReady; }));
    CHECK(h.st("lost").pid != lost_pid);
    CHECK(h.sup->periodic_reconciles() >= 1);
    // Several more intervals: the task that runs as expected is left alone.
    const uint64_t before = h.sup->periodic_reconciles();
    REQUIRE(co_await eventually([&] { return h.sup->periodic_reconciles() >= before + 2; }));
    CHECK(h.st("steady").pid == steady_pid);
    CHECK(h.st("steady").restarts == 0);
    CHECK(h.state("steady") == State::kReady);
    co_await h.stop();
    co_await h.ns.finish();
  });
}

TEST_CASE("grpc probes ask a real grpc.health.v1 server, SERVING or not", "[e2e][grpc]") {
  // The health server: grpc++'s own default health service, in this
  // process on 127.0.0.1; the component (host network) is what herd
  // supervises and restarts by its answer.
  HealthServer hs;
  REQUIRE(hs.server);
  REQUIRE(hs.port > 0);
  const int port = hs.port;
  grpc::HealthCheckServiceInterface* health = hs.health;
  REQUIRE(health);
  health->SetServingStatus("herd.test", true);
  Herd h("grpc");
  h.run([&]() -> asio::awaitable<void> {
    const std::string p = std::to_string(port);
    h.start(busybox(
        "app", R"(["sleep", "100000"])",
        R"(, "ready": {"grpc": {"port": )" + p +
            R"(, "service": "herd.test"}, "interval": "100ms"},
        "liveness": {"grpc": {"port": )" +
            p + R"(, "service": "herd.test"}, "interval": "200ms", "failure_threshold": 2})"));
    REQUIRE(co_await eventually([&] { return h.state("app") == State::kReady; }));
    REQUIRE(h.st("app").last_ready_probe);
    CHECK(h.st("app").last_ready_probe->kind == "grpc");
    CHECK(contains(h.st("app").last_ready_probe->detail, "status SERVING"));
    REQUIRE(co_await eventually([&] {
      auto l = h.st("app").last_liveness_probe;
      return l && l->ok;
    }));
    health->SetServingStatus("herd.test", false);
    REQUIRE(co_await eventually([&] { return h.st("app").restarts == 1; }));
    const std::string error = h.st("app").last_error;
    INFO(error);
    CHECK(contains(error, "liveness: 2 consecutive failures"));
    CHECK(contains(error, "status NOT_SERVING"));
    health->SetServingStatus("herd.test", true);
    REQUIRE(co_await eventually([&] { return h.state("app") == State::kReady; }));
    co_await h.stop();
    co_await h.ns.finish();
  });
}

TEST_CASE("a grpc readiness probe of an unknown service never becomes ready", "[e2e][grpc]") {
  HealthServer hs;
  REQUIRE(hs.server);
  const int port = hs.port;
  Herd h("grpc-unknown");
  h.run([&]() -> asio::awaitable<void> {
    h.start(busybox("app", R"(["sleep", "100000"])",
                    R"(, "ready": {"grpc": {"port": )" + std::to_string(port) +
                        R"(, "service": "nobody"}, "interval": "100ms", "max_wait": "1s"})"));
    REQUIRE(co_await eventually([&] { return h.st("app").restarts >= 1; }));
    const std::string error = h.st("app").last_error;
    INFO(error);
    CHECK(contains(error, "readiness: not ready within 1000ms"));
    CHECK(contains(error, "grpc Check(\"nobody\")"));
    CHECK(contains(error, "NOT_FOUND"));
    co_await h.stop();
    co_await h.ns.finish();
  });
}
