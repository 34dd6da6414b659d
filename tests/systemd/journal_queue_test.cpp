// JournalSink's queue and sender against a journald socket the test binds
// itself (a unix datagram socket in a temp dir): what goes over the wire,
// and that a journald which never reads blocks no caller and loses no
// count. No root, no fixture: the sink is aimed at the test's socket.
#include <poll.h>
#include <spdlog/logger.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "systemd/journal_sink.h"

using herd::systemd::JournalSink;
using herd::systemd::JournalSinkOptions;
using namespace std::chrono_literals;

namespace {

using Entry = std::map<std::string, std::string>;

// Fields of one native-protocol datagram (both field forms).
Entry parse_entry(const std::string& d) {
  Entry e;
  size_t i = 0;
  while (i < d.size()) {
    const size_t nl = d.find('\n', i);
    const size_t eq = d.find('=', i);
    if (eq != std::string::npos && (nl == std::string::npos || eq < nl)) {
      e[d.substr(i, eq - i)] = d.substr(eq + 1, nl - eq - 1);
      i = nl + 1;
    } else {
      const std::string name = d.substr(i, nl - i);
      uint64_t n = 0;
      for (int b = 7; b >= 0; --b) n = (n << 8) | static_cast<unsigned char>(d[nl + 1 + b]);
      e[name] = d.substr(nl + 9, n);
      i = nl + 9 + n + 1;
    }
  }
  return e;
}

// A unix datagram socket in a fresh temp dir that reads only when asked.
class FakeJournald {
 public:
  FakeJournald() {
    char tmpl[] = "/tmp/herd-journal-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/socket";
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  ~FakeJournald() {
    ::close(fd_);
    std::filesystem::remove_all(dir_);
  }
  const std::string& path() const { return path_; }

  // The next entry, or nullopt when none comes within `wait`.
  std::optional<Entry> receive(std::chrono::milliseconds wait = 5000ms) {
    pollfd pfd{fd_, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(wait.count())) != 1) return std::nullopt;
    std::string buf(256 * 1024, '\0');
    const ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
    REQUIRE(n >= 0);
    buf.resize(static_cast<size_t>(n));
    return parse_entry(buf);
  }

 private:
  std::string dir_, path_;
  int fd_ = -1;
};

JournalSinkOptions aimed_at(const std::string& path) {
  JournalSinkOptions o;
  o.socket_path = path;
  return o;
}

}  // namespace

TEST_CASE("JournalSink writes native-protocol entries to its socket") {
  FakeJournald journald;
  auto sink = std::make_shared<JournalSink>("herdd-test", aimed_at(journald.path()));
  spdlog::logger main_log("herdd-test", sink);
  spdlog::logger etcd_log("etcd", sink);
  main_log.info("hello {}", 42);
  etcd_log.error("two\nlines");
  SPDLOG_LOGGER_WARN(&etcd_log, "with a location");

  auto a = journald.receive();
  REQUIRE(a);
  CHECK((*a)["MESSAGE"] == "hello 42");
  CHECK((*a)["PRIORITY"] == "6");
  CHECK((*a)["SYSLOG_IDENTIFIER"] == "herdd-test");
  CHECK(a->count("HERD_COMPONENT") == 0);
  CHECK_FALSE((*a)["TID"].empty());
  auto b = journald.receive();
  REQUIRE(b);
  CHECK((*b)["MESSAGE"] == "two\nlines");  // the length-prefixed form
  CHECK((*b)["PRIORITY"] == "3");
  CHECK((*b)["HERD_COMPONENT"] == "etcd");
  auto c = journald.receive();
  REQUIRE(c);
  CHECK((*c)["CODE_FILE"].ends_with("journal_queue_test.cpp"));
  CHECK_FALSE((*c)["CODE_LINE"].empty());
  CHECK(sink->wait_idle(5000ms));
  CHECK(sink->sent() == 3);
  CHECK(sink->dropped() == 0);
  CHECK(sink->failed() == 0);
}

TEST_CASE("JournalSink cuts a huge message instead of losing it") {
  FakeJournald journald;
  JournalSinkOptions o = aimed_at(journald.path());
  o.max_message = 1000;
  auto sink = std::make_shared<JournalSink>("herdd-test", o);
  spdlog::logger log("herdd-test", sink);
  log.info("{}", std::string(5000, 'x'));
  auto e = journald.receive();
  REQUIRE(e);
  CHECK((*e)["MESSAGE"] == std::string(1000, 'x') + " [truncated]");
}

TEST_CASE("A journald that never reads: 100000 lines return at once, every drop counted") {
  FakeJournald journald;  // reads nothing until the lines are logged
  JournalSinkOptions o = aimed_at(journald.path());
  o.max_queued_bytes = 64 * 1024;
  auto sink = std::make_shared<JournalSink>("herdd-test", o);
  spdlog::logger log("herdd-test", sink);
  constexpr int kLines = 100'000;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kLines; ++i) log.info("line {}", i);
  const auto took = std::chrono::steady_clock::now() - start;
  INFO("logging took " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                       << " ms");
  // A blocking send would wait here forever; the queue makes it a few
  // hundred ns a line. The bound only turns a hang into a failure.
  CHECK(took < 5s);
  CHECK(sink->dropped() > 0);

  // Now read: the queued lines arrive in order, then a note says how many
  // were dropped; lines + drops noted = lines logged.
  int lines = 0;
  int last = -1;
  uint64_t noted = 0;
  while (lines + static_cast<int>(noted) < kLines) {
    auto e = journald.receive();
    REQUIRE(e);
    const std::string& m = (*e)["MESSAGE"];
    if (m.starts_with("journald: dropped ")) {
      CHECK((*e)["PRIORITY"] == "4");
      CHECK_THAT(m, Catch::EndsWith(" log lines (queue full or journald away)"));
      noted += std::stoull(m.substr(std::strlen("journald: dropped ")));
      continue;
    }
    REQUIRE(m.starts_with("line "));
    const int n = std::stoi(m.substr(5));
    CHECK(n > last);
    last = n;
    ++lines;
  }
  CHECK(sink->wait_idle(5000ms));
  CHECK(lines + noted == static_cast<uint64_t>(kLines));
  CHECK(noted == sink->dropped());
  CHECK(static_cast<uint64_t>(lines) + sink->dropped() == static_cast<uint64_t>(kLines));
  CHECK(sink->failed() == 0);
  CHECK_FALSE(journald.receive(0ms));  // nothing more
}

TEST_CASE("Without journald, lines are dropped and counted, never waited for") {
  auto sink = std::make_shared<JournalSink>("herdd-test", aimed_at("/nonexistent/herd/socket"));
  spdlog::logger log("herdd-test", sink);
  for (int i = 0; i < 1000; ++i) log.info("line {}", i);
  CHECK(sink->wait_idle(5000ms));
  CHECK(sink->dropped() == 1000);
  CHECK(sink->sent() == 0);
  CHECK(sink->failed() == 0);  // journald away is not a failure
}

TEST_CASE("Destroying the sink with a wedged journald takes at most drain_timeout") {
  FakeJournald journald;
  JournalSinkOptions o = aimed_at(journald.path());
  o.drain_timeout = 100ms;
  auto sink = std::make_shared<JournalSink>("herdd-test", o);
  {
    spdlog::logger log("herdd-test", sink);
    for (int i = 0; i < 10'000; ++i) log.info("line {}", i);
  }
  const auto start = std::chrono::steady_clock::now();
  sink.reset();
  CHECK(std::chrono::steady_clock::now() - start < 3s);
}
