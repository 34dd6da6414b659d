// herd::supervise::ContainerdOps: the ContainerOps of ContainerdRuntime
// (contract in containerd_ops.h), internal to lib/supervise. Its members
// are defined in containerd_ops.cpp (prepare, start, stop, ...),
// containerd_exec.cpp (the exec probe) and standby.cpp (restore:
// "standby", see standby.h).
//
// Strand: an instance belongs to one actor and is used on its strand only;
// the standby's background build is a coroutine on that strand too.
#pragma once

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "containerd/images.h"
#include "supervise/containerd_ops.h"
#include "supervise/shim_watch.h"
#include "supervise/standby.h"

namespace herd::supervise {

// The time left until `deadline`, at least `floor`.
inline std::chrono::milliseconds until(TimePoint deadline, std::chrono::milliseconds floor) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return std::max(left, floor);
}

// runc's error for a failed create, with what herd knows of the cause.
Status explain_create_failure(Status status, const config::Component& c);

class ContainerdOps final : public ContainerOps {
 public:
  ContainerdOps(containerd::Client& client, const ContainerdRuntime::Settings& settings,
                config::Component config, asio::any_io_executor executor);
  ~ContainerdOps() override;

  asio::awaitable<Result<Prepared>> prepare(std::shared_ptr<Canceller> cancel) override;
  asio::awaitable<Result<uint32_t>> start_task(std::shared_ptr<Canceller> cancel) override;
  asio::awaitable<Status> stop(StopControl control) override;
  asio::awaitable<Status> kill() override;
  asio::awaitable<Status> terminate(std::shared_ptr<Canceller> cancel) override;
  asio::awaitable<ExecOutcome> exec(std::vector<std::string> command,
                                    std::chrono::milliseconds timeout,
                                    std::shared_ptr<Canceller> cancel) override;
  asio::awaitable<std::optional<ReconcileResult>> reconcile(
      uint32_t pid, std::function<bool()> still_wanted) override;
  bool runtime_lost(uint32_t pid) override { return shim_.lost(pid); }
  std::string task_id() const override { return active_; }
  std::string standby() const override { return standby_.describe(); }
  void set_changed(std::function<void()> fn) override { changed_ = std::move(fn); }
  void set_keepalive(std::function<std::shared_ptr<void>()> fn) override {
    keepalive_ = std::move(fn);
  }
  void cancel_background() override;
  asio::awaitable<void> quiesce() override;

 private:
  using CallOptions = containerd::CallOptions;

  asio::awaitable<Status> ensure_image(const std::shared_ptr<Canceller>& cancel);
  asio::awaitable<Status> pull(const std::shared_ptr<Canceller>& cancel);
  asio::awaitable<Status> ensure_container(const std::string& id, const std::string& spec_json,
                                           const std::string& hash,
                                           const std::shared_ptr<Canceller>& cancel, Prepared* out);
  asio::awaitable<Status> create_container(const std::string& id, const std::string& spec_json,
                                           const std::string& hash,
                                           const std::shared_ptr<Canceller>& cancel);
  asio::awaitable<void> remove_container(const std::string& id);
  // Tasks.Create in container `id` (its snapshot's mounts, the component's
  // output, the shim group's turn); the task is not started.
  asio::awaitable<Result<uint32_t>> create_task(const std::string& id,
                                                const std::shared_ptr<Canceller>& cancel);
  // The OCI spec for container `id` (NAME or NAME.B: only the cgroup path
  // differs; the hostname is the component's).
  Result<std::string> build_spec(const std::string& id);
  Status prepare_mounts();
  std::string log_path() const {
    return (std::filesystem::path(s_.data_path) / ".herd-logs" / (config_.name + ".log")).string();
  }
  CallOptions call(std::shared_ptr<Canceller> c = nullptr) const {
    CallOptions o;
    o.timeout = s_.call_timeout;
    o.canceller = std::move(c);
    return o;
  }

  // ---- restore: standby (standby.cpp)
  bool standby_mode() const { return config_.restore == config::Restore::kStandby; }
  // The container that is not active_.
  std::string other_id() const {
    return active_ == config_.name ? standby_id(config_.name) : config_.name;
  }
  // In prepare, after the active container is settled: keep the other
  // container's waiting task as the standby, or remove the other container
  // (restore: in_place), or leave it for the build.
  asio::awaitable<Status> settle_other(bool adopted, const std::shared_ptr<Canceller>& cancel);
  // The active container for prepare: NAME, unless NAME.B's task runs.
  asio::awaitable<Result<std::string>> find_active(const std::shared_ptr<Canceller>& cancel);
  // start_task from the standby: its pid, or nullopt (then in place).
  asio::awaitable<std::optional<uint32_t>> start_standby(const std::shared_ptr<Canceller>& cancel);
  // The background build of the standby in other_id(), retried with
  // kStandbyBuild until it is ready or cancelled.
  void spawn_build();
  asio::awaitable<void> build_loop(std::string id, std::shared_ptr<Canceller> cancel,
                                   std::weak_ptr<int> life, std::shared_ptr<void> keepalive);
  asio::awaitable<Status> build_once(const std::string& id,
                                     const std::shared_ptr<Canceller>& cancel);
  // Removes container `id` with its task and snapshot (a stop, of both
  // containers; a leftover NAME.B under restore: in_place).
  asio::awaitable<Status> remove_all(const std::string& id);
  void set_standby(StandbyState s);

  containerd::Client& client_;
  ContainerdRuntime::Settings s_;  // a copy: an actor may outlive the supervisor
  config::Component config_;
  asio::any_io_executor executor_;
  std::optional<containerd::ResolvedImage> image_;  // set by prepare
  // The image record's name: the reference normalised as docker does.
  std::string image_name_;
  bool remote_checked_ = false;  // `pull: always` asked the registry once
  // The current task's shim (read from /proc when the task started or was
  // adopted), for runtime_lost().
  ShimWatch shim_;
  // Each container's snapshot mounts, asked once per prepare (by id).
  std::map<std::string, std::vector<containerd::Mount>> mounts_;
  // The container whose task is the component's: NAME, or NAME.B after a
  // restore from the standby.
  std::string active_;
  std::string hash_;  // the spec hash of the last prepare
  // restore: standby.
  StandbyState standby_;
  bool other_seen_ = false;  // prepare found the other container, or a build made it
  bool build_running_ = false;
  std::shared_ptr<Canceller> build_cancel_;
  std::unique_ptr<asio::steady_timer> build_done_;        // cancelled when a build ends
  std::shared_ptr<int> life_ = std::make_shared<int>(0);  // a build's weak token
  std::function<void()> changed_;
  std::function<std::shared_ptr<void>()> keepalive_;
};

}  // namespace herd::supervise
