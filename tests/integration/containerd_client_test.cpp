// Integration tests of lib/containerd against a real containerd (started by
// the CTest fixture) with real images (built by scripts/build-images).
// Every test uses its own namespace and proves it left nothing behind.
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <fstream>
#include <set>
#include <sstream>

#include "containerd/events.h"
#include "containerd/images.h"
#include "containerd/oci_archive.h"
#include "containerd/oci_spec.h"
#include "harness.h"

using namespace herd;
using namespace herd::containerd;
using namespace std::chrono_literals;
using herd::test::env;
using herd::test::eventually;
using herd::test::run_coro;
using herd::test::sleep_for;
using herd::test::test_pool;
using herd::test::TestNamespace;

namespace {

constexpr char kBusybox[] = "herd.local/busybox:latest";

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Imports and unpacks the busybox image into the test's namespace.
asio::awaitable<ResolvedImage> busybox(Client& c) {
  auto imported = co_await import_archive(c, test_pool(), env().image("busybox.tar"));
  INFO(imported.status().to_string());
  REQUIRE(imported.ok());
  auto img = co_await unpack_image(c, kBusybox);
  INFO(img.status().to_string());
  REQUIRE(img.ok());
  co_return std::move(*img);
}

// Creates container `id` running `args` from the image, with its own
// network namespace, stdout and stderr to `out`; returns the task's pid.
asio::awaitable<uint32_t> create_task(Client& c, const ResolvedImage& img, const std::string& id,
                                      std::vector<std::string> args,
                                      const std::filesystem::path& out) {
  auto image_config = parse_image_config(img.config_json);
  REQUIRE(image_config.ok());
  SpecOptions so;
  so.container_id = id;
  so.ns = c.ns();
  so.args = std::move(args);
  so.host_network = false;
  auto spec = build_runtime_spec(*image_config, so);
  INFO(spec.status().to_string());
  REQUIRE(spec.ok());

  // Snapshot and container under a lease, as herd makes them: an active
  // snapshot that nothing references yet is fair game for containerd's
  // garbage collector, which may run at any moment.
  auto lease = co_await c.leases_create("", std::chrono::hours(1));
  HERD_REQUIRE_OK(lease);
  CallOptions in_lease;
  in_lease.lease = lease->id();
  auto mounts =
      co_await c.snapshots_prepare(kDefaultSnapshotter, id, img.top_chain_id(), {}, in_lease);
  INFO(mounts.status().to_string());
  REQUIRE(mounts.ok());

  Container ctr;
  ctr.set_id(id);
  ctr.set_image(img.name);
  ctr.mutable_runtime()->set_name(kRuntimeRuncV2);
  ctr.mutable_spec()->set_type_url(kSpecTypeUrl);
  ctr.mutable_spec()->set_value(spec->dump());
  ctr.set_snapshotter(kDefaultSnapshotter);
  ctr.set_snapshot_key(id);
  auto created = co_await c.containers_create(ctr, in_lease);
  INFO(created.status().to_string());
  REQUIRE(created.ok());
  HERD_REQUIRE_OK(co_await c.leases_delete(lease->id(), /*sync=*/false));

  CreateTaskRequest req;
  req.set_container_id(id);
  for (const auto& m : *mounts) *req.add_rootfs() = m;
  req.set_stdout("file://" + out.string());
  req.set_stderr("file://" + out.string());
  auto pid = co_await c.tasks_create(req);
  INFO(pid.status().to_string());
  REQUIRE(pid.ok());
  co_return *pid;
}

// Removes a container's snapshot once the container is deleted. NotFound
// counts as removed: containerd's garbage collector, which the container
// delete triggers, may have taken the unreferenced snapshot first.
asio::awaitable<void> remove_snapshot(Client& c, const std::string& key) {
  Status removed = co_await c.snapshots_remove(kDefaultSnapshotter, key);
  INFO(removed.to_string());
  CHECK((removed.ok() || removed.is_not_found()));
}

// Removes task (killing it), container and its snapshot.
asio::awaitable<void> remove_all(Client& c, const std::string& id) {
  auto t = co_await c.tasks_kill_and_delete(id);
  INFO(t.status().to_string());
  if (!t.ok()) CHECK(t.status().is_not_found());
  Status deleted = co_await c.containers_delete(id);
  INFO(deleted.to_string());
  CHECK(deleted.ok());
  co_await remove_snapshot(c, id);
}

// Collects the events of one EventStream for a test to wait on.
struct EventLog {
  std::vector<TaskEvent> events;
  int live_first = 0;
  int gaps = 0;
  int downs = 0;

