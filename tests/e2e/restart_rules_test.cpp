// End-to-end tests of the restart rules and jobs (issue 13) on the real
// containerd of the CTest fixture, with real busybox components: a job
// completes and its dependant starts, a failing job keeps the dependant
// pending, an exit code in prevent_exit_codes fails at once. Each test
// uses its own namespace and data directory and proves it left nothing.
#include <filesystem>
#include <fstream>

#include "e2e_harness.h"

using namespace herd;
using namespace herd::supervise;
using namespace herd::e2e;
using namespace std::chrono_literals;

namespace {

// A busybox component running `script` with sh -c, the host directory
// `shared` bind-mounted at /shared, on `network` ("none" or "host").
std::string sh(const std::string& name, const std::string& script,
               const std::filesystem::path& shared, const std::string& extra = "",
               const std::string& network = "none") {
  return R"({"name": ")" + name + R"(", "image": "herd.local/busybox:latest",
      "image_archive": ")" +
         image_archive("busybox.tar") + R"(", "network": ")" + network + R"(",
      "args": ["sh", "-c", ")" +
         script + R"("], "mounts": [{"bind": ")" + shared.string() +
         R"(", "target": "/shared"}], "stop_grace": "1s")" + extra + "}";
}

}  // namespace

TEST_CASE("a job completes, then its dependant starts, and nothing restarts the job", "[e2e]") {
  Herd h("job");
  const std::filesystem::path shared = h.data / "shared";
  std::filesystem::create_directories(shared);
  const uint16_t port = free_port();
  h.run([&]() -> asio::awaitable<void> {
    // The job takes a moment and leaves a file; the dependant fails (exit
    // 1, a restart) if it runs before the file is there.
    const std::string job = sh("migrate", "sleep 0.5; echo done > /shared/migrated", shared,
                               R"(, "restart": {"on": "on-failure", "base": "100ms"})");
    const std::string app = sh("app",
                               "test -f /shared/migrated || exit 1; exec httpd -f -p 127.0.0.1:" +
                                   std::to_string(port) + " -h /shared",
                               shared,
                               R"(, "depends_on": ["migrate"], "ready": {"tcp": {"port": )" +
                                   std::to_string(port) + R"(}, "interval": "100ms"})",
                               "host");
    h.start(job + "," + app);
    REQUIRE(co_await eventually([&] { return h.state("app") == State::kReady; }));
    CHECK(h.state("migrate") == State::kCompleted);
    CHECK(h.st("migrate").last_exit_code == 0u);
    CHECK(h.st("migrate").restarts == 0);
    CHECK(h.st("app").restarts == 0);
    CHECK(h.first("migrate", State::kCompleted) < h.first("app", State::kPreparing));
    CHECK(port_answers(port));
    // Completed stays completed.
    co_await test::sleep_for(1s);
    CHECK(h.state("migrate") == State::kCompleted);
    CHECK(h.st("migrate").restarts == 0);

    co_await h.stop();
    CHECK(h.state("migrate") == State::kStopped);
    CHECK(h.state("app") == State::kStopped);
    co_await h.ns.finish();  // the completed job's task and container are gone too
  });
}

TEST_CASE("a failing job keeps its dependant pending, saying why", "[e2e]") {
  Herd h("jobfail");
  const std::filesystem::path shared = h.data / "shared";
  std::filesystem::create_directories(shared);
  h.run([&]() -> asio::awaitable<void> {
    const std::string job = sh("migrate", "exit 3", shared, R"(, "restart": {"on": "never"})");
    const std::string app = sh("app", "sleep 1000", shared, R"(, "depends_on": ["migrate"])");
    h.start(job + "," + app);
    REQUIRE(co_await eventually([&] { return h.state("migrate") == State::kFailed; }));
    CHECK(h.st("migrate").last_exit_code == 3u);
    CHECK(h.st("migrate").restarts == 0);
    CHECK(h.st("migrate").last_error == "exit code 3, not restarted (restart.on: never)");
    // Given time, the dependant still has not started.
    co_await test::sleep_for(1s);
    CHECK(h.state("app") == State::kPending);
    CHECK(h.first("app", State::kPreparing) == -1);
    CHECK(h.st("app").last_error.find("waiting: job 'migrate' failed") != std::string::npos);
    CHECK(h.st("app").last_error.find("exit code 3") != std::string::npos);

    co_await h.stop();
    CHECK(h.state("migrate") == State::kStopped);
    co_await h.ns.finish();
  });
}

TEST_CASE("an exit code in prevent_exit_codes fails at once, with no restart", "[e2e]") {
  Herd h("prevent");
  const std::filesystem::path shared = h.data / "shared";
  std::filesystem::create_directories(shared);
  h.run([&]() -> asio::awaitable<void> {
    // Counts its runs in a file: exactly one run may happen.
    const std::string bad =
        sh("bad", "echo run >> /shared/runs; exit 78", shared,
           R"(, "restart": {"base": "0ms", "max": "100ms", "prevent_exit_codes": [78]})");
    h.start(bad);
    REQUIRE(co_await eventually([&] { return h.state("bad") == State::kFailed; }));
    CHECK(h.st("bad").restarts == 0);
    CHECK(h.st("bad").last_exit_code == 78u);
    CHECK(h.st("bad").last_error == "exit code 78 is in restart.prevent_exit_codes: not restarted");
    CHECK(h.first("bad", State::kBackingOff) == -1);
    co_await test::sleep_for(500ms);
    std::ifstream runs(shared / "runs");
    std::string line;
    int n = 0;
    while (std::getline(runs, line)) ++n;
    CHECK(n == 1);

    co_await h.stop();
    co_await h.ns.finish();
  });
}
