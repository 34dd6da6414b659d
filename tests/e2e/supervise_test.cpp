// End-to-end tests of lib/supervise: the Supervisor with real components
// (busybox httpd, a crash loop, real etcd) on the real containerd of the
// CTest fixture, with the images scripts/build-images made. Each test uses
// its own namespace and data directory and proves it left nothing behind.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <sstream>

#include "config/config.h"
#include "containerd/images.h"
#include "e2e_harness.h"
#include "supervise/supervisor.h"

using namespace herd;
using namespace herd::supervise;
using namespace std::chrono_literals;
using herd::test::env;
using herd::test::eventually;
using herd::test::TestNamespace;

using namespace herd::e2e;

TEST_CASE("an httpd component becomes ready, and comes back after a SIGKILL from outside",
          "[e2e]") {
  Herd h("httpd");
  const uint16_t port = free_port();
  h.run([&]() -> asio::awaitable<void> {
    h.start(httpd("web", port));
    REQUIRE(co_await eventually([&] { return h.state("web") == State::kReady; }));
    CHECK(port_answers(port));
    const uint32_t pid = h.st("web").pid;
    REQUIRE(pid > 0);
    CHECK(h.st("web").restarts == 0);
    CHECK_FALSE(h.st("web").adopted);

    REQUIRE(::kill(static_cast<pid_t>(pid), SIGKILL) == 0);
    REQUIRE(co_await eventually(
        [&] { return h.st("web").restarts == 1 && h.state("web") == State::kReady; }));
    CHECK(h.st("web").pid != pid);
    CHECK(h.st("web").last_exit_code == 128 + SIGKILL);
    CHECK(port_answers(port));
    CHECK(h.first("web", State::kBackingOff) >= 0);

    co_await h.stop();
    CHECK(h.state("web") == State::kStopped);
    CHECK_FALSE(port_answers(port));
    co_await h.ns.finish();
  });
}

TEST_CASE(
    "an operation that throws is a failure the component backs off from, and a stop completes",
    "[e2e]") {
  Herd h("throws");
  const uint16_t port = free_port();
  // The first prepare, the first start and the first stop of "web" throw
  // (as a parser bug or a std::bad_alloc would), each once.
  std::set<std::string> thrown;
  Supervisor::Options options;
  options.fault = [&](const std::string& component, std::string_view op) {
    if (component != "web" || (op != "prepare" && op != "start" && op != "stop")) return;
    if (thrown.insert(std::string(op)).second)
      throw std::runtime_error("injected " + std::string(op) + " fault");
  };
  auto saw_error = [&](const std::string& text) {
    for (const auto& c : h.changes)
      if (c.name == "web" && c.last_error.find(text) != std::string::npos) return true;
    return false;
  };
  h.run([&]() -> asio::awaitable<void> {
    h.start(httpd("web", port), options);
    REQUIRE(co_await eventually([&] { return h.state("web") == State::kReady; }));
    CHECK(thrown.count("prepare") == 1);
    CHECK(thrown.count("start") == 1);
    CHECK(saw_error("internal error: prepare threw: injected prepare fault"));
    CHECK(saw_error("internal error: start threw: injected start fault"));
    CHECK(h.first("web", State::kBackingOff) >= 0);
    CHECK(port_answers(port));

    // An operator stop whose operation throws still ends: the component is
    // stopped (with the error), not stuck in `stopping`.
    bool accepted = false;
    h.sup->stop_component("web", [&](Status s) { accepted = s.ok(); });
    REQUIRE(co_await eventually([&] { return accepted && h.state("web") == State::kStopped; }));
    CHECK(thrown.count("stop") == 1);
    CHECK(h.st("web").last_error.find("internal error: stop threw") != std::string::npos);

    // The actor still works: start it again (it adopts the task the failed
    // stop left running), then a whole stop cleans everything up.
    h.sup->start_component("web", [](Status) {});
    REQUIRE(co_await eventually([&] { return h.state("web") == State::kReady; }));
    co_await h.stop();
    CHECK(h.state("web") == State::kStopped);
    CHECK_FALSE(port_answers(port));
    co_await h.ns.finish();
  });
}

