#include "control/pull.h"

#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include <spdlog/spdlog.h>

#include "common/log_text.h"
#include "control/convert.h"
#include "control/limits.h"
#include "control/requests.h"
#include "control/socket.h"

namespace herd::control::internal {

namespace {

using PullWriter = grpc::ServerWriteReactor<v1::PullImageEvent>;

// One pull slot, given back when destroyed.
class PullSlot {
 public:
  explicit PullSlot(std::shared_ptr<Slots> s) : slots_(std::move(s)) {}
  ~PullSlot() { slots_->give_back(); }
  PullSlot(const PullSlot&) = delete;
  PullSlot& operator=(const PullSlot&) = delete;

 private:
  std::shared_ptr<Slots> slots_;
};

// The state of one PullImage stream, shared by its reactor, the Backend's
// callbacks, the tracker and the deadline. Every decision is made under
// mu_; the reactor and the Backend's Cancel are called outside it. As in
// watch.cpp: a StartWrite only while no write is in flight and Finish is
// not called; Finish once, when no write is in flight; OnDone cannot
// precede Finish, so the reactor is alive at every call.
class PullState final : public Abortable, public std::enable_shared_from_this<PullState> {
 public:
  PullState(PullWriter* reactor, std::shared_ptr<Tracker> tracker,
            std::shared_ptr<Deadlines> deadlines, std::string reference, size_t pending_limit)
      : reactor_(reactor),
        tracker_(std::move(tracker)),
        deadlines_(std::move(deadlines)),
        reference_(std::move(reference)),
        limit_(pending_limit) {}

  // The pull slot, given back once both the stream and the Backend are
  // done (whatever the Backend keeps of its callbacks).
  void hold(std::unique_ptr<PullSlot> slot) {
    std::lock_guard<std::mutex> l(mu_);
    slot_ = std::move(slot);
  }

  void set_deadline_id(Deadlines::Id id) {
    std::lock_guard<std::mutex> l(mu_);
    deadline_id_ = id;
  }

  // The Backend's handle; run at once when the stream ended meanwhile.
  void set_cancel(Backend::Cancel cancel) {
    bool run = false;
    {
      std::lock_guard<std::mutex> l(mu_);
      cancel_ = cancel;
      run = cancel_wanted_ && !backend_done_;
    }
    if (run && cancel) cancel();
  }

  void on_progress(const PullProgress& p) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (finish_now_ || finish_called_ || backend_done_) return;
      std::string key = p.kind + " " + p.digest;
      auto it = latest_.find(key);
      if (it != latest_.end()) {
        it->second = to_proto(p);  // only the latest state of a blob waits
      } else if (latest_.size() >= limit_) {
        ++dropped_;
        return;
      } else {
        latest_.emplace(key, to_proto(p));
        order_.push_back(std::move(key));
      }
    }
    pump();
  }

  void on_done(Result<PullSummary> r) {
    std::unique_ptr<PullSlot> slot;  // given back outside the lock
    {
      std::lock_guard<std::mutex> l(mu_);
      if (backend_done_) return;
      backend_done_ = true;
      if (stream_done_) slot = std::move(slot_);
      if (r.ok()) {
        result_ = to_proto(*r);
        end_ = grpc::Status::OK;
      } else {
        end_ = to_grpc(r.status());
      }
      if (dropped_ > 0) {
        spdlog::debug("control: pull of '{}': {} progress updates dropped (slow client)",
                      printable(reference_), dropped_);
      }
    }
    pump();
  }

