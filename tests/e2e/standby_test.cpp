// End-to-end tests of `"restore": "standby"` (issue 16) on the real
// containerd of the CTest fixture, with busybox httpd components: the
// standby's task is created and waits (runc's init on its exec fifo, the
// program not run), a SIGKILL of the running process is restored by
// starting it, a new standby is made, a stop leaves nothing, a new herd
// adopts both, a standby removed behind herd's back is rebuilt, and a
// standby that cannot be built leaves restarts in place.
#include <signal.h>

#include <string>

#include "e2e_harness.h"
#include "supervise/standby.h"

using namespace herd;
using namespace herd::supervise;
using namespace herd::e2e;
using namespace std::chrono_literals;

namespace {

const std::string kStandby = R"(, "restore": "standby")";

bool standby_ready(Herd& h, const std::string& name) {
  return h.st(name).standby.rfind("ready", 0) == 0;
}

// Ready, with a standby ready too.
bool ready_with_standby(Herd& h, const std::string& name) {
  return h.state(name) == State::kReady && standby_ready(h, name);
}

// The task of container `id`: its status and pid (UNKNOWN, 0 when absent).
struct TaskSeen {
  herd::containerd::ProcessStatus status = herd::containerd::ProcessStatus::UNKNOWN;
  uint32_t pid = 0;
};
asio::awaitable<TaskSeen> task_of(Herd& h, const std::string& id) {
  auto t = co_await h.ns.client().tasks_get(id);
  if (!t.ok()) co_return TaskSeen{};
  co_return TaskSeen{t->status(), t->pid()};
}

}  // namespace

TEST_CASE("restore standby: a created task waits, a kill starts it, a new one waits, stop cleans",
          "[e2e]") {
  Herd h("standby");
  const uint16_t port = free_port();
  h.run([&]() -> asio::awaitable<void> {
    h.start(httpd("web", port, kStandby));
    REQUIRE(co_await eventually([&] { return ready_with_standby(h, "web"); }));
    const uint32_t pid0 = h.st("web").pid;
    auto [status_b, pid_b] = co_await task_of(h, standby_id("web"));
    INFO("standby " << h.st("web").standby << ", task pid " << pid_b);
    CHECK(status_b == herd::containerd::ProcessStatus::CREATED);
    REQUIRE(pid_b != 0);
    // Nothing of the program runs: the init process is runc's, waiting on
    // its exec fifo, not httpd.
    CHECK(comm_of(pid_b).rfind("runc:[2:INIT]", 0) == 0);
    CHECK(comm_of(pid0) == "httpd");
    CHECK(h.st("web").standby == "ready (pid " + std::to_string(pid_b) + ")");
    // It waits under its component's shim: a standby costs no shim.
    const uint32_t shim = parent_of(pid0);
    CHECK(comm_of(shim).rfind("containerd-shim", 0) == 0);
    CHECK(parent_of(pid_b) == shim);

    // The kill is restored by starting the standby's very task.
    REQUIRE(::kill(static_cast<pid_t>(pid0), SIGKILL) == 0);
    REQUIRE(co_await eventually(
        [&] { return h.state("web") == State::kReady && h.st("web").pid != pid0; }));
    CHECK(h.st("web").pid == pid_b);
    CHECK(comm_of(pid_b) == "httpd");
    CHECK(port_answers(port));
    auto [status_b2, running_b] = co_await task_of(h, standby_id("web"));
    CHECK(status_b2 == herd::containerd::ProcessStatus::RUNNING);
    CHECK(running_b == pid_b);
    // The exited container becomes the next standby.
    REQUIRE(co_await eventually([&] { return standby_ready(h, "web"); }));
    auto [status_a, pid_a] = co_await task_of(h, "web");
    CHECK(status_a == herd::containerd::ProcessStatus::CREATED);
    CHECK(comm_of(pid_a).rfind("runc:[2:INIT]", 0) == 0);
    CHECK(parent_of(pid_a) == shim);
    // And it serves the next kill.
    REQUIRE(::kill(static_cast<pid_t>(pid_b), SIGKILL) == 0);
    REQUIRE(co_await eventually(
        [&] { return h.state("web") == State::kReady && h.st("web").pid == pid_a; }));
    CHECK(h.st("web").restarts == 2);

    // A stop removes both containers, tasks and snapshots (finish checks).
    co_await h.stop();
    CHECK(h.st("web").standby.empty());
    co_await h.ns.finish();
  });
}

