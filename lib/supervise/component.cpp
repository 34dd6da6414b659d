#include "supervise/component.h"

#include <cassert>
#include <cctype>

#include <spdlog/spdlog.h>

#include "common/exceptions.h"
#include "common/strand_check.h"

namespace herd::supervise {

using namespace std::chrono_literals;

namespace {

// Exits of the init process carry exec_id == container id (or empty).
bool is_init_exit(const containerd::TaskEvent& e) {
  return e.exec_id.empty() || e.exec_id == e.container_id;
}

}  // namespace

std::string probe_kind_name(config::ReadyProbe::Kind kind) {
  switch (kind) {
    case config::ReadyProbe::Kind::kTcp:
      return "tcp";
    case config::ReadyProbe::Kind::kHttp:
      return "http";
    case config::ReadyProbe::Kind::kExec:
      return "exec";
    case config::ReadyProbe::Kind::kGrpc:
      return "grpc";
  }
  return "unknown";
}

ProbeSpec probe_spec_from(const config::ReadyProbe& r, bool liveness) {
  ProbeSpec s;
  switch (r.kind) {
    case config::ReadyProbe::Kind::kTcp:
      s.kind = ProbeSpec::Kind::kTcp;
      break;
    case config::ReadyProbe::Kind::kHttp:
      s.kind = ProbeSpec::Kind::kHttp;
      break;
    case config::ReadyProbe::Kind::kExec:
      s.kind = ProbeSpec::Kind::kExec;
      s.command = r.command;
      break;
    case config::ReadyProbe::Kind::kGrpc:
      s.kind = ProbeSpec::Kind::kGrpc;
      s.service = r.service;
      break;
  }
  s.host = r.host;
  s.port = r.port;
  s.path = r.path;
  s.interval = r.interval;
  s.timeout = r.timeout;
  s.max_wait = r.max_wait;
  s.success_threshold = r.success_threshold;
  s.failure_threshold = r.failure_threshold;
  s.https = r.https;
  s.tls_verify = r.tls_verify;
  s.status_min = r.status_min;
  s.status_max = r.status_max;
  s.liveness = liveness;
  s.initial_delay = r.initial_delay;
  return s;
}

std::shared_ptr<Component> Component::create(asio::any_io_executor executor, Env env,
                                             config::Component config, Observer observer) {
  std::shared_ptr<Component> c(
      new Component(std::move(executor), std::move(env), std::move(config), std::move(observer)));
  // The operations' own changes (a standby made or lost) are reported too.
  c->ops_->set_changed([weak = std::weak_ptr<Component>(c)] {
    if (auto self = weak.lock(); self && !self->detached_) self->notify();
  });
  c->ops_->set_keepalive(
      [weak = std::weak_ptr<Component>(c)]() -> std::shared_ptr<void> { return weak.lock(); });
  return c;
}

Component::Component(asio::any_io_executor executor, Env env, config::Component config,
                     Observer observer)
    : executor_(std::move(executor)),
      env_(std::move(env)),
      config_(std::move(config)),
      observer_(std::move(observer)),
      idle_(executor_) {
  if (!env_.time) env_.time = &steady_time();
  restart_timer_ = env_.time->timer(executor_);
  ops_ = env_.runtime->ops(config_, executor_);
  machine_.restarts = RestartTracker(config_.restart, env_.random);
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
    self->restart_timer_->cancel();
    if (self->probe_) self->probe_->cancel();
    self->probe_.reset();
    if (self->liveness_) self->liveness_->cancel();
    self->liveness_.reset();
    if (self->terminate_) self->terminate_->cancel();
    self->ops_->cancel_background();  // a standby being built
    if (!idle) return;
    // Cancelled calls still unwind; `idle` runs once none can touch
    // containerd any more (a replacing actor must not race them).
    asio::co_spawn(
        self->executor_,
        [self, idle = std::move(idle)]() -> asio::awaitable<void> {
          co_await self->wait_idle(/*with_stop=*/true);
          co_await self->ops_->quiesce();  // a standby being built
          idle();
        },
        asio::detached);
  });
}

