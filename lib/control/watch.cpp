#include "control/watch.h"

#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "common/log_text.h"
#include "control/convert.h"
#include "control/limits.h"
#include "control/requests.h"
#include "control/socket.h"

namespace herd::control::internal {

namespace {

// The state of one Watch, shared by its reactor, the Backend's callbacks
// and the tracker. Every decision is made under mu_; the reactor is called
// outside it (gRPC may run OnWriteDone inline in StartWrite's caller). A
// StartWrite is issued only while no write is in flight and Finish is not
// called; Finish waits until no write is in flight and is called once.
// OnDone cannot precede Finish, so the reactor is alive at every call.
class WatchState final : public Abortable, public std::enable_shared_from_this<WatchState> {
 public:
  WatchState(grpc::ServerWriteReactor<v1::WatchEvent>* reactor, Backend* backend,
             std::shared_ptr<Tracker> tracker, std::string filter, size_t limit)
      : reactor_(reactor),
        backend_(backend),
        tracker_(std::move(tracker)),
        filter_(std::move(filter)),
        limit_(limit) {}

  void set_watch_id(uint64_t id) {
    std::lock_guard<std::mutex> l(mu_);
    watch_id_ = id;
    registered_ = true;
  }

  void on_change(const ComponentView& s) {
    if (!filter_.empty() && s.name != filter_) return;
    v1::ComponentStatus p = to_proto(s);
    {
      std::lock_guard<std::mutex> l(mu_);
      if (finish_ || finish_called_) return;
      if (!have_list_) {
        if (early_.size() >= limit_) {
          fall_behind();
        } else {
          early_.push_back(std::move(p));
        }
      } else {
        enqueue(std::move(p), false);
      }
    }
    pump();
  }

  void on_list(const Backend::StatusList& list) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (finish_ || finish_called_) return;
      have_list_ = true;
      std::unordered_map<std::string, v1::ComponentStatus> snapshot;
      for (const ComponentView& s : list) {
        if (!filter_.empty() && s.name != filter_) continue;
        v1::ComponentStatus p = to_proto(s);
        snapshot.emplace(p.name(), p);
        enqueue(std::move(p), true);
      }
      if (!filter_.empty() && snapshot.empty()) {
        finish_ = grpc::Status(grpc::StatusCode::NOT_FOUND,
                               "no component named '" + printable(filter_) + "'");
        queue_.clear();
      } else {
        // Changes seen while the list was being made: skip those the
        // snapshot already shows (older, or the same status).
        for (v1::ComponentStatus& p : early_) {
          auto it = snapshot.find(p.name());
          if (it != snapshot.end() &&
              (p.changed_at_unix_nano() < it->second.changed_at_unix_nano() ||
               p.SerializeAsString() == it->second.SerializeAsString())) {
            continue;
          }
          enqueue(std::move(p), false);
          if (finish_) break;
        }
      }
      early_.clear();
    }
    pump();
  }

