// Notifier and WatchdogPinger against a NOTIFY_SOCKET bound by the test,
// the way systemd receives them.
#include "systemd/notify.h"

#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>

using herd::systemd::Notifier;
using namespace std::chrono_literals;

namespace {

// A unix datagram socket in a fresh temp dir, exported as NOTIFY_SOCKET.
class NotifySocket {
 public:
  NotifySocket() {
    char tmpl[] = "/tmp/herd-notify-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/notify.sock";
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    ::setenv("NOTIFY_SOCKET", path_.c_str(), 1);
  }
  ~NotifySocket() {
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    ::unsetenv("WATCHDOG_PID");
    ::close(fd_);
    std::filesystem::remove_all(dir_);
  }

  // The next message, or nullopt when none comes within `wait`.
  std::optional<std::string> receive(std::chrono::milliseconds wait = 5000ms) {
    pollfd pfd{fd_, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(wait.count())) != 1) return std::nullopt;
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    REQUIRE(n >= 0);
    return std::string(buf, static_cast<size_t>(n));
  }

  // Every message already queued.
  std::vector<std::string> drain() {
    std::vector<std::string> all;
    while (auto m = receive(0ms)) all.push_back(*m);
    return all;
  }

 private:
  std::string dir_, path_;
  int fd_ = -1;
};

void set_watchdog(const std::string& usec, pid_t pid) {
  ::setenv("WATCHDOG_USEC", usec.c_str(), 1);
  ::setenv("WATCHDOG_PID", std::to_string(pid).c_str(), 1);
}

}  // namespace

TEST_CASE("Notifier sends each state to NOTIFY_SOCKET") {
  NotifySocket systemd;
  Notifier notifier;
  CHECK(notifier.enabled());

  CHECK(notifier.ready().ok());
  CHECK(systemd.receive() == "READY=1");

  CHECK(notifier.status("5/6 ready\n1 backing off: victorialogs").ok());
  CHECK(systemd.receive() == "STATUS=5/6 ready 1 backing off: victorialogs");

  CHECK(notifier.reloading().ok());
  auto reloading = systemd.receive();
  REQUIRE(reloading);
  INFO(*reloading);
  CHECK(reloading->starts_with("RELOADING=1\nMONOTONIC_USEC="));
  std::string usec = reloading->substr(std::strlen("RELOADING=1\nMONOTONIC_USEC="));
  CHECK(!usec.empty());
  CHECK(usec.find_first_not_of("0123456789") == std::string::npos);
  CHECK(notifier.ready().ok());
  CHECK(systemd.receive() == "READY=1");

  CHECK(notifier.stopping().ok());
  CHECK(systemd.receive() == "STOPPING=1");

  CHECK(notifier.watchdog().ok());
  CHECK(systemd.receive() == "WATCHDOG=1");
  CHECK(systemd.drain().empty());
}

TEST_CASE("Notifier does nothing without NOTIFY_SOCKET") {
  ::unsetenv("NOTIFY_SOCKET");
  Notifier notifier;
  CHECK_FALSE(notifier.enabled());
  CHECK(notifier.ready().ok());
  CHECK(notifier.status("idle").ok());
  CHECK(notifier.stopping().ok());
}

TEST_CASE("Notifier reports a socket it cannot reach") {
  ::setenv("NOTIFY_SOCKET", "/nonexistent/herd-notify.sock", 1);
  Notifier notifier;
  auto st = notifier.ready();
  ::unsetenv("NOTIFY_SOCKET");
  INFO(st.to_string());
  CHECK(st.code() == herd::Code::kUnavailable);
  CHECK(st.message().find("READY=1") != std::string::npos);
}

TEST_CASE("a NOTIFY_SOCKET that is not a unix socket is reported, not sent to") {
  NotifySocket systemd;
  ::setenv("NOTIFY_SOCKET", "vsock:2:9999", 1);
  herd::systemd::Notifier notifier;
  const herd::Status ready = notifier.ready();
  CHECK(ready.code() == herd::Code::kUnavailable);
  CHECK(ready.message().find("NOTIFY_SOCKET=vsock:2:9999") != std::string::npos);
  CHECK(notifier.status("x").code() == herd::Code::kUnavailable);
}