  EventStream::Handlers handlers() {
    return {[this](const TaskEvent& e) { events.push_back(e); },
            [this](bool first) { first ? ++live_first : ++gaps; },
            [this](const Status&) { ++downs; }};
  }
  const TaskEvent* find(TaskEvent::Kind kind, const std::string& id) const {
    for (const auto& e : events)
      if (e.kind == kind && e.container_id == id) return &e;
    return nullptr;
  }
};

// Starts an events stream on the current executor that records into `log`,
// and waits until it is proven live.
asio::awaitable<std::shared_ptr<EventStream>> live_stream(Client& c, EventLog& log) {
  // The executor first: no braced temporary in a co_await expression
  // (see common/asio.h).
  auto ex = co_await asio::this_coro::executor;
  auto stream = EventStream::create(c, ex, {}, log.handlers());
  stream->start();
  REQUIRE(co_await eventually([&] { return log.live_first == 1; }));
  co_return stream;
}

}  // namespace

TEST_CASE("containerd answers its version", "[integration]") {
  TestNamespace ns("version");
  run_coro([&]() -> asio::awaitable<void> {
    auto v = co_await ns.client().version();
    INFO(v.status().to_string());
    REQUIRE(v.ok());
    CHECK_FALSE(v->version.empty());
    co_await ns.finish();
  });
}

TEST_CASE("the busybox archive imports natively and unpacks", "[integration]") {
  TestNamespace ns("import");
  run_coro([&]() -> asio::awaitable<void> {
    auto& c = ns.client();
    auto archive = OciArchive::open(env().image("busybox.tar"));
    REQUIRE(archive.ok());
    auto index = archive->index();
    REQUIRE(index.ok());
    REQUIRE(index->size() == 1);
    CHECK((*index)[0].image_name == kBusybox);

    auto imported = co_await import_archive(c, test_pool(), env().image("busybox.tar"));
    INFO(imported.status().to_string());
    REQUIRE(imported.ok());
    REQUIRE(imported->size() == 1);
    CHECK((*imported)[0].name() == kBusybox);
    CHECK((*imported)[0].target().digest() == (*index)[0].descriptor.digest);

    // Importing again is idempotent.
    auto again = co_await import_archive(c, test_pool(), env().image("busybox.tar"));
    INFO(again.status().to_string());
    REQUIRE(again.ok());
    auto listed = co_await c.images_list();
    REQUIRE(listed.ok());
    CHECK(listed->size() == 1);

    auto img = co_await unpack_image(c, kBusybox);
    INFO(img.status().to_string());
    REQUIRE(img.ok());
    REQUIRE(img->chain_ids.size() == img->layers.size());
    auto top = co_await c.snapshots_stat(kDefaultSnapshotter, img->top_chain_id());
    REQUIRE(top.ok());
    CHECK(top->kind() == ::containerd::services::snapshots::v1::COMMITTED);
    // The unpacked snapshots survive a garbage collection (a synchronous
    // lease delete runs one) while the image exists.
    auto dummy = co_await c.leases_create("", std::chrono::hours(1));
    HERD_REQUIRE_OK(dummy);
    HERD_REQUIRE_OK(co_await c.leases_delete(dummy->id(), /*sync=*/true));
    HERD_CHECK_OK(co_await c.snapshots_stat(kDefaultSnapshotter, img->top_chain_id()));
    // The config names the snapshot for the garbage collector.
    auto cfg = co_await c.content_info(img->config_digest);
    REQUIRE(cfg.ok());
    CHECK(cfg->labels().at("containerd.io/gc.ref.snapshot.overlayfs") == img->top_chain_id());

    // A second unpack finds the chain and changes nothing.
    auto before = co_await c.snapshots_list(kDefaultSnapshotter);
    auto img2 = co_await unpack_image(c, kBusybox);
    REQUIRE(img2.ok());
    auto after = co_await c.snapshots_list(kDefaultSnapshotter);
    REQUIRE(before.ok());
    REQUIRE(after.ok());
    CHECK(before->size() == after->size());

    // A missing archive and a non-archive fail with clear errors.
    auto missing =
        co_await import_archive(c, test_pool(), std::filesystem::path("/nonexistent/x.tar"));
    CHECK(missing.status().code() == Code::kNotFound);
    CHECK_THAT(missing.status().message(), Catch::Contains("/nonexistent/x.tar"));
    co_await ns.finish();
  });
}