TEST_CASE("a component that always exits 1 backs off and fails at max_restarts", "[e2e]") {
  Herd h("crashloop");
  h.run([&]() -> asio::awaitable<void> {
    const std::string crasher = R"({"name": "crasher", "image": "herd.local/busybox:latest",
        "image_archive": ")" + image_archive("busybox.tar") +
                                R"(",
        "args": ["sh", "-c", "exit 1"], "network": "none",
        "restart": {"base": "100ms", "max": "400ms", "max_restarts": 3}})";
    auto t0 = std::chrono::steady_clock::now();
    h.start(crasher);
    REQUIRE(co_await eventually([&] { return h.state("crasher") == State::kFailed; }));
    auto elapsed = std::chrono::steady_clock::now() - t0;
    // Lower bound only (the schedule, not speed): 0 + 100 + 200 ms waited
    // (the first restart of a run is immediate).
    CHECK(elapsed >= 300ms);
    CHECK(h.st("crasher").restarts == 3);
    CHECK(h.st("crasher").last_exit_code == 1u);
    int backoffs = 0;
    for (const auto& c : h.changes) backoffs += c.state == State::kBackingOff;
    CHECK(backoffs == 3);

    co_await h.stop();
    CHECK(h.state("crasher") == State::kStopped);
    co_await h.ns.finish();
  });
}

TEST_CASE("an exit during the readiness wait is seen at once, not when the probe gives up",
          "[e2e]") {
  Herd h("exitwait");
  const uint16_t closed = free_port();
  h.run([&]() -> asio::awaitable<void> {
    const std::string comp = R"({"name": "quitter", "image": "herd.local/busybox:latest",
        "image_archive": ")" +
                             image_archive("busybox.tar") + R"(",
        "args": ["sh", "-c", "sleep 0.3; exit 2"], "network": "none",
        "ready": {"tcp": {"port": )" +
                             std::to_string(closed) + R"(}, "max_wait": "10m"},
        "restart": {"base": "10m", "max": "10m"}})";
    h.start(comp);
    REQUIRE(co_await eventually([&] { return h.state("quitter") == State::kWaitingReady; }));
    // The probe would wait 10 minutes; the exit is seen as it happens.
    REQUIRE(co_await eventually([&] { return h.state("quitter") == State::kBackingOff; }));
    CHECK(h.st("quitter").last_exit_code == 2u);
    CHECK(h.first("quitter", State::kReady) == -1);
    co_await h.stop();
    co_await h.ns.finish();
  });
}

TEST_CASE("stop during a long backoff and during a readiness wait is prompt", "[e2e]") {
  Herd h("promptstop");
  const uint16_t closed = free_port();
  h.run([&]() -> asio::awaitable<void> {
    const std::string comps =
        R"({"name": "backoff", "image": "herd.local/busybox:latest",
            "image_archive": ")" +
        image_archive("busybox.tar") + R"(",
            "args": ["sh", "-c", "exit 1"], "network": "none",
            "restart": {"base": "60s", "max": "60s"}},
           {"name": "neverready", "image": "herd.local/busybox:latest",
            "image_archive": ")" +
        image_archive("busybox.tar") + R"(",
            "args": ["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"],
            "stop_grace": "60s",
            "ready": {"tcp": {"port": )" +
        std::to_string(closed) + R"(}, "max_wait": "0"}})";
    h.start(comps);
    REQUIRE(co_await eventually([&] {
      return h.state("backoff") == State::kBackingOff &&
             h.state("neverready") == State::kWaitingReady;
    }));
    auto t0 = std::chrono::steady_clock::now();
    co_await h.stop();
    // Neither the 60 s backoff nor the endless readiness wait held it up
    // (a bound far below both, not a speed check).
    CHECK(std::chrono::steady_clock::now() - t0 < 20s);
    CHECK(h.state("backoff") == State::kStopped);
    CHECK(h.state("neverready") == State::kStopped);
    co_await h.ns.finish();
  });
}

TEST_CASE("dependants start after their dependencies are ready and stop before them", "[e2e]") {
  Herd h("deps");
  const uint16_t pa = free_port(), pb = free_port();
  h.run([&]() -> asio::awaitable<void> {
    h.start(httpd("b", pb, R"(, "depends_on": ["a"])") + "," + httpd("a", pa));
    REQUIRE(co_await eventually(
        [&] { return h.state("a") == State::kReady && h.state("b") == State::kReady; }));
    CHECK(h.first("a", State::kReady) < h.first("b", State::kPreparing));
    co_await h.stop();
    CHECK(h.first("b", State::kStopped) < h.first("a", State::kStopping));
    co_await h.ns.finish();
  });
}

TEST_CASE("a new supervisor adopts running components, and re-creates changed ones", "[e2e]") {
  Herd h("adopt");
  const uint16_t p1 = free_port(), p2 = free_port();
  h.run([&]() -> asio::awaitable<void> {
    const std::string ticker = R"({"name": "ticker", "image": "herd.local/busybox:latest",
        "image_archive": ")" + image_archive("busybox.tar") +
                               R"(",
        "args": ["sh", "-c", "while true; do echo tick; sleep 0.05; done"], "stop_grace": "1s"})";
    const std::string comps = httpd("keep", p1) + "," + httpd("change", p2) + "," + ticker;
    h.start(comps);
    REQUIRE(co_await eventually([&] {
      return h.state("keep") == State::kReady && h.state("change") == State::kReady &&
             h.state("ticker") == State::kReady;
    }));
    const uint32_t keep_pid = h.st("keep").pid, change_pid = h.st("change").pid;
    co_await h.detach();
    CHECK(port_answers(p1));  // still running without a supervisor
    auto image_before = co_await h.ns.client().images_get("herd.local/busybox:latest");
    HERD_REQUIRE_OK(image_before);

    // The next herd: same config for "keep", a changed one for "change".
    const std::string changed = httpd("keep", p1) + "," +
                                httpd("change", p2, R"(, "env": {"VERSION": "2"})") + "," + ticker;
    h.changes.clear();
    h.start(changed);
    REQUIRE(co_await eventually(
        [&] { return h.state("keep") == State::kReady && h.state("change") == State::kReady; }));
    CHECK(h.st("keep").pid == keep_pid);
    CHECK(h.st("keep").adopted);
    CHECK(h.st("keep").restarts == 0);
    CHECK(h.st("change").pid != change_pid);
    CHECK_FALSE(h.st("change").adopted);
    // A present image is never imported (or pulled) again.
    auto image_after = co_await h.ns.client().images_get("herd.local/busybox:latest");
    HERD_REQUIRE_OK(image_after);
    CHECK(image_after->updated_at().seconds() == image_before->updated_at().seconds());
    CHECK(image_after->updated_at().nanos() == image_before->updated_at().nanos());
    // The adopted ticker's output keeps flowing: it never blocks on a pipe.
    REQUIRE(co_await eventually([&] { return h.state("ticker") == State::kReady; }));
    CHECK(h.st("ticker").adopted);
    const auto log = h.data / ".herd-logs" / "ticker.log";
    const auto size0 = std::filesystem::file_size(log);
    REQUIRE(co_await eventually([&] { return std::filesystem::file_size(log) > size0 + 50; }));
    co_await h.stop();
    co_await h.ns.finish();
  });
}