TEST_CASE("watchdog_interval reads WATCHDOG_USEC meant for this process") {
  NotifySocket systemd;
  ::unsetenv("WATCHDOG_USEC");
  ::unsetenv("WATCHDOG_PID");
  CHECK_FALSE(herd::systemd::watchdog_interval());
  set_watchdog("3000000", ::getpid());
  CHECK(herd::systemd::watchdog_interval() == std::chrono::microseconds(3000000));
  set_watchdog("3000000", ::getpid() + 1);  // another process's watchdog
  CHECK_FALSE(herd::systemd::watchdog_interval());
  ::unsetenv("WATCHDOG_PID");  // no pid: for whoever reads it
  CHECK(herd::systemd::watchdog_interval() == std::chrono::microseconds(3000000));
  for (const char* bad : {"0", "-5", "3s", ""}) {
    INFO(bad);
    ::setenv("WATCHDOG_USEC", bad, 1);
    CHECK_FALSE(herd::systemd::watchdog_interval());
  }
  set_watchdog("3000000", ::getpid());
  ::setenv("WATCHDOG_PID", "12x", 1);
  CHECK_FALSE(herd::systemd::watchdog_interval());
  ::unsetenv("WATCHDOG_PID");
  {
    herd::asio::io_context io;
    ::unsetenv("WATCHDOG_USEC");
    CHECK(herd::systemd::make_watchdog_pinger(io.get_executor()) == nullptr);
  }
}

namespace {

// Runs `io` until `pinger` has sent `n` pings in all, or `deadline` passed,
// one handler at a time (so it stops right after the n-th ping).
bool run_until_pings(herd::asio::io_context& io, const herd::systemd::WatchdogPinger& pinger,
                     std::uint64_t n, std::chrono::seconds deadline = 20s) {
  const auto give_up = std::chrono::steady_clock::now() + deadline;
  io.restart();
  while (pinger.pings() < n && std::chrono::steady_clock::now() < give_up) io.run_one_for(100ms);
  return pinger.pings() >= n;
}

}  // namespace

TEST_CASE("WatchdogPinger pings every half interval while the event loop runs") {
  NotifySocket systemd;
  set_watchdog("200000", ::getpid());
  herd::asio::io_context io;
  auto pinger = herd::systemd::make_watchdog_pinger(io.get_executor());
  REQUIRE(pinger);
  CHECK(pinger->period() == 100ms);

  // The first ping at once, in start(); then one per period, each armed
  // after the previous one was sent, so pings are never closer than a
  // period (a timer never fires early). A loaded machine may make them
  // later, never sooner: only the lower bound is checked.
  const auto t0 = std::chrono::steady_clock::now();
  pinger->start();
  CHECK(pinger->pings() == 1);
  REQUIRE(run_until_pings(io, *pinger, 5));
  CHECK(std::chrono::steady_clock::now() - t0 >= 4 * 100ms);
  auto pings = systemd.drain();
  CHECK(pings.size() == pinger->pings());
  for (const auto& p : pings) CHECK(p == "WATCHDOG=1");

  // A loop that does not run sends nothing: systemd would notice.
  CHECK_FALSE(systemd.receive(350ms));
  const auto sent = pinger->pings();

  // Running again, it pings again.
  REQUIRE(run_until_pings(io, *pinger, sent + 1));
  CHECK(systemd.receive() == "WATCHDOG=1");

  // After stop() nothing is pending: run() returns at once.
  pinger->stop();
  io.restart();
  auto before = std::chrono::steady_clock::now();
  io.run();
  CHECK(std::chrono::steady_clock::now() - before < 1s);
  CHECK(pinger->pings() == sent + 1);
  CHECK_FALSE(systemd.receive(50ms));
}

TEST_CASE("WatchdogPinger destroyed while a ping is due sends nothing more") {
  NotifySocket systemd;
  herd::asio::io_context io;
  {
    herd::systemd::WatchdogPinger pinger(io.get_executor(), 2ms);
    pinger.start();
    CHECK(systemd.receive() == "WATCHDOG=1");
    std::this_thread::sleep_for(5ms);  // the next ping is due, not yet run
  }
  io.run();
  CHECK_FALSE(systemd.receive(50ms));
}

TEST_CASE("Notifier never blocks on STATUS or WATCHDOG when the queue is full") {
  NotifySocket systemd;  // bound, but nobody reads it
  Notifier notifier;
  // Fill the socket's queue (net.unix.max_dgram_qlen, 10 on some
  // machines, 512 on others) with pings; from then on they are dropped,
  // and each call returns at once instead of waiting for a reader.
  bool dropped = false;
  for (int i = 0; i < 5000 && !dropped; ++i) {
    auto st = notifier.watchdog();
    if (!st.ok()) {
      dropped = true;
      INFO(st.to_string());
      CHECK(st.code() == herd::Code::kUnavailable);
      CHECK(st.message().find("WATCHDOG=1") != std::string::npos);
    }
  }
  CHECK(dropped);
  CHECK_FALSE(notifier.status("still not blocked").ok());
  // The reader catches up: the next ping goes through.
  auto queued = systemd.drain();
  CHECK(!queued.empty());
  CHECK(queued.front() == "WATCHDOG=1");
  CHECK(notifier.watchdog().ok());
  CHECK(systemd.receive() == "WATCHDOG=1");
}

