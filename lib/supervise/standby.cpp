// restore: "standby" (standby.h): the ContainerdOps members that keep the
// component's second container and its waiting task.
#include <spdlog/spdlog.h>

#include "common/exceptions.h"
#include "supervise/containerd_ops_impl.h"

namespace herd::supervise {

void ContainerdOps::set_standby(StandbyState s) {
  standby_ = std::move(s);
  if (changed_) changed_();
}

asio::awaitable<Result<std::string>> ContainerdOps::find_active(
    const std::shared_ptr<Canceller>& cancel) {
  const std::string b = standby_id(config_.name);
  auto o = call(cancel);
  auto ctr = co_await client_.containers_get(b, o);
  other_seen_ = ctr.ok();
  if (!ctr.ok()) {
    if (ctr.status().is_not_found()) co_return config_.name;
    co_return ctr.status();
  }
  // NAME.B is the component's when its task runs, whatever its spec: a
  // changed spec then gets its stop signal and stop_grace from
  // ensure_container, as NAME's would (never a new task beside the old).
  auto task = co_await client_.tasks_get(b, o);
  if (!task.ok() && !task.status().is_not_found()) co_return task.status();  // not sure: retry
  if (!task.ok() || task->status() != containerd::ProcessStatus::RUNNING) co_return config_.name;
  // Both running (a standby start cut short): NAME's is the one kept; the
  // build ends NAME.B's.
  auto a = co_await client_.tasks_get(config_.name, o);
  if (!a.ok() && !a.status().is_not_found()) co_return a.status();
  if (a.ok() && a->status() == containerd::ProcessStatus::RUNNING) co_return config_.name;
  co_return b;
}

asio::awaitable<Status> ContainerdOps::settle_other(bool adopted,
                                                    const std::shared_ptr<Canceller>& cancel) {
  const std::string other = other_id();
  auto o = call(cancel);
  if (!standby_mode()) {
    // restore: in_place. A second container left by an earlier standby
    // config (or by a restore from it before herdd restarted) goes.
    if (!other_seen_ && other != config_.name) co_return Status::Ok();
    Status s = co_await remove_all(other);
    other_seen_ = !s.ok();  // a stop tries again
    co_return s;
  }
  // A task created and waiting, of this very spec: keep it as the standby.
  auto ctr = co_await client_.containers_get(other, o);
  if (ctr.ok()) {
    other_seen_ = true;
    auto it = ctr->labels().find(kLabelSpecHash);
    if (it != ctr->labels().end() && it->second == hash_) {
      auto task = co_await client_.tasks_get(other, o);
      if (task.ok() && task->status() == containerd::ProcessStatus::CREATED && task->pid() != 0) {
        StandbyState ready;
        ready.kind = StandbyState::Kind::kReady;
        ready.pid = task->pid();
        set_standby(std::move(ready));
        co_return Status::Ok();
      }
    }
  } else if (!ctr.status().is_not_found()) {
    co_return ctr.status();
  }
  // Anything else is rebuilt in the background: at once when the task was
  // adopted (no start follows), else after the start (start_task), so the
  // two creates do not compete.
  set_standby({});
  if (adopted) spawn_build();
  co_return Status::Ok();
}

asio::awaitable<std::optional<uint32_t>> ContainerdOps::start_standby(
    const std::shared_ptr<Canceller>& cancel) {
  const std::string id = other_id();
  auto started = co_await client_.tasks_start(id, call(cancel));
  if (!started.ok()) {
    // A deadline or a cancel does not say the start did not happen: the
    // task goes, so that it cannot run beside the in-place restart (or
    // past a stop). Its own short deadline; not the operation's cancel.
    (void)co_await client_.tasks_kill_and_delete(id, call());
    if (cancel && cancel->cancelled()) co_return std::nullopt;
    spdlog::warn("component {}: standby {}: start failed: {}; restarting in place", config_.name,
                 id, started.status().to_string());
    StandbyState failed;
    failed.kind = StandbyState::Kind::kFailed;
    failed.failures = standby_.failures + 1;
    failed.error = "start: " + started.status().to_string();
    set_standby(std::move(failed));
    co_return std::nullopt;  // start_task restarts in place, then rebuilds it
  }
  active_ = id;
  shim_.watch(*started);
  set_standby({});
  spawn_build();  // the exited container becomes the next standby
  co_return *started;
}

void ContainerdOps::spawn_build() {
  if (!standby_mode() || build_running_) return;
  build_running_ = true;
  build_cancel_ = std::make_shared<Canceller>();
  if (standby_.kind != StandbyState::Kind::kFailed) {
    StandbyState building;
    building.kind = StandbyState::Kind::kBuilding;
    set_standby(std::move(building));
  }
  asio::co_spawn(executor_,
                 build_loop(other_id(), build_cancel_, life_, keepalive_ ? keepalive_() : nullptr),
                 asio::detached);
}

asio::awaitable<void> ContainerdOps::build_loop(std::string id, std::shared_ptr<Canceller> cancel,
                                                std::weak_ptr<int> life,
                                                std::shared_ptr<void> keepalive) {
  // `keepalive` (the owning actor) keeps this object alive while the build
  // runs; `life` is a second guard for owners that give none (the strand
  // serialises the destructor and this coroutine). The flag is cleared
  // however the loop ends, or every later quiesce (and stop) would wait.
  (void)keepalive;
  struct Ended {
    ContainerdOps* self;
    std::weak_ptr<int> life;
    ~Ended() {
      if (life.expired()) return;
      self->build_running_ = false;
      if (self->build_done_) self->build_done_->cancel();
    }
  } ended{this, life};
  Backoff backoff(kStandbyBuild);
  for (;;) {
    Status s;
    try {
      s = co_await build_once(id, cancel);
    } catch (...) {
      s = Status::Internal("standby build threw: " + describe_exception(std::current_exception()));
    }
    if (life.expired()) co_return;
    if (s.ok() || cancel->cancelled()) break;
    spdlog::warn("component {}: standby {}: {}", config_.name, id, s.to_string());
    StandbyState failed;
    failed.kind = StandbyState::Kind::kFailed;
    failed.failures = standby_.failures + 1;
    failed.error = s.to_string();
    set_standby(std::move(failed));
    asio::steady_timer wait(executor_, backoff.next());
    const uint64_t hook = cancel->on_cancel([&wait] { wait.cancel(); });
    boost::system::error_code ec;
    co_await wait.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    cancel->remove(hook);
    if (life.expired()) co_return;
    if (cancel->cancelled()) break;
  }
}

asio::awaitable<Status> ContainerdOps::build_once(const std::string& id,
                                                  const std::shared_ptr<Canceller>& cancel) {
  auto o = call(cancel);
  // Whatever task the container has goes: the exited run of a restore, a
  // standby of an older spec, a task whose start failed.
  auto gone = co_await client_.tasks_kill_and_delete(id, o);
  if (!gone.ok() && !gone.status().is_not_found()) co_return gone.status();
  // A fresh root file system: the container and its snapshot (the exited
  // run's writable layer) go, and ensure_container makes them anew.
  Status d = co_await client_.containers_delete(id, o);
  if (!d.ok() && !d.is_not_found()) co_return d;
  Status r = co_await client_.snapshots_remove(s_.snapshotter, id, o);
  if (!r.ok() && !r.is_not_found()) co_return r;
  auto spec = build_spec(id);
  if (!spec.ok()) co_return spec.status();
  mounts_.erase(id);  // ensure_container may re-make the snapshot
  Prepared ignored;
  Status s = co_await ensure_container(id, *spec, hash_, cancel, &ignored);
  if (!s.ok()) co_return s;
  other_seen_ = true;
  auto pid = co_await create_task(id, cancel);
  if (!pid.ok()) co_return pid.status();
  // Cancelled after the create went through: the stop (or prepare) that
  // cancelled it removes this task itself once the build has ended.
  StandbyState ready;
  ready.kind = StandbyState::Kind::kReady;
  ready.pid = *pid;
  set_standby(std::move(ready));
  co_return Status::Ok();
}

void ContainerdOps::cancel_background() {
  if (build_cancel_) build_cancel_->cancel();
}

asio::awaitable<void> ContainerdOps::quiesce() {
  cancel_background();
  if (!build_done_) build_done_ = std::make_unique<asio::steady_timer>(executor_);
  while (build_running_) {
    // Several may wait (a stop, a detach): re-arming would cancel the
    // others' waits, so the expiry is set only when it is not set yet.
    if (build_done_->expiry() != asio::steady_timer::time_point::max())
      build_done_->expires_at(asio::steady_timer::time_point::max());
    boost::system::error_code ec;
    co_await build_done_->async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

asio::awaitable<Status> ContainerdOps::remove_all(const std::string& id) {
  auto gone = co_await client_.tasks_kill_and_delete(id, call());
  Status result;
  if (!gone.ok() && !gone.status().is_not_found()) result = gone.status();
  co_await remove_container(id);
  auto left = co_await client_.containers_get(id, call());
  if (left.ok()) result = Status::Unavailable("container " + id + " could not be deleted");
  mounts_.erase(id);
  co_return result;
}

}  // namespace herd::supervise