  void request_finish(const grpc::Status& s) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (!finish_ && !finish_called_) {
        finish_ = s;
        queue_.clear();
        early_.clear();
      }
    }
    pump();
  }

  void abort(const grpc::Status& s) override { request_finish(s); }
  void release() override { unwatch_once(); }

  void write_done(bool ok) {
    {
      std::lock_guard<std::mutex> l(mu_);
      writing_ = false;
      if (!ok && !finish_ && !finish_called_) {
        finish_ = grpc::Status(grpc::StatusCode::CANCELLED, "the watcher went away");
        queue_.clear();
      }
    }
    pump();
  }

  void done() {
    unwatch_once();
    tracker_->remove(this);
  }

  // Starts the next write or the finish, if one is due.
  void pump() {
    bool write = false;
    grpc::Status status;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (finish_called_ || writing_) return;
      if (finish_) {
        finish_called_ = true;
        status = *finish_;
      } else if (!queue_.empty()) {
        in_flight_ = std::move(queue_.front());
        queue_.pop_front();
        writing_ = true;
        write = true;
      } else {
        return;
      }
    }
    if (write) {
      reactor_->StartWrite(&in_flight_);
    } else {
      reactor_->Finish(status);
    }
  }

 private:
  void enqueue(v1::ComponentStatus p, bool initial) {  // mu_ held
    if (!initial && queue_.size() >= limit_) {
      fall_behind();
      return;
    }
    v1::WatchEvent ev;
    *ev.mutable_component() = std::move(p);
    ev.set_initial(initial);
    queue_.push_back(std::move(ev));
  }

  void fall_behind() {  // mu_ held
    finish_ = grpc::Status(
        grpc::StatusCode::RESOURCE_EXHAUSTED,
        "the watcher fell more than " + std::to_string(limit_) + " changes behind; watch again");
    queue_.clear();
    early_.clear();
    spdlog::warn("control: a watcher fell more than {} changes behind; ending its stream", limit_);
  }

  void unwatch_once() {
    uint64_t id = 0;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (!registered_) return;
      registered_ = false;
      id = watch_id_;
    }
    backend_->unwatch(id);
  }

  std::mutex mu_;
  grpc::ServerWriteReactor<v1::WatchEvent>* reactor_;
  Backend* backend_;
  std::shared_ptr<Tracker> tracker_;
  const std::string filter_;
  const size_t limit_;

  uint64_t watch_id_ = 0;
  bool registered_ = false;
  bool have_list_ = false;
  std::vector<v1::ComponentStatus> early_;
  std::deque<v1::WatchEvent> queue_;
  v1::WatchEvent in_flight_;
  bool writing_ = false;
  std::optional<grpc::Status> finish_;
  bool finish_called_ = false;
};

class WatchReactor final : public grpc::ServerWriteReactor<v1::WatchEvent> {
 public:
  WatchReactor(Backend* backend, std::shared_ptr<Tracker> tracker, std::string filter, size_t limit)
      : state_(std::make_shared<WatchState>(this, backend, std::move(tracker), std::move(filter),
                                            limit)) {}

  const std::shared_ptr<WatchState>& state() const { return state_; }
  void hold(std::shared_ptr<Slots> slots) { slots_ = std::move(slots); }

  void OnWriteDone(bool ok) override { state_->write_done(ok); }
  void OnCancel() override {
    state_->request_finish(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
  }
  void OnDone() override {
    state_->done();
    if (slots_) slots_->give_back();
    delete this;
  }

 private:
  std::shared_ptr<WatchState> state_;
  std::shared_ptr<Slots> slots_;  // set while it holds a watcher slot
};

}  // namespace

grpc::ServerWriteReactor<v1::WatchEvent>* start_watch(grpc::CallbackServerContext* ctx,
                                                      const v1::WatchRequest* req, Backend* backend,
                                                      std::shared_ptr<Tracker> tracker,
                                                      std::shared_ptr<Slots> watchers,
                                                      size_t queue_limit) {
  mark(ctx);
  auto* reactor = new WatchReactor(backend, tracker, req->name(), queue_limit);
  std::shared_ptr<WatchState> state = reactor->state();
  if (grpc::Status s = check_watch(*req); !s.ok()) {
    state->request_finish(s);
    return reactor;
  }
  if (!watchers->try_take()) {
    uint64_t held = 0;
    static std::mutex log_mu;
    static LogLimiter log(kRefusalLogInterval);
    {
      std::lock_guard<std::mutex> l(log_mu);
      if (log.allow(&held)) {
        spdlog::warn(
            "control: refused a Watch: herdd serves at most {} watchers at once ({} more "
            "refused since the last warning)",
            watchers->max(), held);
      }
    }
    state->request_finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                       "herdd serves at most " + std::to_string(watchers->max()) +
                                           " watchers at once; try again when one has ended"));
    return reactor;
  }
  reactor->hold(watchers);
  if (!tracker->add(state)) {
    state->request_finish(shutting_down());
    return reactor;
  }
  std::weak_ptr<WatchState> weak = state;
  uint64_t id = backend->watch([weak](const ComponentView& s) {
    if (std::shared_ptr<WatchState> st = weak.lock()) st->on_change(s);
  });
  state->set_watch_id(id);
  backend->list([state](Backend::StatusList list) { state->on_list(list); });
  return reactor;
}

}  // namespace herd::control::internal