TEST_CASE("leftovers of an unclean shutdown are recovered", "[e2e]") {
  Herd h("leftovers");
  const uint16_t p1 = free_port(), p2 = free_port();
  h.run([&]() -> asio::awaitable<void> {
    auto& c = h.ns.client();
    // Start both once, then leave them behind as a crash would.
    h.start(httpd("deadtask", p1) + "," + httpd("stale", p2));
    REQUIRE(co_await eventually(
        [&] { return h.state("deadtask") == State::kReady && h.state("stale") == State::kReady; }));
    const uint32_t dead_pid = h.st("deadtask").pid;
    co_await h.detach();
    // 1. a dead task record: its process is killed while nobody watches.
    REQUIRE(::kill(static_cast<pid_t>(dead_pid), SIGKILL) == 0);
    REQUIRE(co_await eventually([&] { return !port_answers(p1); }));
    // 2. an orphan snapshot: the key a component's container would use,
    //    held by a lease as a crash between prepare and create leaves it.
    auto img = co_await herd::containerd::resolve_image(c, "herd.local/busybox:latest");
    HERD_REQUIRE_OK(img);
    auto lease = co_await c.leases_create("", std::chrono::hours(1));
    HERD_REQUIRE_OK(lease);
    herd::containerd::CallOptions in_lease;
    in_lease.lease = lease->id();
    HERD_REQUIRE_OK(co_await c.snapshots_prepare(herd::containerd::kDefaultSnapshotter, "orphan",
                                                 img->top_chain_id(), {}, in_lease));
    // 3. "stale" runs with a different spec than the next config asks for.

    h.changes.clear();
    const uint16_t p3 = free_port();
    h.start(httpd("deadtask", p1) + "," + httpd("stale", p2, R"(, "env": {"NEW": "1"})") + "," +
            httpd("orphan", p3));
    REQUIRE(co_await eventually([&] {
      return h.state("deadtask") == State::kReady && h.state("stale") == State::kReady &&
             h.state("orphan") == State::kReady;
    }));
    CHECK(h.st("deadtask").pid != dead_pid);
    CHECK_FALSE(h.st("stale").adopted);
    CHECK(port_answers(p1));
    CHECK(port_answers(p3));
    co_await h.stop();
    HERD_CHECK_OK(co_await c.leases_delete(lease->id(), /*sync=*/true));
    co_await h.ns.finish();
  });
}

