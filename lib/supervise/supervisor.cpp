#include "supervise/supervisor.h"

#include "supervise/standby.h"

#include "common/exceptions.h"
#include "common/strand_check.h"
#include "supervise/containerd_ops.h"

#include <algorithm>
#include <cassert>
#include <random>

#include <spdlog/spdlog.h>

namespace herd::supervise {

std::shared_ptr<Supervisor> Supervisor::create(asio::any_io_executor executor, Runtime& runtime,
                                               config::Config config, Observer observer,
                                               Options options) {
  auto sup = std::shared_ptr<Supervisor>(new Supervisor(
      std::move(executor), runtime, std::move(config), std::move(observer), std::move(options)));
  sup->create_actors();
  return sup;
}

std::shared_ptr<Supervisor> Supervisor::create(asio::any_io_executor executor,
                                               containerd::Client& client, config::Config config,
                                               Observer observer, Options options) {
  std::unique_ptr<BlockingPool> own_pool;
  if (!options.pool) {
    own_pool = std::make_unique<BlockingPool>(1);
    options.pool = own_pool.get();
  }
  ContainerdRuntime::Settings settings;
  settings.data_path = config.data_path;
  settings.call_timeout = options.call_timeout;
  settings.output_logger = options.output_logger;
  settings.file_logger = options.file_logger;
  settings.max_file_bytes = config.output.max_file_bytes;
  settings.max_files = config.output.max_files;
  settings.pool = options.pool;
  settings.puller = options.puller;
  auto runtime = std::make_unique<ContainerdRuntime>(client, std::move(settings));
  auto sup = std::shared_ptr<Supervisor>(new Supervisor(
      std::move(executor), *runtime, std::move(config), std::move(observer), std::move(options)));
  sup->own_runtime_ = std::move(runtime);
  sup->own_pool_ = std::move(own_pool);
  sup->create_actors();
  return sup;
}

Supervisor::Supervisor(asio::any_io_executor executor, Runtime& runtime, config::Config config,
                       Observer observer, Options options)
    : executor_(asio::make_strand(executor)),
      runtime_(&runtime),
      config_(std::move(config)),
      observer_(std::move(observer)),
      options_(std::move(options)) {
  if (!options_.time) options_.time = &steady_time();
  order_ = config_.start_order();
  start_gate_ = std::make_shared<AsyncGate>(config_.effective_max_concurrent_starts());
}

// The actors exist from the start (pending), so status() lists every
// configured component at once.
void Supervisor::create_actors() {
  for (const auto& c : config_.components) {
    Slot slot = make_actor(c);
    status_[c.name] = slot.actor->status();
    components_[c.name] = std::move(slot);
  }
}

Supervisor::Slot Supervisor::make_actor(const config::Component& c) {
  std::weak_ptr<Supervisor> weak = shared_from_this();
  Component::Env env;
  env.runtime = runtime_;
  env.time = options_.time;
  env.start_gate = start_gate_;
  if (options_.fault)
    env.fault = [fault = options_.fault, name = c.name](std::string_view op) { fault(name, op); };
  if (options_.probe_attempt) {
    env.probe_attempt = [f = options_.probe_attempt, name = c.name](std::string_view probe,
                                                                    std::chrono::nanoseconds took) {
      f(name, probe, took);
    };
  }
  env.random = options_.random;
  if (!env.random) {
    // Restart jitter (when a policy asks for it) from a per-actor engine.
    auto engine = std::make_shared<std::mt19937_64>(std::random_device{}());
    env.random = [engine] { return std::uniform_real_distribution<double>(0.0, 1.0)(*engine); };
  }
  Slot slot;
  slot.id = ++next_id_;
  slot.actor = Component::create(asio::make_strand(executor_), std::move(env), c,
                                 [weak, ex = executor_, id = slot.id](const ComponentStatus& s) {
                                   asio::post(ex, [weak, id, s] {
                                     if (auto sup = weak.lock()) sup->on_status(id, s);
                                   });
                                 });
  return slot;
}

void Supervisor::start() {
  asio::post(executor_, [self = shared_from_this()] {
    if (self->running_ || self->stopping_) return;
    self->running_ = true;
    std::weak_ptr<Supervisor> weak = self;
    containerd::EventStream::Handlers h;
    h.on_event = [weak](const containerd::TaskEvent& e) {
      auto sup = weak.lock();
      if (!sup) return;
      if (sup->options_.drop_event && sup->options_.drop_event(e)) return;
      // NAME.B is NAME's standby container (restore: standby).
      auto it = sup->components_.find(std::string(component_of(e.container_id)));
      if (it != sup->components_.end()) it->second.actor->on_task_event(e);
    };
    h.on_live = [weak](bool first) {
      auto sup = weak.lock();
      if (!sup) return;
      if (first) {
        sup->start_ready_dependants();
        return;
      }
      // A gap: events may be lost; every actor re-checks its task.
      ++sup->gaps_;
      for (auto& [name, slot] : sup->components_) slot.actor->on_stream_gap();
    };
    self->stream_ = self->runtime_->subscribe(self->executor_, std::move(h));
    self->stream_->start();
    self->reconcile_timer_ = self->options_.time->timer(self->executor_);
    self->arm_reconcile();
  });
}

void Supervisor::arm_reconcile() {
  if (!reconcile_timer_ || !running_ || stopping_) return;
  std::weak_ptr<Supervisor> weak = shared_from_this();
  reconcile_timer_->arm(config_.reconcile_interval, [weak] {
    if (auto sup = weak.lock()) sup->periodic_reconcile();
  });
}

void Supervisor::periodic_reconcile() {
  if (!running_ || stopping_ || listing_) return;
  listing_ = true;
  asio::co_spawn(
      executor_,
      [self = shared_from_this()]() -> asio::awaitable<void> {
        std::optional<TaskList> tasks = co_await self->runtime_->list_tasks(self->executor_);
        self->listing_ = false;
        if (!self->running_ || self->stopping_) co_return;
        if (tasks) {
          ++self->periodic_reconciles_;
          auto all = std::make_shared<const TaskList>(std::move(*tasks));
          for (auto& [name, slot] : self->components_) slot.actor->on_task_listed(all);
        }
        self->arm_reconcile();
      },
      [self = shared_from_this()](std::exception_ptr e) {
        if (!e) return;
        spdlog::error("periodic reconcile threw: {}", describe_exception(e));
        asio::post(self->executor_, [self] {
          self->listing_ = false;
          self->arm_reconcile();
        });
      });
}

void Supervisor::on_status(uint64_t id, const ComponentStatus& s) {
  assert(running_on(executor_));
  auto it = components_.find(s.name);
  if (it == components_.end() || it->second.id != id) {
    // A removed component on its way out: reported, not kept.
    auto r = retiring_.find(id);
    if (r == retiring_.end()) return;
    if (observer_) observer_(s);
    if (s.state == State::kStopped) {
      retiring_.erase(r);
      advance();
    }
    return;
  }
  status_[s.name] = s;
  if (observer_) observer_(s);
  advance();
}

void Supervisor::advance() {
  if (stopping_) {
    stop_unblocked();
  } else {
    start_ready_dependants();
  }
}

bool Supervisor::retiring(const std::string& name) const {
  for (const auto& [id, r] : retiring_)
    if (r.first == name) return true;
  return false;
}

// A service lets its dependants start once ready, a job (restart.on not
// "always") once completed.
bool Supervisor::dependency_met(const std::string& dep) const {
  auto it = status_.find(dep);
  const auto* c = config_.find(dep);
  if (it == status_.end() || c == nullptr) return false;
  return it->second.state == (c->restart.is_job() ? State::kCompleted : State::kReady);
}

// Why `c` stays pending: the first dependency that failed, or "".
std::string Supervisor::blocked_reason(const config::Component& c) const {
  for (const auto& d : c.depends_on) {
    auto it = status_.find(d);
    if (it == status_.end() || it->second.state != State::kFailed) continue;
    const auto* dep = config_.find(d);
    std::string why =
        std::string(dep && dep->restart.is_job() ? "job" : "dependency") + " '" + d + "' failed";
    if (!it->second.last_error.empty()) why += " (" + it->second.last_error + ")";
    return "waiting: " + why;
  }
  return "";
}

void Supervisor::start_ready_dependants() {
  if (stopping_ || !stream_ || !stream_->live()) return;
  // Highest priority first (stable: start order within a priority), so
  // the first start slots go to them.
  std::vector<const config::Component*> candidates;
  for (const auto& name : order_) {
    if (started_.count(name) || retiring(name)) continue;
    candidates.push_back(config_.find(name));
  }
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const auto* a, const auto* b) { return a->priority > b->priority; });
  for (const config::Component* c : candidates) {
    const std::string& name = c->name;
    bool deps_ready = true;
    for (const auto& d : c->depends_on) deps_ready = deps_ready && dependency_met(d);
    if (!deps_ready) {
      // Still pending: say so when a dependency failed (shown as its
      // last_error until it starts).
      ComponentStatus& st = status_[name];
      std::string reason = blocked_reason(*c);
      if (st.state == State::kPending && st.last_error != reason) {
        st.last_error = std::move(reason);
        st.changed_at = options_.time->wall_now();
        if (observer_) observer_(st);
      }
      continue;
    }
    started_.insert(name);
    components_[name].actor->start();
  }
}

