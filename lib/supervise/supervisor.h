// herd::supervise::Supervisor: owns every component actor and the one
// events subscription of a herd instance.
//
// - Exits from the events stream are dispatched to the actor whose
//   container id they name. After every stream gap each actor re-checks
//   its task (Reconcile), since events sent during the gap are lost.
//   Every `reconcile_interval` too (one Runtime::list_tasks, each live
//   actor comparing its entry), so an exit containerd never published is
//   found within one interval.
// - Components start only once the events stream is proven live (so no
//   exit can be missed), in dependency order: a component starts when every
//   component it depends on is ready, or, for a job (restart.on not
//   "always"), completed; independent components start together. While a
//   dependency is failed, the waiting component stays pending and its
//   status' last_error says "waiting: job 'x' failed (...)".
// - Jobs: a completed job stays completed (its exited task and container
//   stay until it is stopped or started again); stop() removes them, and a
//   reload that leaves the job unchanged does not run it again.
// - stop() stops in reverse dependency order (a component stops once every
//   component depending on it has stopped) within the config's stop_budget,
//   then calls `done`.
// - detach() stops supervising and leaves every container running, for the
//   next herd to adopt.
// - One component can be started, stopped or restarted on an operator's
//   request (start_component & co). An operator's start waits for the
//   component's dependencies to be ready, as at boot; stop and restart act
//   at once and leave dependants alone (as s6-svc does).
// - reload() swaps in a new config: added components start (in dependency
//   order), removed ones stop, and a changed one is handed over to a new
//   actor: the old actor detaches (the task keeps running) and, once none
//   of its calls is in flight, the new one prepares. When the spec hash is
//   unchanged (only supervision settings changed) it adopts the running
//   task (same pid); otherwise it stops the old task gracefully and
//   re-creates the container. Unchanged components are not touched.
// - The status of every component is kept here and reported to the
//   observer on every change (also while a removed component stops).
//
// - Start admission: at most config `max_concurrent_starts` prepares and
//   task starts run at once (one AsyncGate shared by every actor, see
//   Component::Env::start_gate); waiting ones go highest `priority` first.
//   Components whose dependencies are met are started in priority order
//   too. A reload changes the capacity in place.
// - Containers, tasks and events come through a Runtime (container_ops.h):
//   herdd's is ContainerdRuntime (the Client overload of create()); unit
//   tests pass fakes, and a fake TimeSource in Options.
//
// Strand: the supervisor runs on its own strand; actors on theirs. Public
// methods may be called from any thread (they post). status() must be
// called on the supervisor's strand (or, with a single-threaded
// io_context, from any handler).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/asio.h"
#include "common/blocking_pool.h"
#include "config/config.h"
#include "containerd/client.h"
#include "containerd/events.h"
#include "supervise/component.h"
#include "supervise/container_ops.h"
#include "supervise/time_source.h"

namespace herd::registry {
class Puller;
}

namespace herd::supervise {

class Supervisor : public std::enable_shared_from_this<Supervisor> {
 public:
  struct Options {
    RandomSource random;                // restart jitter; empty = a seeded engine per actor
    TimeSource* time = &steady_time();  // never null
    // The containerd runtime of the Client overload of create() (ignored
    // with a Runtime of the caller's):
    std::chrono::milliseconds call_timeout{10000};
    std::string output_logger;  // herd-logger for component output; empty = files
    // Files: herd-logger in file mode (rotated at the config's `output`
    // caps); empty = the shim writes the file, uncapped.
    std::string file_logger;
    // Threads for blocking work (archive reading); null = a pool of the
    // supervisor's own.
    BlockingPool* pool = nullptr;
    // Pulls missing images from registries; null = no pulls (see
    // ContainerdRuntime::Settings::puller). Outlives the supervisor.
    registry::Puller* puller = nullptr;
    // Tests only: an event for which this returns true is dropped as if
    // containerd had never published it (the periodic reconcile's e2e test).
    std::function<bool(const containerd::TaskEvent&)> drop_event;
    // Tests only: Component::Env::fault of every actor, with its name.
    std::function<void(const std::string& component, std::string_view op)> fault;
    // Metrics: Component::Env::probe_attempt of every actor, with its name
    // (called on the actor's strand).
    std::function<void(const std::string& component, std::string_view probe,
                       std::chrono::nanoseconds took)>
        probe_attempt;
  };
  using Observer = std::function<void(const ComponentStatus&)>;

