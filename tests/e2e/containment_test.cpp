// End-to-end tests of containment (issue 13) on the real containerd of the
// CTest fixture with real busybox components: cgroup limits read back from
// the running task's cgroup files (v1 or v2, wherever this kernel has
// them), a reload that changes them re-creates the task, and a read-only
// root refuses writes outside its tmpfs.
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "e2e_harness.h"

using namespace herd;
using namespace herd::supervise;
using namespace herd::e2e;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

std::string busybox(const std::string& name, const std::string& script,
                    const std::string& extra = "") {
  return R"({"name": ")" + name + R"(", "image": "herd.local/busybox:latest",
      "image_archive": ")" +
         image_archive("busybox.tar") + R"(", "network": "none",
      "args": ["sh", "-c", ")" +
         script + R"("], "stop_grace": "1s")" + extra + "}";
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  std::string out = s.str();
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

bool cgroup_v2() { return fs::exists("/sys/fs/cgroup/cgroup.controllers"); }

// The directory of `pid`'s cgroup for `controller` ("memory", "cpu",
// "pids"), from /proc/<pid>/cgroup: on v2 the one unified hierarchy, on
// v1 the hierarchy that lists the controller.
fs::path cgroup_dir(uint32_t pid, const std::string& controller) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    const size_t a = line.find(':');
    const size_t b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    const std::string controllers = line.substr(a + 1, b - a - 1);
    const std::string path = line.substr(b + 1);
    if (cgroup_v2()) {
      if (controllers.empty()) return fs::path("/sys/fs/cgroup") / path.substr(1);
      continue;
    }
    std::stringstream list(controllers);
    std::string c;
    while (std::getline(list, c, ',')) {
      if (c == controller) return fs::path("/sys/fs/cgroup") / controllers / path.substr(1);
    }
  }
  return {};
}

struct Limits {
  std::string memory, swap, cpu, pids;
};

// What the kernel has for `pid`, in one form for both versions: memory and
// memory+swap in bytes (v2: memory.max, memory.max + memory.swap.max),
// "quota period" and pids.max.
Limits read_limits(uint32_t pid) {
  Limits l;
  const fs::path mem = cgroup_dir(pid, "memory");
  const fs::path cpu = cgroup_dir(pid, "cpu");
  const fs::path pids = cgroup_dir(pid, "pids");
  if (cgroup_v2()) {
    l.memory = slurp(mem / "memory.max");
    const std::string swap = slurp(mem / "memory.swap.max");
    if (!swap.empty() && swap != "max")
      l.swap = std::to_string(std::stoull(l.memory) + std::stoull(swap));
    l.cpu = slurp(cpu / "cpu.max");
  } else {
    l.memory = slurp(mem / "memory.limit_in_bytes");
    if (fs::exists(mem / "memory.memsw.limit_in_bytes"))
      l.swap = slurp(mem / "memory.memsw.limit_in_bytes");
    l.cpu = slurp(cpu / "cpu.cfs_quota_us") + " " + slurp(cpu / "cpu.cfs_period_us");
  }
  l.pids = slurp(pids / "pids.max");
  return l;
}

}  // namespace

TEST_CASE("memory, cpus and pids limits reach the task's cgroup, and a reload re-creates it",
          "[e2e]") {
  Herd h("resources");
  h.run([&]() -> asio::awaitable<void> {
    const auto with = [](const std::string& memory) {
      return busybox("limited", "sleep 1000",
                     R"(, "resources": {"memory": ")" + memory + R"(", "cpus": 0.5, "pids": 50})");
    };
    h.start(with("64MiB"));
    REQUIRE(co_await eventually([&] { return h.state("limited") == State::kReady; }));
    const uint32_t pid = h.st("limited").pid;
    REQUIRE(!cgroup_dir(pid, "memory").empty());
    INFO("memory cgroup " << cgroup_dir(pid, "memory"));
    Limits l = read_limits(pid);
    CHECK(l.memory == std::to_string(64ull << 20));
    if (!l.swap.empty()) CHECK(l.swap == std::to_string(64ull << 20));  // no swap
    CHECK(l.cpu == "50000 100000");
    CHECK(l.pids == "50");

    // The limits are part of the spec hash: a reload that changes one
    // re-creates the task with the new value.
    bool reloaded = false;
    h.sup->reload(h.parse(with("96MiB")), [&](Supervisor::ReloadSummary s) {
      reloaded = s.status.ok() && s.changed == std::vector<std::string>{"limited"};
    });
    REQUIRE(co_await eventually([&] {
      return reloaded && h.state("limited") == State::kReady && h.st("limited").pid != pid;
    }));
    CHECK(read_limits(h.st("limited").pid).memory == std::to_string(96ull << 20));

    co_await h.stop();
    co_await h.ns.finish();
  });
}

