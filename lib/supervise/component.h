// herd::supervise::Component: the actor that supervises one configured
// component.
//
// It owns the component's lifecycle Machine (lifecycle.h) and carries out
// the machine's actions with the containerd client, a restart timer and a
// readiness probe; while ready, the liveness probe (its giving up is the
// machine's LivenessFailed); their results come back to the machine as
// events. It
// never blocks: every containerd call is a coroutine on the actor's strand.
//
// What the actions do is the ContainerOps' business (container_ops.h;
// herdd's are containerd_ops.h): the actor owns one ContainerOps, made by
// Env::runtime for its configuration. The actor itself keeps only the
// bookkeeping: which operation is current (generations, so a superseded
// operation's late result is dropped), its cancellation, the restart
// timer, the readiness probe, and what status reporting shows. Time comes
// from Env::time, so unit tests drive the actor on a fake clock with fake
// operations (tests/unit/supervise/component_test.cpp).
//
// Strand: every public method may be called from any thread; it is posted
// to the actor's strand. Observer callbacks run on the strand.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "common/asio.h"
#include "common/async_gate.h"
#include "config/config.h"
#include "containerd/events.h"
#include "supervise/container_ops.h"
#include "supervise/lifecycle.h"
#include "supervise/probe.h"
#include "supervise/time_source.h"

namespace herd::supervise {

// The last finished attempt of a readiness or liveness probe.
struct ProbeResult {
  std::string kind;  // "tcp", "http", "exec"
  bool ok = false;
  std::chrono::system_clock::time_point at{};  // when the attempt finished
  std::chrono::milliseconds duration{0};
  std::string detail;  // what the attempt saw, e.g. "GET /health: status 404"
  friend bool operator==(const ProbeResult&, const ProbeResult&) = default;
};

// What status reporting shows of one component.
struct ComponentStatus {
  std::string name;
  std::string image;
  State state = State::kPending;
  uint32_t pid = 0;
  uint64_t restarts = 0;  // restarts since herdd started supervising it
  std::optional<uint32_t> last_exit_code;
  std::optional<std::chrono::system_clock::time_point> last_exit_at;
  // Why the last exit happened: "oom_killed" (the kernel's OOM killer,
  // seen as containerd's TaskOOM), "exited" otherwise; "" before any exit.
  std::string last_exit_reason;
  uint64_t oom_kills = 0;  // OOM events of the container since herdd supervises it
  std::optional<std::chrono::system_clock::time_point> ready_since;
  // When the current task was started (or adopted: when this herdd found
  // it); uptime = now - started_at. Empty without a running task.
  std::optional<std::chrono::system_clock::time_point> started_at;
  std::string last_error;
  bool adopted = false;  // the running task was adopted, not started by this herdd
  // When herd produced this status (wall clock), e.g. the moment it handled
  // the exit event that made it. Benchmarks and `herdctl watch` use it.
  std::chrono::system_clock::time_point changed_at{};
  // The last readiness and liveness attempts (of this or an earlier task);
  // empty before the first. An attempt calls the observer only when its
  // outcome differs from the previous attempt's (Component::probe_results
  // has the latest).
  std::optional<ProbeResult> last_ready_probe;
  std::optional<ProbeResult> last_liveness_probe;
  // restore: standby: "ready (pid N)", "building", "failed (...): why";
  // "" without a standby (standby.h).
  std::string standby;
};

class Component : public std::enable_shared_from_this<Component> {
 public:
  struct Env {
    Runtime* runtime = nullptr;         // makes the actor's ContainerOps; never null
    TimeSource* time = &steady_time();  // never null
    // Random source for restart jitter; empty = none.
    RandomSource random;
    // Tests only: called on the strand at the start of every operation
    // ("prepare", "start", "stop", "kill", "reconcile"); it may throw, to
    // exercise what an operation that throws does (see spawn_op).
    std::function<void(std::string_view op)> fault;
    // Metrics: every probe attempt ("readiness") and its duration.
    std::function<void(std::string_view probe, std::chrono::nanoseconds took)> probe_attempt;
    // Start admission (the supervisor's, capacity max_concurrent_starts):
    // a prepare or a task start holds one slot while its calls run,
    // entering with the component's `priority`; the wait is bounded by
    // kStartSlotWait and ends at once when the operation is cancelled (a
    // stop). Null = no limit.
    std::shared_ptr<AsyncGate> start_gate;
  };
  // The longest a prepare or start waits for its slot before it fails
  // (and backs off like any refused start).
  static constexpr std::chrono::minutes kStartSlotWait{10};
  using Observer = std::function<void(const ComponentStatus&)>;

  static std::shared_ptr<Component> create(asio::any_io_executor executor, Env env,
                                           config::Component config, Observer observer);
  ~Component();

  const std::string& name() const { return config_.name; }
  const config::Component& config() const { return config_; }

  void start();
  // Stops the component and removes its task, container and snapshot. The
  // deadline can only get shorter with later calls.
  void stop(TimePoint deadline);
  // Stops supervising without touching containerd: the task keeps running
  // for the next herdd (or a replacing actor, on reload) to adopt. No
  // observer call follows. `idle`, when given, is called on the strand once
  // no call of this actor is in flight any more.
  void detach(std::function<void()> idle = {});
  void on_task_event(const containerd::TaskEvent& e);
  void on_stream_gap();
  // The periodic reconcile's task list (every task of the namespace); the
  // actor looks up its own container's entry (ContainerOps::task_id). While
  // waiting_ready/ready, a running task with the machine's pid is left
  // alone; anything else asks for a Reconcile (Tasks.Get decides, as after
  // a stream gap). Other states ignore it.
  void on_task_listed(std::shared_ptr<const TaskList> tasks);

