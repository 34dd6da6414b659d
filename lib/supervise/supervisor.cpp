#include "supervise/supervisor.h"

#include <random>

namespace herd::supervise {

std::shared_ptr<Supervisor> Supervisor::create(asio::any_io_executor executor,
                                               containerd::Client& client,
                                               config::Config config, Observer observer,
                                               Options options) {
  auto sup = std::shared_ptr<Supervisor>(new Supervisor(std::move(executor), client,
                                                        std::move(config), std::move(observer),
                                                        std::move(options)));
  sup->create_actors();
  return sup;
}

// The actors exist from the start (pending), so status() lists every
// configured component at once.
void Supervisor::create_actors() {
  std::weak_ptr<Supervisor> weak = shared_from_this();
  for (const auto& c : config_.components) {
    Component::Env env;
    env.client = &client_;
    env.data_path = config_.data_path;
    env.call_timeout = options_.call_timeout;
    env.random = options_.random;
    env.output_logger = options_.output_logger;
    if (!env.random) {
      // Restart jitter (when a policy asks for it) from a per-actor engine.
      auto engine = std::make_shared<std::mt19937_64>(std::random_device{}());
      env.random = [engine] {
        return std::uniform_real_distribution<double>(0.0, 1.0)(*engine);
      };
    }
    auto actor = Component::create(asio::make_strand(executor_), std::move(env), c,
                                   [weak, ex = executor_](const ComponentStatus& s) {
                                     asio::post(ex, [weak, s] {
                                       if (auto sup = weak.lock()) sup->on_status(s);
                                     });
                                   });
    status_[c.name] = actor->status();
    components_[c.name] = std::move(actor);
  }
}

Supervisor::Supervisor(asio::any_io_executor executor, containerd::Client& client,
                       config::Config config, Observer observer, Options options)
    : executor_(asio::make_strand(executor)),
      client_(client),
      config_(std::move(config)),
      observer_(std::move(observer)),
      options_(std::move(options)) {
  order_ = config_.start_order();
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
      auto it = sup->components_.find(e.container_id);
      if (it != sup->components_.end()) it->second->on_task_event(e);
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
      for (auto& [name, c] : sup->components_) c->on_stream_gap();
    };
    self->stream_ = containerd::EventStream::create(self->client_, self->executor_, {},
                                                    std::move(h));
    self->stream_->start();
  });
}

void Supervisor::on_status(const ComponentStatus& s) {
  status_[s.name] = s;
  if (observer_) observer_(s);
  if (stopping_) {
    stop_unblocked();
  } else {
    start_ready_dependants();
  }
}

void Supervisor::start_ready_dependants() {
  if (stopping_ || !stream_ || !stream_->live()) return;
  for (const auto& name : order_) {
    if (started_.count(name)) continue;
    const auto* c = config_.find(name);
    bool deps_ready = true;
    for (const auto& d : c->depends_on) {
      auto it = status_.find(d);
      if (it == status_.end() || it->second.state != State::kReady) deps_ready = false;
    }
    if (!deps_ready) continue;
    started_.insert(name);
    components_[name]->start();
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
      self->stop_deadline_ = Clock::now() + self->config_.stop_budget;
    }
    self->stop_done_ = std::move(done);
    self->stop_unblocked();
  });
}

void Supervisor::stop_unblocked() {
  bool all_stopped = true;
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
    if (!done) components_[name]->stop(stop_deadline_);
  }
  if (all_stopped && stop_done_) {
    if (stream_) stream_->stop();
    auto done = std::move(stop_done_);
    stop_done_ = nullptr;
    running_ = false;
    done();
  }
}

void Supervisor::detach(std::function<void()> done) {
  asio::post(executor_, [self = shared_from_this(), done = std::move(done)] {
    if (self->stream_) self->stream_->stop();
    for (auto& [name, c] : self->components_) c->detach();
    self->running_ = false;
    self->stopping_ = true;  // no more starts
    if (done) done();
  });
}

std::vector<ComponentStatus> Supervisor::status() const {
  std::vector<ComponentStatus> out;
  for (const auto& name : order_) {
    auto it = status_.find(name);
    if (it != status_.end()) out.push_back(it->second);
  }
  return out;
}

const ComponentStatus* Supervisor::status(const std::string& name) const {
  auto it = status_.find(name);
  return it == status_.end() ? nullptr : &it->second;
}

}  // namespace herd::supervise
