#include "supervise/component.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "common/exceptions.h"
#include "containerd/images.h"
#include "containerd/oci_spec.h"
#include "systemd/container_logger.h"

namespace herd::supervise {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using containerd::CallOptions;
using containerd::Canceller;

namespace {

// Exits of the init process carry exec_id == container id (or empty).
bool is_init_exit(const containerd::TaskEvent& e) {
  return e.exec_id.empty() || e.exec_id == e.container_id;
}

std::chrono::system_clock::time_point to_wall(TimePoint t) {
  return std::chrono::system_clock::now() -
         std::chrono::duration_cast<std::chrono::system_clock::duration>(Clock::now() - t);
}

std::chrono::milliseconds until(TimePoint deadline, std::chrono::milliseconds floor) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return std::max(left, floor);
}

}  // namespace

RestartPolicy restart_policy_from(const config::RestartPolicy& p) {
  RestartPolicy r;
  r.base = p.base;
  r.max = p.max;
  r.reset_window = p.reset_window;
  r.max_restarts = p.max_restarts;
  r.jitter = p.jitter;
  return r;
}

ProbeSpec probe_spec_from(const config::ReadyProbe& r) {
  ProbeSpec s;
  s.kind = r.kind == config::ReadyProbe::Kind::kHttp ? ProbeSpec::Kind::kHttp
                                                     : ProbeSpec::Kind::kTcp;
  s.host = r.host;
  s.port = r.port;
  s.path = r.path;
  s.interval = r.interval;
  s.timeout = r.timeout;
  s.max_wait = r.max_wait;
  s.success_threshold = r.success_threshold;
  s.failure_threshold = r.failure_threshold;
  return s;
}

std::string spec_hash(const std::string& spec_json, const std::string& manifest_digest,
                      const std::string& snapshotter) {
  return containerd::sha256_digest(spec_json + "\n" + manifest_digest + "\n" + snapshotter +
                                   "\n" + containerd::kRuntimeRuncV2);
}

std::shared_ptr<Component> Component::create(asio::any_io_executor executor, Env env,
                                             config::Component config, Observer observer) {
  return std::shared_ptr<Component>(
      new Component(std::move(executor), std::move(env), std::move(config), std::move(observer)));
}

Component::Component(asio::any_io_executor executor, Env env, config::Component config,
                     Observer observer)
    : executor_(std::move(executor)),
      env_(std::move(env)),
      config_(std::move(config)),
      observer_(std::move(observer)),
      idle_(executor_),
      restart_timer_(executor_) {
  machine_.restarts = RestartTracker(restart_policy_from(config_.restart), env_.random);
  last_notified_ = status();
}

Component::~Component() = default;

// ------------------------------------------------------------ public API

void Component::start() {
  asio::post(executor_, [self = shared_from_this()] { self->feed(StartRequested{}); });
}

void Component::stop(TimePoint deadline) {
  asio::post(executor_,
             [self = shared_from_this(), deadline] { self->feed(StopRequested{deadline}); });
}

void Component::detach(std::function<void()> idle) {
  asio::post(executor_, [self = shared_from_this(), idle = std::move(idle)]() mutable {
    self->detached_ = true;
    ++self->inflight_gen_;
    ++self->reconcile_gen_;
    ++self->stop_gen_;
    if (self->inflight_) self->inflight_->cancel();
    if (self->stop_wait_) self->stop_wait_->cancel();
    self->restart_timer_.cancel();
    if (self->probe_) self->probe_->cancel();
    self->probe_.reset();
    if (!idle) return;
    // Cancelled calls still unwind; `idle` runs once none can touch
    // containerd any more (a replacing actor must not race them).
    asio::co_spawn(
        self->executor_,
        [self, idle = std::move(idle)]() -> asio::awaitable<void> {
          co_await self->wait_idle(/*with_stop=*/true);
          idle();
        },
        asio::detached);
  });
}

void Component::on_task_event(const containerd::TaskEvent& e) {
  if (e.kind != containerd::TaskEvent::Kind::kExit || !is_init_exit(e)) return;
  asio::post(executor_, [self = shared_from_this(), pid = e.pid, code = e.exit_status] {
    self->feed(ExitSeen{pid, code});
  });
}

void Component::on_stream_gap() {
  asio::post(executor_, [self = shared_from_this()] { self->feed(StreamGap{}); });
}

