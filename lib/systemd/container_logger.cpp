#include "systemd/container_logger.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <utility>

#include "systemd/journald.h"
#include "systemd/rotating_file.h"

#ifndef HERD_LOGGER_INSTALL_PATH
#define HERD_LOGGER_INSTALL_PATH "/usr/local/libexec/herd/herd-logger"
#endif

namespace herd::systemd {

std::string_view to_string(Stream stream) {
  switch (stream) {
    case Stream::kStdout:
      return "stdout";
    case Stream::kStderr:
      return "stderr";
    case Stream::kLogger:
      return "logger";
  }
  return "logger";
}

int priority_of(Stream stream) {
  switch (stream) {
    case Stream::kStdout:
      return kStdoutPriority;
    case Stream::kStderr:
      return kStderrPriority;
    case Stream::kLogger:
      return kLoggerPriority;
  }
  return kLoggerPriority;
}

LoggerArgs parse_logger_args(const std::vector<std::string>& args) {
  LoggerArgs out;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    std::string_view key = arg;
    while (key.starts_with('-')) key.remove_prefix(1);
    std::string value;
    if (auto eq = key.find('='); eq != std::string_view::npos) {
      value = std::string(key.substr(eq + 1));
      key = key.substr(0, eq);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      out.warnings.push_back("argument '" + std::string(arg) + "' has no value, ignored");
      continue;
    }
    if (key == "component") {
      out.component = std::move(value);
    } else if (key == "file") {
      out.file = std::move(value);
    } else if (key == "max_bytes" || key == "max_files") {
      char* end = nullptr;
      errno = 0;
      const unsigned long long n = std::strtoull(value.c_str(), &end, 10);
      const bool bytes = key == "max_bytes";
      const bool ok = !value.empty() && *end == '\0' && errno == 0 &&
                      (bytes ? (n >= 4096 && n <= (1ull << 40)) : (n >= 1 && n <= 100));
      if (!ok) {
        out.warnings.push_back("bad " + std::string(key) + " '" + value + "', default kept");
      } else if (bytes) {
        out.max_bytes = n;
      } else {
        out.max_files = static_cast<uint32_t>(n);
      }
    } else {
      out.warnings.push_back("unknown argument '" + std::string(arg) + "', ignored");
    }
  }
  return out;
}

RecordSender make_journald_sender(const ForwarderConfig& config) {
  // journald's native protocol through JournalSocket (journald.h), not
  // libsystemd: herd-logger then links nothing but libc and is linked
  // statically, which is what makes a logger per component cheap (see
  // daemon/herd-logger.cpp). The entry is the one sd_journal_sendv() sent
  // (SD_JOURNAL_SUPPRESS_LOCATION: no CODE_* fields).
  struct State {
    std::string component, container_id, container_namespace;
    std::string datagram;  // reused
    JournalSocket socket;
  };
  auto st = std::make_shared<State>();
  st->component = config.component;
  st->container_id = config.container_id;
  st->container_namespace = config.container_namespace;
  return [st](const LogRecord& record) {
    std::string& d = st->datagram;
    d.clear();
    append_journal_field(d, "MESSAGE", record.message);
    const char priority[2] = {static_cast<char>('0' + priority_of(record.stream)), '\0'};
    append_journal_field(d, "PRIORITY", priority);
    append_journal_field(d, "SYSLOG_IDENTIFIER", st->component);
    append_journal_field(d, "HERD_COMPONENT", st->component);
    append_journal_field(d, "HERD_STREAM", to_string(record.stream));
    if (!st->container_id.empty()) append_journal_field(d, "CONTAINER_ID", st->container_id);
    if (!st->container_namespace.empty())
      append_journal_field(d, "CONTAINER_NAMESPACE", st->container_namespace);
    // The sender thread may wait: the reader never does (the queue in
    // front of it drops when full). A full journald queue is waited out
    // as libsystemd's blocking send did; a journald that is away (or
    // goes away while we wait) drops the record.
    for (;;) {
      switch (st->socket.send(d)) {
        case JournalSocket::Result::kSent:
          return true;
        case JournalSocket::Result::kAway:
        case JournalSocket::Result::kFailed:
          return false;
        case JournalSocket::Result::kFull: {
          pollfd p{st->socket.fd(), POLLOUT, 0};
          if (::poll(&p, 1, 1000) < 0 && errno != EINTR) return false;
          break;
        }
      }
    }
  };
}

