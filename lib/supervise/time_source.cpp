// The real TimeSource: steady/system clocks and Asio steady timers.
#include "supervise/time_source.h"

namespace herd::supervise {
namespace {

class SteadyTimer final : public Timer {
 public:
  explicit SteadyTimer(asio::any_io_executor executor) : timer_(std::move(executor)) {}
  ~SteadyTimer() override { timer_.cancel(); }

  void arm(std::chrono::milliseconds delay, std::function<void()> fn) override {
    const uint64_t gen = ++gen_;
    timer_.expires_after(delay);
    // The generation is checked through a shared cell, so a handler that
    // outlives this Timer (queued, then the Timer destroyed) reads a cell
    // that still exists and is told it is stale.
    timer_.async_wait([cell = cell_, gen, fn = std::move(fn)](boost::system::error_code ec) {
      if (ec || *cell != gen) return;
      fn();
    });
    *cell_ = gen;
  }

  void cancel() override {
    *cell_ = ++gen_;  // a queued expiry is now stale
    timer_.cancel();
  }

 private:
  asio::steady_timer timer_;
  uint64_t gen_ = 0;
  std::shared_ptr<uint64_t> cell_ = std::make_shared<uint64_t>(0);
};

class SteadyTime final : public TimeSource {
 public:
  std::chrono::steady_clock::time_point now() const override {
    return std::chrono::steady_clock::now();
  }
  std::chrono::system_clock::time_point wall_now() const override {
    return std::chrono::system_clock::now();
  }
  std::unique_ptr<Timer> timer(asio::any_io_executor executor) override {
    return std::make_unique<SteadyTimer>(std::move(executor));
  }
};

}  // namespace

TimeSource& steady_time() {
  static SteadyTime instance;
  return instance;
}

}  // namespace herd::supervise
