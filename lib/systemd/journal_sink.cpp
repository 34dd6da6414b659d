#include "systemd/journal_sink.h"

#include <poll.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <array>
#include <charconv>
#include <cstddef>
#include <utility>

namespace herd::systemd {

int journal_priority(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug:
      return 7;
    case spdlog::level::info:
      return 6;
    case spdlog::level::warn:
      return 4;
    case spdlog::level::err:
      return 3;
    case spdlog::level::critical:
      return 2;
    default:
      return 6;
  }
}

namespace {

constexpr std::size_t kRecordOverhead = 64;  // queue bytes counted per record besides its size
constexpr std::string_view kTruncated = " [truncated]";

template <class Int>
void append_number(std::string& datagram, std::string_view name, Int value) {
  std::array<char, 24> digits{};
  auto [end, ec] = std::to_chars(digits.data(), digits.data() + digits.size(), value);
  (void)ec;  // 24 chars hold any 64-bit integer
  append_journal_field(
      datagram, name,
      std::string_view(digits.data(), static_cast<std::size_t>(end - digits.data())));
}

}  // namespace

JournalSink::JournalSink(std::string identifier, JournalSinkOptions options)
    : identifier_(std::move(identifier)), options_(std::move(options)) {
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  sender_ = std::thread([this] { run_sender(); });
}