namespace {

constexpr std::size_t kRecordOverhead = 64;

struct QueuedRecord {
  Stream stream;
  std::string message;
};

// Shared by the reader (forward_container_output) and the sender thread;
// owned jointly, so a sender left behind at the end stays valid.
struct Pipeline {
  explicit Pipeline(RecordSender s, std::size_t max_bytes)
      : sender(std::move(s)), max_queued_bytes(max_bytes) {}

  RecordSender sender;
  const std::size_t max_queued_bytes;

  std::mutex mu;
  std::condition_variable wake;   // sender: records or closed
  std::condition_variable empty;  // reader: sender finished
  std::deque<QueuedRecord> queue;
  std::size_t queued_bytes = 0;
  bool closed = false;
  bool finished = false;

  std::atomic<std::uint64_t> sent{0};
  std::uint64_t unreported = 0;  // dropped, not yet told to journald (guarded by mu)

  // Reader side: enqueue a batch; what does not fit is dropped.
  void push(std::vector<QueuedRecord>& batch) {
    if (batch.empty()) return;
    std::size_t lost = 0;
    {
      std::lock_guard lock(mu);
      for (auto& r : batch) {
        std::size_t cost = r.message.size() + kRecordOverhead;
        if (queued_bytes + cost > max_queued_bytes) {
          ++lost;
          continue;
        }
        queued_bytes += cost;
        queue.push_back(std::move(r));
      }
      unreported += lost;
    }
    batch.clear();
    wake.notify_one();
  }

  void close() {
    {
      std::lock_guard lock(mu);
      closed = true;
    }
    wake.notify_one();
  }

  // Tells journald how many records were lost; true when it took the note.
  bool report_drops(std::uint64_t count) {
    std::string note = "herd-logger: dropped " + std::to_string(count) +
                       " lines of output (journald unavailable or too slow)";
    return sender(LogRecord{Stream::kLogger, note});
  }

  void run_sender() {
    std::deque<QueuedRecord> batch;
    std::unique_lock lock(mu);
    for (;;) {
      wake.wait(lock, [&] { return closed || !queue.empty(); });
      if (queue.empty()) break;  // closed and drained
      batch.swap(queue);
      queued_bytes = 0;
      std::uint64_t to_report = std::exchange(unreported, 0);
      lock.unlock();
      for (auto& r : batch) {
        if (to_report > 0 && report_drops(to_report)) to_report = 0;
        if (sender(LogRecord{r.stream, r.message})) {
          sent.fetch_add(1, std::memory_order_relaxed);
        } else {
          ++to_report;
        }
      }
      batch.clear();
      lock.lock();
      unreported += to_report;
    }
    if (unreported > 0) {  // drops at the very end: one last try
      std::uint64_t count = std::exchange(unreported, 0);
      lock.unlock();
      report_drops(count);
      lock.lock();
    }
    finished = true;
    lock.unlock();
    empty.notify_all();
  }
};

struct Input {
  int fd;
  Stream stream;
  LineSplitter splitter;
  bool open;
};

bool fd_valid(int fd) { return fd >= 0 && ::fcntl(fd, F_GETFD) != -1; }

// One read; false at EOF or on a read error (the stream is then done).
// `would_block` is set when nothing was there.
bool read_once(Input& in, std::span<char> buf, std::vector<QueuedRecord>& batch,
               std::uint64_t& lines, bool& would_block) {
  would_block = false;
  ssize_t n;
  do {
    n = ::read(in.fd, buf.data(), buf.size());
  } while (n < 0 && errno == EINTR);
  auto emit = [&](std::string_view line) {
    batch.push_back(QueuedRecord{in.stream, std::string(line)});
    ++lines;
  };
  if (n > 0) {
    in.splitter.feed(std::string_view(buf.data(), static_cast<std::size_t>(n)), emit);
    return true;
  }
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    would_block = true;
    return true;
  }
  in.splitter.flush(emit);  // EOF (or an error: nothing more will come)
  return false;
}

}  // namespace

