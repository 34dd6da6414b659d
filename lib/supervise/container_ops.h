// herd::supervise::ContainerOps and Runtime: what the component actor and
// the supervisor ask of the container runtime, as an interface.
//
// The actor (component.h) keeps the bookkeeping: its lifecycle Machine,
// which operation is current (generations), cancellation, timers, probes.
// The operations themselves are behind ContainerOps, one instance per
// actor, so the actor and the supervisor can be driven in unit tests by
// fake operations on a fake clock, without containerd. herdd's
// implementation is containerd_ops.h.
//
// Contract of every operation:
// - It is a coroutine started on the actor's strand; it may suspend, and
//   resumes on that strand.
// - It never blocks the thread; every runtime call in it has a deadline.
// - It may throw: the actor turns an exception into that operation's
//   failure (component.h).
// - `cancel`, when cancelled, aborts its pending calls at once; the
//   operation then returns promptly (its result is ignored by the actor).
//
// Strand: an instance belongs to one actor and is used on its strand only.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/asio.h"
#include "common/status.h"
#include "config/config.h"
#include "containerd/call.h"
#include "containerd/events.h"
#include "supervise/lifecycle.h"

namespace herd::supervise {

using containerd::Canceller;

class ContainerOps {
 public:
  virtual ~ContainerOps() = default;

  struct Prepared {
    bool adopted = false;  // a running task of the same spec was kept
    uint32_t pid = 0;      // the adopted task's pid
  };
  // Image, data directories, spec; then adopt or clean up what a previous
  // herdd left, and ensure the container exists.
  virtual asio::awaitable<Result<Prepared>> prepare(std::shared_ptr<Canceller> cancel) = 0;

  // Delete any old task (killing it), then create and start a new one in
  // the prepared container. Returns the new task's pid.
  virtual asio::awaitable<Result<uint32_t>> start_task(std::shared_ptr<Canceller> cancel) = 0;

  struct StopControl {
    // The stop's deadline; it can only get shorter while the stop runs.
    std::function<TimePoint()> deadline;
    // Makes a fresh canceller for one wait on the process; the actor
    // cancels it when the deadline shortens, and the stop re-reads it.
    std::function<std::shared_ptr<Canceller>()> arm_wait;
  };
  // stop_signal, wait stop_grace (bounded by the deadline), SIGKILL; then
  // delete task, container and snapshot. It always finishes; the status
  // says what could not be removed.
  virtual asio::awaitable<Status> stop(StopControl control) = 0;

  // SIGKILL the task now (failed readiness); the exit event follows.
  virtual asio::awaitable<Status> kill() = 0;

  // Failed liveness: stop_signal, wait stop_grace, SIGKILL; the task record
  // and the container stay (the restart's start_task deletes the task).
  // The exit event follows. `cancel` ends it early (a stop took over).
  virtual asio::awaitable<Status> terminate(std::shared_ptr<Canceller> cancel) = 0;

  // An exec probe: runs `command` in the task (Tasks.Exec: the container's
  // namespaces, rootfs, user and environment) with stdout and stderr
  // captured (the first kMaxExecOutput bytes), waits at most `timeout`.
  // Cancelled or past `timeout`, the process is SIGKILLed. Whatever
  // happened, the exec process is reaped and its exec id removed before
  // this returns (cleanup calls have their own short deadlines and ignore
  // `cancel`).
  struct ExecOutcome {
    bool ran = false;  // it started and exited (exit_code is valid)
    uint32_t exit_code = 0;
    bool timed_out = false;  // killed at `timeout` (or cancelled)
    std::string output;      // stdout + stderr, at most kMaxExecOutput bytes
    std::string error;       // when !ran: what went wrong
  };
  static constexpr std::size_t kMaxExecOutput = 4096;
  virtual asio::awaitable<ExecOutcome> exec(std::vector<std::string> command,
                                            std::chrono::milliseconds timeout,
                                            std::shared_ptr<Canceller> cancel) = 0;

  // Asked when the exit of task `pid` arrives: true when the runtime
  // behind that task is gone (its shim died, and containerd's cleanup of
  // the dead shim reported the exit on its behalf), so the exit is
  // "containerd_lost", not the process's own. Must not block (herdd's
  // reads procfs). The default: never lost (fake runtimes).
  virtual bool runtime_lost(uint32_t pid) {
    (void)pid;
    return false;
  }

  // The containerd container id holding the component's task (events and
  // task lists are matched by it): the component's name, or its standby
  // container's after a restore from the standby (standby.h). "" = the
  // component's name (fake runtimes).
  virtual std::string task_id() const { return {}; }
  // restore: standby: what the standby is ("" = none; standby.h's
  // StandbyState::describe). changed() (set_changed) is called on the
  // strand whenever it changes, so the actor reports it.
  virtual std::string standby() const { return {}; }
  virtual void set_changed(std::function<void()> changed) { (void)changed; }
  // The actor that owns these operations, kept alive by background work
  // (a standby being built) while it runs.
  virtual void set_keepalive(std::function<std::shared_ptr<void>()> keepalive) { (void)keepalive; }
  // Asks the operations' own background work to end (a detach); quiesce()
  // also waits until none of it can touch the runtime any more.
  virtual void cancel_background() {}
  virtual asio::awaitable<void> quiesce() { co_return; }

  // After an events-stream gap: the task's real state. Only a definitive
  // answer may end a task; `still_wanted` returning false (the reconcile
  // was superseded) ends the asking early with nullopt, as does a run of
  // answers that never became definitive (the task is then left running).
  virtual asio::awaitable<std::optional<ReconcileResult>> reconcile(
      uint32_t pid, std::function<bool()> still_wanted) = 0;
};

// The one events subscription of a supervisor (containerd's events stream
// in herdd; see containerd/events.h for the on_live/gap contract).
class EventSubscription {
 public:
  virtual ~EventSubscription() = default;
  virtual void start() = 0;
  virtual void stop() = 0;  // no handler runs after it returns
  virtual bool live() const = 0;
};

// One task as a task list shows it (the periodic reconcile).
struct ListedTask {
  bool running = false;  // its process runs
  uint32_t pid = 0;
};
using TaskList = std::map<std::string, ListedTask>;  // by container id

class Runtime {
 public:
  virtual ~Runtime() = default;
  // Every task of the namespace, one call with a deadline; nullopt when the
  // runtime did not answer (nothing is concluded from that). Runs on, and
  // resumes on, `executor`. The default lists nothing (nullopt).
  virtual asio::awaitable<std::optional<TaskList>> list_tasks(asio::any_io_executor executor) {
    (void)executor;
    co_return std::nullopt;
  }
  // The operations of one actor, for this configuration of the component.
  virtual std::unique_ptr<ContainerOps> ops(const config::Component& component,
                                            asio::any_io_executor strand) = 0;
  // Handlers run on `executor`; start() and stop() are called there too.
  virtual std::shared_ptr<EventSubscription> subscribe(
      asio::any_io_executor executor, containerd::EventStream::Handlers handlers) = 0;
};

}  // namespace herd::supervise