TEST_CASE("a task's exit status 3 arrives as /tasks/exit, with /tasks/start before it",
          "[integration]") {
  TestNamespace ns("exit3");
  run_coro([&]() -> asio::awaitable<void> {
    auto& c = ns.client();
    auto img = co_await busybox(c);
    EventLog log;
    auto stream = co_await live_stream(c, log);

    auto out = std::filesystem::temp_directory_path() / ("herd-it-exit3-" + ns.name() + ".log");
    std::filesystem::remove(out);
    auto t0 = std::chrono::steady_clock::now();
    std::vector<std::string> argv{"sh", "-c", "echo hello from busybox; exit 3"};
    auto pid = co_await create_task(c, img, "exit3", argv, out);
    CHECK(pid > 0);
    auto started = co_await c.tasks_start("exit3");
    INFO(started.status().to_string());
    REQUIRE(started.ok());
    auto t1 = std::chrono::steady_clock::now();
    WARN("create+start took "
         << std::chrono::duration_cast<std::chrono::microseconds>(t1 - t0).count() / 1000.0
         << " ms");

    REQUIRE(co_await eventually([&] { return log.find(TaskEvent::Kind::kExit, "exit3"); }));
    const TaskEvent* start = log.find(TaskEvent::Kind::kStart, "exit3");
    const TaskEvent* exit = log.find(TaskEvent::Kind::kExit, "exit3");
    REQUIRE(start);
    CHECK(start->pid == pid);
    CHECK(exit->exit_status == 3);
    CHECK(exit->pid == pid);
    CHECK(exit->exec_id == "exit3");
    CHECK(start < exit);  // in order of arrival

    auto waited = co_await c.tasks_wait("exit3", CallOptions::with_timeout(5s));
    REQUIRE(waited.ok());
    CHECK(waited->code == 3);
    auto deleted = co_await c.tasks_delete("exit3");
    REQUIRE(deleted.ok());
    CHECK(deleted->code == 3);
    CHECK(read_file(out) == "hello from busybox\n");
    std::filesystem::remove(out);

    stream->stop();
    co_await remove_all(c, "exit3");
    co_await ns.finish();
  });
}

TEST_CASE("SIGTERM ends a sleeping task, its exit is seen, and everything is deleted",
          "[integration]") {
  TestNamespace ns("sigterm");
  run_coro([&]() -> asio::awaitable<void> {
    auto& c = ns.client();
    auto img = co_await busybox(c);
    EventLog log;
    auto stream = co_await live_stream(c, log);

    auto out = std::filesystem::temp_directory_path() / ("herd-it-" + ns.name() + ".log");
    // PID 1 ignores signals it has no handler for, so the shell traps TERM,
    // and says when the trap is set.
    std::vector<std::string> argv{"sh", "-c",
                                  "trap 'exit 143' TERM; echo trapped; sleep 1000 & wait"};
    (void)co_await create_task(c, img, "sleeper", argv, out);
    HERD_REQUIRE_OK(co_await c.tasks_start("sleeper"));
    auto running = co_await c.tasks_get("sleeper");
    REQUIRE(running.ok());
    CHECK(running->status() == ProcessStatus::RUNNING);

    REQUIRE(co_await eventually([&] { return read_file(out) == "trapped\n"; }));
    auto k0 = std::chrono::steady_clock::now();
    HERD_REQUIRE_OK(co_await c.tasks_kill("sleeper", SIGTERM));
    REQUIRE(co_await eventually([&] { return log.find(TaskEvent::Kind::kExit, "sleeper"); }));
    auto seen = log.find(TaskEvent::Kind::kExit, "sleeper")->received;
    WARN("kill -> exit event took "
         << std::chrono::duration_cast<std::chrono::microseconds>(seen - k0).count() / 1000.0
         << " ms");
    CHECK(log.find(TaskEvent::Kind::kExit, "sleeper")->exit_status == 143);

    stream->stop();
    co_await remove_all(c, "sleeper");
    std::filesystem::remove(out);
    co_await ns.finish();
  });
}

