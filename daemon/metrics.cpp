#include "daemon/metrics.h"

#include "containerd/call_errors.h"
#include "daemon/exit_history.h"
#include "metrics/process_stats.h"

namespace herd::daemon {

using metrics::Histogram;
using metrics::Labels;
using metrics::TextWriter;
using supervise::ComponentStatus;
using supervise::State;

namespace {

constexpr State kStates[] = {State::kPending,      State::kPreparing, State::kStarting,
                             State::kWaitingReady, State::kReady,     State::kBackingOff,
                             State::kStopping,     State::kStopped,   State::kFailed,
                             State::kCompleted};

double unix_seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

Histogram probe_histogram() {
  return Histogram({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10});
}

}  // namespace

Histogram HerdMetrics::restore_histogram() {
  return Histogram({0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300});
}

void HerdMetrics::observe(const ComponentStatus& s) {
  PerComponent& c = components_[s.name];
  if (s.restarts > c.restarts_seen) c.restarts_total += s.restarts - c.restarts_seen;
  c.restarts_seen = s.restarts;
  if (s.oom_kills > c.oom_seen) c.oom_total += s.oom_kills - c.oom_seen;
  c.oom_seen = s.oom_kills;
  const bool stopping = s.state == State::kStopping || s.state == State::kStopped;
  if (s.last_exit_at && !same_exit(s.last_exit_at, c.last_exit_at)) {
    c.last_exit_at = s.last_exit_at;
    if (!stopping && !c.down_since) c.down_since = s.changed_at;
  }
  if (stopping) c.down_since.reset();
  if (s.state == State::kReady && c.down_since) {
    const double took = std::chrono::duration<double>(s.changed_at - *c.down_since).count();
    c.restore.observe(took < 0 ? 0 : took);
    c.down_since.reset();
  }
}

void HerdMetrics::probe_attempt(const std::string& component, const std::string& probe,
                                std::chrono::nanoseconds took) {
  std::lock_guard lock(probe_mu_);
  auto key = std::make_pair(component, probe);
  auto it = probes_.find(key);
  if (it == probes_.end()) it = probes_.emplace(std::move(key), probe_histogram()).first;
  it->second.observe(std::chrono::duration<double>(took).count());
}

std::string HerdMetrics::render(const std::vector<ComponentStatus>& statuses, uint64_t gaps) const {
  TextWriter w;
  w.family("herd_component_state", "1 for the component's current state, 0 for the others",
           "gauge");
  for (const auto& s : statuses) {
    for (State st : kStates) {
      w.sample("herd_component_state",
               Labels{{"component", s.name}, {"state", std::string(supervise::to_string(st))}},
               s.state == st ? 1 : 0);
    }
  }
  w.family("herd_component_ready", "1 when the component is ready", "gauge");
  for (const auto& s : statuses) {
    w.sample("herd_component_ready", Labels{{"component", s.name}},
             s.state == State::kReady ? 1 : 0);
  }
  w.family("herd_component_restarts_total", "Restarts of the component since herdd started",
           "counter");
  for (const auto& [name, c] : components_) {
    w.sample("herd_component_restarts_total", Labels{{"component", name}},
             static_cast<double>(c.restarts_total));
  }
  w.family("herd_component_oom_kills_total",
           "OOM kills of the component's container since herdd started", "counter");
  for (const auto& [name, c] : components_) {
    w.sample("herd_component_oom_kills_total", Labels{{"component", name}},
             static_cast<double>(c.oom_total));
  }
  w.family("herd_component_last_exit_code", "Exit code of the component's last exit", "gauge");
  for (const auto& s : statuses) {
    if (s.last_exit_code) {
      w.sample("herd_component_last_exit_code", Labels{{"component", s.name}}, *s.last_exit_code);
    }
  }
  w.family("herd_component_start_time_seconds",
           "Unix time the component's running task was started (or adopted)", "gauge");
  for (const auto& s : statuses) {
    if (s.started_at && s.pid != 0) {
      w.sample("herd_component_start_time_seconds", Labels{{"component", s.name}},
               unix_seconds(*s.started_at));
    }
  }
  w.family("herd_restore_seconds", "Seconds from an exit seen to the component being ready again",
           "histogram");
  for (const auto& [name, c] : components_) {
    c.restore.write(w, "herd_restore_seconds", Labels{{"component", name}});
  }
  w.family("herd_probe_duration_seconds", "Duration of readiness probe attempts", "histogram");
  {
    std::lock_guard lock(probe_mu_);
    for (const auto& [key, h] : probes_) {
      h.write(w, "herd_probe_duration_seconds",
              Labels{{"component", key.first}, {"probe", key.second}});
    }
  }
  w.family("herd_events_stream_gaps_total",
           "Times containerd's events stream was lost and resubscribed (a reconcile followed)",
           "counter");
  w.sample("herd_events_stream_gaps_total", {}, static_cast<double>(gaps));
  w.family("herd_containerd_call_errors_total", "Failed containerd calls, by method", "counter");
  for (const auto& [method, n] : containerd::call_errors()) {
    w.sample("herd_containerd_call_errors_total", Labels{{"method", method}},
             static_cast<double>(n));
  }
  w.family("herd_build_info", "herdd's version", "gauge");
  w.sample("herd_build_info", Labels{{"version", version_}}, 1);

  const metrics::ProcessStats p = metrics::read_process_stats();
  if (p.cpu_seconds) {
    w.family("process_cpu_seconds_total", "Total user and system CPU time spent in seconds",
             "counter");
    w.sample("process_cpu_seconds_total", {}, *p.cpu_seconds);
  }
  if (p.resident_bytes) {
    w.family("process_resident_memory_bytes", "Resident memory size in bytes", "gauge");
    w.sample("process_resident_memory_bytes", {}, *p.resident_bytes);
  }
  if (p.open_fds) {
    w.family("process_open_fds", "Number of open file descriptors", "gauge");
    w.sample("process_open_fds", {}, *p.open_fds);
  }
  if (p.max_fds) {
    w.family("process_max_fds", "Maximum number of open file descriptors", "gauge");
    w.sample("process_max_fds", {}, *p.max_fds);
  }
  if (p.start_time_seconds) {
    w.family("process_start_time_seconds", "Start time of the process since unix epoch in seconds",
             "gauge");
    w.sample("process_start_time_seconds", {}, *p.start_time_seconds);
  }
  return w.take();
}

}  // namespace herd::daemon