void Component::on_task_event(const containerd::TaskEvent& e) {
  if (e.kind == containerd::TaskEvent::Kind::kOOM) {
    asio::post(executor_, [self = shared_from_this()] { self->feed(OomSeen{}); });
    return;
  }
  if (e.kind != containerd::TaskEvent::Kind::kExit || !is_init_exit(e)) return;
  asio::post(executor_, [self = shared_from_this(), pid = e.pid, code = e.exit_status] {
    // Asked only for the current task: an old task's exit is ignored anyway.
    const bool lost =
        pid != 0 && pid == self->machine_.pid && self->ops_ && self->ops_->runtime_lost(pid);
    self->feed(ExitSeen{pid, code, lost});
  });
}

void Component::on_stream_gap() {
  asio::post(executor_, [self = shared_from_this()] { self->feed(StreamGap{}); });
}

void Component::on_task_listed(std::shared_ptr<const TaskList> tasks) {
  asio::post(executor_, [self = shared_from_this(), tasks = std::move(tasks)] {
    const State st = self->machine_.state;
    if (st != State::kWaitingReady && st != State::kReady) return;
    std::string id = self->ops_ ? self->ops_->task_id() : std::string();
    if (id.empty()) id = self->config_.name;
    std::optional<ListedTask> task;
    if (auto it = tasks->find(id); it != tasks->end()) task = it->second;
    if (task && task->running && task->pid == self->machine_.pid) return;  // as expected
    spdlog::info("component {}: periodic reconcile: task {} (expected pid {}), checking it",
                 self->config_.name,
                 !task ? std::string("not listed")
                       : (task->running ? "pid " + std::to_string(task->pid) : "not running"),
                 self->machine_.pid);
    self->feed(StreamGap{});
  });
}

std::chrono::system_clock::time_point Component::to_wall(TimePoint t) const {
  return env_.time->wall_now() -
         std::chrono::duration_cast<std::chrono::system_clock::duration>(env_.time->now() - t);
}

ComponentStatus Component::status() const {
  ComponentStatus s;
  s.name = config_.name;
  s.image = config_.image;
  s.state = machine_.state;
  s.pid = machine_.pid;
  s.restarts = machine_.restarts.total();
  s.last_exit_code = machine_.last_exit_code;
  if (machine_.last_exit_code)
    s.last_exit_reason = machine_.last_exit_oom    ? "oom_killed"
                         : machine_.last_exit_lost ? "containerd_lost"
                                                   : "exited";
  s.oom_kills = machine_.oom_kills;
  if (machine_.last_exit_at) s.last_exit_at = to_wall(*machine_.last_exit_at);
  if (machine_.ready_since) s.ready_since = to_wall(*machine_.ready_since);
  s.last_error = machine_.last_error;
  s.adopted = adopted_;
  if (machine_.pid != 0 && started_at_) s.started_at = *started_at_;
  s.changed_at = env_.time->wall_now();
  ProbeResults probes = probe_results();
  s.last_ready_probe = std::move(probes.ready);
  s.last_liveness_probe = std::move(probes.liveness);
  s.standby = ops_ ? ops_->standby() : std::string();
  return s;
}

Component::ProbeResults Component::probe_results() const {
  std::lock_guard<std::mutex> lock(probe_mu_);
  return probe_results_;
}

// ------------------------------------------------------------ machine

void Component::feed(const Event& e) {
  assert(running_on(executor_));  // the machine is the strand's alone
  if (detached_) return;
  Transition t = step(machine_, e, env_.time->now());
  // A reconcile the machine no longer waits for (it failed, stopped or
  // restarted meanwhile) is abandoned: its answer is about an older task.
  if (machine_.reconciling && !t.machine.reconciling) ++reconcile_gen_;
  machine_ = std::move(t.machine);
  if (machine_.pid != started_pid_) {  // a new task (or none): uptime restarts
    started_pid_ = machine_.pid;
    started_at_.reset();
    if (started_pid_ != 0) started_at_ = env_.time->wall_now();
  }
  for (const auto& a : t.actions) perform(a);
  // A probe belongs to a running task: once the machine has left
  // waiting_ready/ready (exit, stop), it goes, whatever the actions said.
  if (probe_ && machine_.state != State::kWaitingReady && machine_.state != State::kReady) {
    probe_->cancel();
    probe_.reset();
  }
  // Liveness belongs to a ready task: it starts when the machine becomes
  // ready (or is ready with a new task) and goes when it leaves ready.
  if (machine_.state == State::kReady) {
    if (config_.liveness && !machine_.liveness_failed &&
        (!liveness_ || liveness_pid_ != machine_.pid))
      start_liveness();
  } else if (liveness_) {
    liveness_->cancel();
    liveness_.reset();
    liveness_pid_ = 0;
  }
  notify();
}