TEST_CASE("restore standby: a new herd adopts the running task and keeps the waiting one",
          "[e2e]") {
  Herd h("standbyadopt");
  const uint16_t port = free_port();
  h.run([&]() -> asio::awaitable<void> {
    h.start(httpd("web", port, kStandby));
    REQUIRE(co_await eventually([&] { return ready_with_standby(h, "web"); }));
    // Swap once, so the running task is NAME.B's.
    const uint32_t pid0 = h.st("web").pid;
    REQUIRE(::kill(static_cast<pid_t>(pid0), SIGKILL) == 0);
    REQUIRE(co_await eventually(
        [&] { return ready_with_standby(h, "web") && h.st("web").pid != pid0; }));
    const uint32_t running = h.st("web").pid;
    const std::string standby = h.st("web").standby;
    co_await h.detach();

    h.changes.clear();
    h.start(httpd("web", port, kStandby));
    REQUIRE(co_await eventually([&] { return ready_with_standby(h, "web"); }));
    CHECK(h.st("web").adopted);
    CHECK(h.st("web").pid == running);
    CHECK(h.st("web").standby == standby);  // the same waiting task, kept
    auto [status_b, pid_b] = co_await task_of(h, standby_id("web"));
    CHECK(status_b == herd::containerd::ProcessStatus::RUNNING);
    CHECK(pid_b == running);

    // A changed spec while NAME.B runs: its task gets the stop signal
    // before the new one starts (on the same port: a new httpd beside the
    // old one could not bind, and would count a restart).
    co_await h.detach();
    h.changes.clear();
    h.start(httpd("web", port, kStandby + R"(, "env": {"VERSION": "2"})"));
    REQUIRE(co_await eventually([&] { return ready_with_standby(h, "web"); }));
    CHECK_FALSE(h.st("web").adopted);
    CHECK(h.st("web").pid != running);
    CHECK(h.st("web").restarts == 0);
    CHECK(::kill(static_cast<pid_t>(running), 0) != 0);  // the old task is gone
    co_await h.stop();
    co_await h.ns.finish();
  });
}

TEST_CASE("restore standby: removed behind herd's back: restored in place, then rebuilt", "[e2e]") {
  Herd h("standbygone");
  const uint16_t port = free_port();
  h.run([&]() -> asio::awaitable<void> {
    auto& c = h.ns.client();
    h.start(httpd("web", port, kStandby));
    REQUIRE(co_await eventually([&] { return ready_with_standby(h, "web"); }));
    auto [status_b, old_standby] = co_await task_of(h, standby_id("web"));
    REQUIRE(status_b == herd::containerd::ProcessStatus::CREATED);
    // Its task and its snapshot go (an operator's ctr, a disk cleanup).
    auto gone = co_await c.tasks_kill_and_delete(standby_id("web"));
    HERD_REQUIRE_OK(gone);
    HERD_REQUIRE_OK(
        co_await c.snapshots_remove(herd::containerd::kDefaultSnapshotter, standby_id("web")));

    const uint32_t pid0 = h.st("web").pid;
    REQUIRE(::kill(static_cast<pid_t>(pid0), SIGKILL) == 0);
    // Restored in place (the standby's start failed), then rebuilt.
    REQUIRE(co_await eventually(
        [&] { return ready_with_standby(h, "web") && h.st("web").pid != pid0; }));
    CHECK(h.st("web").pid != old_standby);
    auto [status_a, running] = co_await task_of(h, "web");
    CHECK(status_a == herd::containerd::ProcessStatus::RUNNING);
    CHECK(running == h.st("web").pid);
    auto [status_new, new_standby] = co_await task_of(h, standby_id("web"));
    CHECK(status_new == herd::containerd::ProcessStatus::CREATED);
    CHECK(new_standby != old_standby);
    HERD_CHECK_OK(
        co_await c.snapshots_stat(herd::containerd::kDefaultSnapshotter, standby_id("web")));
    co_await h.stop();
    co_await h.ns.finish();
  });
}

