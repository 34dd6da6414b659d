// forward_container_output with a fake sender: what happens when journald
// is stuck or away, which a real journald cannot be made to do on demand.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "systemd/container_logger.h"

using herd::systemd::ForwarderConfig;
using herd::systemd::ForwarderStats;
using herd::systemd::LogRecord;
using herd::systemd::Stream;

namespace {

struct Pipe {
  int r = -1, w = -1;
  Pipe() {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    r = fds[0];
    w = fds[1];
  }
  ~Pipe() {
    close_w();
    if (r >= 0) ::close(r);
  }
  void close_w() {
    if (w >= 0) ::close(w);
    w = -1;
  }
};

// Writes everything; fails the test if the reader stops reading for 20 s
// (the deadline only turns a hang into a failure).
void write_all(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    pollfd pfd{fd, POLLOUT, 0};
    REQUIRE(::poll(&pfd, 1, 20000) == 1);
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    REQUIRE(n > 0);
    done += static_cast<size_t>(n);
  }
}

struct Delivered {
  Stream stream;
  std::string message;
};

}  // namespace

TEST_CASE("forward_container_output drops records instead of blocking the writer") {
  // A sender stuck in its first send, as sd_journal_sendv is while
  // journald's queue is full.
  struct Gate {
    std::mutex mu;
    std::condition_variable cv;
    bool open = false;
    std::vector<Delivered> delivered;
  };
  auto gate = std::make_shared<Gate>();
  auto sender = [gate](const LogRecord& r) {
    std::unique_lock lock(gate->mu);
    gate->cv.wait(lock, [&] { return gate->open; });
    gate->delivered.push_back({r.stream, std::string(r.message)});
    gate->cv.notify_all();
    return true;
  };

  ForwarderConfig config;
  config.component = "stuck";
  config.max_queued_bytes = 64 * 1024;
  config.drain_timeout = std::chrono::milliseconds(200);
  Pipe out, err;
  ForwarderStats stats;
  std::thread reader([&] { stats = forward_container_output(config, out.r, err.r, -1, sender); });

  std::string line(1023, 'z');
  line += '\n';
  std::string chunk;
  for (int i = 0; i < 256; ++i) chunk += line;
  for (int i = 0; i < 16; ++i) write_all(out.w, chunk);  // 4 MiB, 4096 lines
  out.close_w();
  err.close_w();
  reader.join();  // returns after drain_timeout although the sender is stuck

  CHECK(stats.lines == 4096);
  CHECK(stats.sent == 0);
  CHECK(stats.dropped == 4096);
  CHECK_FALSE(stats.drained);

  // Unstick the sender: it sends what was queued and says what was lost.
  // The notes account for every line that was not delivered.
  std::unique_lock lock(gate->mu);
  gate->open = true;
  gate->cv.notify_all();
  size_t notes = 0, lines = 0;
  unsigned long reported = 0;
  auto tally = [&] {
    notes = lines = 0;
    reported = 0;
    for (const auto& d : gate->delivered) {
      if (d.stream == Stream::kLogger) {
        ++notes;
        std::string prefix = "herd-logger: dropped ";
        if (d.message.starts_with(prefix)) reported += std::stoul(d.message.substr(prefix.size()));
      } else {
        ++lines;
      }
    }
    return lines + reported == 4096;
  };
  CHECK(gate->cv.wait_for(lock, std::chrono::seconds(20), tally));
  CHECK(notes >= 1);
  CHECK(notes <= 3);  // one per batch at most, and one at the end
  // At most two queues' worth (the batch in flight and the queue behind
  // it, 64 KiB each) was kept.
  CHECK(lines <= 2 * 64);
  for (const auto& d : gate->delivered)
    if (d.stream != Stream::kLogger) CHECK(d.message == std::string(1023, 'z'));
}

TEST_CASE("forward_container_output tells the journal how many lines were lost") {
  // Journald away for the first three sends, then back.
  std::vector<Delivered> delivered;
  int calls = 0;
  auto sender = [&](const LogRecord& r) {
    if (++calls <= 3) return false;
    delivered.push_back({r.stream, std::string(r.message)});
    return true;
  };
  ForwarderConfig config;
  config.component = "flaky";
  Pipe out, err;
  write_all(out.w, "l1\nl2\nl3\nl4\n");
  out.close_w();
  err.close_w();
  ForwarderStats stats = forward_container_output(config, out.r, err.r, -1, sender);

  // l1 fails; the note before l2 fails, l2 fails; the note before l3 goes
  // out, then l3 and l4.
  CHECK(stats.lines == 4);
  CHECK(stats.sent == 2);
  CHECK(stats.dropped == 2);
  CHECK(stats.drained);
  REQUIRE(delivered.size() == 3);
  CHECK(delivered[0].stream == Stream::kLogger);
  CHECK(delivered[0].message ==
        "herd-logger: dropped 2 lines of output (journald unavailable or too slow)");
  CHECK(delivered[1].message == "l3");
  CHECK(delivered[2].message == "l4");
}

TEST_CASE("forward_container_output treats a missing stream as ended") {
  std::vector<Delivered> delivered;
  auto sender = [&](const LogRecord& r) {
    delivered.push_back({r.stream, std::string(r.message)});
    return true;
  };
  ForwarderConfig config;
  config.component = "half";
  Pipe err;
  write_all(err.w, "only stderr");
  err.close_w();
  ForwarderStats stats = forward_container_output(config, -1, err.r, -1, sender);
  CHECK(stats.lines == 1);
  CHECK(stats.sent == 1);
  REQUIRE(delivered.size() == 1);
  CHECK(delivered[0].stream == Stream::kStderr);
  CHECK(delivered[0].message == "only stderr");
}

TEST_CASE("forward_container_output stops when its stop fd becomes readable") {
  std::vector<Delivered> delivered;
  auto sender = [&](const LogRecord& r) {
    delivered.push_back({r.stream, std::string(r.message)});
    return true;
  };
  ForwarderConfig config;
  config.component = "stopped";
  Pipe out, err, stop;
  write_all(out.w, "a\nb");  // the writer stays open
  write_all(stop.w, "x");
  ForwarderStats stats = forward_container_output(config, out.r, err.r, stop.r, sender);
  CHECK(stats.lines == 2);
  REQUIRE(delivered.size() == 2);
  CHECK(delivered[0].message == "a");
  CHECK(delivered[1].message == "b");
}