ProbeSpec Component::make_probe_spec(const config::ReadyProbe& r, bool liveness, uint32_t pid) {
  ProbeSpec spec = probe_spec_from(r, liveness);
  // Its own network namespace: tcp/http connect from inside it.
  if (config_.network == config::Network::kNone) spec.netns_pid = pid;
  if (r.kind == config::ReadyProbe::Kind::kExec) {
    spec.exec = [weak = weak_from_this(), command = r.command,
                 timeout = r.timeout](ExecDone done) -> std::function<void()> {
      auto s = weak.lock();
      if (!s) return {};
      auto cancel = std::make_shared<Canceller>();
      asio::co_spawn(s->executor_, s->run_exec(command, timeout, cancel, std::move(done)),
                     asio::detached);
      return [cancel] { cancel->cancel(); };
    };
  }
  return spec;
}

namespace {

// Exec output for a detail: trailing space cut, newlines as "; ", other
// control bytes as '?'.
std::string output_for_detail(std::string out) {
  while (!out.empty() && std::isspace(static_cast<unsigned char>(out.back()))) out.pop_back();
  std::string r;
  for (unsigned char c : out) {
    if (c == '\n') {
      r += "; ";
    } else if (c < 0x20 || c == 0x7f) {
      r += '?';
    } else {
      r += static_cast<char>(c);
    }
  }
  return r;
}

}  // namespace

asio::awaitable<void> Component::run_exec(std::vector<std::string> command,
                                          std::chrono::milliseconds timeout,
                                          std::shared_ptr<Canceller> cancel, ExecDone done) {
  auto self = shared_from_this();
  // Counted like prepare/start: a stop (and detach's idle) waits until the
  // exec process is reaped and its id removed.
  OpCount running(running_ops_, idle_);
  bool ok = false;
  std::string detail;
  try {
    ContainerOps::ExecOutcome out = co_await ops_->exec(std::move(command), timeout, cancel);
    const std::string output = output_for_detail(std::move(out.output));
    if (out.ran) {
      ok = out.exit_code == 0;
      detail = "exit code " + std::to_string(out.exit_code);
    } else {
      detail = out.error;
    }
    if (!output.empty()) detail += ": " + output;
  } catch (const std::exception& e) {
    detail = std::string("internal error: exec threw: ") + e.what();
  }
  if (done && !cancel->cancelled()) done(ok, std::move(detail));
}

void Component::start_liveness() {
  if (liveness_) liveness_->cancel();
  const uint32_t pid = machine_.pid;
  liveness_pid_ = pid;
  ProbeSpec spec = make_probe_spec(*config_.liveness, /*liveness=*/true, pid);
  if (env_.probe_attempt) {
    spec.on_attempt = [f = env_.probe_attempt](auto took, bool) { f("liveness", took); };
  }
  liveness_ = ReadinessProbe::create(
      executor_, std::move(spec), [weak = weak_from_this(), pid](bool ok, std::string detail) {
        auto s = weak.lock();
        if (!s || ok || s->machine_.pid != pid) return;
        spdlog::warn("component {}: liveness failed: {}", s->config_.name, detail);
        s->liveness_.reset();
        s->feed(LivenessFailed{std::move(detail)});
      });
  liveness_->observe_attempts([weak = weak_from_this(), pid](const ProbeAttempt& a) {
    auto s = weak.lock();
    if (!s || s->machine_.pid != pid) return;
    s->record_attempt(/*liveness=*/true, a);
  });
  liveness_->start();
}

