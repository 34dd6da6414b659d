// The containerd implementation of ContainerOps and Runtime (contract in
// containerd_ops.h): the calls the component actor used to make itself.
#include "supervise/containerd_ops_impl.h"

#include <linux/capability.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include <spdlog/spdlog.h>

#include "common/backoff.h"
#include "containerd/images.h"
#include "containerd/oci_parse.h"
#include "containerd/oci_spec.h"
#include "registry/puller.h"
#include "supervise/shim_watch.h"
#include "systemd/container_logger.h"

namespace herd::supervise {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using containerd::CallOptions;

std::string spec_hash(const std::string& spec_json, const std::string& manifest_digest,
                      const std::string& snapshotter) {
  return containerd::sha256_digest(spec_json + "\n" + manifest_digest + "\n" + snapshotter + "\n" +
                                   containerd::kRuntimeRuncV2);
}

// runc's error for an oom_score_adj it may not set says nothing of it
// ("can't get final child's PID from pipe: EOF"): lowering the score needs
// CAP_SYS_RESOURCE. When herdd's own bounding set lacks it (a node that
// itself runs in a container), containerd's runtime almost surely does too:
// say so next to runc's message.
Status explain_create_failure(Status status, const config::Component& c) {
  if (!c.oom_score_adj || *c.oom_score_adj >= 0) return status;
  if (::prctl(PR_CAPBSET_READ, CAP_SYS_RESOURCE, 0, 0, 0) != 0) return status;
  return Status(status.code(),
                status.message() + " (oom_score_adj " + std::to_string(*c.oom_score_adj) +
                    ": lowering the OOM score needs CAP_SYS_RESOURCE, which this machine's "
                    "processes lack; remove oom_score_adj or use a value >= 0)");
}

namespace {

// "busybox" -> "docker.io/library/busybox:latest"; the config checked it
// parses, so the text as written is only a fallback.
std::string canonical_image(const std::string& image) {
  auto n = containerd::normalize_docker_ref(image);
  return n.ok() ? *n : image;
}

}  // namespace

ContainerdOps::ContainerdOps(containerd::Client& client,
                             const ContainerdRuntime::Settings& settings, config::Component config,
                             asio::any_io_executor executor)
    : client_(client),
      s_(settings),
      config_(std::move(config)),
      executor_(std::move(executor)),
      image_name_(canonical_image(config_.image)),
      active_(config_.name) {}

ContainerdOps::~ContainerdOps() {
  // A standby build still running ends at its next step (life_ is gone).
  if (build_cancel_) build_cancel_->cancel();
}

// ------------------------------------------------------------ prepare

Status ContainerdOps::prepare_mounts() {
  if (config_.init) {
    std::error_code ec;
    if (!fs::exists(config::kInitBinary, ec))
      return Status::FailedPrecondition(std::string("init: ") + config::kInitBinary +
                                        " is missing (install Debian's package " +
                                        config::kInitPackage + ")");
  }
  for (const auto& m : config_.mounts) {
    if (m.kind == config::Mount::Kind::kBind) {
      std::error_code ec;
      if (!fs::exists(m.bind, ec))
        return Status::FailedPrecondition("bind mount source " + m.bind + " does not exist");
      continue;
    }
    fs::path dir = fs::path(s_.data_path) / config_.name / m.data;
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return Status::Unavailable("data directory " + dir.string() + ": " + ec.message());
    if (::chmod(dir.c_str(), m.mode) != 0)
      return Status::Unavailable("chmod " + dir.string() + ": " + std::strerror(errno));
    if (m.uid || m.gid) {
      if (::chown(dir.c_str(), m.uid ? *m.uid : static_cast<uid_t>(-1),
                  m.gid ? *m.gid : static_cast<gid_t>(-1)) != 0)
        return Status::Unavailable("chown " + dir.string() + ": " + std::strerror(errno));
    }
  }
  return Status::Ok();
}

Result<std::string> ContainerdOps::build_spec(const std::string& id) {
  auto image_config = containerd::parse_image_config(image_->config_json);
  if (!image_config.ok()) return image_config.status();
  containerd::SpecOptions so;
  so.container_id = id;  // the cgroup path: NAME.B has its own
  so.ns = client_.ns();
  so.args = config_.args;
  for (const auto& [k, v] : config_.env) so.env.emplace_back(k, v);
  for (const auto& m : config_.mounts) {
    containerd::BindMount b;
    b.target = m.target;
    if (m.kind == config::Mount::Kind::kBind) {
      b.source = m.bind;
      b.readonly = m.readonly;
    } else {
      b.source = (fs::path(s_.data_path) / config_.name / m.data).string();
    }
    so.mounts.push_back(std::move(b));
  }
  so.host_network = config_.network == config::Network::kHost;
  so.hostname = config_.hostname;
  // Without a network of its own the hostname is the host's; else it is
  // the component's, whichever of its containers runs.
  if (!so.hostname && !so.host_network) so.hostname = config_.name;
  if (config_.user) {
    so.user = std::to_string(config_.user->uid) +
              (config_.user->gid ? ":" + std::to_string(*config_.user->gid) : "");
  }
  so.working_dir = config_.workdir;
  for (const auto& r : config_.rlimits) so.rlimits.push_back({r.type, r.soft, r.hard});
  so.resources.memory = config_.resources.memory;
  so.resources.cpus = config_.resources.cpus;
  so.resources.pids = config_.resources.pids;
  if (config_.init) so.init_path = std::string(config::kInitBinary);
  so.cap_drop = config_.capabilities.drop;
  so.cap_add = config_.capabilities.add;
  so.read_only_rootfs = config_.read_only_rootfs;
  for (const auto& t : config_.tmpfs) so.tmpfs.push_back({t.target, t.size, t.mode});
  so.oom_score_adj = config_.oom_score_adj;
  // NAME.B joins NAME's shim: without a group, NAME's shim is the one of
  // id NAME, which is what the group NAME names (runc's shim manager
  // reuses a running shim of the group), so a standby costs no shim.
  so.shim_group = config_.shim_group   ? config_.shim_group
                  : id != config_.name ? std::optional<std::string>(config_.name)
                                       : std::nullopt;
  auto spec = containerd::build_runtime_spec(*image_config, so);
  if (!spec.ok()) return spec.status();
  return spec->dump();
}

asio::awaitable<Status> ContainerdOps::ensure_image(const std::shared_ptr<Canceller>& cancel) {
  auto& c = client_;
  auto o = call(cancel);
  auto present = co_await c.images_get(image_name_, o);
  if (!present.ok() && !present.status().is_not_found()) co_return present.status();
  const bool always = config_.pull == config::PullPolicy::kAlways && s_.puller;
  if (present.ok() && always && !remote_checked_) {
    // `pull: always`, once per actor (herdd's start, a reload that made it):
    // an unchanged digest fetches nothing; an unreachable registry keeps
    // the local image. Restarts never wait for the network.
    remote_checked_ = true;
    auto remote = co_await s_.puller->resolve(config_.image, cancel);
    if (!remote.ok()) {
      if (remote.status().code() == Code::kCancelled) co_return remote.status();
      spdlog::warn("component {}: pull: always: {}; running the local image", config_.name,
                   remote.status().message());
    } else if (remote->descriptor.digest != present->target().digest()) {
      auto pulled = co_await pull(cancel);
      if (!pulled.ok()) {
        if (pulled.code() == Code::kCancelled) co_return pulled;
        spdlog::warn("component {}: pull: always: {}; running the local image", config_.name,
                     pulled.message());
      }
    }
  }
  if (!present.ok()) {
    if (config_.image_archive) {
      auto imported = co_await containerd::import_archive(c, *s_.pool, *config_.image_archive, o);
      if (!imported.ok()) co_return imported.status();
    } else if (config_.pull == config::PullPolicy::kNever) {
      co_return Status::NotFound("image " + image_name_ +
                                 " is not present (pull: never) and no image_archive is "
                                 "configured");
    } else if (!s_.puller) {
      co_return Status::NotFound("image " + image_name_ +
                                 " is not present and no image_archive is configured");
    } else {
      remote_checked_ = true;
      Status pulled = co_await pull(cancel);
      if (!pulled.ok()) co_return pulled;
    }
  }
  auto unpacked = co_await containerd::unpack_image(c, image_name_, s_.snapshotter, o);
  if (!unpacked.ok()) co_return unpacked.status();
  image_ = std::move(*unpacked);
  co_return Status::Ok();
}

asio::awaitable<Status> ContainerdOps::pull(const std::shared_ptr<Canceller>& cancel) {
  registry::PullRequest req;
  req.cancel = cancel;
  auto pulled = co_await s_.puller->pull(config_.image, std::move(req));
  if (!pulled.ok()) co_return pulled.status().with_context("pull " + image_name_);
  co_return Status::Ok();
}

asio::awaitable<void> ContainerdOps::remove_container(const std::string& id) {
  auto& c = client_;
  auto o = call();
  Backoff backoff(retry::kContainerDelete);
  for (int attempt = 0; attempt < retry::kContainerDeleteAttempts; ++attempt) {
    Status s = co_await c.containers_delete(id, o);
    if (s.ok() || s.is_not_found()) break;
    asio::steady_timer t(executor_, backoff.next());
    co_await t.async_wait(asio::use_awaitable);
  }
  Status r = co_await c.snapshots_remove(s_.snapshotter, id, o);
  (void)r;  // NotFound is the common case
}

asio::awaitable<Status> ContainerdOps::create_container(const std::string& id,
                                                        const std::string& spec_json,
                                                        const std::string& hash,
                                                        const std::shared_ptr<Canceller>& cancel) {
  auto& c = client_;
  auto o = call(cancel);
  // Snapshot and container are made under a lease that expires by itself:
  // if herdd dies between the two, containerd collects the snapshot.
  auto lease = co_await c.leases_create("", std::chrono::hours(1), {}, o);
  if (!lease.ok()) co_return lease.status();
  CallOptions lo = o;
  lo.lease = lease->id();
  Status result;
  auto mounts = co_await c.snapshots_prepare(s_.snapshotter, id, image_->top_chain_id(), {}, lo);
  if (!mounts.ok()) {
    result = mounts.status();
  } else {
    containerd::Container ctr;
    ctr.set_id(id);
    ctr.set_image(image_name_);
    ctr.mutable_runtime()->set_name(containerd::kRuntimeRuncV2);
    ctr.mutable_spec()->set_type_url(containerd::kSpecTypeUrl);
    ctr.mutable_spec()->set_value(spec_json);
    ctr.set_snapshotter(s_.snapshotter);
    ctr.set_snapshot_key(id);
    auto& labels = *ctr.mutable_labels();
    for (const auto& [k, v] : config_.labels) labels[k] = v;
    labels[kLabelSpecHash] = hash;
    labels[kLabelComponent] = config_.name;
    labels[kLabelSlot] = id == config_.name ? "a" : "b";
    auto created = co_await c.containers_create(std::move(ctr), lo);
    if (!created.ok()) {
      result = created.status();
      (void)co_await c.snapshots_remove(s_.snapshotter, id, call());
    }
  }
  (void)co_await c.leases_delete(lease->id(), /*sync=*/false, call());
  co_return result;
}

asio::awaitable<Status> ContainerdOps::ensure_container(const std::string& id,
                                                        const std::string& spec_json,
                                                        const std::string& hash,
                                                        const std::shared_ptr<Canceller>& cancel,
                                                        Prepared* out) {
  auto& c = client_;
  auto o = call(cancel);
  auto existing = co_await c.containers_get(id, o);
  if (!existing.ok() && !existing.status().is_not_found()) co_return existing.status();
  if (existing.ok()) {
    auto it = existing->labels().find(kLabelSpecHash);
    const bool same = it != existing->labels().end() && it->second == hash &&
                      existing->snapshot_key() == id && existing->snapshotter() == s_.snapshotter;
    auto task = co_await c.tasks_get(id, o);
    if (same && task.ok() && task->status() == containerd::ProcessStatus::RUNNING) {
      out->adopted = true;
      out->pid = task->pid();
      shim_.watch(out->pid);
      co_return Status::Ok();
    }
    // A changed spec (a reload, or a config changed while herdd was
    // down) with the old task still running: it gets its stop signal and
    // stop_grace to exit, as in a stop, before it is killed.
    if (!same && task.ok() && task->status() == containerd::ProcessStatus::RUNNING) {
      Status k = co_await c.tasks_kill(id, static_cast<uint32_t>(config_.stop_signal), false, o);
      if (k.ok()) {
        CallOptions w = call(cancel);
        w.timeout = std::max<std::chrono::milliseconds>(config_.stop_grace, 1ms);
        (void)co_await c.tasks_wait(id, w);
      }
    }
    // A stopped task, a record whose process is gone, or a changed spec:
    // the old task goes (killing whatever still runs).
    if (!task.ok() && !task.status().is_not_found()) {
      auto gone = co_await c.tasks_kill_and_delete(id, o);
      if (!gone.ok() && !gone.status().is_not_found()) co_return gone.status();
    } else if (task.ok()) {
      auto gone = co_await c.tasks_kill_and_delete(id, o);
      if (!gone.ok() && !gone.status().is_not_found()) co_return gone.status();
    }
    if (same) {
      auto snap = co_await c.snapshots_stat(s_.snapshotter, id, o);
      if (snap.ok()) co_return Status::Ok();  // keep the container
      if (!snap.status().is_not_found()) co_return snap.status();
    }
    Status d = co_await c.containers_delete(id, o);
    if (!d.ok() && !d.is_not_found()) co_return d;
  }
  // No container (any more): a snapshot left without one would block the
  // create ("already exists"), so it goes first.
  Status r = co_await c.snapshots_remove(s_.snapshotter, id, o);
  if (!r.ok() && !r.is_not_found()) co_return r;
  co_return co_await create_container(id, spec_json, hash, cancel);
}

asio::awaitable<Result<ContainerOps::Prepared>> ContainerdOps::prepare(
    std::shared_ptr<Canceller> cancel) {
  // No standby build may race the prepare (it works on the other container).
  co_await quiesce();
  mounts_.clear();  // the snapshots may be re-made below
  Status s = prepare_mounts();
  if (s.ok()) s = co_await ensure_image(cancel);
  if (!s.ok()) co_return s;
  // The hash is of NAME's spec; NAME.B's differs only in its cgroup path
  // and carries the same label.
  auto spec = build_spec(config_.name);
  if (!spec.ok()) co_return spec.status();
  const std::string hash = spec_hash(*spec, image_->manifest.digest(), s_.snapshotter);
  hash_ = hash;
  auto active = co_await find_active(cancel);
  if (!active.ok()) co_return active.status();
  active_ = *active;
  if (active_ != config_.name) {
    spec = build_spec(active_);
    if (!spec.ok()) co_return spec.status();
  }
  Prepared out;
  s = co_await ensure_container(active_, *spec, hash, cancel, &out);
  if (!s.ok()) co_return s;
  s = co_await settle_other(out.adopted, cancel);
  if (!s.ok()) co_return s;
  co_return out;
}

// ------------------------------------------------------------ start

asio::awaitable<Result<uint32_t>> ContainerdOps::start_task(std::shared_ptr<Canceller> cancel) {
  if (standby_.kind == StandbyState::Kind::kReady) {
    if (auto pid = co_await start_standby(cancel)) co_return *pid;
  }
  auto& c = client_;
  auto o = call(cancel);
  // The old task has nearly always exited (its exit is why herd restarts
  // it): delete it at once, one call. Only a refused delete (the task
  // still runs: a readiness kill racing, a stop's leftovers) takes the
  // kill-wait-delete path, with its Tasks.Get.
  auto old = co_await c.tasks_delete(active_, o);
  if (!old.ok() && !old.status().is_not_found()) {
    auto killed = co_await c.tasks_kill_and_delete(active_, o);
    if (!killed.ok() && !killed.status().is_not_found()) co_return killed.status();
  }
  auto created = co_await create_task(active_, cancel);
  if (!created.ok()) co_return created.status();
  auto started = co_await c.tasks_start(active_, o);
  if (!started.ok()) {
    (void)co_await c.tasks_kill_and_delete(active_, call());
    co_return started.status();
  }
  shim_.watch(*started);
  // restore: standby: the next restart's task, made now that this start is done.
  if (standby_.kind != StandbyState::Kind::kReady) spawn_build();
  co_return *started;
}

asio::awaitable<Result<uint32_t>> ContainerdOps::create_task(
    const std::string& id, const std::shared_ptr<Canceller>& cancel) {
  auto& c = client_;
  auto o = call(cancel);
  // The snapshot's mounts: asked once per prepare (a failed create re-asks).
  auto known = mounts_.find(id);
  if (known == mounts_.end()) {
    auto mounts = co_await c.snapshots_mounts(s_.snapshotter, id, o);
    if (!mounts.ok()) co_return mounts.status();
    known = mounts_.emplace(id, std::move(*mounts)).first;
  }
  std::error_code ec;
  fs::create_directories(fs::path(log_path()).parent_path(), ec);
  containerd::CreateTaskRequest req;
  req.set_container_id(id);
  for (const auto& m : known->second) *req.add_rootfs() = m;
  std::string output = "file://" + log_path();
  if (!s_.output_logger.empty()) {
    output = herd::systemd::container_logger_uri(s_.output_logger, config_.name);
  } else if (!s_.file_logger.empty()) {
    output = herd::systemd::container_file_logger_uri(s_.file_logger, config_.name, log_path(),
                                                      s_.max_file_bytes, s_.max_files);
  }
  req.set_stdout(output);
  req.set_stderr(output);
  // A shim group's shim creates one task at a time: wait for the group's
  // turn here, so the create's deadline counts only its own work.
  AsyncGate::Pass turn;
  // A standby's NAME.B shares NAME's shim (build_spec): their creates queue too.
  const std::optional<std::string> group = config_.shim_group ? config_.shim_group
                                           : standby_mode()
                                               ? std::optional<std::string>(config_.name)
                                               : std::nullopt;
  if (group && s_.shim_gates) {
    std::shared_ptr<AsyncGate> gate = s_.shim_gates->gate(*group);
    std::shared_ptr<AsyncGate::Entry> entry = AsyncGate::Entry::make(executor_);
    const uint64_t hook = cancel ? cancel->on_cancel([entry] { entry->cancel(); }) : 0;
    const auto deadline = std::chrono::steady_clock::now() + kShimGroupWait;
    turn = co_await gate->enter(deadline, entry);
    if (cancel) cancel->remove(hook);
    if (!turn) {
      if (cancel && cancel->cancelled()) co_return Status::Cancelled("start cancelled");
      co_return Status::DeadlineExceeded(
          "tasks.create " + config_.name + ": waited " + std::to_string(kShimGroupWait.count()) +
          " s for shim group " + *group + " (its shim creates one task at a time)");
    }
  }
  // Tasks.Create is never cancelled in flight (client.h): do not begin one
  // for a start that was cancelled meanwhile (say, during the old task's
  // delete, which is not cancelled either).
  if (cancel && cancel->cancelled()) co_return Status::Cancelled("start cancelled");
  auto pid = co_await c.tasks_create(std::move(req), o);
  turn = AsyncGate::Pass();  // the next create of the group may go
  if (!pid.ok()) {
    mounts_.erase(id);
    co_return explain_create_failure(pid.status(), config_);
  }
  co_return *pid;
}

// ------------------------------------------------------------ stop

asio::awaitable<Status> ContainerdOps::stop(StopControl control) {
  // No standby build may run on (a stop cancels it first; the standby goes
  // below).
  co_await quiesce();
  auto& c = client_;
  auto deadline = [&control] { return control.deadline ? control.deadline() : Clock::now(); };

  // Waits for the task to exit until `limit` (or a shortened stop
  // deadline); true when it exited.
  auto wait_exit = [&](TimePoint limit) -> asio::awaitable<bool> {
    for (;;) {
      TimePoint until_tp = std::min(limit, deadline());
      if (Clock::now() >= until_tp) co_return false;
      CallOptions o = call(control.arm_wait ? control.arm_wait() : nullptr);
      o.timeout = until(until_tp, 1ms);
      auto w = co_await c.tasks_wait(active_, o);
      if (w.ok() || w.status().is_not_found()) co_return true;
      if (w.status().code() == Code::kCancelled) continue;  // deadline shortened
      co_return false;  // deadline exceeded, or an error: SIGKILL next
    }
  };

  auto task = co_await c.tasks_get(active_, call());
  if (task.ok() && task->status() == containerd::ProcessStatus::RUNNING) {
    Status k =
        co_await c.tasks_kill(active_, static_cast<uint32_t>(config_.stop_signal), false, call());
    bool exited = k.is_not_found();
    if (!exited) exited = co_await wait_exit(Clock::now() + config_.stop_grace);
    if (!exited) {
      (void)co_await c.tasks_kill(active_, SIGKILL, /*all=*/true, call());
      // SIGKILL cannot be refused; give the exit a moment even past the deadline.
      CallOptions o = call();
      o.timeout = 5s;
      (void)co_await c.tasks_wait(active_, o);
    }
  }
  Status result = co_await remove_all(active_);
  // restore: standby: the waiting task never ran the program; it goes
  // with the component (after any build of it has ended).
  if (standby_mode() || other_seen_) {
    Status other = co_await remove_all(other_id());
    if (result.ok()) result = other;
    other_seen_ = false;
    set_standby({});
  }
  co_return result;
}

asio::awaitable<Status> ContainerdOps::kill() {
  co_return co_await client_.tasks_kill(active_, SIGKILL, /*all=*/true, call());
}

asio::awaitable<Status> ContainerdOps::terminate(std::shared_ptr<Canceller> cancel) {
  auto& c = client_;
  Status k = co_await c.tasks_kill(active_, static_cast<uint32_t>(config_.stop_signal), false,
                                   call(cancel));
  if (k.is_not_found() || cancel->cancelled()) co_return k;
  CallOptions o = call(cancel);
  o.timeout = std::max<std::chrono::milliseconds>(config_.stop_grace, 1ms);
  auto w = co_await c.tasks_wait(active_, o);
  if (w.ok() || w.status().is_not_found() || cancel->cancelled()) co_return Status();
  co_return co_await c.tasks_kill(active_, SIGKILL, /*all=*/true, call(cancel));
}

asio::awaitable<std::optional<ReconcileResult>> ContainerdOps::reconcile(
    uint32_t pid, std::function<bool()> still_wanted) {
  // Only a definitive answer ends a task (a lost stream, or a containerd
  // that is still coming up, is not a crash): the task is gone (NotFound)
  // or its process has stopped. Anything else (an error, an UNKNOWN state
  // from a shim containerd is still reconnecting to, a pid of 0) is asked
  // again a few times, and otherwise left running: its exit event, or the
  // next gap's reconcile, will tell.
  Backoff backoff(retry::kReconcile);
  for (int attempt = 0; attempt < retry::kReconcileAttempts; ++attempt) {
    if (attempt > 0) {
      asio::steady_timer t(executor_, backoff.next());
      co_await t.async_wait(asio::use_awaitable);
    }
    if (still_wanted && !still_wanted()) co_return std::nullopt;
    auto t = co_await client_.tasks_get(active_, call());
    ReconcileResult r;
    if (!t.ok()) {
      if (!t.status().is_not_found()) continue;
      r.running = false;
      r.pid = pid;
      r.exit_code = 255;  // gone without a recorded exit, as containerd reports a lost shim
      co_return r;
    }
    if (t->status() == containerd::ProcessStatus::STOPPED) {
      r.running = false;
      r.pid = t->pid();
      r.exit_code = t->exit_status();
      co_return r;
    }
    if (t->status() == containerd::ProcessStatus::RUNNING && t->pid() != 0) {
      r.running = true;
      r.pid = t->pid();
      co_return r;
    }
  }
  co_return std::nullopt;
}

// ------------------------------------------------------------ events

namespace {

class StreamSubscription final : public EventSubscription {
 public:
  explicit StreamSubscription(std::shared_ptr<containerd::EventStream> s) : s_(std::move(s)) {}
  void start() override { s_->start(); }
  void stop() override { s_->stop(); }
  bool live() const override { return s_->live(); }