ComponentStatus Component::status() const {
  ComponentStatus s;
  s.name = config_.name;
  s.image = config_.image;
  s.state = machine_.state;
  s.pid = machine_.pid;
  s.restarts = machine_.restarts.total();
  s.last_exit_code = machine_.last_exit_code;
  if (machine_.last_exit_at) s.last_exit_at = to_wall(*machine_.last_exit_at);
  if (machine_.ready_since) s.ready_since = to_wall(*machine_.ready_since);
  s.last_error = machine_.last_error;
  s.adopted = adopted_;
  if (machine_.pid != 0 && started_at_) s.started_at = *started_at_;
  s.changed_at = std::chrono::system_clock::now();
  return s;
}

// ------------------------------------------------------------ machine

void Component::feed(const Event& e) {
  if (detached_) return;
  Transition t = step(machine_, e, Clock::now());
  machine_ = std::move(t.machine);
  if (machine_.pid != started_pid_) {  // a new task (or none): uptime restarts
    started_pid_ = machine_.pid;
    started_at_.reset();
    if (started_pid_ != 0) started_at_ = std::chrono::system_clock::now();
  }
  for (const auto& a : t.actions) perform(a);
  // A probe belongs to a running task: once the machine has left
  // waiting_ready/ready (exit, stop), it goes, whatever the actions said.
  if (probe_ && machine_.state != State::kWaitingReady && machine_.state != State::kReady) {
    probe_->cancel();
    probe_.reset();
  }
  notify();
}

void Component::notify() {
  ComponentStatus s = status();
  if (s.state == last_notified_.state && s.pid == last_notified_.pid &&
      s.restarts == last_notified_.restarts && s.last_error == last_notified_.last_error &&
      s.last_exit_code == last_notified_.last_exit_code)
    return;
  last_notified_ = s;
  if (observer_) observer_(s);
}

void Component::perform(const Action& a) {
  auto self = shared_from_this();
  switch (a.kind) {
    case ActionKind::kPrepare:
      inflight_ = std::make_shared<Canceller>();
      ++inflight_gen_;
      spawn_op(Op::kPrepare, inflight_gen_, run_prepare(inflight_gen_));
      break;
    case ActionKind::kStartTask:
      inflight_ = std::make_shared<Canceller>();
      ++inflight_gen_;
      spawn_op(Op::kStart, inflight_gen_, run_start(inflight_gen_));
      break;
    case ActionKind::kCancelInFlight:
      ++inflight_gen_;
      if (inflight_) inflight_->cancel();
      break;
    case ActionKind::kStartProbe: {
      if (probe_) probe_->cancel();
      probe_.reset();
      if (!config_.ready) {
        // No probe configured: ready as soon as the task runs.
        asio::post(executor_, [self] { self->feed(ProbeOk{}); });
        break;
      }
      const uint32_t pid = machine_.pid;
      probe_ = ReadinessProbe::create(
          executor_, probe_spec_from(*config_.ready),
          [weak = weak_from_this(), pid](bool ready, std::string detail) {
            auto s = weak.lock();
            if (!s || s->machine_.pid != pid) return;
            if (ready) {
              s->feed(ProbeOk{});
            } else {
              s->feed(ProbeFailed{"readiness: " + detail});
            }
          });
      probe_->start();
      break;
    }
    case ActionKind::kCancelProbe:
      if (probe_) probe_->cancel();
      probe_.reset();
      break;
    case ActionKind::kArmTimer:
      restart_timer_.expires_after(a.delay);
      restart_timer_.async_wait([self](boost::system::error_code ec) {
        if (!ec) self->feed(TimerFired{});
      });
      break;
    case ActionKind::kCancelTimer:
      restart_timer_.cancel();
      break;
    case ActionKind::kStopTask:
      ++stop_gen_;
      spawn_op(Op::kStop, stop_gen_, run_stop(stop_gen_));
      break;
    case ActionKind::kShortenStop:
      // The stop coroutine re-reads machine_.stop_deadline; end its wait.
      if (stop_wait_) stop_wait_->cancel();
      break;
    case ActionKind::kKillTask:
      spawn_op(Op::kKill, 0, run_kill());
      break;
    case ActionKind::kReconcile:
      ++reconcile_gen_;
      spawn_op(Op::kReconcile, reconcile_gen_, run_reconcile(reconcile_gen_));
      break;
  }
}

