// Fakes for driving Component and Supervisor without containerd or sleeps:
// - FakeTime: a clock that moves only on advance(); its timers fire then.
// - FakeRuntime: ContainerOps that record every call; an operation either
//   completes at once with a plausible result (the default) or, for the ops
//   named in `manual`, waits until the test resolves it (ok/fail/throw).
//   Its event subscription lets the test report live/gap and task exits.
// - settle(io): run every handler that is ready, and nothing that waits.
//
// Everything runs on one io_context that the test polls; a waiting op is a
// steady_timer at time_point::max() that resolving cancels, so no real time
// passes anywhere.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/asio.h"
#include "supervise/container_ops.h"
#include "supervise/time_source.h"

namespace herd::supervise::fakes {

inline void settle(asio::io_context& io) {
  io.restart();
  while (io.poll() > 0) {
  }
}

class FakeTime final : public TimeSource {
 public:
  FakeTime() = default;
  ~FakeTime() override { clear(); }
  // Drops every armed timer. An entry may hold the last reference to an
  // actor, whose timer then cancels itself here: the map is emptied before
  // the entries are destroyed. Tests call it before their io_context goes,
  // since the entries hold that context's executors.
  void clear() {
    auto doomed = std::move(armed_);
    armed_.clear();
    doomed.clear();
  }

  std::chrono::steady_clock::time_point now() const override { return now_; }
  std::chrono::system_clock::time_point wall_now() const override {
    return std::chrono::system_clock::time_point(std::chrono::hours(24 * 365 * 50)) +
           std::chrono::duration_cast<std::chrono::system_clock::duration>(now_ - start_);
  }
  std::unique_ptr<Timer> timer(asio::any_io_executor executor) override {
    return std::make_unique<FakeTimer>(*this, std::move(executor));
  }

  // Moves the clock and posts every timer that is due by then.
  void advance(std::chrono::milliseconds d) {
    now_ += d;
    for (auto it = armed_.begin(); it != armed_.end();) {
      if (it->second.at <= now_) {
        asio::post(it->second.executor, std::move(it->second.fn));
        it = armed_.erase(it);
      } else {
        ++it;
      }
    }
  }
  // The delay of the soonest armed timer (nullopt: none armed).
  std::optional<std::chrono::milliseconds> next_timer() const {
    std::optional<std::chrono::milliseconds> best;
    for (const auto& [id, e] : armed_) {
      auto d = std::chrono::duration_cast<std::chrono::milliseconds>(e.at - now_);
      if (!best || d < *best) best = d;
    }
    return best;
  }
  size_t armed() const { return armed_.size(); }

 private:
  struct Entry {
    std::chrono::steady_clock::time_point at;
    asio::any_io_executor executor;
    std::function<void()> fn;
  };
  class FakeTimer final : public Timer {
   public:
    FakeTimer(FakeTime& t, asio::any_io_executor ex) : t_(t), ex_(std::move(ex)), id_(++t.ids_) {}
    ~FakeTimer() override { cancel(); }
    void arm(std::chrono::milliseconds delay, std::function<void()> fn) override {
      t_.armed_[id_] = Entry{t_.now_ + delay, ex_, std::move(fn)};
    }
    void cancel() override { t_.armed_.erase(id_); }

   private:
    FakeTime& t_;
    asio::any_io_executor ex_;
    uint64_t id_;
  };

  std::chrono::steady_clock::time_point start_ =
      std::chrono::steady_clock::time_point(std::chrono::hours(1000));
  std::chrono::steady_clock::time_point now_ = start_;
  uint64_t ids_ = 0;
  std::map<uint64_t, Entry> armed_;
};

// One operation call of a fake actor.
struct Call {
  std::string component;
  std::string op;       // prepare, start, stop, kill, reconcile
  uint64_t ops_id = 0;  // which ContainerOps instance (a new actor has a new one)
  std::shared_ptr<Canceller> cancel;
  std::unique_ptr<asio::steady_timer> gate;  // manual calls wait on it
  bool done = false;
  // The outcome, set by resolve():
  Status status;
  bool adopted = false;
  uint32_t pid = 0;
  bool running = true;     // reconcile
  uint32_t exit_code = 0;  // reconcile
  bool throws = false;
  // stop: the deadline the actor reported when the stop began, and last.
  std::function<TimePoint()> deadline;
};

class FakeRuntime final : public Runtime {
 public:
  // Ops that wait for the test; the others complete at once.
  std::set<std::string> manual;
  // Ops that throw (after waiting, for manual ones).
  std::set<std::string> throwing;
  // What a reconcile that completes at once answers.
  bool reconcile_running = true;
  // Every call, in order.
  std::deque<std::shared_ptr<Call>> calls;

