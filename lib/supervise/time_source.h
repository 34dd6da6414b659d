// herd::supervise::TimeSource: where the component actors and the
// supervisor read the time and arm their timers.
//
// herdd uses steady_time() (the steady and system clocks, Asio timers).
// Unit tests use a fake that advances only when the test says so, so the
// actor's backoff, stop deadlines and status timestamps are driven without
// sleeping (tests/unit/supervise/fakes.h).
//
// Timer contract: arm(d, fn) runs fn on the timer's executor once d has
// passed, unless cancel() or another arm() comes first; a cancelled or
// re-armed timer's old fn never runs, even when its expiry was already
// queued (the generation check below, which a bare steady_timer lacks).
// Destroying the Timer cancels it.
//
// Strand: a Timer belongs to the executor it was made for; arm and cancel
// are called there. now() and wall_now() may be called from anywhere.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "common/asio.h"

namespace herd::supervise {

class Timer {
 public:
  virtual ~Timer() = default;
  virtual void arm(std::chrono::milliseconds delay, std::function<void()> fn) = 0;
  virtual void cancel() = 0;
};

class TimeSource {
 public:
  virtual ~TimeSource() = default;
  virtual std::chrono::steady_clock::time_point now() const = 0;
  // The wall clock, for what statuses show (started_at, changed_at, ...).
  virtual std::chrono::system_clock::time_point wall_now() const = 0;
  virtual std::unique_ptr<Timer> timer(asio::any_io_executor executor) = 0;
};

// The real clocks and Asio steady timers; one process-wide instance.
TimeSource& steady_time();

}  // namespace herd::supervise
