// Internal to lib/control: the bookkeeping of calls in flight, so that
// shutdown() and the server-side deadlines can finish a call without the
// Backend.
//
// - Abortable: one call that can be finished from outside.
// - Tracker: every live call; close() (shutdown) hands them all over once.
// - Deadlines: one thread of the server's own that finishes a call whose
//   server deadline passed (unary calls, imports; never Watch). It does not
//   depend on herdd's event loop, so a stuck loop still gets answers.
// - UnaryCall: one unary RPC waiting for its Backend callback; whoever
//   comes first (the callback, the deadline, shutdown) finishes the
//   reactor, the others do nothing.
//
// Thread-safety: every class here is safe to use from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <grpcpp/grpcpp.h>

namespace herd::control::internal {

class Abortable {
 public:
  virtual ~Abortable() = default;
  // Finish the RPC now with `s`, unless it is finished already.
  virtual void abort(const grpc::Status& s) = 0;
  // After the gRPC servers are down: drop what the call holds of the
  // Backend (a Watch unwatches).
  virtual void release() {}
};

class Tracker {
 public:
  bool add(const std::shared_ptr<Abortable>& c);
  void remove(Abortable* c);
  // Closes the tracker (add() fails from now on) and returns every call.
  std::vector<std::shared_ptr<Abortable>> close();

 private:
  std::mutex mu_;
  bool closed_ = false;
  std::unordered_map<Abortable*, std::shared_ptr<Abortable>> live_;
};

class Deadlines {
 public:
  using Clock = std::chrono::steady_clock;
  using Id = uint64_t;

  // At `at`, call->abort(status) if the call still exists.
  Id add(Clock::time_point at, std::weak_ptr<Abortable> call, grpc::Status status);
  // The call finished: forget it. Unknown ids are fine.
  void remove(Id id);
  size_t pending();

  // The loop of DeadlineThread; returns once stop() was called.
  void run();
  void stop();

 private:
  struct Entry {
    Clock::time_point at;
    std::weak_ptr<Abortable> call;
    grpc::Status status;
  };

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  Id next_ = 0;
  std::map<Id, Entry> entries_;
  std::set<std::pair<Clock::time_point, Id>> order_;
};

// The thread that runs a Deadlines; it holds the Deadlines itself, so the
// calls' references may go away on any thread, that one included. The
// destructor stops and joins it (never from the thread itself: only the
// server owns it).
class DeadlineThread {
 public:
  explicit DeadlineThread(std::shared_ptr<Deadlines> d) : d_(d), thread_([d] { d->run(); }) {}
  ~DeadlineThread() {
    d_->stop();
    thread_.join();
  }
  DeadlineThread(const DeadlineThread&) = delete;
  DeadlineThread& operator=(const DeadlineThread&) = delete;

 private:
  std::shared_ptr<Deadlines> d_;
  std::thread thread_;
};

// A bounded count of things in use (watchers, imports).
class Slots {
 public:
  explicit Slots(size_t max) : max_(max) {}
  bool try_take() {
    std::lock_guard<std::mutex> l(mu_);
    if (used_ >= max_) return false;
    ++used_;
    return true;
  }
  void give_back() {
    std::lock_guard<std::mutex> l(mu_);
    if (used_ > 0) --used_;
  }
  size_t used() {
    std::lock_guard<std::mutex> l(mu_);
    return used_;
  }
  size_t max() const { return max_; }

 private:
  std::mutex mu_;
  const size_t max_;
  size_t used_ = 0;
};

// UNAVAILABLE "herdd is shutting down".
grpc::Status shutting_down();

// "herdd did not complete <what> within <d> (its own deadline)".
grpc::Status server_deadline_exceeded(const char* what, std::chrono::milliseconds d);

// A call with one answer: a unary RPC (Reactor = grpc::ServerUnaryReactor)
// or a client stream (grpc::ServerReadReactor<Req>).
template <class Resp, class Reactor = grpc::ServerUnaryReactor>
class UnaryCall final : public Abortable {
 public:
  UnaryCall(Reactor* reactor, Resp* resp, std::shared_ptr<Tracker> tracker,
            std::shared_ptr<Deadlines> deadlines)
      : reactor_(reactor),
        resp_(resp),
        tracker_(std::move(tracker)),
        deadlines_(std::move(deadlines)) {}

  void set_deadline_id(Deadlines::Id id) {
    std::lock_guard<std::mutex> l(mu_);
    deadline_id_ = id;
  }

  // The Backend's answer: `r` becomes the response unless the call is
  // finished already.
  void complete(grpc::Status s, Resp r) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (finished_) return;
      finished_ = true;
      if (s.ok()) *resp_ = std::move(r);
    }
    finish(s);
  }

  void abort(const grpc::Status& s) override {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (finished_) return;
      finished_ = true;
    }
    finish(s);
  }

  bool finished() {
    std::lock_guard<std::mutex> l(mu_);
    return finished_;
  }

 private:
  void finish(const grpc::Status& s) {
    Deadlines::Id id;
    {
      std::lock_guard<std::mutex> l(mu_);
      id = deadline_id_;
    }
    if (id != 0) deadlines_->remove(id);
    reactor_->Finish(s);
    // Last: the tracker's reference may be the last one to this call.
    std::shared_ptr<Tracker> tracker = tracker_;
    tracker->remove(this);
  }

  std::mutex mu_;
  bool finished_ = false;
  Deadlines::Id deadline_id_ = 0;
  Reactor* reactor_;
  Resp* resp_;
  std::shared_ptr<Tracker> tracker_;
  std::shared_ptr<Deadlines> deadlines_;
};

}  // namespace herd::control::internal
