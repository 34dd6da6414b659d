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
// with the errno text; callers log it and carry on. libsystemd reads
// NOTIFY_SOCKET on every call, so the environment is the configuration
// (tests bind their own socket and set it).
//
// STATUS= and WATCHDOG=1 are sent without blocking: they run on herdd's
// event loop, and a notify socket whose reader falls behind (its queue is
// full) would otherwise stop the loop in sendmsg. Such a message is
// dropped (kUnavailable); the next status or ping replaces it. READY=1,
// RELOADING=1 and STOPPING=1 must arrive and are sent with sd_notify,
// which waits for room.
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

  // Sends `state` as is (newline-separated assignments).
  Status notify(std::string_view state) const;
  // The same, but never waits for room in the socket's queue.
  Status notify_nowait(std::string_view state) const;
};

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
// thread (or while its io_context is not running); handlers hold the
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
