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
// Delivery is sd_journal_sendv(): a datagram to journald's socket. When
// journald is not there, libsystemd drops the record silently; other send
// errors are counted in failed() and never thrown (a log call must not
// fail the caller). Like every libsystemd sender, a send blocks while
// journald's receive queue is full (journald wedged); wrap the logger in
// spdlog's async logger if that must never reach the event loop.
//
// Thread-safety: the sink serialises records with its mutex; loggers on
// several threads may share it.
#pragma once

#include <spdlog/sinks/base_sink.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "systemd/journald.h"

namespace herd::systemd {

// syslog priority (0..7) of an spdlog level; `off` maps to info (6).
int journal_priority(spdlog::level::level_enum level);

class JournalSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  // `identifier` becomes SYSLOG_IDENTIFIER of every record, e.g. "herdd".
  explicit JournalSink(std::string identifier);

  const std::string& identifier() const { return identifier_; }

  // Records that sd_journal_sendv() refused (not those dropped silently
  // because journald's socket is missing).
  std::uint64_t failed() const { return failed_.load(std::memory_order_relaxed); }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override;
  void flush_() override {}

 private:
  const std::string identifier_;
  const std::string identifier_field_;  // "SYSLOG_IDENTIFIER=<identifier>"
  std::string buffer_;                  // reused field storage (guarded by the sink mutex)
  std::atomic<std::uint64_t> failed_{0};
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