void Component::spawn_op(Op op, uint64_t gen, asio::awaitable<void> body) {
  asio::co_spawn(executor_, std::move(body),
                 [self = shared_from_this(), op, gen](std::exception_ptr e) {
                   if (!e) return;
                   std::string what = describe_exception(e);
                   // Back on the strand (the handler may run elsewhere).
                   asio::post(self->executor_, [self, op, gen, what = std::move(what)] {
                     self->on_op_exception(op, gen, what);
                   });
                 });
}

void Component::on_op_exception(Op op, uint64_t gen, const std::string& what) {
  static constexpr const char* kNames[] = {"prepare", "start", "stop", "kill", "reconcile"};
  const char* name = kNames[static_cast<int>(op)];
  spdlog::error("component {}: {} threw: {}", config_.name, name, what);
  if (detached_) return;
  const std::string error = std::string("internal error: ") + name + " threw: " + what;
  switch (op) {
    case Op::kPrepare:
      if (gen != inflight_gen_) return;
      {
        PrepareDone d;
        d.error = error;
        feed(d);
      }
      return;
    case Op::kStart:
      if (gen != inflight_gen_) return;
      {
        StartDone d;
        d.error = error;
        feed(d);
      }
      return;
    case Op::kStop:
      if (gen != stop_gen_) return;
      {
        stop_wait_.reset();
        StopDone d;
        d.error = error;
        feed(d);
      }
      return;
    case Op::kKill:
    case Op::kReconcile:
      return;  // the exit event, or the next gap's reconcile, decides
  }
}

CallOptions Component::call(std::shared_ptr<Canceller> c) const {
  CallOptions o;
  o.timeout = env_.call_timeout;
  o.canceller = std::move(c);
  return o;
}

