#include "supervise/shim_watch.h"

#include <charconv>
#include <fstream>
#include <string>

namespace herd::supervise {

namespace {

std::optional<ProcStat> read_stat(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  return parse_proc_stat(line);
}

}  // namespace

std::optional<ProcStat> parse_proc_stat(std::string_view line) {
  const size_t close = line.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  std::string_view rest = line.substr(close + 1);
  // Fields after the name: 3 state, 4 ppid, ... 22 starttime.
  ProcStat out;
  int field = 2;
  size_t i = 0;
  bool have_ppid = false;
  while (i < rest.size()) {
    while (i < rest.size() && rest[i] == ' ') ++i;
    const size_t start = i;
    while (i < rest.size() && rest[i] != ' ') ++i;
    if (start == i) break;
    ++field;
    const std::string_view tok = rest.substr(start, i - start);
    if (field == 3) {
      out.state = tok.empty() ? '?' : tok.front();
    } else if (field == 4) {
      auto [p, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), out.ppid);
      if (ec != std::errc() || p != tok.data() + tok.size()) return std::nullopt;
      have_ppid = true;
    } else if (field == 22) {
      auto [p, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), out.start_ticks);
      if (ec != std::errc() || p != tok.data() + tok.size() || !have_ppid) return std::nullopt;
      return out;
    }
  }
  return std::nullopt;
}

std::optional<ShimIdentity> shim_of(pid_t task_pid) {
  if (task_pid <= 0) return std::nullopt;
  auto task = read_stat(task_pid);
  if (!task || task->ppid <= 1) return std::nullopt;
  auto parent = read_stat(task->ppid);
  if (!parent) return std::nullopt;
  return ShimIdentity{task->ppid, parent->start_ticks};
}

bool shim_gone(const ShimIdentity& shim) {
  auto now = read_stat(shim.pid);
  // A zombie is gone too: its parent just has not reaped it yet.
  return !now || now->start_ticks != shim.start_ticks || now->state == 'Z' || now->state == 'X';
}

}  // namespace herd::supervise