void Component::record_attempt(bool liveness, const ProbeAttempt& a) {
  const config::ReadyProbe& spec = liveness ? *config_.liveness : *config_.ready;
  ProbeResult r;
  r.kind = probe_kind_name(spec.kind);
  r.ok = a.ok;
  r.at = env_.time->wall_now();
  r.duration = a.duration;
  r.detail = a.detail;
  bool changed = false;
  {
    std::lock_guard<std::mutex> lock(probe_mu_);
    std::optional<ProbeResult>& last = liveness ? probe_results_.liveness : probe_results_.ready;
    changed = !last || last->ok != a.ok;
    last = std::move(r);
  }
  // Transitions only: a probe failing every second logs once, not each time.
  if (!changed) return;
  notify_probe_ = true;
  notify();
  const char* what = liveness ? "liveness" : "readiness";
  if (a.ok) {
    spdlog::info("component {}: {} probe succeeds: {}", config_.name, what, a.detail);
  } else {
    spdlog::info("component {}: {} probe fails: {}", config_.name, what, a.detail);
  }
}

void Component::notify() {
  ComponentStatus s = status();
  if (!std::exchange(notify_probe_, false) && s.state == last_notified_.state &&
      s.pid == last_notified_.pid && s.restarts == last_notified_.restarts &&
      s.last_error == last_notified_.last_error &&
      s.last_exit_code == last_notified_.last_exit_code &&
      s.last_exit_reason == last_notified_.last_exit_reason &&
      s.oom_kills == last_notified_.oom_kills && s.standby == last_notified_.standby)
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
      ProbeSpec spec = make_probe_spec(*config_.ready, /*liveness=*/false, pid);
      if (env_.probe_attempt) {
        spec.on_attempt = [f = env_.probe_attempt](auto took, bool) { f("readiness", took); };
      }
      probe_ =
          ReadinessProbe::create(executor_, std::move(spec),
                                 [weak = weak_from_this(), pid](bool ready, std::string detail) {
                                   auto s = weak.lock();
                                   if (!s || s->machine_.pid != pid) return;
                                   if (ready) {
                                     s->feed(ProbeOk{});
                                   } else {
                                     s->feed(ProbeFailed{"readiness: " + detail});
                                   }
                                 });
      probe_->observe_attempts([weak = weak_from_this(), pid](const ProbeAttempt& at) {
        auto s = weak.lock();
        if (!s || s->machine_.pid != pid) return;
        s->record_attempt(/*liveness=*/false, at);
      });
      probe_->start();
      break;
    }
    case ActionKind::kCancelProbe:
      if (probe_) probe_->cancel();
      probe_.reset();
      break;
    case ActionKind::kArmTimer:
      restart_timer_->arm(a.delay, [self] { self->feed(TimerFired{}); });
      break;
    case ActionKind::kCancelTimer:
      restart_timer_->cancel();
      break;
    case ActionKind::kTerminateTask:
      if (terminate_) terminate_->cancel();
      terminate_ = std::make_shared<Canceller>();
      spawn_op(Op::kTerminate, 0, run_terminate(terminate_));
      break;
    case ActionKind::kStopTask:
      if (terminate_) terminate_->cancel();  // the stop signals and kills itself
      terminate_.reset();
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
  static constexpr const char* kNames[] = {"prepare", "start",     "stop",
                                           "kill",    "reconcile", "terminate"};
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
    case Op::kTerminate:
      return;  // the exit event, or the next gap's reconcile, decides
  }
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

// ------------------------------------------------------------ operations

