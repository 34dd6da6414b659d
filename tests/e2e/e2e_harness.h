// The e2e tests' herd: a Supervisor with real components on the real
// containerd of the CTest fixture (tests/integration), its own io_context,
// namespace and data directory, plus port and /proc helpers and a busybox
// httpd component. Shared by every test of tests/e2e.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <sstream>

#include "../integration/harness.h"
#include "config/config.h"
#include "containerd/images.h"
#include "supervise/supervisor.h"

namespace herd::e2e {

using namespace herd::supervise;
using namespace std::chrono_literals;
using herd::test::env;
using herd::test::eventually;
using herd::test::TestNamespace;

// A free TCP port on 127.0.0.1 for a component (checked bindable, then
// released). Taken below the kernel's ephemeral range (32768 and up), so
// no outgoing connection can grab it meanwhile, and never handed out twice
// in one test process.
inline uint16_t free_port() {
  static std::set<uint16_t> given;
  static uint16_t next = static_cast<uint16_t>(20000 + (::getpid() * 7919) % 10000);
  for (int tries = 0; tries < 10000; ++tries) {
    const uint16_t port = next;
    next = next >= 29999 ? 20000 : next + 1;
    if (given.count(port)) continue;
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    if (!ok) continue;
    given.insert(port);
    return port;
  }
  throw std::runtime_error("no free port in 20000-29999");
}

// True when something accepts TCP connections on 127.0.0.1:port.
inline bool port_answers(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

inline std::string image_archive(const std::string& file) { return env().image(file).string(); }

// /proc/<pid>/status's PPid (a task's parent is its shim), or 0.
inline uint32_t parent_of(uint32_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("PPid:", 0) == 0) return static_cast<uint32_t>(std::stoul(line.substr(5)));
  }
  return 0;
}

// /proc/<pid>/comm, or "".
inline std::string comm_of(uint32_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
  std::string name;
  std::getline(in, name);
  return name;
}

// The JSON of a busybox httpd component on `port`.
inline std::string httpd(const std::string& name, uint16_t port, const std::string& extra = "") {
  return R"({"name": ")" + name + R"(", "image": "herd.local/busybox:latest",
      "image_archive": ")" +
         image_archive("busybox.tar") + R"(",
      "args": ["httpd", "-f", "-p", "127.0.0.1:)" +
         std::to_string(port) + R"(", "-h", "/var/www"],
      "ready": {"tcp": {"port": )" +
         std::to_string(port) + R"(}, "interval": "100ms"},
      "restart": {"base": "0ms", "max": "1s"},
      "stop_grace": "2s")" +
         extra + "}";
}

// One test's herd: its own io_context, namespace and data directory, a
// Supervisor, and a record of every status change. run() runs the test's
// coroutine; when the test fails half-way it still stops the supervisor
// (bounded), so a failure neither hangs nor leaves components running.
struct Herd {
  asio::io_context io;  // first: outlives everything bound to it
  TestNamespace ns;
  std::filesystem::path data;
  std::vector<ComponentStatus> changes;
  std::shared_ptr<Supervisor> sup;

  explicit Herd(const std::string& tag)
      : ns(tag), data(std::filesystem::temp_directory_path() / ("herd-e2e-" + ns.name())) {
    std::filesystem::remove_all(data);
  }
  ~Herd() {
    sup.reset();
    std::filesystem::remove_all(data);
  }

  template <class MakeCoro>
  void run(MakeCoro make) {
    std::exception_ptr error;
    bool done = false;
    asio::co_spawn(io, make(), [&](std::exception_ptr e) {
      error = e;
      done = true;
    });
    run_until([&] { return done; }, 280s);
    if (!done || error) {
      // The test failed: stop what it started, within a bound.
      if (sup) {
        bool stopped = false;
        sup->stop([&] { stopped = true; });
        run_until([&] { return stopped; }, 60s);
      }
    }
    // Let calls still in flight in gRPC complete into a live io_context.
    run_until([] { return false; }, 2s);
    if (error) std::rethrow_exception(error);
    REQUIRE(done);
  }

  template <class Pred>
  void run_until(Pred pred, std::chrono::milliseconds limit) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (!pred() && std::chrono::steady_clock::now() < until) {
      if (io.stopped()) io.restart();
      if (io.run_one_for(100ms) == 0 && io.stopped() && pred()) break;
    }
  }

  config::Config parse(const std::string& components, const std::string& extra = "") {
    std::string text = R"({"containerd": {"address": ")" + env().address() +
                       R"(", "namespace": ")" + ns.name() + R"("}, "data_path": ")" +
                       data.string() + R"(", "stop_budget": "30s")" + extra +
                       R"(, "components": [)" + components + "]}";
    auto parsed = config::parse_config(text);
    INFO(parsed.error_text());
    REQUIRE(parsed.ok());
    return *parsed.config;
  }

  void start(const std::string& components, Supervisor::Options options = Supervisor::Options()) {
    sup = Supervisor::create(
        io.get_executor(), ns.client(), parse(components),
        [this](const ComponentStatus& s) { changes.push_back(s); }, options);
    sup->start();
  }

  const ComponentStatus& st(const std::string& name) {
    auto* s = sup->status(name);
    if (!s) throw std::runtime_error("no component " + name);
    return *s;
  }
  State state(const std::string& name) { return st(name).state; }

  // Index of the first change of `name` into `state`, or -1.
  int first(const std::string& name, State state) const {
    for (size_t i = 0; i < changes.size(); ++i)
      if (changes[i].name == name && changes[i].state == state) return static_cast<int>(i);
    return -1;
  }

  asio::awaitable<void> stop() {
    bool done = false;
    sup->stop([&] { done = true; });
    REQUIRE(co_await eventually([&] { return done; }, 60s));
  }

  // The supervisor lets go without touching containerd (as herdd does on
  // SIGUSR2); the next start() adopts what runs.
  asio::awaitable<void> detach() {
    bool done = false;
    sup->detach([&] { done = true; });
    REQUIRE(co_await eventually([&] { return done; }));
  }
};

}  // namespace herd::e2e