TEST_CASE(
    "restore standby: one that cannot be built is reported, restarts go in place, a retry "
    "builds it once it can",
    "[e2e]") {
  Herd h("standbyfail");
  const uint16_t port = free_port();
  h.run([&]() -> asio::awaitable<void> {
    auto& c = h.ns.client();
    // NAME.B's snapshot key is taken by a committed snapshot with a child
    // (held by a lease, so containerd's GC keeps them): containerd refuses
    // to remove it, so the standby cannot be made.
    HERD_REQUIRE_OK(co_await herd::containerd::import_archive(c, test::test_pool(),
                                                              image_archive("busybox.tar")));
    auto img = co_await herd::containerd::unpack_image(c, "herd.local/busybox:latest",
                                                       herd::containerd::kDefaultSnapshotter);
    HERD_REQUIRE_OK(img);
    auto lease = co_await c.leases_create("", std::chrono::hours(1));
    HERD_REQUIRE_OK(lease);
    herd::containerd::CallOptions in_lease;
    in_lease.lease = lease->id();
    const std::string snapshotter = herd::containerd::kDefaultSnapshotter;
    HERD_REQUIRE_OK(co_await c.snapshots_prepare(snapshotter, "blocker-active", img->top_chain_id(),
                                                 {}, in_lease));
    HERD_REQUIRE_OK(co_await c.snapshots_commit(snapshotter, standby_id("web"), "blocker-active",
                                                {}, in_lease));
    HERD_REQUIRE_OK(co_await c.snapshots_prepare(snapshotter, "blocker-child", standby_id("web"),
                                                 {}, in_lease));

    h.start(httpd("web", port, kStandby));
    REQUIRE(co_await eventually([&] {
      return h.state("web") == State::kReady && h.st("web").standby.rfind("failed", 0) == 0;
    }));
    INFO(h.st("web").standby);
    CHECK(h.st("web").standby.find("restarts happen in place") != std::string::npos);
    const uint32_t pid0 = h.st("web").pid;
    REQUIRE(::kill(static_cast<pid_t>(pid0), SIGKILL) == 0);
    REQUIRE(co_await eventually(
        [&] { return h.state("web") == State::kReady && h.st("web").pid != pid0; }));
    auto [status_a, running] = co_await task_of(h, "web");
    CHECK(status_a == herd::containerd::ProcessStatus::RUNNING);
    CHECK(running == h.st("web").pid);

    // The blocker goes: a later attempt builds the standby.
    HERD_REQUIRE_OK(co_await c.snapshots_remove(snapshotter, "blocker-child"));
    REQUIRE(co_await eventually([&] { return standby_ready(h, "web"); }, 90s));
    co_await h.stop();
    HERD_CHECK_OK(co_await c.leases_delete(lease->id(), /*sync=*/true));
    co_await h.ns.finish();
  });
}

TEST_CASE("restore standby: every restart from the standby has a fresh root file system", "[e2e]") {
  Herd h("standbyfresh");
  const uint16_t port = free_port();
  h.run([&]() -> asio::awaitable<void> {
    // It refuses to start on a root file system an earlier run wrote to
    // (exit 3, which fails it at once).
    const std::string p = std::to_string(port);
    const std::string comp = R"({"name": "web", "image": "herd.local/busybox:latest",
        "image_archive": ")" +
                             image_archive("busybox.tar") +
                             R"(", "restore": "standby",
        "args": ["sh", "-c", "test -e /ran && exit 3; touch /ran; exec httpd -f -p 127.0.0.1:)" +
                             p + R"( -h /var/www"],
        "ready": {"tcp": {"port": )" +
                             p + R"(}, "interval": "100ms"},
        "restart": {"base": "0ms", "max": "1s", "prevent_exit_codes": [3]}, "stop_grace": "2s"})";
    h.start(comp);
    // Three kills: NAME.B, then NAME again (its second run), then NAME.B.
    for (int kill = 0; kill < 3; ++kill) {
      INFO("kill " << kill);
      REQUIRE(co_await eventually([&] { return ready_with_standby(h, "web"); }));
      const uint32_t pid = h.st("web").pid;
      REQUIRE(::kill(static_cast<pid_t>(pid), SIGKILL) == 0);
      REQUIRE(co_await eventually([&] {
        return h.st("web").pid != pid &&
               (h.state("web") == State::kReady || h.state("web") == State::kFailed);
      }));
      CHECK(h.state("web") == State::kReady);
      CHECK(h.st("web").last_error.empty());
    }
    CHECK(h.st("web").restarts == 3);
    co_await h.stop();
    co_await h.ns.finish();
  });
}