JournalSink::~JournalSink() {
  {
    std::lock_guard<std::mutex> lock(queue_mutex_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  wait_idle(options_.drain_timeout);
  {
    std::lock_guard<std::mutex> lock(queue_mutex_);
    abandon_ = true;
  }
  queue_cv_.notify_all();
  if (wake_fd_ >= 0) {
    const std::uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof one);
  }
  sender_.join();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

bool JournalSink::wait_idle(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(queue_mutex_);
  return idle_cv_.wait_for(lock, timeout, [this] { return queue_.empty() && !busy_; });
}

void JournalSink::sink_it_(const spdlog::details::log_msg& msg) {
  std::string_view message(msg.payload.data(), msg.payload.size());
  const bool cut = message.size() > options_.max_message;
  if (cut) message = message.substr(0, options_.max_message);
  std::string d;
  d.reserve(message.size() + identifier_.size() + 128);
  append_journal_field(d, "SYSLOG_IDENTIFIER", identifier_);
  if (cut) {
    std::string text(message);
    text.append(kTruncated);
    append_journal_field(d, "MESSAGE", text);
  } else {
    append_journal_field(d, "MESSAGE", message);
  }
  append_number(d, "PRIORITY", journal_priority(msg.level));
  std::string_view name(msg.logger_name.data(), msg.logger_name.size());
  if (!name.empty() && name != identifier_) append_journal_field(d, "HERD_COMPONENT", name);
  append_number(d, "TID", msg.thread_id);
  if (!msg.source.empty()) {
    if (msg.source.filename != nullptr) append_journal_field(d, "CODE_FILE", msg.source.filename);
    append_number(d, "CODE_LINE", msg.source.line);
    if (msg.source.funcname != nullptr) append_journal_field(d, "CODE_FUNC", msg.source.funcname);
  }

  const std::size_t cost = d.size() + kRecordOverhead;
  {
    std::lock_guard<std::mutex> lock(queue_mutex_);
    if (stopping_ || queued_bytes_ + cost > options_.max_queued_bytes) {
      ++unreported_drops_;
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    queued_bytes_ += cost;
    queue_.push_back(std::move(d));
  }
  queue_cv_.notify_one();
}

bool JournalSink::deliver(JournalSocket& socket, const std::string& datagram) {
  for (;;) {
    switch (socket.send(datagram)) {
      case JournalSocket::Result::kSent:
        sent_.fetch_add(1, std::memory_order_relaxed);
        return true;
      case JournalSocket::Result::kAway:
        return false;
      case JournalSocket::Result::kFailed:
        failed_.fetch_add(1, std::memory_order_relaxed);
        return false;
      case JournalSocket::Result::kFull:
        break;
    }
    {
      std::lock_guard<std::mutex> lock(queue_mutex_);
      if (abandon_) return false;
    }
    // Room in journald's queue, or the destructor giving up. The timeout
    // only re-checks a journald that went away while we waited.
    pollfd fds[2] = {{socket.fd(), POLLOUT, 0}, {wake_fd_, POLLIN, 0}};
    (void)::poll(fds, 2, 1000);
  }
}

void JournalSink::run_sender() {
  JournalSocket socket(options_.socket_path);
  std::unique_lock<std::mutex> lock(queue_mutex_);
  for (;;) {
    queue_cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (abandon_) {
      dropped_.fetch_add(queue_.size(), std::memory_order_relaxed);
      queue_.clear();
      queued_bytes_ = 0;
      idle_cv_.notify_all();
      return;
    }
    if (queue_.empty()) {
      idle_cv_.notify_all();
      // stopping_: wait for the rest of the destructor (abandon_).
      queue_cv_.wait(lock, [this] { return abandon_ || !queue_.empty(); });
      continue;
    }
    std::string datagram = std::move(queue_.front());
    queue_.pop_front();
    queued_bytes_ -= datagram.size() + kRecordOverhead;
    busy_ = true;
    lock.unlock();

    const bool sent = deliver(socket, datagram);
    lock.lock();
    if (!sent) {
      ++unreported_drops_;
      dropped_.fetch_add(1, std::memory_order_relaxed);
    } else if (unreported_drops_ > 0) {
      const std::uint64_t drops = std::exchange(unreported_drops_, 0);
      lock.unlock();
      std::string note;
      append_journal_field(note, "SYSLOG_IDENTIFIER", identifier_);
      append_journal_field(note, "MESSAGE",
                           "journald: dropped " + std::to_string(drops) +
                               " log lines (queue full or journald away)");
      append_number(note, "PRIORITY", 4);
      const bool noted = deliver(socket, note);
      lock.lock();
      if (!noted) unreported_drops_ += drops;  // said in a later note
    }
    busy_ = false;
    if (queue_.empty()) idle_cv_.notify_all();
  }
}

std::optional<LogTarget> parse_log_target(std::string_view text) {
  if (text == "auto") return LogTarget::kAuto;
  if (text == "journald") return LogTarget::kJournald;
  if (text == "stderr") return LogTarget::kStderr;
  return std::nullopt;
}

std::string_view to_string(LogTarget target) {
  switch (target) {
    case LogTarget::kAuto:
      return "auto";
    case LogTarget::kJournald:
      return "journald";
    case LogTarget::kStderr:
      return "stderr";
  }
  return "auto";
}

namespace {

// %* in the stderr pattern: "[component] ", or nothing for the main logger.
class ComponentFlag final : public spdlog::custom_flag_formatter {
 public:
  explicit ComponentFlag(std::string identifier) : identifier_(std::move(identifier)) {}

  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::string_view name(msg.logger_name.data(), msg.logger_name.size());
    if (name.empty() || name == identifier_) return;
    dest.push_back('[');
    dest.append(name.data(), name.data() + name.size());
    dest.push_back(']');
    dest.push_back(' ');
  }

  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<ComponentFlag>(identifier_);
  }

 private:
  std::string identifier_;
};

}  // namespace

std::shared_ptr<spdlog::sinks::sink> make_stderr_sink(std::string identifier) {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<ComponentFlag>('*', std::move(identifier))
      .set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] %*%v");
  sink->set_formatter(std::move(formatter));
  return sink;
}

std::shared_ptr<spdlog::sinks::sink> make_log_sink(LogTarget target, std::string identifier) {
  if (target == LogTarget::kJournald || (target == LogTarget::kAuto && journald_available())) {
    return std::make_shared<JournalSink>(std::move(identifier));
  }
  return make_stderr_sink(std::move(identifier));
}

}  // namespace herd::systemd