TEST_CASE("read_only_rootfs refuses a write outside the tmpfs", "[e2e]") {
  Herd h("rootfs");
  const fs::path shared = h.data / "shared";
  fs::create_directories(shared);
  h.run([&]() -> asio::awaitable<void> {
    // /tmp (tmpfs) and /shared (a bind mount) are writable, / is not.
    const std::string script =
        "echo x > /tmp/ok || exit 2; "
        "if echo y 2> /shared/err > /written; then echo wrote > /shared/result; "
        "else echo refused > /shared/result; fi; exec sleep 1000";
    h.start(busybox("ro", script,
                    R"(, "read_only_rootfs": true,
                        "tmpfs": [{"target": "/tmp", "size": "16MiB", "mode": "1777"}],
                        "mounts": [{"bind": ")" +
                        shared.string() + R"(", "target": "/shared"}])"));
    REQUIRE(co_await eventually([&] { return h.state("ro") == State::kReady; }));
    REQUIRE(co_await eventually([&] { return !slurp(shared / "result").empty(); }));
    CHECK(slurp(shared / "result") == "refused");
    CHECK(slurp(shared / "err").find("Read-only file system") != std::string::npos);
    CHECK(h.st("ro").restarts == 0);  // the tmpfs write worked (else exit 2)

    co_await h.stop();
    co_await h.ns.finish();
  });
}

// A negative oom_score_adj needs CAP_SYS_RESOURCE. Where the machine has
// it, the task runs with the score; where it lacks it (this one runs in a
// container without it), runc's opaque refusal gets herd's explanation.
TEST_CASE("oom_score_adj: set on the task, or a refusal that names CAP_SYS_RESOURCE", "[e2e]") {
  Herd h("oomadj");
  h.run([&]() -> asio::awaitable<void> {
    h.start(busybox("low", "exec sleep 1000", R"(, "oom_score_adj": -500)") + "," +
            busybox("high", "exec sleep 1000", R"(, "oom_score_adj": 300)"));
    REQUIRE(co_await eventually([&] { return h.state("high") == State::kReady; }));
    CHECK(slurp("/proc/" + std::to_string(h.st("high").pid) + "/oom_score_adj") == "300");
    if (::prctl(PR_CAPBSET_READ, CAP_SYS_RESOURCE, 0, 0, 0) == 1) {
      REQUIRE(co_await eventually([&] { return h.state("low") == State::kReady; }));
      CHECK(slurp("/proc/" + std::to_string(h.st("low").pid) + "/oom_score_adj") == "-500");
    } else {
      REQUIRE(co_await eventually(
          [&] { return h.st("low").last_error.find("CAP_SYS_RESOURCE") != std::string::npos; }));
      CHECK(h.state("low") != State::kReady);  // refused, retried with backoff
      CHECK(h.st("low").last_error.find("oom_score_adj -500") != std::string::npos);
    }
    co_await h.stop();
    co_await h.ns.finish();
  });
}

namespace {

// The pids of `pid`'s children (its main thread's), from procfs.
std::vector<uint32_t> children(uint32_t pid) {
  std::vector<uint32_t> out;
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
  uint32_t c = 0;
  while (in >> c) out.push_back(c);
  return out;
}

// 'Z' for a zombie, 'S' sleeping...: field 3 of /proc/<pid>/stat.
char proc_state(uint32_t pid) {
  const std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
  const size_t paren = stat.rfind(')');
  return paren == std::string::npos || paren + 2 >= stat.size() ? '?' : stat[paren + 2];
}

std::string cmdline(uint32_t pid) {
  std::string s = slurp("/proc/" + std::to_string(pid) + "/cmdline");
  for (char& c : s)
    if (c == '\0') c = ' ';
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

}  // namespace

TEST_CASE("init: true runs tini as PID 1: signals reach a PID-1-deaf httpd, zombies are reaped",
          "[e2e][init]") {
  if (!fs::exists(config::kInitBinary)) {
    FAIL("init tests need " << config::kInitBinary
                            << " (Debian package tini; scripts/install-deps)");
  }
  Herd h("init");
  const uint16_t port = free_port();
  h.run([&]() -> asio::awaitable<void> {
    // An orphan that exits at once is left to PID 1 to reap.
    const std::string orphan = "sh -c 'sleep 0.2 &'; exec sleep 1000";
    const std::string web_json = R"({"name": "web", "image": "herd.local/busybox:latest",
        "image_archive": ")" + image_archive("busybox.tar") +
                                 R"(", "init": true, "stop_grace": "30s",
        "args": ["httpd", "-f", "-p", "127.0.0.1:)" +
                                 std::to_string(port) + R"(", "-h", "/var/www"],
        "ready": {"tcp": {"port": )" +
                                 std::to_string(port) + R"(}, "interval": "100ms"}})";
    h.start(web_json + "," + busybox("reaped", orphan, R"(, "init": true)") + "," +
            busybox("unreaped", orphan));  // the control: sleep as PID 1 reaps nothing
    REQUIRE(co_await eventually([&] {
      return h.state("web") == State::kReady && h.state("reaped") == State::kReady &&
             h.state("unreaped") == State::kReady;
    }));
    const uint32_t web = h.st("web").pid;
    CHECK(cmdline(web).starts_with("/herd-init -- httpd -f -p"));
    const auto web_children = children(web);
    REQUIRE(web_children.size() == 1);
    CHECK(cmdline(web_children[0]).starts_with("httpd -f -p"));
    CHECK(port_answers(port));

    // Give the orphans time to exit (0.2 s), then look for zombies.
    co_await test::sleep_for(1500ms);
    const auto under_tini = children(h.st("reaped").pid);
    REQUIRE(under_tini.size() == 1);  // the sleep 1000; the orphan is gone
    CHECK(cmdline(under_tini[0]) == "sleep 1000");
    int zombies = 0;
    for (uint32_t c : children(h.st("unreaped").pid)) zombies += proc_state(c) == 'Z';
    CHECK(zombies == 1);  // without an init the orphan stays a zombie: the check can fail

    // httpd has no SIGTERM handler, and as PID 1 it would ignore SIGTERM
    // until the 30 s grace ran out; under tini it dies of the signal.
    const auto t0 = std::chrono::steady_clock::now();
    bool accepted = false;
    h.sup->stop_component("web", [&](Status s) { accepted = s.ok(); });
    REQUIRE(co_await eventually([&] { return h.state("web") == State::kStopped; }, 60s));
    const auto took = std::chrono::steady_clock::now() - t0;
    CHECK(accepted);
    INFO("stop took " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                      << " ms");
    CHECK(took < 5s);  // generous for a noisy machine; the grace is 30 s
    CHECK(h.st("web").last_error.empty());

    co_await h.stop();
    co_await h.ns.finish();
  });
}

TEST_CASE("a component that allocates past its memory limit is reported as OOM-killed",
          "[e2e][oom]") {
  Herd h("oom");
  h.run([&]() -> asio::awaitable<void> {
    // sh (PID 1) reads 200 MB into a variable: far past the 16 MiB limit,
    // so the kernel's OOM killer ends it (the biggest process there).
    h.start(busybox("hog", "x=$(head -c 200000000 /dev/zero | tr '\\\\000' a); exit 0",
                    R"(, "resources": {"memory": "16MiB"}, "restart": {"on": "never"})"));
    REQUIRE(co_await eventually([&] {
      return h.state("hog") == State::kFailed && h.st("hog").last_exit_reason == "oom_killed";
    }));
    CHECK(h.st("hog").last_exit_code == 137u);
    CHECK(h.st("hog").oom_kills >= 1);
    CHECK(h.st("hog").restarts == 0);

    co_await h.stop();
    co_await h.ns.finish();
  });
}
