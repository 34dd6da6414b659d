// herd::supervise::ShimIdentity: which containerd-shim runs a task, so
// that a task's exit can be told apart when its shim died (containerd's
// cleanup of a dead shim reports every task of it as killed, exit 137,
// exactly as a SIGKILL of the process would look).
//
// A shim is the parent of its tasks' init processes (it is their child
// subreaper). Its identity is its pid plus its start time in clock ticks
// since boot (/proc/<pid>/stat field 22), so a reused pid is not taken for
// the same shim.
//
// Both functions read procfs only (no blocking I/O) and never throw.
// Thread-safety: pure functions of /proc.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>

namespace herd::supervise {

struct ShimIdentity {
  pid_t pid = 0;
  uint64_t start_ticks = 0;
  bool operator==(const ShimIdentity&) const = default;
};

// The parent of `task_pid` and its start time; nullopt when the task is
// gone or its parent is init (pid 1: no shim to watch).
std::optional<ShimIdentity> shim_of(pid_t task_pid);

// True when that shim process no longer exists, is a zombie, or its pid now
// belongs to another process.
bool shim_gone(const ShimIdentity& shim);

// The shim of one component's current task (ContainerOps::runtime_lost):
// watch() when a task starts or is adopted, lost() when its exit arrives.
class ShimWatch {
 public:
  void watch(uint32_t task_pid) {
    watched_.reset();
    if (auto shim = shim_of(static_cast<pid_t>(task_pid))) watched_.emplace(task_pid, *shim);
  }
  // True when `task_pid` is the watched task and its shim is gone.
  bool lost(uint32_t task_pid) const {
    return watched_ && watched_->first == task_pid && shim_gone(watched_->second);
  }

 private:
  std::optional<std::pair<uint32_t, ShimIdentity>> watched_;
};

// /proc/<pid>/stat's state (field 3), ppid (4) and starttime (22), parsed after
// the last ')' (the command name may contain anything). nullopt on a
// malformed line. Exposed for unit tests.
struct ProcStat {
  char state = '?';  // R, S, D, Z (zombie), X (dead), ...
  pid_t ppid = 0;
  uint64_t start_ticks = 0;
};
std::optional<ProcStat> parse_proc_stat(std::string_view line);

}  // namespace herd::supervise
