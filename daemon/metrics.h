// herd::daemon::HerdMetrics: what herdd's Prometheus endpoint shows
// (lib/metrics serves it; docs/operations.md "Metrics" lists every name).
//
// Contract:
// - observe() is handed every status the Supervisor reports, in order.
//   Counters (herd_component_restarts_total, herd_component_oom_kills_total)
//   only grow: they add the increase of the status' restarts / oom_kills,
//   which start again from 0 when a reload hands a component to a new
//   actor. herd_restore_seconds{component} measures from the status that
//   showed a new exit (not during a stop) to the next status that is ready.
// - probe_attempt() is the probe hook (Supervisor::Options::probe_attempt):
//   one readiness probe attempt's duration, for
//   herd_probe_duration_seconds{component, probe}.
// - render() writes the exposition: per component state (one sample per
//   state, 1 for the current), ready, restarts, OOM kills, last exit code,
//   start time; the histograms; herd_events_stream_gaps_total,
//   herd_containerd_call_errors_total{method} (containerd/call_errors.h),
//   herd_build_info{version} and the process_* metrics.
// - Components removed by a reload drop out of the per-component gauges
//   (render() shows the table it is given); their counters and histograms
//   stay (Prometheus counters must not go backwards while herdd runs).
//
// Thread-safety: observe() and render() on the event loop; probe_attempt()
// from any thread (a mutex guards the probe histograms).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "metrics/exposition.h"
#include "supervise/component.h"

namespace herd::daemon {

class HerdMetrics {
 public:
  explicit HerdMetrics(std::string version) : version_(std::move(version)) {}

  void observe(const supervise::ComponentStatus& s);
  void probe_attempt(const std::string& component, const std::string& probe,
                     std::chrono::nanoseconds took);
  // `statuses`: the supervisor's table (empty before containerd answered);
  // `gaps`: events stream gaps so far.
  std::string render(const std::vector<supervise::ComponentStatus>& statuses, uint64_t gaps) const;

 private:
  struct PerComponent {
    uint64_t restarts_total = 0;
    uint64_t restarts_seen = 0;  // the last status' restarts
    uint64_t oom_total = 0;
    uint64_t oom_seen = 0;
    std::optional<std::chrono::system_clock::time_point> last_exit_at;
    std::optional<std::chrono::system_clock::time_point> down_since;  // a new exit's status
    metrics::Histogram restore = restore_histogram();
  };
  static metrics::Histogram restore_histogram();

  std::string version_;
  std::map<std::string, PerComponent> components_;
  mutable std::mutex probe_mu_;
  std::map<std::pair<std::string, std::string>, metrics::Histogram> probes_;  // guarded
};

}  // namespace herd::daemon
