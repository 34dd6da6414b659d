#include "supervise/restart_policy.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "common/backoff.h"

namespace herd::supervise {

using std::chrono::milliseconds;

milliseconds backoff_delay(const config::RestartPolicy& p, uint32_t n, double unit_random) {
  const milliseconds max = std::max(p.max, milliseconds(0));
  const int64_t plain = CappedExponential{p.base, max}.delay(n).count();
  // `!(x > 0)` also catches NaN.
  if (!(p.jitter > 0.0) || plain == 0) return milliseconds(plain);

  const double j = std::min(p.jitter, 1.0);
  double u = std::isnan(unit_random) ? 0.5 : unit_random;
  u = std::clamp(u, 0.0, 1.0);
  const double factor = 1.0 - j + 2.0 * j * u;  // in [1-j, 1+j]
  const double scaled = static_cast<double>(plain) * factor;
  if (scaled >= static_cast<double>(max.count())) return max;
  // Jitter may shorten a delay but never to nothing: a zero delay is a
  // tight restart loop.
  const int64_t rounded = std::max<int64_t>(std::llround(scaled), 1);
  return milliseconds(std::min(rounded, max.count()));
}

RestartTracker::RestartTracker(config::RestartPolicy policy, RandomSource random)
    : policy_(std::move(policy)), random_(std::move(random)) {}

void RestartTracker::on_ready(std::chrono::steady_clock::time_point now) { ready_since_ = now; }

void RestartTracker::on_not_ready() { ready_since_.reset(); }

RestartTracker::Decision RestartTracker::on_failure(std::chrono::steady_clock::time_point now,
                                                    FailureCause cause) {
  if (ready_since_ && now - *ready_since_ >= policy_.reset_window) consecutive_ = 0;
  ready_since_.reset();

  Decision d;
  if (policy_.max_restarts > 0 && consecutive_ >= policy_.max_restarts) {
    d.give_up = true;
    d.restart_number =
        consecutive_ == std::numeric_limits<uint32_t>::max() ? consecutive_ : consecutive_ + 1;
    return d;
  }

  if (consecutive_ < std::numeric_limits<uint32_t>::max()) ++consecutive_;
  ++total_;
  d.restart_number = consecutive_;
  if (consecutive_ > 1) {  // restart 1 of a run is immediate; n waits the policy's delay(n - 1)
    const double u = (policy_.jitter > 0.0 && random_) ? random_() : 0.5;
    d.delay = backoff_delay(policy_, consecutive_ - 1, u);
  }
  if (cause == FailureCause::kRefused) {
    d.delay = std::max(d.delay, retry::kRefusedStart.delay(consecutive_));
  }
  return d;
}

void RestartTracker::reset() { consecutive_ = 0; }

}  // namespace herd::supervise
