// Telling systemd how herdd is doing: sd_notify(3) and the watchdog.
//
//   herd::systemd::Notifier notifier;
//   notifier.status("5/6 ready, 1 backing off: victorialogs");
//   notifier.ready();                       // after the initial reconcile
//   notifier.reloading(); ... notifier.ready();   // around a reload
//   notifier.stopping();                    // on SIGTERM
//
//   if (auto pinger = make_watchdog_pinger(io.get_executor())) pinger->start();
//
// Every call is a no-op returning OK when NOTIFY_SOCKET is unset (not run
// by systemd, or Type= is not notify). A failed send returns kUnavailable
// with the errno text; callers log it and carry on. NOTIFY_SOCKET is read
// on every call, as libsystemd does, so the environment is the
// configuration (tests bind their own socket and set it). The protocol is
// spoken here, not through libsystemd, which herdd does not link.
//
// Nothing here blocks: every call runs on herdd's event loop, and a notify
// socket whose reader falls behind (its queue is full) would otherwise stop
// the loop in sendmsg.
// - STATUS= and WATCHDOG=1 on a full socket are dropped (kUnavailable); the
//   next status or ping replaces them.
// - A message carrying READY=1, RELOADING=1 or STOPPING=1 (a lifecycle
//   state: systemd must see it) on a full socket is kept instead, in one
//   process-wide slot, and the call returns OK at once. A helper thread
//   waits (poll, POLLOUT on a socket connected to NOTIFY_SOCKET) until the
//   socket has room and sends it. The slot holds one message: a newer
//   lifecycle message replaces a waiting one, since only the latest state
//   matters to systemd (RELOADING=1 then READY=1 while the socket is full
//   arrives as READY=1). While one waits, newer lifecycle messages go to
//   the slot too (never ahead of it); STATUS= and WATCHDOG=1 are sent
//   directly and may arrive before it. A message that cannot be sent for
//   another reason (socket gone) is dropped by the helper; the error is in
//   last_lifecycle_error().
// - A NOTIFY_SOCKET that is neither a path nor "@abstract" (libsystemd's
//   vsock form, which only PID 1 of a VM is given) is not sent to:
//   kUnavailable saying so.
//
// herd.service has NotifyAccess=main: messages must come from herdd's main
// process, which they do from any of its threads.
//
// Thread-safety: Notifier is stateless; any thread. WatchdogPinger: see
// below.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/asio.h"
#include "common/status.h"

namespace herd::systemd {

class Notifier {
 public:
  // True when NOTIFY_SOCKET is set (messages go somewhere).
  bool enabled() const;

  Status ready() const;                        // READY=1
  Status status(std::string_view text) const;  // STATUS=<text>; newlines become spaces
  Status stopping() const;                     // STOPPING=1
  // RELOADING=1 plus MONOTONIC_USEC=<now> (which systemd >= 253 wants for
  // Type=notify-reload; 252 ignores it). Send ready() when the reload is done.
  Status reloading() const;
  Status watchdog() const;  // WATCHDOG=1

  // Sends `state` as is (newline-separated assignments), never blocking: a
  // lifecycle message is kept for later when the socket is full (above);
  // any other is dropped then (kUnavailable).
  Status notify(std::string_view state) const;
  // Sends `state` now or drops it (kUnavailable) when the socket is full.
  Status notify_nowait(std::string_view state) const;

  // The lifecycle message waiting for room in the notify socket (or being
  // sent by the helper right now), if any. For tests and diagnostics.
  static std::optional<std::string> pending_lifecycle();
  // Why the helper dropped the last lifecycle message it could not send
  // ("" when it never did).
  static std::string last_lifecycle_error();
};

// Whether `state` carries READY=1, RELOADING=1 or STOPPING=1 on a line of
// its own.
bool is_lifecycle_state(std::string_view state);

// The watchdog interval systemd set for this process (WATCHDOG_USEC, when
// WATCHDOG_PID is unset or this process), or nullopt when the watchdog is
// off. Pings are due at least every interval; send them every half of it.
std::optional<std::chrono::microseconds> watchdog_interval();

// Sends WATCHDOG=1 from an Asio timer on `executor` every `interval / 2`
// (at least 1 ms), the first one at start(). Because the pings are
// handlers on herdd's event loop, they stop when the loop stalls or stops
// running, and systemd notices.
//
// Contract: construct, start(), stop() and destroy on the executor's
// thread (or while its io_context is not running; debug builds assert it
// with common/strand_check.h's running_on_or_idle); handlers hold the
// shared state, so destroying the pinger while a ping is queued is safe
// (the ping is skipped). stop() is idempotent; after it no ping is sent.
// pings() may be read from any thread.
class WatchdogPinger {
 public:
  WatchdogPinger(asio::any_io_executor executor, std::chrono::microseconds interval,
                 Notifier notifier = {});
  ~WatchdogPinger();
  WatchdogPinger(const WatchdogPinger&) = delete;
  WatchdogPinger& operator=(const WatchdogPinger&) = delete;

  void start();
  void stop();

  std::chrono::microseconds period() const;  // interval / 2
  std::uint64_t pings() const;               // WATCHDOG=1 sent without error

 private:
  struct State;
  static void ping_and_rearm(const std::shared_ptr<State>& state);
  std::shared_ptr<State> state_;
};

// A pinger for watchdog_interval(), or nullptr when the watchdog is off.
std::unique_ptr<WatchdogPinger> make_watchdog_pinger(asio::any_io_executor executor,
                                                     Notifier notifier = {});

}  // namespace herd::systemd