  // Finish now (deadline, shutdown, client gone) and cancel the pull.
  void abort(const grpc::Status& s) override {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (!finish_now_ && !finish_called_) {
        finish_now_ = s;
        order_.clear();
        latest_.clear();
        result_.reset();
      }
    }
    cancel_pull();
    pump();
  }

  void write_done(bool ok) {
    {
      std::lock_guard<std::mutex> l(mu_);
      writing_ = false;
    }
    if (!ok) {
      abort(grpc::Status(grpc::StatusCode::CANCELLED, "the client went away"));
      return;
    }
    pump();
  }

  void done() {
    cancel_pull();  // a no-op once the Backend answered
    Deadlines::Id id;
    std::unique_ptr<PullSlot> slot;
    {
      std::lock_guard<std::mutex> l(mu_);
      id = deadline_id_;
      stream_done_ = true;
      if (backend_done_) slot = std::move(slot_);
    }
    slot.reset();
    if (id != 0) deadlines_->remove(id);
    std::shared_ptr<Tracker> tracker = tracker_;
    tracker->remove(this);
  }

  // Starts the next write or the finish, if one is due.
  void pump() {
    bool write = false;
    grpc::Status status;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (finish_called_ || writing_) return;
      if (finish_now_) {
        finish_called_ = true;
        status = *finish_now_;
      } else if (!order_.empty()) {
        auto it = latest_.find(order_.front());
        in_flight_.Clear();
        *in_flight_.mutable_progress() = std::move(it->second);
        latest_.erase(it);
        order_.pop_front();
        writing_ = write = true;
      } else if (result_) {
        in_flight_.Clear();
        *in_flight_.mutable_result() = std::move(*result_);
        result_.reset();
        writing_ = write = true;
      } else if (end_) {
        finish_called_ = true;
        status = *end_;
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
  void cancel_pull() {
    Backend::Cancel cancel;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (backend_done_ || cancel_wanted_) return;
      cancel_wanted_ = true;
      cancel = cancel_;
    }
    if (cancel) cancel();
  }

  std::mutex mu_;
  PullWriter* reactor_;
  std::shared_ptr<Tracker> tracker_;
  std::shared_ptr<Deadlines> deadlines_;
  const std::string reference_;
  const size_t limit_;

  Deadlines::Id deadline_id_ = 0;
  Backend::Cancel cancel_;
  bool cancel_wanted_ = false;
  bool backend_done_ = false;
  bool stream_done_ = false;  // OnDone ran
  std::unique_ptr<PullSlot> slot_;
  // Waiting progress: the latest state per blob, in first-waited order.
  std::deque<std::string> order_;
  std::unordered_map<std::string, v1::BlobProgress> latest_;
  uint64_t dropped_ = 0;
  std::optional<v1::PullResult> result_;
  std::optional<grpc::Status> end_;         // the Backend's answer: after the queue
  std::optional<grpc::Status> finish_now_;  // abort: at once, the queue dropped
  v1::PullImageEvent in_flight_;
  bool writing_ = false;
  bool finish_called_ = false;
};

class PullReactor final : public PullWriter {
 public:
  PullReactor(std::shared_ptr<Tracker> tracker, std::shared_ptr<Deadlines> deadlines,
              std::string reference, size_t limit)
      : state_(std::make_shared<PullState>(this, std::move(tracker), std::move(deadlines),
                                           std::move(reference), limit)) {}

  const std::shared_ptr<PullState>& state() const { return state_; }

  void OnWriteDone(bool ok) override { state_->write_done(ok); }
  void OnCancel() override {
    state_->abort(grpc::Status(grpc::StatusCode::CANCELLED, "the client cancelled the pull"));
  }
  void OnDone() override {
    state_->done();
    delete this;
  }

 private:
  std::shared_ptr<PullState> state_;
};

LogLimiter& pull_refusal_log() {
  static LogLimiter log(kRefusalLogInterval);
  return log;
}
std::mutex pull_refusal_mu;

}  // namespace

grpc::ServerWriteReactor<v1::PullImageEvent>* start_pull(grpc::CallbackServerContext* ctx,
                                                         const v1::PullImageRequest* req,
                                                         const ServiceConfig& c) {
  mark(ctx);
  auto* reactor = new PullReactor(c.tracker, c.deadlines, req->reference(), c.pull_pending_blobs);
  std::shared_ptr<PullState> state = reactor->state();
  if (grpc::Status s = check_pull(*req); !s.ok()) {
    state->abort(s);
    return reactor;
  }
  if (!c.pulls->try_take()) {
    uint64_t held = 0;
    {
      std::lock_guard<std::mutex> l(pull_refusal_mu);
      if (pull_refusal_log().allow(&held)) {
        spdlog::warn(
            "control: refused a pull: {} run already ({} more refused since the last warning)",
            c.pulls->max(), held);
      }
    }
    state->abort(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                              "herdd runs at most " + std::to_string(c.pulls->max()) +
                                  " pulls at once; try again when one has finished"));
    return reactor;
  }
  if (!c.tracker->add(state)) {
    c.pulls->give_back();
    state->abort(shutting_down());
    return reactor;
  }
  state->hold(std::make_unique<PullSlot>(c.pulls));
  state->set_deadline_id(c.deadlines->add(Deadlines::Clock::now() + c.pull_deadline,
                                          std::weak_ptr<Abortable>(state),
                                          server_deadline_exceeded("the pull", c.pull_deadline)));
  spdlog::info("control: pull of '{}' requested", printable(req->reference()));
  std::weak_ptr<PullState> weak = state;
  Backend::Cancel cancel = c.backend->pull_image(
      req->reference(),
      [weak](const PullProgress& p) {
        if (std::shared_ptr<PullState> st = weak.lock()) st->on_progress(p);
      },
      [state](Result<PullSummary> r) { state->on_done(std::move(r)); });
  state->set_cancel(std::move(cancel));
  return reactor;
}

}  // namespace herd::control::internal