TEST_CASE("a containerd restart is noticed, reconciled, and a component killed meanwhile restarts",
          "[e2e][restart]") {
  Herd h("ctrdrestart");
  const uint16_t p1 = free_port(), p2 = free_port();
  h.run([&]() -> asio::awaitable<void> {
    h.start(httpd("victim", p1) + "," + httpd("bystander", p2));
    REQUIRE(co_await eventually([&] {
      return h.state("victim") == State::kReady && h.state("bystander") == State::kReady;
    }));
    const uint32_t victim = h.st("victim").pid, bystander = h.st("bystander").pid;

    // Stop containerd (by its recorded pid), kill the victim while it is
    // down, start containerd again.
    std::ifstream pidfile(env().containerd_dir / "containerd.pid");
    pid_t ctrd = 0;
    pidfile >> ctrd;
    REQUIRE(ctrd > 0);
    REQUIRE(::kill(ctrd, SIGTERM) == 0);
    REQUIRE(co_await eventually([&] { return ::kill(ctrd, 0) != 0; }));
    REQUIRE(::kill(static_cast<pid_t>(victim), SIGKILL) == 0);
    std::string cmd = std::string(HERD_SOURCE_DIR) + "/scripts/dev-containerd start " +
                      env().containerd_dir.string() + " >/dev/null";
    REQUIRE(std::system(cmd.c_str()) == 0);

    REQUIRE(co_await eventually([&] { return h.sup->gaps() >= 1; }));
    REQUIRE(co_await eventually(
        [&] { return h.st("victim").restarts == 1 && h.state("victim") == State::kReady; }));
    CHECK(h.st("victim").pid != victim);
    for (const auto& c : h.changes)
      UNSCOPED_INFO(c.name << " " << to_string(c.state) << " pid " << c.pid << " exit "
                           << c.last_exit_code.value_or(0) << " " << c.last_error);
    CHECK(h.st("bystander").pid == bystander);
    CHECK(h.st("bystander").restarts == 0);
    CHECK(port_answers(p1));
    co_await h.stop();
    co_await h.ns.finish();
  });
}

TEST_CASE("real etcd comes back healthy after a SIGKILL, with its data", "[e2e][etcd]") {
  Herd h("etcd");
  const uint16_t client = free_port(), peer = free_port();
  const std::string endpoint = "http://127.0.0.1:" + std::to_string(client);
  h.run([&]() -> asio::awaitable<void> {
    const std::string etcd = R"({"name": "etcd", "image": "herd.local/etcd:3.4",
        "image_archive": ")" +
                             image_archive("etcd.tar") + R"(",
        "args": ["/usr/bin/etcd", "--name", "herd", "--data-dir", "/var/lib/etcd",
                 "--listen-client-urls", ")" +
                             endpoint + R"(",
                 "--advertise-client-urls", ")" +
                             endpoint + R"(",
                 "--listen-peer-urls", "http://127.0.0.1:)" +
                             std::to_string(peer) + R"(",
                 "--initial-advertise-peer-urls", "http://127.0.0.1:)" +
                             std::to_string(peer) + R"(",
                 "--initial-cluster", "herd=http://127.0.0.1:)" +
                             std::to_string(peer) + R"("],
        "mounts": [{"data": "etcd", "target": "/var/lib/etcd", "mode": "0700"}],
        "ready": {"tcp": {"port": )" +
                             std::to_string(client) + R"(}, "interval": "100ms"},
        "restart": {"preset": "aggressive"}, "stop_grace": "10s"})";
    h.start(etcd);
    REQUIRE(co_await eventually([&] { return h.state("etcd") == State::kReady; }, 60s));
    const std::string ctl = "ETCDCTL_API=3 etcdctl --endpoints " + endpoint + " ";
    REQUIRE(std::system((ctl + "put herd-key herd-value >/dev/null").c_str()) == 0);

    const uint32_t pid = h.st("etcd").pid;
    REQUIRE(::kill(static_cast<pid_t>(pid), SIGKILL) == 0);
    REQUIRE(co_await eventually(
        [&] { return h.st("etcd").restarts == 1 && h.state("etcd") == State::kReady; }, 60s));
    CHECK(std::system((ctl + "endpoint health >/dev/null 2>&1").c_str()) == 0);
    auto out = std::filesystem::temp_directory_path() / ("herd-e2e-etcd-get-" + h.ns.name());
    REQUIRE(std::system((ctl + "get --print-value-only herd-key > " + out.string()).c_str()) == 0);
    std::ifstream in(out);
    std::string value;
    std::getline(in, value);
    CHECK(value == "herd-value");
    std::filesystem::remove(out);
    co_await h.stop();
    co_await h.ns.finish();
  });
}
