// herd's own logs: an spdlog sink that writes structured records to
// journald, and the choice between journald and stderr.
//
// One spdlog logger per component, named after it, all sharing one sink:
//
//   auto sink = herd::systemd::make_log_sink(LogTarget::kAuto, "herdd");
//   auto etcd_log = std::make_shared<spdlog::logger>("etcd", sink);
//   etcd_log->warn("restarting in {}ms", 500);
//
// becomes the journal entry
//   MESSAGE=restarting in 500ms   PRIORITY=4   SYSLOG_IDENTIFIER=herdd
//   HERD_COMPONENT=etcd           TID=<thread id>
// (+ CODE_FILE/CODE_LINE/CODE_FUNC when the record carries a source
// location, i.e. when logged with the SPDLOG_LOGGER_* macros). A logger
// whose name is empty or equal to the identifier ("herdd") logs without
// HERD_COMPONENT. So `journalctl -t herdd HERD_COMPONENT=etcd` shows what
// herdd did about etcd, and `journalctl -t etcd` what etcd itself printed
// (herd-logger, see container_logger.h).
//
// MESSAGE is the bare payload (journald stamps time, pid and so on itself);
// the sink's formatter is not used.
//
// Priorities: trace/debug 7, info 6, warn 4, error 3, critical 2
// (syslog's LOG_DEBUG ... LOG_CRIT; spdlog has no notice level).
//
// Delivery never blocks the caller (herdd logs from its event loop): a
// record is turned into one native-protocol datagram (journald.h) on the
// caller's thread and handed to a bounded queue; the sink's own sender
// thread writes the queue to journald's socket, non-blocking, and waits
// with poll() for room when journald's receive queue is full (journald
// slow or wedged). When the queue is full the new record is dropped and
// counted; so is a record journald cannot take (not there, or the send
// fails). Once a send works again, an entry
//   MESSAGE=journald: dropped N log lines (queue full or journald away)
//   PRIORITY=4
// says how many were lost since the previous such note. A MESSAGE longer
// than max_message bytes is cut there and ends in " [truncated]" (one
// datagram must fit the socket's send buffer). flush() does not wait
// (it is called on the loop); the destructor gives the sender up to
// drain_timeout to empty the queue, then drops the rest (counted).
//
// Thread-safety: the sink serialises records with its mutex; loggers on
// several threads may share it. The counters may be read from any thread.
#pragma once

#include <spdlog/sinks/base_sink.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "systemd/journald.h"

namespace herd::systemd {

// syslog priority (0..7) of an spdlog level; `off` maps to info (6).
int journal_priority(spdlog::level::level_enum level);

struct JournalSinkOptions {
  // journald's native socket (tests bind their own).
  std::string socket_path = kJournaldSocket;
  // Datagrams waiting for the sender, in bytes (each counts its size + 64);
  // a record that does not fit is dropped. 2 MiB: ~10k lines of herdd's
  // size, some seconds of a journald that has stopped reading.
  std::size_t max_queued_bytes = 2u << 20;
  // MESSAGE bytes kept of one record.
  std::size_t max_message = 48u << 10;
  // How long the destructor lets the sender empty the queue.
  std::chrono::milliseconds drain_timeout{1000};
};

class JournalSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  // `identifier` becomes SYSLOG_IDENTIFIER of every record, e.g. "herdd".
  // Starts the sender thread.
  explicit JournalSink(std::string identifier, JournalSinkOptions options = {});
  ~JournalSink() override;
  JournalSink(const JournalSink&) = delete;
  JournalSink& operator=(const JournalSink&) = delete;

  const std::string& identifier() const { return identifier_; }

  // Entries journald accepted (the drop notes included).
  std::uint64_t sent() const { return sent_.load(std::memory_order_relaxed); }
  // Records not delivered: queue full, journald away or refusing, or left
  // in the queue at destruction.
  std::uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  // Of those, the sends journald refused with an error other than "not
  // there" (ENOENT, ECONNREFUSED).
  std::uint64_t failed() const { return failed_.load(std::memory_order_relaxed); }

  // Waits until the queue is empty and the sender idle, at most `timeout`;
  // true when it is. For shutdown and tests, never on the event loop.
  bool wait_idle(std::chrono::milliseconds timeout);

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override;
  void flush_() override {}  // never waits; see wait_idle()

 private:
  void run_sender();
  // Sends `datagram`, waiting for room while the queue is full; false when
  // it was dropped (counted by the caller) or the sink is stopping.
  bool deliver(JournalSocket& socket, const std::string& datagram);

  const std::string identifier_;
  const JournalSinkOptions options_;

  std::mutex queue_mutex_;
  std::condition_variable queue_cv_;    // for the sender: queue_ or stopping_ changed
  std::condition_variable idle_cv_;     // for wait_idle(): the sender finished a datagram
  std::deque<std::string> queue_;       // guarded by queue_mutex_
  std::size_t queued_bytes_ = 0;        // guarded by queue_mutex_
  std::uint64_t unreported_drops_ = 0;  // guarded by queue_mutex_
  bool busy_ = false;                   // the sender holds a datagram (guarded)
  bool stopping_ = false;               // destructor started (guarded)
  bool abandon_ = false;                // drain_timeout passed: drop the rest (guarded)
  int wake_fd_ = -1;                    // eventfd: ends the sender's poll()

  std::atomic<std::uint64_t> sent_{0};
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<std::uint64_t> failed_{0};
  std::thread sender_;  // last: started once everything above exists
};

enum class LogTarget { kAuto, kJournald, kStderr };

// "auto", "journald", "stderr" (the --log-target values); nullopt otherwise.
std::optional<LogTarget> parse_log_target(std::string_view text);
std::string_view to_string(LogTarget target);

// The stderr sink herd uses without journald: no colours, one line per
// record, "[2024-05-01 12:00:00.123] [warning] [etcd] restarting in 500ms".
// The "[component] " part is left out for a logger whose name is empty or
// equal to `identifier`.
std::shared_ptr<spdlog::sinks::sink> make_stderr_sink(std::string identifier);

// kJournald: a JournalSink; kStderr: make_stderr_sink(); kAuto: a
// JournalSink when journald_available(), else the stderr sink. (kJournald
// does not check: records are dropped while journald is away.)
std::shared_ptr<spdlog::sinks::sink> make_log_sink(LogTarget target, std::string identifier);

}  // namespace herd::systemd