TEST_CASE("tasks_kill_and_delete kills a running task first", "[integration]") {
  TestNamespace ns("killdelete");
  run_coro([&]() -> asio::awaitable<void> {
    auto& c = ns.client();
    auto img = co_await busybox(c);
    auto out = std::filesystem::temp_directory_path() / ("herd-it-" + ns.name() + ".log");
    std::vector<std::string> argv{"sleep", "1000"};
    (void)co_await create_task(c, img, "stubborn", argv, out);
    HERD_REQUIRE_OK(co_await c.tasks_start("stubborn"));
    // A plain delete refuses a running task...
    auto refused = co_await c.tasks_delete("stubborn");
    CHECK_FALSE(refused.ok());
    // ...the killing delete does not, and reports the SIGKILL.
    auto gone = co_await c.tasks_kill_and_delete("stubborn", CallOptions::with_timeout(10s));
    INFO(gone.status().to_string());
    REQUIRE(gone.ok());
    CHECK(gone->code == 128 + SIGKILL);
    auto none = co_await c.tasks_get("stubborn");
    CHECK(none.status().is_not_found());
    auto again = co_await c.tasks_kill_and_delete("stubborn");
    CHECK(again.status().is_not_found());
    HERD_CHECK_OK(co_await c.containers_delete("stubborn"));
    co_await remove_snapshot(c, "stubborn");
    std::filesystem::remove(out);
    co_await ns.finish();
  });
}

TEST_CASE("a containerd restart is reported as a gap, and later exits are seen",
          "[integration][restart]") {
  TestNamespace ns("restart");
  run_coro([&]() -> asio::awaitable<void> {
    auto& c = ns.client();
    auto img = co_await busybox(c);
    EventLog log;
    auto stream = co_await live_stream(c, log);

    auto out = std::filesystem::temp_directory_path() / ("herd-it-" + ns.name() + ".log");
    std::vector<std::string> argv{"sleep", "1000"};
    (void)co_await create_task(c, img, "survivor", argv, out);
    HERD_REQUIRE_OK(co_await c.tasks_start("survivor"));

    // Restart containerd; the task's shim keeps it running meanwhile.
    std::string cmd = std::string(HERD_SOURCE_DIR) + "/scripts/dev-containerd restart " +
                      env().containerd_dir.string() + " >/dev/null";
    REQUIRE(std::system(cmd.c_str()) == 0);

    REQUIRE(co_await eventually([&] { return log.downs >= 1; }));
    REQUIRE(co_await eventually([&] { return log.gaps >= 1; }));
    CHECK(stream->live());
    CHECK(log.live_first == 1);  // the first report came only once

    // After the gap: the task survived and its exit is still seen.
    auto t = co_await c.tasks_get("survivor");
    INFO(t.status().to_string());
    REQUIRE(t.ok());
    CHECK(t->status() == ProcessStatus::RUNNING);
    HERD_REQUIRE_OK(co_await c.tasks_kill("survivor", SIGKILL));
    REQUIRE(co_await eventually([&] { return log.find(TaskEvent::Kind::kExit, "survivor"); }));
    CHECK(log.find(TaskEvent::Kind::kExit, "survivor")->exit_status == 128 + SIGKILL);

    stream->stop();
    co_await remove_all(c, "survivor");
    std::filesystem::remove(out);
    co_await ns.finish();
  });
}

TEST_CASE("calls to a containerd that does not answer fail within their deadline",
          "[integration]") {
  run_coro([&]() -> asio::awaitable<void> {
    // No socket at all: unavailable at once.
    Client::Options gone;
    gone.address = (env().containerd_dir / "no-such.sock").string();
    // Never destroyed (harness.h, client_until_exit).
    Client& absent = test::client_until_exit(std::make_unique<Client>(gone));
    auto t0 = std::chrono::steady_clock::now();
    auto v = co_await absent.version(CallOptions::with_timeout(500ms));
    auto waited = std::chrono::steady_clock::now() - t0;
    REQUIRE_FALSE(v.ok());
    CHECK(v.status().code() == Code::kUnavailable);
    CHECK_THAT(v.status().message(), Catch::Contains("no-such.sock"));
    CHECK(waited < 5s);  // bounded by the deadline, not a performance check

    // A stopped (SIGSTOP) containerd: connected, but it never answers. The
    // deadline ends the call. The fixture's containerd is stopped by the pid
    // it recorded, and always continued.
    pid_t pid = static_cast<pid_t>(std::stol(read_file(env().containerd_dir / "containerd.pid")));
    struct Continue {
      pid_t pid;
      ~Continue() { ::kill(pid, SIGCONT); }
    } cont{pid};
    Client::Options live_opts;
    live_opts.address = env().address();
    Client& frozen = test::client_until_exit(std::make_unique<Client>(live_opts));
    HERD_REQUIRE_OK(co_await frozen.version());  // connected
    REQUIRE(::kill(pid, SIGSTOP) == 0);
    // A group stop reaches each thread on its own; wait until all are.
    REQUIRE(co_await eventually([&] {
      for (const auto& t :
           std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
        if (read_file(t.path() / "status").find("State:\tT") == std::string::npos) return false;
      }
      return true;
    }));
    t0 = std::chrono::steady_clock::now();
    auto h = co_await frozen.version(CallOptions::with_timeout(300ms));
    waited = std::chrono::steady_clock::now() - t0;
    INFO("containerd pid " << pid << ", after SIGSTOP: "
                           << read_file("/proc/" + std::to_string(pid) + "/status").substr(0, 80));
    REQUIRE_FALSE(h.ok());
    CHECK(h.status().code() == Code::kDeadlineExceeded);
    CHECK_THAT(h.status().message(), Catch::Contains("containerd.sock"));
    CHECK(waited >= 300ms);
    CHECK(waited < 5s);

    // A Canceller aborts a call in flight.
    auto canceller = std::make_shared<Canceller>();
    CallOptions co;
    co.timeout = 10s;
    co.canceller = canceller;
    asio::steady_timer later(co_await asio::this_coro::executor, 100ms);
    later.async_wait([canceller](boost::system::error_code) { canceller->cancel(); });
    auto cancelled = co_await frozen.version(co);
    CHECK(cancelled.status().code() == Code::kCancelled);
    REQUIRE(::kill(pid, SIGCONT) == 0);
    HERD_CHECK_OK(co_await frozen.version());  // and it answers again
    // Once cancelled, later calls fail at once.
    auto after = co_await absent.version(co);
    CHECK(after.status().code() == Code::kCancelled);
  });
}

