// herd::CappedExponential and herd::Backoff: the one exponential herd
// waits by, and the named retry schedules of its own infrastructure.
//
// CappedExponential{floor, cap}.delay(n) = floor * 2^(n-1) for attempt
// n >= 1, never above cap, never overflowing (the exponent is clamped and
// the shift is only done when the result stays <= cap). The restart
// policy's backoff (supervise/restart_policy.h) and its floor for refused
// starts are computed with it too, so there is one exponential in herd.
//
// Backoff is the stateful form for retry loops: next() returns the delay
// of the next attempt and counts it; reset() after a success.
//
// The schedules below are every infrastructure retry herd makes (not the
// components' restarts, which follow their configured policy). They live
// here, together, so that what herd does when containerd, the control
// socket or an events subscription misbehaves can be read in one place.
//
// Thread-safety: value types.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace herd {

struct CappedExponential {
  std::chrono::milliseconds floor{0};
  std::chrono::milliseconds cap{0};

  constexpr std::chrono::milliseconds delay(uint32_t n) const {
    const int64_t base = floor.count();
    const int64_t max = cap.count();
    if (base <= 0 || max <= 0) return std::chrono::milliseconds(0);
    const uint32_t exponent = std::min<uint32_t>(n == 0 ? 0 : n - 1, 62);
    if (base > (max >> exponent)) return std::chrono::milliseconds(max);
    return std::chrono::milliseconds(std::min(base << exponent, max));
  }
};

class Backoff {
 public:
  constexpr explicit Backoff(CappedExponential schedule) : schedule_(schedule) {}
  // The delay before the next attempt (attempt 1 waits `floor`).
  constexpr std::chrono::milliseconds next() { return schedule_.delay(++attempts_); }
  constexpr void reset() { attempts_ = 0; }
  constexpr uint32_t attempts() const { return attempts_; }

 private:
  CappedExponential schedule_;
  uint32_t attempts_ = 0;
};

namespace retry {
using namespace std::chrono_literals;

// herdd waiting for containerd at boot: 100 ms doubling to 2 s, until the
// config's connect timeout.
inline constexpr CappedExponential kContainerdConnect{100ms, 2000ms};
// Each probe of containerd while waiting for it.
inline constexpr std::chrono::milliseconds kContainerdConnectCall{2000};

// gRPC's reconnect of herd's channel to containerd (the client's channel
// arguments): first and least delay 20 ms, at most 100 ms. containerd
// restarts are short and a connect on a unix socket costs microseconds,
// so this sees a restarted containerd at once (gRPC's default is 1 s to
// 120 s). gRPC grows the delay by its own factor (1.6, with jitter);
// only the floor and the cap are herd's.
inline constexpr CappedExponential kChannelReconnect{20ms, 100ms};

// Events: resubscribe after a broken stream (EventStream::Options
// defaults), and the sync publishes that prove a new subscription live.
inline constexpr CappedExponential kEventsResubscribe{50ms, 2000ms};
inline constexpr CappedExponential kEventsSync{10ms, 500ms};
inline constexpr std::chrono::milliseconds kEventsSyncCall{1000};
inline constexpr std::chrono::milliseconds kEventsSyncTimeout{5000};

// The control socket's accept loop after a failed accept (EMFILE & co).
inline constexpr std::chrono::milliseconds kAcceptRetry{100};

// Deleting a component's container on stop: three attempts, 500 ms apart.
inline constexpr CappedExponential kContainerDelete{500ms, 500ms};
inline constexpr int kContainerDeleteAttempts = 3;

// Re-asking a task's state after a stream gap when the answer is not
// definitive: 200, 400, 800, 800 ms (five asks in all).
inline constexpr CappedExponential kReconcile{200ms, 800ms};
inline constexpr int kReconcileAttempts = 5;

// A component whose prepare or start herd's own calls failed (containerd
// refused): at least 100 ms, doubling per consecutive failure, at most
// 5 s, whatever the restart policy's base (RestartTracker applies it).
inline constexpr CappedExponential kRefusedStart{100ms, 5000ms};

// A registry request (lib/registry/resolver.h) after a 429 without
// Retry-After, a 5xx or a transport failure: 200, 400, 800 ms (each
// drawn from [d/2, d]), at most four attempts in all.
inline constexpr CappedExponential kRegistry{200ms, 2000ms};

}  // namespace retry
}  // namespace herd