  std::unique_ptr<ContainerOps> ops(const config::Component& c,
                                    asio::any_io_executor strand) override {
    return std::make_unique<Ops>(*this, c.name, std::move(strand), ++ops_ids_);
  }
  // The periodic reconcile's list: answers task_list (nullopt: no answer).
  std::optional<TaskList> task_list;
  size_t lists = 0;
  asio::awaitable<std::optional<TaskList>> list_tasks(asio::any_io_executor) override {
    ++lists;
    co_return task_list;
  }
  std::shared_ptr<EventSubscription> subscribe(asio::any_io_executor executor,
                                               containerd::EventStream::Handlers h) override {
    auto s = std::make_shared<Subscription>(executor, std::move(h));
    subscription = s;
    return s;
  }

  // The oldest call of `component` and `op` not yet resolved (null if none).
  std::shared_ptr<Call> pending(const std::string& component, const std::string& op) const {
    for (const auto& c : calls)
      if (!c->done && c->component == component && c->op == op) return c;
    return nullptr;
  }
  // How many calls of `component` and `op` were made.
  size_t count(const std::string& component, const std::string& op) const {
    size_t n = 0;
    for (const auto& c : calls)
      if (c->component == component && c->op == op) ++n;
    return n;
  }
  // The op names of `component`'s calls, in order.
  std::vector<std::string> ops_of(const std::string& component) const {
    std::vector<std::string> v;
    for (const auto& c : calls)
      if (c->component == component) v.push_back(c->op);
    return v;
  }
  // Index in `calls` of the first call of component/op (-1 if none).
  int first(const std::string& component, const std::string& op) const {
    for (size_t i = 0; i < calls.size(); ++i)
      if (calls[i]->component == component && calls[i]->op == op) return static_cast<int>(i);
    return -1;
  }

  // Lets a waiting call finish with its outcome fields as set.
  static void release(const std::shared_ptr<Call>& c) {
    if (c && c->gate) c->gate->cancel();
  }
  static void ok(const std::shared_ptr<Call>& c, uint32_t pid = 0) {
    c->status = Status::Ok();
    c->pid = pid;
    release(c);
  }
  static void fail(const std::shared_ptr<Call>& c, const std::string& why) {
    c->status = Status::Unavailable(why);
    release(c);
  }

  // The events subscription of the supervisor under test.
  class Subscription final : public EventSubscription {
   public:
    Subscription(asio::any_io_executor ex, containerd::EventStream::Handlers h)
        : ex_(std::move(ex)), h_(std::move(h)) {}
    void start() override { started = true; }
    void stop() override { stopped = true; }
    bool live() const override { return live_ && !stopped; }
    // Reports a (re)subscription proven live: first == false is a gap.
    void go_live(bool first) {
      asio::post(ex_, [this, first] {
        if (stopped) return;
        live_ = true;
        if (h_.on_live) h_.on_live(first);
      });
    }
    void go_down() {
      asio::post(ex_, [this] {
        live_ = false;
        if (h_.on_down) h_.on_down(Status::Unavailable("stream broken"));
      });
    }
    void exit(const std::string& container, uint32_t pid, uint32_t code) {
      containerd::TaskEvent e;
      e.kind = containerd::TaskEvent::Kind::kExit;
      e.container_id = container;
      e.exec_id = container;
      e.pid = pid;
      e.exit_status = code;
      asio::post(ex_, [this, e] {
        if (!stopped && h_.on_event) h_.on_event(e);
      });
    }
    bool started = false;
    bool stopped = false;