TEST_CASE("Notifier sends to an abstract NOTIFY_SOCKET") {
  const std::string name = "herd-notify-test-" + std::to_string(::getpid());
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path + 1, name.data(), name.size());
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) == 0);
  ::setenv("NOTIFY_SOCKET", ("@" + name).c_str(), 1);
  Notifier notifier;
  CHECK(notifier.watchdog().ok());
  CHECK(notifier.ready().ok());
  ::unsetenv("NOTIFY_SOCKET");
  char buf[64];
  pollfd pfd{fd, POLLIN, 0};
  REQUIRE(::poll(&pfd, 1, 5000) == 1);
  ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  CHECK(std::string(buf, static_cast<size_t>(std::max<ssize_t>(n, 0))) == "WATCHDOG=1");
  REQUIRE(::poll(&pfd, 1, 5000) == 1);
  n = ::recv(fd, buf, sizeof buf, 0);
  CHECK(std::string(buf, static_cast<size_t>(std::max<ssize_t>(n, 0))) == "READY=1");
  ::close(fd);
}

namespace {

// Fills the socket's queue with STATUS= messages; returns how many went in.
int fill(Notifier& notifier) {
  for (int i = 0; i < 5000; ++i) {
    if (!notifier.status("filler " + std::to_string(i)).ok()) return i;
  }
  FAIL("the notify socket never filled up");
  return 0;
}

}  // namespace

TEST_CASE("READY, RELOADING and STOPPING on a full socket return at once and are not lost") {
  NotifySocket systemd;  // nobody reads until the end
  Notifier notifier;
  const int fillers = fill(notifier);
  REQUIRE(fillers > 0);

  const auto start = std::chrono::steady_clock::now();
  CHECK(notifier.reloading().ok());
  CHECK(notifier.pending_lifecycle().value_or("").starts_with("RELOADING=1\nMONOTONIC_USEC="));
  CHECK(notifier.ready().ok());  // replaces RELOADING: the latest state wins
  CHECK(notifier.pending_lifecycle() == "READY=1");
  CHECK(notifier.notify("STOPPING=1\nSTATUS=stopping").ok());
  CHECK(notifier.pending_lifecycle() == "STOPPING=1\nSTATUS=stopping");
  // A blocking sendmsg would wait here for a reader forever.
  CHECK(std::chrono::steady_clock::now() - start < 1s);

  // The reader catches up: the fillers, then the latest lifecycle state,
  // once; neither RELOADING nor READY.
  std::vector<std::string> got;
  while (got.empty() || got.back() != "STOPPING=1\nSTATUS=stopping") {
    auto m = systemd.receive();
    REQUIRE(m);
    got.push_back(*m);
  }
  std::string all;
  for (const auto& m : got) all += "[" + m + "] ";
  INFO("received: " << all);
  CHECK(static_cast<int>(got.size()) == fillers + 1);
  for (int i = 0; i < fillers; ++i) CHECK(got[static_cast<size_t>(i)].starts_with("STATUS=filler"));
  CHECK_FALSE(systemd.receive(300ms));
  CHECK(notifier.last_lifecycle_error().empty());
}

TEST_CASE("A waiting lifecycle message goes out as soon as the socket has room") {
  NotifySocket systemd;
  Notifier notifier;
  const int fillers = fill(notifier);
  CHECK(notifier.ready().ok());
  // One message of room: the helper sends the waiting READY=1 there.
  REQUIRE(systemd.receive());
  auto next = systemd.receive();
  for (int i = 1; i < fillers && next && next->starts_with("STATUS=filler"); ++i) {
    next = systemd.receive();
  }
  REQUIRE(next);
  CHECK(*next == "READY=1");
  // The socket has room now: sent directly.
  CHECK(notifier.stopping().ok());
  CHECK(systemd.receive() == "STOPPING=1");
}

TEST_CASE("is_lifecycle_state finds READY, RELOADING and STOPPING lines only") {
  using herd::systemd::is_lifecycle_state;
  CHECK(is_lifecycle_state("READY=1"));
  CHECK(is_lifecycle_state("READY=1\nSTATUS=0/0 ready"));
  CHECK(is_lifecycle_state("STATUS=x\nSTOPPING=1"));
  CHECK(is_lifecycle_state("RELOADING=1\nMONOTONIC_USEC=5"));
  CHECK_FALSE(is_lifecycle_state("STATUS=READY=1"));
  CHECK_FALSE(is_lifecycle_state("WATCHDOG=1"));
  CHECK_FALSE(is_lifecycle_state("READY=10"));
  CHECK_FALSE(is_lifecycle_state(""));
}
