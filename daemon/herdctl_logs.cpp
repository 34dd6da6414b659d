#include "daemon/herdctl_logs.h"

#include <signal.h>
#include <systemd/sd-journal.h>
#include <time.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "config/cli_duration.h"

namespace herd::ctl {

namespace {

volatile sig_atomic_t g_stop = 0;
void on_stop(int) { g_stop = 1; }

void catch_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_stop;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
}

std::string rfc3339_us(uint64_t us) {
  const std::time_t secs = static_cast<std::time_t>(us / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char frac[16];
  std::snprintf(frac, sizeof frac, ".%03uZ", static_cast<unsigned>((us / 1000) % 1000));
  return std::string(buf) + frac;
}

// The value of FIELD in the current entry, or "".
std::string field(sd_journal* j, const char* name) {
  const void* data = nullptr;
  size_t len = 0;
  if (sd_journal_get_data(j, name, &data, &len) < 0) return {};
  const size_t prefix = std::strlen(name) + 1;  // "NAME="
  if (len < prefix) return {};
  return std::string(static_cast<const char*>(data) + prefix, len - prefix);
}

void print_entry(sd_journal* j, std::ostream& out) {
  uint64_t us = 0;
  sd_journal_get_realtime_usec(j, &us);
  const std::string stream = field(j, "HERD_STREAM");
  std::string mark;
  if (stream == "stderr") mark = "stderr: ";
  if (stream == "logger") mark = "herd-logger: ";
  out << rfc3339_us(us) << " " << mark << field(j, "MESSAGE") << "\n";
}

struct Journal {
  sd_journal* j = nullptr;
  ~Journal() {
    if (j) sd_journal_close(j);
  }
};

// 1: printed from the journal; 0: the journal has no entry of the
// component; -1: the journal cannot be opened (`why`).
int from_journal(const LogsOptions& o, std::ostream& out, std::string* why) {
  Journal jr;
  int r = o.journal_directory.empty()
              ? sd_journal_open(&jr.j, SD_JOURNAL_LOCAL_ONLY)
              : sd_journal_open_directory(&jr.j, o.journal_directory.c_str(), 0);
  if (r < 0) {
    *why = std::string("cannot open the journal: ") + std::strerror(-r);
    return -1;
  }
  sd_journal* j = jr.j;
  const std::string ident = "SYSLOG_IDENTIFIER=" + o.name;
  const std::string comp = "HERD_COMPONENT=" + o.name;
  sd_journal_add_match(j, ident.data(), ident.size());
  sd_journal_add_match(j, comp.data(), comp.size());

  // Any entry at all? Else the caller tries the file.
  sd_journal_seek_tail(j);
  if (sd_journal_previous(j) <= 0) return 0;

  if (!o.since_unix_us && o.lines > 0) {
    // The last N: step back from the end, then forward.
    sd_journal_seek_tail(j);
    if (sd_journal_previous_skip(j, o.lines) > 0) {
      print_entry(j, out);
      while (sd_journal_next(j) > 0) print_entry(j, out);
    }
  } else {
    if (o.since_unix_us) {
      sd_journal_seek_realtime_usec(j, static_cast<uint64_t>(*o.since_unix_us));
    } else {
      sd_journal_seek_head(j);
    }
    // From the start point on, keeping the last N.
    std::deque<std::string> lines;
    while (sd_journal_next(j) > 0) {
      std::ostringstream one;
      print_entry(j, one);
      lines.push_back(one.str());
      if (o.lines > 0 && lines.size() > o.lines) lines.pop_front();
    }
    for (const auto& l : lines) out << l;
  }
  out.flush();
  if (!o.follow) return 1;
  catch_stop_signals();
  while (!g_stop) {
    const int w = sd_journal_wait(j, 250000);
    if (w < 0) break;
    while (sd_journal_next(j) > 0) print_entry(j, out);
    out.flush();
  }
  return 1;
}

int from_file(const LogsOptions& o, std::ostream& out, const std::string& journal_why) {
  const std::string path = o.data_path + "/.herd-logs/" + o.name + ".log";
  std::ifstream f(path);
  if (!f) {
    std::cerr << "herdctl: no output of '" << o.name << "' in the journal"
              << (journal_why.empty() ? "" : " (" + journal_why + ")") << " and no file " << path
              << "\n";
    return 1;
  }
  std::deque<std::string> lines;
  for (std::string l; std::getline(f, l);) {
    lines.push_back(std::move(l));
    if (o.lines > 0 && lines.size() > o.lines) lines.pop_front();
  }
  for (const auto& l : lines) out << l << "\n";
  out.flush();
  if (!o.follow) return 0;
  catch_stop_signals();
  f.clear();
  std::string partial;
  while (!g_stop) {
    std::string l;
    if (std::getline(f, l)) {
      if (f.eof()) {  // no newline yet: wait for the rest
        partial += l;
        f.clear();
        continue;
      }
      out << partial << l << "\n" << std::flush;
      partial.clear();
      continue;
    }
    f.clear();
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  return 0;
}

}  // namespace

std::optional<int64_t> parse_since(const std::string& text, std::string* error) {
  std::tm tm{};
  const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (end != nullptr && (std::strcmp(end, "Z") == 0 || *end == '\0')) {
    return static_cast<int64_t>(timegm(&tm)) * 1000000;
  }
  auto d = config::parse_cli_duration(text);
  if (!d.ok()) {
    *error = "neither an RFC 3339 UTC time (2026-12-02T14:00:00Z) nor a duration ago: " +
             d.status().message();
    return std::nullopt;
  }
  const auto now = std::chrono::duration_cast<std::chrono::microseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  return now - std::chrono::duration_cast<std::chrono::microseconds>(*d).count();
}

int show_logs(const LogsOptions& o, std::ostream& out) {
  std::string why;
  const int r = from_journal(o, out, &why);
  if (r == 1) return 0;
  return from_file(o, out, why);
}

}  // namespace herd::ctl
