// herdctl logs NAME [-n N] [-f] [--since TIME]: a component's own output,
// read by herdctl itself (herdd is not asked).
//
// - journald (component output through herd-logger): sd_journal on the
//   local journal (or --journal-directory), entries matching
//   SYSLOG_IDENTIFIER=NAME and HERD_COMPONENT=NAME, so herdd's own lines
//   about the component (identifier "herdd") are left out. stderr lines
//   are marked "stderr: ", herd-logger's notes "herd-logger: ".
// - Files (component output to <data_path>/.herd-logs/NAME.log, when
//   herdd runs without journald): when the journal has no entry of NAME
//   and that file exists, its last lines are shown; the shim writes both
//   streams into it, so lines are not marked. --data-path, else
//   $HERD_DATA_PATH, else /var/lib/herd.
// - -n N: the last N lines (default 50; 0 = all); --since TIME: entries
//   from TIME on, an RFC 3339 UTC time ("2026-12-02T14:00:00Z") or a
//   duration ago ("10m", "1h30m"; a bare number is seconds); -f: then
//   every new line until SIGINT/SIGTERM (exit 0).
// - Each line: "<RFC 3339 time, ms> <line>" for journal entries, the
//   line itself for files.
//
// Exit codes: 0 (also with no lines), 1 when neither the journal nor the
// file can be read (the message says why), 2 for a bad --since.
//
// Thread-safety: plain functions of the calling thread.
#pragma once

#include <cstddef>
#include <optional>
#include <ostream>
#include <string>

namespace herd::ctl {

struct LogsOptions {
  std::string name;
  std::size_t lines = 50;  // 0: all
  bool follow = false;
  std::optional<int64_t> since_unix_us;  // --since
  std::string journal_directory;         // empty: the local journal
  std::string data_path;                 // the file fallback's root
};

// The unix time (µs) `text` names (see above), or an error message.
std::optional<int64_t> parse_since(const std::string& text, std::string* error);

// Writes the lines to `out`; returns the exit code.
int show_logs(const LogsOptions& o, std::ostream& out);

}  // namespace herd::ctl