void Supervisor::stop(std::function<void()> done) {
  asio::post(executor_, [self = shared_from_this(), done = std::move(done)]() mutable {
    if (!self->running_) {
      if (done) done();
      return;
    }
    if (!self->stopping_) {
      self->stopping_ = true;
      self->stop_deadline_ = self->options_.time->now() + self->config_.stop_budget;
      // Removed components still stopping: the budget bounds them too.
      for (auto& [id, r] : self->retiring_) r.second->stop(self->stop_deadline_);
    }
    self->stop_done_ = std::move(done);
    self->stop_unblocked();
  });
}

void Supervisor::stop_unblocked() {
  bool all_stopped = retiring_.empty();
  // Reverse order: a component stops once nothing that depends on it runs.
  for (auto it = order_.rbegin(); it != order_.rend(); ++it) {
    const std::string& name = *it;
    const State st = status_[name].state;
    const bool done = st == State::kStopped || (st == State::kPending && !started_.count(name));
    if (!done) all_stopped = false;
    if (stop_sent_.count(name)) continue;
    bool dependants_stopped = true;
    for (const auto& other : config_.components) {
      if (std::find(other.depends_on.begin(), other.depends_on.end(), name) ==
          other.depends_on.end())
        continue;
      const State os = status_[other.name].state;
      if (!(os == State::kStopped || (os == State::kPending && !started_.count(other.name))))
        dependants_stopped = false;
    }
    if (!dependants_stopped) continue;
    stop_sent_.insert(name);
    if (!done) components_[name].actor->stop(stop_deadline_);
  }
  if (all_stopped && stop_done_) {
    if (stream_) stream_->stop();
    if (reconcile_timer_) reconcile_timer_->cancel();
    auto done = std::move(stop_done_);
    stop_done_ = nullptr;
    running_ = false;
    done();
  }
}