ForwarderStats forward_container_output(const ForwarderConfig& config, int stdout_fd, int stderr_fd,
                                        int stop_fd, RecordSender sender) {
  auto pipeline = std::make_shared<Pipeline>(std::move(sender), config.max_queued_bytes);
  std::thread sender_thread([pipeline] { pipeline->run_sender(); });

  std::array<Input, 2> inputs = {
      Input{stdout_fd, Stream::kStdout, LineSplitter(config.max_line), fd_valid(stdout_fd)},
      Input{stderr_fd, Stream::kStderr, LineSplitter(config.max_line), fd_valid(stderr_fd)}};
  for (auto& in : inputs) {
    if (!in.open) continue;
    int flags = ::fcntl(in.fd, F_GETFL);
    if (flags != -1) ::fcntl(in.fd, F_SETFL, flags | O_NONBLOCK);
  }

  ForwarderStats stats;
  // Not zero-filled: a page of it costs memory only once a read has
  // written there (a quiet component's logger never touches most of it).
  constexpr std::size_t kReadChunk = 64 * 1024;
  std::unique_ptr<char[]> storage(new char[kReadChunk]);
  const std::span<char> buf(storage.get(), kReadChunk);
  std::vector<QueuedRecord> batch;
  bool stopping = false;
  while (!stopping && (inputs[0].open || inputs[1].open)) {
    std::array<pollfd, 3> pfd{};
    for (std::size_t i = 0; i < 2; ++i) pfd[i] = {inputs[i].open ? inputs[i].fd : -1, POLLIN, 0};
    pfd[2] = {stop_fd, POLLIN, 0};
    int r = ::poll(pfd.data(), pfd.size(), -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      break;  // cannot happen with valid arguments; flush below
    }
    for (std::size_t i = 0; i < 2; ++i) {
      if (!inputs[i].open || pfd[i].revents == 0) continue;
      bool would_block = false;
      if (pfd[i].revents & POLLNVAL) {
        inputs[i].splitter.flush([&](std::string_view line) {
          batch.push_back(QueuedRecord{inputs[i].stream, std::string(line)});
          ++stats.lines;
        });
        inputs[i].open = false;
      } else {
        inputs[i].open = read_once(inputs[i], buf, batch, stats.lines, would_block);
      }
      pipeline->push(batch);
    }
    if (stop_fd >= 0 && (pfd[2].revents & (POLLIN | POLLHUP))) stopping = true;
    // A stop fd that is not open can never say stop: poll() would report
    // POLLNVAL at once, every time, and the loop would spin.
    if (pfd[2].revents & POLLNVAL) stop_fd = -1;
  }

  // Stopped: take what the pipes hold now (bounded: a writer that keeps
  // writing does not keep us here), then the unterminated rests.
  for (auto& in : inputs) {
    std::size_t budget = 16u << 20;
    while (in.open && budget > 0) {
      bool would_block = false;
      in.open = read_once(in, buf, batch, stats.lines, would_block);
      pipeline->push(batch);
      if (would_block) break;
      budget = budget > buf.size() ? budget - buf.size() : 0;
    }
    if (in.open) {
      in.splitter.flush([&](std::string_view line) {
        batch.push_back(QueuedRecord{in.stream, std::string(line)});
        ++stats.lines;
      });
      pipeline->push(batch);
    }
  }

  pipeline->close();
  {
    std::unique_lock lock(pipeline->mu);
    stats.drained =
        pipeline->empty.wait_for(lock, config.drain_timeout, [&] { return pipeline->finished; });
  }
  if (stats.drained) {
    sender_thread.join();
  } else {
    sender_thread.detach();  // stuck in a send; it owns the pipeline
  }
  stats.sent = pipeline->sent.load();
  stats.dropped = stats.lines - stats.sent;
  return stats;
}

namespace {

// RFC 3986: keep unreserved characters (and '/' in paths), encode the rest.
std::string percent_encode(std::string_view in, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : in) {
    bool keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/');
    if (keep) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

}  // namespace

std::string container_logger_uri(std::string_view logger_path, std::string_view component) {
  return "binary://" + percent_encode(logger_path, true) +
         "?component=" + percent_encode(component, false);
}

std::string container_file_logger_uri(std::string_view logger_path, std::string_view component,
                                      std::string_view file, uint64_t max_bytes,
                                      uint32_t max_files) {
  return container_logger_uri(logger_path, component) + "&file=" + percent_encode(file, false) +
         "&max_bytes=" + std::to_string(max_bytes) + "&max_files=" + std::to_string(max_files);
}

RecordSender make_file_sender(std::shared_ptr<RotatingFile> file) {
  auto line = std::make_shared<std::string>();
  return [file = std::move(file), line](const LogRecord& r) {
    line->clear();
    if (r.stream == Stream::kStderr) *line += "stderr: ";
    if (r.stream == Stream::kLogger) *line += "herd-logger: ";
    line->append(r.message);
    *line += '\n';
    return file->write(*line);
  };
}

std::string default_container_logger_path() { return HERD_LOGGER_INSTALL_PATH; }

}  // namespace herd::systemd
