// Restart policy: how long to wait before restarting a component, and when
// to give up. The policy itself is config::RestartPolicy (config/config.h,
// where the presets are defined); this module applies it. Pure: time comes
// in as arguments, randomness from an injectable source.
//
// Backoff: restart 1 of a run of consecutive failures is immediate (delay
// 0); restart n >= 2 waits delay(n - 1) = base * 2^(n-2), capped at max,
// computed with herd::CappedExponential (common/backoff.h). The exponent is
// clamped, so the delay never overflows: a plain shift overflows after some
// 34 doublings and turns negative, then zero, which is a tight restart
// loop. With jitter j > 0 the delay is scaled by a factor in [1-j, 1+j]
// drawn from the random source, and still never exceeds max.
//
// Why the first restart is immediate (chosen, documented; kubelet does the
// same, Docker waits 100 ms): one crash is most likely a one-off, and the
// node is better served by the service being back at once. A component
// that fails again right away waits `base`, and doubling goes on, so a
// crash loop costs one extra restart, not a spin.
//
// Reset: the consecutive count starts over once the component has been
// *ready* continuously for reset_window. It is not measured from start
// alone, and not from the last restart attempt (so a component that
// crashes every few minutes, spaced wider than the window, still backs
// off instead of restarting at once forever). The first failure after
// such a stable run is restart 1 again: immediate.
//
// Refused starts: a failure of cause kRefused (herd's own prepare or start
// call that containerd refused, not the component's process) waits at
// least retry::kRefusedStart.delay(n), n being the restart number of the
// decision (the consecutive count, which counts failures of both causes):
// 100 ms doubling to 5 s, whatever the policy's base. A policy may ask for
// instant restarts of a crashing process (base 0), but retrying a refused
// call at once only spins. Refused starts count as restarts like exits do,
// so max_restarts bounds them too.
//
// Giving up: with max_restarts > 0, the failure that would be restart
// number max_restarts + 1 gives up (the component becomes `failed`,
// visibly). 0 = unlimited.
//
// Thread-safety: a value type, no shared state. A tracker belongs to its
// component's lifecycle Machine and is used on that component's strand.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>

#include "config/config.h"

namespace herd::supervise {

// A uniform random number in [0, 1).
using RandomSource = std::function<double()>;

// Why a component failed; it decides whether the refused-start floor
// applies.
enum class FailureCause {
  kExit,     // the process exited (or was killed after failing readiness)
  kRefused,  // herd's own prepare or start call failed (containerd refused it)
};

// The policy's delay before restart number n (n >= 1; 0 counts as 1) of a
// run of failures, with `unit_random` in [0, 1) used for jitter (ignored
// when jitter == 0). Without the refused-start floor.
std::chrono::milliseconds backoff_delay(const config::RestartPolicy& p, uint32_t n,
                                        double unit_random);

class RestartTracker {
 public:
  struct Decision {
    bool give_up = false;
    std::chrono::milliseconds delay{0};
    uint32_t restart_number = 0;  // consecutive, 1-based
  };

  RestartTracker() = default;
  // A missing random source means no jitter randomness (0.5: the factor 1).
  explicit RestartTracker(config::RestartPolicy policy, RandomSource random = {});

  const config::RestartPolicy& policy() const { return policy_; }

  // The component became ready at `now` / stopped being ready.
  void on_ready(std::chrono::steady_clock::time_point now);
  void on_not_ready();

  // A failure at `now`, of `cause`.
  //
  // It also ends readiness: if the component had been ready since at least
  // `now - reset_window`, the consecutive count starts over, so this is
  // restart 1 (immediate); ready_since is then cleared. So a caller whose ready component fails
  // calls on_failure (it need not call on_not_ready first, and must not, or the stable run would be
  // forgotten).
  //
  // kRefused: the delay is at least retry::kRefusedStart.delay(restart
  // number) (see the header comment).
  //
  // On give_up (max_restarts > 0 and already max_restarts consecutive
  // restarts): delay 0, restart_number = the number it would have had
  // (max_restarts + 1), and neither count changes; the cause does not
  // matter.
  Decision on_failure(std::chrono::steady_clock::time_point now, FailureCause cause);

  // An operator's start (from failed or stopped): the consecutive count
  // starts over; the total stays.
  void reset();

  uint32_t consecutive() const { return consecutive_; }
  uint64_t total() const { return total_; }  // restarts since herdd started it
  std::optional<std::chrono::steady_clock::time_point> ready_since() const { return ready_since_; }

 private:
  config::RestartPolicy policy_;
  RandomSource random_;
  uint32_t consecutive_ = 0;
  uint64_t total_ = 0;
  std::optional<std::chrono::steady_clock::time_point> ready_since_;
};

}  // namespace herd::supervise