  // `runtime` must outlive the supervisor.
  static std::shared_ptr<Supervisor> create(asio::any_io_executor executor, Runtime& runtime,
                                            config::Config config, Observer observer,
                                            Options options);
  // On containerd: a ContainerdRuntime of the supervisor's own, from
  // `options` and the config's data_path.
  static std::shared_ptr<Supervisor> create(asio::any_io_executor executor,
                                            containerd::Client& client, config::Config config,
                                            Observer observer, Options options);
  static std::shared_ptr<Supervisor> create(asio::any_io_executor executor,
                                            containerd::Client& client, config::Config config,
                                            Observer observer = {}) {
    return create(std::move(executor), client, std::move(config), std::move(observer), Options());
  }

  // What a reload did, by component name.
  struct ReloadSummary {
    Status status;  // FailedPrecondition while herd is stopping
    std::vector<std::string> added, removed, changed, unchanged;
  };

  void start();
  void stop(std::function<void()> done);
  void detach(std::function<void()> done);

  // Operator requests for one component. `done` runs on the supervisor's
  // strand: OK once the request is handed to the component, NotFound
  // ("no component named 'x'") for an unknown name, FailedPrecondition
  // while herd is stopping.
  void start_component(const std::string& name, std::function<void(Status)> done);
  void stop_component(const std::string& name, std::function<void(Status)> done);
  void restart_component(const std::string& name, std::function<void(Status)> done);
  // `next` must be a validated config with the same containerd settings.
  void reload(config::Config next, std::function<void(ReloadSummary)> done);

  // Strand only (see above).
  std::vector<ComponentStatus> status() const;
  const ComponentStatus* status(const std::string& name) const;
  bool stream_live() const { return stream_ && stream_->live(); }
  uint64_t gaps() const { return gaps_; }
  // Periodic reconciles done (task lists that answered). Supervisor strand.
  uint64_t periodic_reconciles() const { return periodic_reconciles_; }

 private:
  Supervisor(asio::any_io_executor executor, Runtime& runtime, config::Config config,
             Observer observer, Options options);
  struct Slot {
    std::shared_ptr<Component> actor;
    uint64_t id = 0;  // tells a replaced actor's late status from its successor's
  };

  void create_actors();
  Slot make_actor(const config::Component& c);
  void on_status(uint64_t id, const ComponentStatus& s);
  void start_ready_dependants();
  bool dependency_met(const std::string& dep) const;
  std::string blocked_reason(const config::Component& c) const;
  void stop_unblocked();
  // After any change: toward the stop when stopping, else start what can.
  void advance();
  TimePoint operator_stop_deadline(const std::string& name) const;
  bool retiring(const std::string& name) const;
  void retire(const std::string& name, Slot slot, bool keep_task);
  Status check_request(const std::string& name) const;
  ReloadSummary apply(config::Config next);

  asio::any_io_executor executor_;
  std::unique_ptr<Runtime> own_runtime_;  // the Client overload's
  Runtime* runtime_;
  config::Config config_;
  Observer observer_;
  Options options_;
  std::unique_ptr<BlockingPool> own_pool_;  // when options_.pool is null
  std::shared_ptr<EventSubscription> stream_;
  std::shared_ptr<AsyncGate> start_gate_;  // every actor's Env::start_gate
  std::map<std::string, Slot> components_;
  // Removed components still stopping, and replaced actors whose calls are
  // still unwinding, by actor id. A name retiring here does not start anew
  // until its retiree is gone.
  std::map<uint64_t, std::pair<std::string, std::shared_ptr<Component>>> retiring_;
  uint64_t next_id_ = 0;
  // mutable: status() refreshes the probe results (Component::probe_results).
  mutable std::map<std::string, ComponentStatus> status_;
  std::vector<std::string> order_;  // start order
  std::set<std::string> started_;
  std::set<std::string> stop_sent_;
  bool running_ = false;
  bool stopping_ = false;
  TimePoint stop_deadline_{};
  std::function<void()> stop_done_;
  uint64_t gaps_ = 0;
  // Every config_.reconcile_interval: one task list, each live actor checks
  // its entry (Component::on_task_listed). Armed from start() to the stop.
  std::unique_ptr<Timer> reconcile_timer_;
  bool listing_ = false;  // a list is in flight
  uint64_t periodic_reconciles_ = 0;
  void arm_reconcile();
  void periodic_reconcile();
};

}  // namespace herd::supervise