 private:
  std::shared_ptr<containerd::EventStream> s_;
};

}  // namespace

std::shared_ptr<AsyncGate> ShimGroupGates::gate(const std::string& group) {
  std::lock_guard lock(mu_);
  auto& g = gates_[group];
  if (!g) g = std::make_shared<AsyncGate>();
  return g;
}

ContainerdRuntime::ContainerdRuntime(containerd::Client& client, Settings settings)
    : client_(client), settings_(std::move(settings)) {
  if (!settings_.shim_gates) settings_.shim_gates = std::make_shared<ShimGroupGates>();
}

std::unique_ptr<ContainerOps> ContainerdRuntime::ops(const config::Component& component,
                                                     asio::any_io_executor strand) {
  return std::make_unique<ContainerdOps>(client_, settings_, component, std::move(strand));
}

std::shared_ptr<EventSubscription> ContainerdRuntime::subscribe(
    asio::any_io_executor executor, containerd::EventStream::Handlers handlers) {
  return std::make_shared<StreamSubscription>(
      containerd::EventStream::create(client_, std::move(executor), {}, std::move(handlers)));
}

asio::awaitable<std::optional<TaskList>> ContainerdRuntime::list_tasks(
    asio::any_io_executor executor) {
  (void)executor;  // the client's calls resume on the caller's executor
  auto listed = co_await client_.tasks_list({}, CallOptions::with_timeout(settings_.call_timeout));
  if (!listed.ok()) {
    spdlog::debug("periodic reconcile: Tasks.List: {}", listed.status().to_string());
    co_return std::nullopt;
  }
  TaskList out;
  for (const auto& p : *listed) {
    ListedTask t;
    t.running = p.status() == containerd::ProcessStatus::RUNNING ||
                p.status() == containerd::ProcessStatus::PAUSED ||
                p.status() == containerd::ProcessStatus::PAUSING;
    t.pid = p.pid();
    out[p.id()] = t;
  }
  co_return out;
}

}  // namespace herd::supervise
