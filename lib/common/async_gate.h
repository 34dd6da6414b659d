// herd::AsyncGate: at most `capacity` holders at a time (1 by default),
// waiters admitted highest priority first and first come first served
// within a priority, for coroutines on any executor of one io_context.
//
//   auto pass = co_await gate->enter(deadline, entry, priority);
//   if (!pass) ... timed out or cancelled (nothing is held);
//   ... the work ...                  // the slot is released when `pass` dies
//
// Uses:
// - A shim group's task creates, capacity 1 (containerd_ops.h): containerd's
//   runc shim creates the tasks of one shim group one at a time (its Create
//   holds the shim's lock), so 100 concurrent creates in one group queue
//   inside the shim and the later ones exceed their deadline; a create that
//   times out there leaves its bundle directory behind, and every later
//   create of that container fails ("file exists") until containerd
//   restarts. Queuing in herd instead gives each create its whole deadline.
// - The supervisor's start admission, capacity `max_concurrent_starts`,
//   priority = the component's `priority` (component.h).
//
// Every wait is bounded: enter() returns an empty Pass at `deadline`, or at
// once after `cancel` (a function the caller arranges to be called, from any
// thread, when its operation is cancelled; see Entry::cancel). A waiter
// resumes on its own executor, which must be a strand (or run on one
// thread): an entry's fields are touched there only. The queue is guarded
// by a mutex; the gate is held by shared_ptr and outlives its passes.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>

#include "common/asio.h"

namespace herd {

class AsyncGate : public std::enable_shared_from_this<AsyncGate> {
 public:
  // `capacity` >= 1 holders at once. Made by shared_ptr (enter() needs it).
  explicit AsyncGate(std::size_t capacity = 1) : capacity_(capacity < 1 ? 1 : capacity) {}

  // Held while alive; empty when the wait timed out or was cancelled.
  class Pass {
   public:
    Pass() = default;
    explicit Pass(std::shared_ptr<AsyncGate> gate) : gate_(std::move(gate)) {}
    Pass(Pass&&) noexcept = default;
    Pass& operator=(Pass&& o) noexcept {
      release();
      gate_ = std::move(o.gate_);
      return *this;
    }
    ~Pass() { release(); }
    explicit operator bool() const { return gate_ != nullptr; }

   private:
    void release() {
      if (auto g = std::move(gate_)) g->leave();
    }
    std::shared_ptr<AsyncGate> gate_;
  };

  // One waiter. cancel() may be called from any thread, any number of
  // times; it ends the wait (enter() returns an empty Pass).
  class Entry {
   public:
    // `ex`: the executor (strand) of the coroutine that will enter().
    static std::shared_ptr<Entry> make(asio::any_io_executor ex) {
      auto e = std::shared_ptr<Entry>(new Entry(std::move(ex)));
      e->self_ = e;
      return e;
    }
    void cancel() {
      cancel_requested_ = true;
      asio::post(timer_.get_executor(), [self = self_.lock()] {
        if (self) self->wake(false);
      });
    }

   private:
    friend class AsyncGate;
    // Runs on the waiter's executor: the wait ends now (admitted or not).
    void wake(bool admitted) {
      if (done_) return;
      done_ = true;
      admitted_ = admitted;
      timer_.expires_at(asio::steady_timer::time_point::min());  // ends a pending wait
    }
    explicit Entry(asio::any_io_executor ex) : timer_(std::move(ex)) {}
    asio::steady_timer timer_;
    std::weak_ptr<Entry> self_;
    std::atomic<bool> cancel_requested_{false};
    bool done_ = false;  // on the waiter's executor only
    bool admitted_ = false;
    bool queued_ = false;  // GUARDED_BY(gate mu_)
    int priority_ = 0;     // GUARDED_BY(gate mu_)
  };

  // Waits until a slot is free (higher `priority` first, then FIFO),
  // until `deadline`, or until `entry->cancel()` (the caller keeps the
  // entry to cancel it). `entry` is made on the caller's executor and used
  // for one enter() only.
  asio::awaitable<Pass> enter(std::chrono::steady_clock::time_point deadline,
                              std::shared_ptr<Entry> entry, int priority = 0) {
    {
      std::lock_guard lock(mu_);
      if (holders_ < capacity_ && queue_.empty()) {
        ++holders_;
        co_return Pass(shared_from_this());
      }
      entry->queued_ = true;
      entry->priority_ = priority;
      auto at = queue_.begin();
      while (at != queue_.end() && (*at)->priority_ >= priority) ++at;
      queue_.insert(at, entry);
    }
    entry->timer_.expires_at(deadline);
    if (entry->cancel_requested_) entry->done_ = true;
    boost::system::error_code ec;
    while (!entry->done_) {
      co_await entry->timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (!entry->done_ && entry->timer_.expiry() <= asio::steady_timer::clock_type::now()) {
        entry->done_ = true;  // the deadline
      }
    }
    if (entry->admitted_) co_return Pass(shared_from_this());
    // Timed out or cancelled: leave the queue. When leave() picked this
    // entry at the same moment, its handler (posted to this executor, so it
    // runs after this) sees done_ and passes the gate on.
    {
      std::lock_guard lock(mu_);
      if (entry->queued_) {
        for (auto it = queue_.begin(); it != queue_.end(); ++it) {
          if (*it == entry) {
            queue_.erase(it);
            break;
          }
        }
        entry->queued_ = false;
      }
    }
    co_return Pass();
  }

  bool held() const {
    std::lock_guard lock(mu_);
    return holders_ > 0;
  }
  std::size_t holders() const {
    std::lock_guard lock(mu_);
    return holders_;
  }
  std::size_t waiting() const {
    std::lock_guard lock(mu_);
    return queue_.size();
  }
  // A new capacity (>= 1; a reload's max_concurrent_starts). Waiters are
  // admitted into new slots at once; with fewer slots, holders keep theirs
  // and the next admissions wait until the count is below the new capacity.
  void set_capacity(std::size_t capacity) {
    std::size_t admit = 0;
    {
      std::lock_guard lock(mu_);
      capacity_ = capacity < 1 ? 1 : capacity;
      while (holders_ + admit < capacity_ && admit < queue_.size()) ++admit;
      holders_ += admit;  // each admitted below leaves through leave()
    }
    for (std::size_t i = 0; i < admit; ++i) leave();
  }

 private:
  // A holder leaves: the next waiter (if any) is admitted on its own
  // executor and the slot stays held on its behalf; with more holders than
  // the capacity (it was lowered), the slot goes instead.
  void leave() {
    std::shared_ptr<Entry> next;
    {
      std::lock_guard lock(mu_);
      if (queue_.empty() || holders_ > capacity_) {
        --holders_;
        return;
      }
      next = std::move(queue_.front());
      queue_.pop_front();
      next->queued_ = false;
    }
    asio::post(next->timer_.get_executor(), [self = shared_from_this(), next] {
      if (next->done_) {
        self->leave();  // it gave up meanwhile: the next one
      } else {
        next->wake(true);
      }
    });
  }

  mutable std::mutex mu_;
  std::size_t capacity_;                      // GUARDED_BY(mu_)
  std::size_t holders_ = 0;                   // GUARDED_BY(mu_)
  std::deque<std::shared_ptr<Entry>> queue_;  // GUARDED_BY(mu_), by priority, then FIFO
};

}  // namespace herd
