// herd::metrics::read_process_stats: this process's resource use from
// /proc/self, for the process_* metrics Prometheus' client libraries
// export (process_cpu_seconds_total, process_resident_memory_bytes,
// process_open_fds, process_max_fds, process_start_time_seconds).
//
// Contract: reads small procfs files of this process only (never blocks
// on I/O); a field it cannot read stays nullopt and is left out of the
// exposition rather than reported as 0.
//
// Thread-safety: a free function, no shared state.
#pragma once

#include <optional>

namespace herd::metrics {

struct ProcessStats {
  std::optional<double> cpu_seconds;     // user + system
  std::optional<double> resident_bytes;  // RSS
  std::optional<double> open_fds;
  std::optional<double> max_fds;             // RLIMIT_NOFILE soft limit
  std::optional<double> start_time_seconds;  // unix time
};

ProcessStats read_process_stats();

}  // namespace herd::metrics