   private:
    asio::any_io_executor ex_;
    containerd::EventStream::Handlers h_;
    bool live_ = false;
  };
  std::shared_ptr<Subscription> subscription;

  uint32_t next_pid = 100;

 private:
  class Ops final : public ContainerOps {
   public:
    Ops(FakeRuntime& rt, std::string name, asio::any_io_executor ex, uint64_t id)
        : rt_(rt), name_(std::move(name)), ex_(std::move(ex)), id_(id) {}

    asio::awaitable<Result<Prepared>> prepare(std::shared_ptr<Canceller> cancel) override {
      auto c = co_await call("prepare", cancel);
      if (!c->status.ok()) co_return c->status;
      co_return Prepared{c->adopted, c->pid};
    }
    asio::awaitable<Result<uint32_t>> start_task(std::shared_ptr<Canceller> cancel) override {
      auto c = co_await call("start", cancel, [this](Call& k) { k.pid = rt_.next_pid++; });
      if (!c->status.ok()) co_return c->status;
      co_return c->pid;
    }
    asio::awaitable<Status> stop(StopControl control) override {
      auto c = co_await call("stop", nullptr, {}, control.deadline);
      co_return c->status;
    }
    asio::awaitable<Status> kill() override {
      auto c = co_await call("kill", nullptr);
      co_return c->status;
    }
    asio::awaitable<ExecOutcome> exec(std::vector<std::string> command,
                                      std::chrono::milliseconds timeout,
                                      std::shared_ptr<Canceller> cancel) override {
      (void)command;
      (void)timeout;
      auto c = co_await call("exec", cancel, [](Call& k) { k.exit_code = 0; });
      ExecOutcome out;
      out.ran = c->status.ok();
      out.exit_code = c->exit_code;
      if (!c->status.ok()) out.error = c->status.to_string();
      co_return out;
    }
    asio::awaitable<Status> terminate(std::shared_ptr<Canceller> cancel) override {
      auto c = co_await call("terminate", cancel);
      co_return c->status;
    }
    asio::awaitable<std::optional<ReconcileResult>> reconcile(
        uint32_t pid, std::function<bool()> still_wanted) override {
      auto c = co_await call("reconcile", nullptr, [this, pid](Call& k) {
        k.running = rt_.reconcile_running;
        k.pid = pid;
        k.exit_code = k.running ? 0 : 137;
      });
      if (still_wanted && !still_wanted()) co_return std::nullopt;
      ReconcileResult r;
      r.running = c->running;
      r.pid = c->pid;
      r.exit_code = c->exit_code;
      co_return r;
    }

   private:
    // Records the call; a manual op waits until the test releases it, an
    // automatic one gets `fill`'s outcome at once. Throws if asked to.
    asio::awaitable<std::shared_ptr<Call>> call(const std::string& op,
                                                std::shared_ptr<Canceller> cancel,
                                                std::function<void(Call&)> fill = {},
                                                std::function<TimePoint()> deadline = {}) {
      auto c = std::make_shared<Call>();
      c->component = name_;
      c->op = op;
      c->ops_id = id_;
      c->cancel = std::move(cancel);
      c->deadline = std::move(deadline);
      c->throws = rt_.throwing.count(op) > 0;
      rt_.calls.push_back(c);
      if (rt_.manual.count(op)) {
        c->gate = std::make_unique<asio::steady_timer>(ex_);
        c->gate->expires_at(asio::steady_timer::time_point::max());
        boost::system::error_code ec;
        co_await c->gate->async_wait(asio::redirect_error(asio::use_awaitable, ec));
      } else if (fill) {
        fill(*c);
      }
      c->done = true;
      if (c->throws) throw std::runtime_error("fake " + op + " blew up");
      co_return c;
    }

    FakeRuntime& rt_;
    std::string name_;
    asio::any_io_executor ex_;
    uint64_t id_;
  };
  uint64_t ops_ids_ = 0;
};

}  // namespace herd::supervise::fakes