void Supervisor::detach(std::function<void()> done) {
  asio::post(executor_, [self = shared_from_this(), done = std::move(done)] {
    if (self->stream_) self->stream_->stop();
    if (self->reconcile_timer_) self->reconcile_timer_->cancel();
    for (auto& [name, slot] : self->components_) slot.actor->detach();
    // Removed components mid-stop are let go too: the next herdd cleans
    // up what is left of them (it is not in its config).
    for (auto& [id, r] : self->retiring_) r.second->detach();
    self->running_ = false;
    self->stopping_ = true;  // no more starts
    if (done) done();
  });
}

// ------------------------------------------------------------ operator requests

Status Supervisor::check_request(const std::string& name) const {
  if (!components_.count(name)) return Status::NotFound("no component named '" + name + "'");
  if (stopping_) return Status::FailedPrecondition("herd is stopping; '" + name + "' stays down");
  return Status::Ok();
}

// An operator's stop of one component: its own grace, plus time for the
// cleanup calls.
TimePoint Supervisor::operator_stop_deadline(const std::string& name) const {
  return options_.time->now() + config_.find(name)->stop_grace + std::chrono::seconds(30);
}

void Supervisor::start_component(const std::string& name, std::function<void(Status)> done) {
  asio::post(executor_, [self = shared_from_this(), name, done = std::move(done)] {
    Status s = self->check_request(name);
    if (s.ok()) {
      // Started again by start_ready_dependants once its dependencies are
      // ready (at once when they are); a running component is unaffected.
      self->started_.erase(name);
      self->start_ready_dependants();
    }
    if (done) done(s);
  });
}

void Supervisor::stop_component(const std::string& name, std::function<void(Status)> done) {
  asio::post(executor_, [self = shared_from_this(), name, done = std::move(done)] {
    Status s = self->check_request(name);
    if (s.ok()) {
      self->started_.insert(name);  // not started again by dependency order
      self->components_[name].actor->stop(self->operator_stop_deadline(name));
    }
    if (done) done(s);
  });
}