asio::awaitable<void> Component::wait_idle(bool with_stop) {
  while (running_ops_ > 0 || (with_stop && stop_ops_ > 0)) {
    // Several coroutines may wait at once: resetting the expiry would
    // cancel the others' waits, so it is set only when not already set.
    if (idle_.expiry() != asio::steady_timer::time_point::max())
      idle_.expires_at(asio::steady_timer::time_point::max());
    boost::system::error_code ec;
    co_await idle_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

// ------------------------------------------------------------ prepare

std::string Component::log_path() const {
  return (fs::path(env_.data_path) / ".herd-logs" / (config_.name + ".log")).string();
}

Status Component::prepare_mounts() {
  for (const auto& m : config_.mounts) {
    if (m.kind == config::Mount::Kind::kBind) {
      std::error_code ec;
      if (!fs::exists(m.bind, ec))
        return Status::FailedPrecondition("bind mount source " + m.bind + " does not exist");
      continue;
    }
    fs::path dir = fs::path(env_.data_path) / config_.name / m.data;
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

Result<std::string> Component::build_spec() {
  auto image_config = containerd::parse_image_config(image_->config_json);
  if (!image_config.ok()) return image_config.status();
  containerd::SpecOptions so;
  so.container_id = config_.name;
  so.ns = env_.client->ns();
  so.args = config_.args;
  for (const auto& [k, v] : config_.env) so.env.emplace_back(k, v);
  for (const auto& m : config_.mounts) {
    containerd::BindMount b;
    b.target = m.target;
    if (m.kind == config::Mount::Kind::kBind) {
      b.source = m.bind;
      b.readonly = m.readonly;
    } else {
      b.source = (fs::path(env_.data_path) / config_.name / m.data).string();
    }
    so.mounts.push_back(std::move(b));
  }
  so.host_network = config_.network == config::Network::kHost;
  so.hostname = config_.hostname;
  if (config_.user) {
    so.user = std::to_string(config_.user->uid) +
              (config_.user->gid ? ":" + std::to_string(*config_.user->gid) : "");
  }
  so.working_dir = config_.workdir;
  for (const auto& r : config_.rlimits) so.rlimits.push_back({r.type, r.soft, r.hard});
  auto spec = containerd::build_runtime_spec(*image_config, so);
  if (!spec.ok()) return spec.status();
  return spec->dump();
}

asio::awaitable<Status> Component::ensure_image() {
  auto& c = *env_.client;
  auto o = call(inflight_);
  auto present = co_await c.images_get(config_.image, o);
  if (!present.ok()) {
    if (!present.status().is_not_found()) co_return present.status();
    if (!config_.image_archive)
      co_return Status::NotFound("image " + config_.image +
                                 " is not present and no image_archive is configured");
    auto imported = co_await containerd::import_archive(c, *env_.pool, *config_.image_archive, o);
    if (!imported.ok()) co_return imported.status();
  }
  auto unpacked = co_await containerd::unpack_image(c, config_.image, env_.snapshotter, o);
  if (!unpacked.ok()) co_return unpacked.status();
  image_ = std::move(*unpacked);
  co_return Status::Ok();
}

asio::awaitable<void> Component::remove_container() {
  auto& c = *env_.client;
  auto o = call();
  for (int attempt = 0; attempt < 3; ++attempt) {
    Status s = co_await c.containers_delete(config_.name, o);
    if (s.ok() || s.is_not_found()) break;
    asio::steady_timer t(executor_, 500ms);
    co_await t.async_wait(asio::use_awaitable);
  }
  Status r = co_await c.snapshots_remove(env_.snapshotter, config_.name, o);
  (void)r;  // NotFound is the common case
}

asio::awaitable<Status> Component::create_container(const std::string& spec_json,
                                                    const std::string& hash) {
  auto& c = *env_.client;
  auto o = call(inflight_);
  // Snapshot and container are made under a lease that expires by itself:
  // if herdd dies between the two, containerd collects the snapshot.
  auto lease = co_await c.leases_create("", std::chrono::hours(1), {}, o);
  if (!lease.ok()) co_return lease.status();
  CallOptions lo = o;
  lo.lease = lease->id();
  Status result;
  auto mounts = co_await c.snapshots_prepare(env_.snapshotter, config_.name,
                                             image_->top_chain_id(), {}, lo);
  if (!mounts.ok()) {
    result = mounts.status();
  } else {
    containerd::Container ctr;
    ctr.set_id(config_.name);
    ctr.set_image(config_.image);
    ctr.mutable_runtime()->set_name(containerd::kRuntimeRuncV2);
    ctr.mutable_spec()->set_type_url(containerd::kSpecTypeUrl);
    ctr.mutable_spec()->set_value(spec_json);
    ctr.set_snapshotter(env_.snapshotter);
    ctr.set_snapshot_key(config_.name);
    auto& labels = *ctr.mutable_labels();
    for (const auto& [k, v] : config_.labels) labels[k] = v;
    labels[kLabelSpecHash] = hash;
    labels[kLabelComponent] = config_.name;
    auto created = co_await c.containers_create(std::move(ctr), lo);
    if (!created.ok()) {
      result = created.status();
      (void)co_await c.snapshots_remove(env_.snapshotter, config_.name, call());
    }
  }
  (void)co_await c.leases_delete(lease->id(), /*sync=*/false, call());
  co_return result;
}

asio::awaitable<Status> Component::ensure_container(const std::string& spec_json,
                                                    const std::string& hash, bool* adopted,
                                                    uint32_t* pid) {
  auto& c = *env_.client;
  auto o = call(inflight_);
  auto existing = co_await c.containers_get(config_.name, o);
  if (!existing.ok() && !existing.status().is_not_found()) co_return existing.status();
  if (existing.ok()) {
    auto it = existing->labels().find(kLabelSpecHash);
    const bool same = it != existing->labels().end() && it->second == hash &&
                      existing->snapshot_key() == config_.name &&
                      existing->snapshotter() == env_.snapshotter;
    auto task = co_await c.tasks_get(config_.name, o);
    if (same && task.ok() && task->status() == containerd::ProcessStatus::RUNNING) {
      *adopted = true;
      *pid = task->pid();
      co_return Status::Ok();
    }
    // A changed spec (a reload, or a config changed while herdd was
    // down) with the old task still running: it gets its stop signal and
    // stop_grace to exit, as in a stop, before it is killed.
    if (!same && task.ok() && task->status() == containerd::ProcessStatus::RUNNING) {
      Status k = co_await c.tasks_kill(config_.name, static_cast<uint32_t>(config_.stop_signal),
                                       false, o);
      if (k.ok()) {
        CallOptions w = call(inflight_);
        w.timeout = std::max<std::chrono::milliseconds>(config_.stop_grace, 1ms);
        (void)co_await c.tasks_wait(config_.name, w);
      }
    }
    // A stopped task, a record whose process is gone, or a changed spec:
    // the old task goes (killing whatever still runs).
    if (!task.ok() && !task.status().is_not_found()) {
      auto gone = co_await c.tasks_kill_and_delete(config_.name, o);
      if (!gone.ok() && !gone.status().is_not_found()) co_return gone.status();
    } else if (task.ok()) {
      auto gone = co_await c.tasks_kill_and_delete(config_.name, o);
      if (!gone.ok() && !gone.status().is_not_found()) co_return gone.status();
    }
    if (same) {
      auto snap = co_await c.snapshots_stat(env_.snapshotter, config_.name, o);
      if (snap.ok()) co_return Status::Ok();  // keep the container
      if (!snap.status().is_not_found()) co_return snap.status();
    }
    Status d = co_await c.containers_delete(config_.name, o);
    if (!d.ok() && !d.is_not_found()) co_return d;
  }
  // No container (any more): a snapshot left without one would block the
  // create ("already exists"), so it goes first.
  Status r = co_await c.snapshots_remove(env_.snapshotter, config_.name, o);
  if (!r.ok() && !r.is_not_found()) co_return r;
  co_return co_await create_container(spec_json, hash);
}

asio::awaitable<void> Component::run_prepare(uint64_t gen) {
  auto self = shared_from_this();
  OpCount running(running_ops_, idle_);
  if (env_.fault) env_.fault("prepare");
  PrepareDone done;
  Status s = prepare_mounts();
  if (s.ok()) s = co_await ensure_image();
  std::string spec_json, hash;
  if (s.ok()) {
    auto spec = build_spec();
    if (!spec.ok()) {
      s = spec.status();
    } else {
      spec_json = std::move(*spec);
      hash = spec_hash(spec_json, image_->manifest.digest(), env_.snapshotter);
    }
  }
  bool adopted = false;
  uint32_t pid = 0;
  if (s.ok()) s = co_await ensure_container(spec_json, hash, &adopted, &pid);
  if (gen != inflight_gen_ || detached_) co_return;
  done.ok = s.ok();
  done.adopted = adopted;
  done.pid = pid;
  if (!s.ok()) done.error = s.to_string();
  adopted_ = adopted;
  feed(done);
}

// ------------------------------------------------------------ start

asio::awaitable<void> Component::run_start(uint64_t gen) {
  auto self = shared_from_this();
  OpCount running(running_ops_, idle_);
  if (env_.fault) env_.fault("start");
  auto& c = *env_.client;
  auto o = call(inflight_);
  StartDone done;
  Status s;
  auto old = co_await c.tasks_kill_and_delete(config_.name, o);
  if (!old.ok() && !old.status().is_not_found()) s = old.status();
  Result<std::vector<containerd::Mount>> mounts;
  if (s.ok()) {
    mounts = co_await c.snapshots_mounts(env_.snapshotter, config_.name, o);
    if (!mounts.ok()) s = mounts.status();
  }
  if (s.ok()) {
    std::error_code ec;
    fs::create_directories(fs::path(log_path()).parent_path(), ec);
    containerd::CreateTaskRequest req;
    req.set_container_id(config_.name);
    for (const auto& m : *mounts) *req.add_rootfs() = m;
    const std::string output =
        env_.output_logger.empty()
            ? "file://" + log_path()
            : herd::systemd::container_logger_uri(env_.output_logger, config_.name);
    req.set_stdout(output);
    req.set_stderr(output);
    auto pid = co_await c.tasks_create(std::move(req), o);
    if (!pid.ok()) {
      s = pid.status();
    } else {
      auto started = co_await c.tasks_start(config_.name, o);
      if (!started.ok()) {
        s = started.status();
        (void)co_await c.tasks_kill_and_delete(config_.name, call());
      } else {
        done.pid = *started;
      }
    }
  }
  if (gen != inflight_gen_ || detached_) co_return;
  done.ok = s.ok();
  if (!s.ok()) done.error = s.to_string();
  adopted_ = false;
  feed(done);
}

// ------------------------------------------------------------ stop

asio::awaitable<void> Component::run_stop(uint64_t gen) {
  auto self = shared_from_this();
  auto& c = *env_.client;
  OpCount stopping(stop_ops_, idle_);
  if (env_.fault) env_.fault("stop");
  // A cancelled prepare/start may still be unwinding: let it finish, so it
  // cannot create anything after the stop has removed it.
  co_await wait_idle(/*with_stop=*/false);
  auto deadline = [this] { return machine_.stop_deadline.value_or(Clock::now()); };

  // Waits for the task to exit until `limit` (or a shortened stop
  // deadline); true when it exited.
  auto wait_exit = [&](TimePoint limit) -> asio::awaitable<bool> {
    for (;;) {
      TimePoint until_tp = std::min(limit, deadline());
      if (Clock::now() >= until_tp) co_return false;
      stop_wait_ = std::make_shared<Canceller>();
      CallOptions o = call(stop_wait_);
      o.timeout = until(until_tp, 1ms);
      auto w = co_await c.tasks_wait(config_.name, o);
      if (w.ok() || w.status().is_not_found()) co_return true;
      if (w.status().code() == Code::kCancelled) continue;  // deadline shortened
      if (w.status().code() == Code::kDeadlineExceeded) co_return false;
      co_return false;
    }
  };

  Status result;
  auto task = co_await c.tasks_get(config_.name, call());
  if (task.ok() && task->status() == containerd::ProcessStatus::RUNNING) {
    Status k = co_await c.tasks_kill(config_.name, static_cast<uint32_t>(config_.stop_signal),
                                     false, call());
    bool exited = k.is_not_found();
    if (!exited) exited = co_await wait_exit(Clock::now() + config_.stop_grace);
    if (!exited) {
      (void)co_await c.tasks_kill(config_.name, SIGKILL, /*all=*/true, call());
      // SIGKILL cannot be refused; give the exit a moment even past the deadline.
      CallOptions o = call();
      o.timeout = 5s;
      (void)co_await c.tasks_wait(config_.name, o);
    }
  }
  auto deleted = co_await c.tasks_kill_and_delete(config_.name, call());
  if (!deleted.ok() && !deleted.status().is_not_found()) result = deleted.status();
  co_await remove_container();
  auto left = co_await c.containers_get(config_.name, call());
  if (left.ok()) result = Status::Unavailable("container " + config_.name + " could not be deleted");
  stop_wait_.reset();
  if (gen != stop_gen_ || detached_) co_return;
  StopDone done;
  done.ok = result.ok();
  if (!result.ok()) done.error = result.to_string();
  feed(done);
}

asio::awaitable<void> Component::run_kill() {
  auto self = shared_from_this();
  if (env_.fault) env_.fault("kill");
  Status s = co_await env_.client->tasks_kill(config_.name, SIGKILL, /*all=*/true, call());
  (void)s;  // the exit event (or a reconcile) drives what follows
}

asio::awaitable<void> Component::run_reconcile(uint64_t gen) {
  auto self = shared_from_this();
  if (env_.fault) env_.fault("reconcile");
  // Only a definitive answer ends a task (SEED weakness 1: a lost stream or
  // a containerd that is still coming up is not a crash): the task is gone
  // (NotFound) or its process has stopped. Anything else (an error, an
  // UNKNOWN state from a shim containerd is still reconnecting to, a pid
  // of 0) is asked again a few times, and otherwise left running: its exit
  // event, or the next gap's reconcile, will tell.
  ReconcileResult r;
  r.running = true;
  r.pid = machine_.pid;
  for (int attempt = 0; attempt < 5; ++attempt) {
    if (attempt > 0) {
      asio::steady_timer t(executor_, std::chrono::milliseconds(200 * attempt));
      co_await t.async_wait(asio::use_awaitable);
    }
    if (gen != reconcile_gen_ || detached_) co_return;
    auto t = co_await env_.client->tasks_get(config_.name, call());
    if (!t.ok()) {
      if (t.status().is_not_found()) {
        r.running = false;
        r.exit_code = 255;  // gone without a recorded exit, as containerd reports a lost shim
        break;
      }
      continue;
    }
    if (t->status() == containerd::ProcessStatus::STOPPED) {
      r.running = false;
      r.pid = t->pid();
      r.exit_code = t->exit_status();
      break;
    }
    if (t->status() == containerd::ProcessStatus::RUNNING && t->pid() != 0) {
      r.running = true;
      r.pid = t->pid();
      break;
    }
  }
  if (gen != reconcile_gen_ || detached_) co_return;
  feed(r);
}

}  // namespace herd::supervise