TEST_CASE("a snapshot without a container and a stopped task record are found and removed",
          "[integration]") {
  TestNamespace ns("leftovers");
  run_coro([&]() -> asio::awaitable<void> {
    auto& c = ns.client();
    auto img = co_await busybox(c);
    // An orphan snapshot, as a crash between prepare and create leaves it:
    // prepared under a lease that has not expired yet (without one,
    // containerd's garbage collector removes it by itself).
    auto lease = co_await c.leases_create("", std::chrono::hours(1));
    HERD_REQUIRE_OK(lease);
    CallOptions in_lease;
    in_lease.lease = lease->id();
    HERD_REQUIRE_OK(co_await c.snapshots_prepare(kDefaultSnapshotter, "orphan", img.top_chain_id(),
                                                 {}, in_lease));
    // A task that exited and was never deleted.
    auto out = std::filesystem::temp_directory_path() / ("herd-it-" + ns.name() + ".log");
    std::vector<std::string> argv{"true"};
    (void)co_await create_task(c, img, "done", argv, out);
    HERD_REQUIRE_OK(co_await c.tasks_start("done"));
    HERD_REQUIRE_OK(co_await c.tasks_wait("done", CallOptions::with_timeout(10s)));

    // Find them the way a supervisor's cleanup does.
    auto containers = co_await c.containers_list();
    REQUIRE(containers.ok());
    std::set<std::string> used;
    for (const auto& ct : *containers) used.insert(ct.snapshot_key());
    auto snaps = co_await c.snapshots_list(kDefaultSnapshotter);
    REQUIRE(snaps.ok());
    std::vector<std::string> orphans;
    for (const auto& s : *snaps) UNSCOPED_INFO("snapshot " << s.name() << " kind " << s.kind());
    for (const auto& s : *snaps)
      if (s.kind() == ::containerd::services::snapshots::v1::ACTIVE && !used.count(s.name()))
        orphans.push_back(s.name());
    CHECK(orphans == std::vector<std::string>{"orphan"});
    for (const auto& o : orphans)
      HERD_CHECK_OK(co_await c.snapshots_remove(kDefaultSnapshotter, o));
    auto leases = co_await c.leases_list();
    HERD_REQUIRE_OK(leases);
    REQUIRE(leases->size() == 1);
    HERD_CHECK_OK(co_await c.leases_delete((*leases)[0].id(), /*sync=*/true));

    auto tasks = co_await c.tasks_list();
    REQUIRE(tasks.ok());
    REQUIRE(tasks->size() == 1);
    CHECK((*tasks)[0].id() == "done");  // List fills id, not container_id
    CHECK((*tasks)[0].status() == ProcessStatus::STOPPED);
    auto reaped = co_await c.tasks_kill_and_delete("done");
    REQUIRE(reaped.ok());
    CHECK(reaped->code == 0);

    HERD_CHECK_OK(co_await c.containers_delete("done"));
    co_await remove_snapshot(c, "done");
    std::filesystem::remove(out);
    co_await ns.finish();
  });
}