template <class Done>
asio::awaitable<bool> Component::admit_start(AsyncGate::Pass& slot, uint64_t gen) {
  if (!env_.start_gate) co_return true;
  const std::shared_ptr<Canceller> cancel = inflight_;  // this operation's
  auto entry = AsyncGate::Entry::make(executor_);
  const uint64_t hook = cancel->on_cancel([entry] { entry->cancel(); });
  const auto deadline = std::chrono::steady_clock::now() + kStartSlotWait;
  slot = co_await env_.start_gate->enter(deadline, entry, config_.priority);
  cancel->remove(hook);
  if (gen != inflight_gen_ || detached_) co_return false;
  if (slot) co_return true;
  Done refused;
  refused.error = cancel->cancelled()
                      ? std::string("cancelled while waiting for a start slot")
                      : "waited " + std::to_string(kStartSlotWait.count()) +
                            " min for a start slot (max_concurrent_starts: " +
                            std::to_string(env_.start_gate->holders()) + " starts in flight)";
  feed(refused);
  co_return false;
}

asio::awaitable<void> Component::run_prepare(uint64_t gen) {
  auto self = shared_from_this();
  OpCount running(running_ops_, idle_);
  if (env_.fault) env_.fault("prepare");
  AsyncGate::Pass slot;
  if (!co_await admit_start<PrepareDone>(slot, gen)) co_return;
  auto prepared = co_await ops_->prepare(inflight_);
  slot = AsyncGate::Pass();  // the next start may go
  if (gen != inflight_gen_ || detached_) co_return;
  PrepareDone done;
  done.ok = prepared.ok();
  if (prepared.ok()) {
    done.adopted = prepared->adopted;
    done.pid = prepared->pid;
  } else {
    done.error = prepared.status().to_string();
  }
  adopted_ = done.adopted;
  feed(done);
}

asio::awaitable<void> Component::run_start(uint64_t gen) {
  auto self = shared_from_this();
  OpCount running(running_ops_, idle_);
  if (env_.fault) env_.fault("start");
  AsyncGate::Pass slot;
  if (!co_await admit_start<StartDone>(slot, gen)) co_return;
  auto started = co_await ops_->start_task(inflight_);
  slot = AsyncGate::Pass();
  if (gen != inflight_gen_ || detached_) co_return;
  StartDone done;
  done.ok = started.ok();
  if (started.ok()) {
    done.pid = *started;
  } else {
    done.error = started.status().to_string();
  }
  adopted_ = false;
  feed(done);
}

asio::awaitable<void> Component::run_stop(uint64_t gen) {
  auto self = shared_from_this();
  OpCount stopping(stop_ops_, idle_);
  if (env_.fault) env_.fault("stop");
  // A cancelled prepare/start may still be unwinding: let it finish, so it
  // cannot create anything after the stop has removed it.
  co_await wait_idle(/*with_stop=*/false);
  ContainerOps::StopControl control;
  control.deadline = [this] { return machine_.stop_deadline.value_or(env_.time->now()); };
  control.arm_wait = [this] {
    stop_wait_ = std::make_shared<Canceller>();
    return stop_wait_;
  };
  Status result = co_await ops_->stop(std::move(control));
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
  Status s = co_await ops_->kill();
  (void)s;  // the exit event (or a reconcile) drives what follows
}

asio::awaitable<void> Component::run_terminate(std::shared_ptr<Canceller> cancel) {
  auto self = shared_from_this();
  if (env_.fault) env_.fault("terminate");
  Status s = co_await ops_->terminate(std::move(cancel));
  if (!s.ok() && !s.is_not_found() && s.code() != Code::kCancelled) {
    spdlog::warn("component {}: terminating after failed liveness: {}", config_.name,
                 s.to_string());
  }
  // The exit event (or a reconcile) drives what follows.
}

asio::awaitable<void> Component::run_reconcile(uint64_t gen) {
  auto self = shared_from_this();
  if (env_.fault) env_.fault("reconcile");
  const uint32_t pid = machine_.pid;
  auto wanted = [this, gen] { return gen == reconcile_gen_ && !detached_; };
  auto r = co_await ops_->reconcile(pid, wanted);
  if (!wanted()) co_return;
  // No definitive answer: the task is left running (its exit event, or
  // the next gap's reconcile, will tell).
  ReconcileResult result = r.value_or(ReconcileResult{/*running=*/true, pid, 0});
  result.asked_pid = pid;
  feed(result);
}

}  // namespace herd::supervise