void Supervisor::restart_component(const std::string& name, std::function<void(Status)> done) {
  asio::post(executor_, [self = shared_from_this(), name, done = std::move(done)] {
    Status s = self->check_request(name);
    if (s.ok()) {
      auto& actor = self->components_[name].actor;
      self->started_.insert(name);
      // The machine finishes the stop, then starts afresh (restart count
      // starts over: this is an operator's restart).
      actor->stop(self->operator_stop_deadline(name));
      actor->start();
    }
    if (done) done(s);
  });
}

// ------------------------------------------------------------ reload

void Supervisor::retire(const std::string& name, Slot slot, bool keep_task) {
  auto actor = slot.actor;
  retiring_[slot.id] = {name, actor};
  if (!keep_task) {
    actor->stop(options_.time->now() + config_.stop_budget);
    return;
  }
  std::weak_ptr<Supervisor> weak = shared_from_this();
  actor->detach([weak, ex = executor_, id = slot.id] {
    asio::post(ex, [weak, id] {
      auto sup = weak.lock();
      if (!sup) return;
      sup->retiring_.erase(id);
      sup->advance();
    });
  });
}

Supervisor::ReloadSummary Supervisor::apply(config::Config next) {
  ReloadSummary sum;
  if (stopping_) {
    sum.status = Status::FailedPrecondition("herd is stopping; the reload is not applied");
    return sum;
  }
  const bool paths_changed = next.data_path != config_.data_path;
  for (const auto& old : config_.components)
    if (!next.find(old.name)) sum.removed.push_back(old.name);
  std::vector<std::string> replaced;
  for (const auto& c : next.components) {
    const auto* old = config_.find(c.name);
    if (!old) {
      sum.added.push_back(c.name);
    } else if (paths_changed || !(*old == c)) {
      sum.changed.push_back(c.name);
    } else {
      sum.unchanged.push_back(c.name);
    }
  }
  config_ = std::move(next);
  order_ = config_.start_order();
  start_gate_->set_capacity(config_.effective_max_concurrent_starts());

  for (const auto& name : sum.removed) {
    Slot slot = std::move(components_[name]);
    components_.erase(name);
    status_.erase(name);
    started_.erase(name);
    stop_sent_.erase(name);
    retire(name, std::move(slot), /*keep_task=*/false);
  }
  for (const auto& name : sum.changed) {
    Slot old = std::move(components_[name]);
    // The new actor starts (in dependency order) once the old one is idle.
    retire(name, std::move(old), /*keep_task=*/true);
    Slot slot = make_actor(*config_.find(name));
    status_[name] = slot.actor->status();
    components_[name] = std::move(slot);
    started_.erase(name);
  }
  for (const auto& name : sum.added) {
    Slot slot = make_actor(*config_.find(name));
    status_[name] = slot.actor->status();
    components_[name] = std::move(slot);
  }
  // New and changed components report their (pending) state at once.
  if (observer_) {
    for (const auto& name : sum.changed) observer_(status_[name]);
    for (const auto& name : sum.added) observer_(status_[name]);
  }
  start_ready_dependants();
  return sum;
}

void Supervisor::reload(config::Config next, std::function<void(ReloadSummary)> done) {
  asio::post(executor_,
             [self = shared_from_this(), next = std::move(next), done = std::move(done)]() mutable {
               auto sum = self->apply(std::move(next));
               if (done) done(std::move(sum));
             });
}

// ------------------------------------------------------------ status

std::vector<ComponentStatus> Supervisor::status() const {
  std::vector<ComponentStatus> out;
  for (const auto& name : order_) {
    if (const ComponentStatus* s = status(name)) out.push_back(*s);
  }
  return out;
}

const ComponentStatus* Supervisor::status(const std::string& name) const {
  auto it = status_.find(name);
  if (it == status_.end()) return nullptr;
  // Probe attempts do not call the observer each time: take the latest.
  auto slot = components_.find(name);
  if (slot != components_.end() && slot->second.actor) {
    Component::ProbeResults probes = slot->second.actor->probe_results();
    it->second.last_ready_probe = std::move(probes.ready);
    it->second.last_liveness_probe = std::move(probes.liveness);
  }
  return &it->second;
}

}  // namespace herd::supervise