  // The last readiness and liveness attempts. Any thread: status reporting
  // reads them fresh, since an attempt alone does not call the observer.
  struct ProbeResults {
    std::optional<ProbeResult> ready;
    std::optional<ProbeResult> liveness;
  };
  ProbeResults probe_results() const;

  // Strand only.
  ComponentStatus status() const;
  State state() const { return machine_.state; }

 private:
  Component(asio::any_io_executor executor, Env env, config::Component config, Observer observer);

  void feed(const Event& e);
  void perform(const Action& a);
  void notify();

  // The actor's operations. Each runs as a coroutine on the strand, started
  // by spawn_op, whose completion handler catches anything it throws: the
  // exception is logged and fed to the machine as that operation's failure
  // (PrepareDone/StartDone/StopDone with ok = false, "internal error: ..."),
  // so the component backs off and a stop still completes. A kill or a
  // reconcile that throws changes nothing (the exit event or the next gap
  // decides). Counters of running operations are RAII guards (OpCount), so
  // an exception cannot leave wait_idle() waiting for ever.
  enum class Op { kPrepare, kStart, kStop, kKill, kReconcile, kTerminate };
  void spawn_op(Op op, uint64_t gen, asio::awaitable<void> body);
  void on_op_exception(Op op, uint64_t gen, const std::string& what);
  // ++counter now, --counter (and wake wait_idle) when it goes out of scope.
  class OpCount {
   public:
    OpCount(int& counter, asio::steady_timer& idle) : counter_(counter), idle_(idle) { ++counter_; }
    ~OpCount() {
      if (--counter_ == 0) idle_.cancel();
    }
    OpCount(const OpCount&) = delete;
    OpCount& operator=(const OpCount&) = delete;

   private:
    int& counter_;
    asio::steady_timer& idle_;
  };

  // Takes a start slot (Env::start_gate) into `slot` for operation `gen`
  // (run_prepare: Done = PrepareDone, run_start: StartDone). true when
  // admitted (or no gate) and the operation is still current. When refused
  // (cancelled, or kStartSlotWait passed) it feeds a failed Done naming why,
  // so the machine backs off as after any refused start; false then, and
  // also when the operation was superseded meanwhile.
  template <class Done>
  asio::awaitable<bool> admit_start(AsyncGate::Pass& slot, uint64_t gen);
  asio::awaitable<void> run_prepare(uint64_t gen);
  asio::awaitable<void> run_start(uint64_t gen);
  asio::awaitable<void> run_stop(uint64_t gen);
  asio::awaitable<void> run_kill();
  asio::awaitable<void> run_terminate(std::shared_ptr<Canceller> cancel);
  // Starts the liveness probe of the current (ready) task; REQUIRES: ready.
  void start_liveness();
  // The ProbeSpec of `r` for task `pid`: netns for "network": "none", and
  // for exec the runner (run_exec on this actor's ContainerOps).
  ProbeSpec make_probe_spec(const config::ReadyProbe& r, bool liveness, uint32_t pid);
  asio::awaitable<void> run_exec(std::vector<std::string> command,
                                 std::chrono::milliseconds timeout,
                                 std::shared_ptr<Canceller> cancel, ExecDone done);
  // Records a finished probe attempt; logs when its outcome changed.
  void record_attempt(bool liveness, const ProbeAttempt& a);
  asio::awaitable<void> run_reconcile(uint64_t gen);

  // Until no prepare/start (and, with_stop, no stop) coroutine runs.
  asio::awaitable<void> wait_idle(bool with_stop);
  std::chrono::system_clock::time_point to_wall(TimePoint t) const;

  asio::any_io_executor executor_;
  Env env_;
  config::Component config_;
  Observer observer_;
  Machine machine_;
  bool detached_ = false;
  bool adopted_ = false;

  std::unique_ptr<ContainerOps> ops_;
  std::shared_ptr<Canceller> inflight_;  // prepare/start calls
  uint64_t inflight_gen_ = 0;
  uint64_t reconcile_gen_ = 0;
  uint64_t stop_gen_ = 0;
  int running_ops_ = 0;  // prepare/start coroutines still unwinding
  int stop_ops_ = 0;     // stop coroutines running
  asio::steady_timer idle_;
  std::shared_ptr<Canceller> stop_wait_;  // cancelled when a stop shortens
  std::unique_ptr<Timer> restart_timer_;
  std::shared_ptr<ReadinessProbe> probe_;
  std::shared_ptr<ReadinessProbe> liveness_;  // while ready, with `liveness` configured
  uint32_t liveness_pid_ = 0;                 // the task liveness_ probes
  std::shared_ptr<Canceller> terminate_;      // a liveness termination in flight
  mutable std::mutex probe_mu_;
  ProbeResults probe_results_;  // GUARDED_BY(probe_mu_); written on the strand
  bool notify_probe_ = false;   // a probe's outcome changed: notify() reports
  ComponentStatus last_notified_;
  uint32_t started_pid_ = 0;  // the task started_at_ belongs to
  std::optional<std::chrono::system_clock::time_point> started_at_;
};

// "tcp", "http", "exec".
std::string probe_kind_name(config::ReadyProbe::Kind kind);
// The probe of `ready` (liveness = false) or `liveness` (true); without
// what needs the task (netns_pid, the exec runner).
ProbeSpec probe_spec_from(const config::ReadyProbe& r, bool liveness = false);

}  // namespace herd::supervise
