// herd::supervise::Component: the actor that supervises one configured
// component.
//
// It owns the component's lifecycle Machine (lifecycle.h) and carries out
// the machine's actions with the containerd client, a restart timer and a
// readiness probe; their results come back to the machine as events. It
// never blocks: every containerd call is a coroutine on the actor's strand.
//
// What the actions do:
// - Prepare: resolve the image (import it from `image_archive` when it is
//   missing; never re-pull a present image), unpack it, build the OCI spec
//   and its hash. Then adopt or clean up what a previous herdd left: a
//   container whose `io.herd.spec-hash` label matches, with a running
//   task, is ADOPTED (no restart); a stopped task, a task record whose
//   process is gone, a changed spec, a container without its snapshot, or
//   a snapshot without a container is cleaned up, and the container is
//   (re)created (snapshot + container under a self-expiring lease, so a
//   crash half-way leaks nothing for long).
// - StartTask: delete the old task, killing its process first; create and
//   start a new task in the same container.
// - StopTask: stop_signal, wait stop_grace (bounded by the stop deadline),
//   SIGKILL, delete task, then container and snapshot (with retries). The
//   deadline bounds the waits for the process; each cleanup call has its
//   own short deadline, so a stop always finishes.
// - Kill: SIGKILL the task (failed readiness); the exit drives the restart.
// - Reconcile: Tasks.Get after an events-stream gap.
//
// Output: the task's stdout and stderr go to journald through herd-logger,
// a binary:// logger the shim itself runs (Env::output_logger), or, without
// one, to a file the shim writes, <data_path>/.herd-logs/<name>.log. Either
// way the shim owns the reader, so output never blocks the component and
// keeps flowing while herdd restarts, adopted tasks included.
//
// Strand: every public method may be called from any thread; it is posted
// to the actor's strand. Observer callbacks run on the strand.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/asio.h"
#include "config/config.h"
#include "containerd/client.h"
#include "containerd/events.h"
#include "containerd/images.h"
#include "supervise/lifecycle.h"
#include "supervise/probe.h"

namespace herd::supervise {

// What status reporting shows of one component.
struct ComponentStatus {
  std::string name;
  std::string image;
  State state = State::kPending;
  uint32_t pid = 0;
  uint64_t restarts = 0;  // restarts since herdd started supervising it
  std::optional<uint32_t> last_exit_code;
  std::optional<std::chrono::system_clock::time_point> last_exit_at;
  std::optional<std::chrono::system_clock::time_point> ready_since;
  // When the current task was started (or adopted: when this herdd found
  // it); uptime = now - started_at. Empty without a running task.
  std::optional<std::chrono::system_clock::time_point> started_at;
  std::string last_error;
  bool adopted = false;  // the running task was adopted, not started by this herdd
  // When herd produced this status (wall clock), e.g. the moment it handled
  // the exit event that made it. Benchmarks and `herdctl watch` use it.
  std::chrono::system_clock::time_point changed_at{};
};

// Label keys herd puts on its containers.
inline constexpr char kLabelSpecHash[] = "io.herd.spec-hash";
inline constexpr char kLabelComponent[] = "io.herd.component";

class Component : public std::enable_shared_from_this<Component> {
 public:
  struct Env {
    containerd::Client* client = nullptr;
    BlockingPool* pool = nullptr;  // blocking work (archive reading); never null
    std::string data_path;
    std::string snapshotter = containerd::kDefaultSnapshotter;
    // Deadline of each ordinary containerd call.
    std::chrono::milliseconds call_timeout{10000};
    // Random source for restart jitter; empty = none.
    RandomSource random;
    // Path of herd-logger, the binary:// logger the shim runs to forward
    // the task's output to journald. Empty: output goes to a file (below).
    std::string output_logger;
    // Tests only: called on the strand at the start of every operation
    // ("prepare", "start", "stop", "kill", "reconcile"); it may throw, to
    // exercise what an operation that throws does (see spawn_op).
    std::function<void(std::string_view op)> fault;
  };
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

  // Strand only.
  ComponentStatus status() const;
  State state() const { return machine_.state; }

 private:
  Component(asio::any_io_executor executor, Env env, config::Component config,
            Observer observer);

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
  enum class Op { kPrepare, kStart, kStop, kKill, kReconcile };
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

  asio::awaitable<void> run_prepare(uint64_t gen);
  asio::awaitable<void> run_start(uint64_t gen);
  asio::awaitable<void> run_stop(uint64_t gen);
  asio::awaitable<void> run_kill();
  asio::awaitable<void> run_reconcile(uint64_t gen);

  asio::awaitable<Status> ensure_image();
  asio::awaitable<Status> ensure_container(const std::string& spec_json,
                                           const std::string& spec_hash, bool* adopted,
                                           uint32_t* pid);
  asio::awaitable<Status> create_container(const std::string& spec_json,
                                           const std::string& spec_hash);
  asio::awaitable<void> remove_container();
  // Until no prepare/start (and, with_stop, no stop) coroutine runs.
  asio::awaitable<void> wait_idle(bool with_stop);
  Result<std::string> build_spec();
  Status prepare_mounts();
  std::string log_path() const;
  containerd::CallOptions call(std::shared_ptr<containerd::Canceller> c = nullptr) const;

  asio::any_io_executor executor_;
  Env env_;
  config::Component config_;
  Observer observer_;
  Machine machine_;
  bool detached_ = false;
  bool adopted_ = false;

  std::optional<containerd::ResolvedImage> image_;  // set by prepare
  std::shared_ptr<containerd::Canceller> inflight_;   // prepare/start calls
  uint64_t inflight_gen_ = 0;
  uint64_t reconcile_gen_ = 0;
  uint64_t stop_gen_ = 0;
  int running_ops_ = 0;  // prepare/start coroutines still unwinding
  int stop_ops_ = 0;     // stop coroutines running
  asio::steady_timer idle_;
  std::shared_ptr<containerd::Canceller> stop_wait_;  // cancelled when a stop shortens
  asio::steady_timer restart_timer_;
  std::shared_ptr<ReadinessProbe> probe_;
  ComponentStatus last_notified_;
  uint32_t started_pid_ = 0;  // the task started_at_ belongs to
  std::optional<std::chrono::system_clock::time_point> started_at_;
};

// The spec hash herd labels containers with: sha256 of everything that
// decides what runs (spec JSON, image manifest, snapshotter, runtime).
std::string spec_hash(const std::string& spec_json, const std::string& manifest_digest,
                      const std::string& snapshotter);

RestartPolicy restart_policy_from(const config::RestartPolicy& p);
ProbeSpec probe_spec_from(const config::ReadyProbe& r);

}  // namespace herd::supervise
