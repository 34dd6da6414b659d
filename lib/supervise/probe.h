// ReadinessProbe: asks "is the component serving yet?" over TCP or HTTP and
// reports transitions, never every attempt (Envoy health checkers).
//
// Contract. A probe is one small actor on the executor it is created with
// (the component's strand): start(), cancel() and attempts()-for-decisions
// are called on it, and every completion handler and the callback run on
// it. Nothing blocks or sleeps a thread; every wait is an Asio timer, every
// dial is an asynchronous connect, and names are resolved asynchronously.
//
//   - Attempt 1 starts inside start(). After a failed attempt the next one
//     starts `initial_interval` later, doubling (5, 10, 20, 40 ms ...) up to
//     `interval`, so readiness is seen within milliseconds of the port
//     opening. Delays are measured from the end of the previous attempt;
//     attempts never overlap.
//   - Each attempt has its own `timeout` (resolve + connect, plus request
//     and status line for HTTP); when it expires the socket is closed and
//     the attempt fails with a detail that says "timeout".
//   - TCP: a completed connect is a success, except a socket connected to
//     itself (a port of the ephemeral range with no listener, TCP
//     simultaneous open), which counts as refused. HTTP: `GET <path> HTTP/1.1`
//     with `Host: host:port` and `Connection: close`; only the status line
//     is read (at most 4 KiB); 2xx and 3xx are successes.
//   - `success_threshold` consecutive successes report ready(true) once.
//     Without `continue_after_ready` the probe is then finished.
//   - `max_wait` (> 0) is its own timer from start(): when it fires before
//     readiness the probe reports (false, why) at once, aborting an attempt
//     in flight instead of waiting for it or for the next interval (SEED
//     weakness 11). It is disarmed when ready.
//   - With `continue_after_ready` the probe keeps checking every `interval`
//     (liveness); `failure_threshold` consecutive failures report (false,
//     why) once and finish the probe. A success in between resets the count.
//   - With `liveness` the probe starts as if ready was already reported:
//     attempt 1 starts `initial_delay` after start(), then one every
//     `interval`; `max_wait` and `success_threshold` do not apply, it
//     never reports true, and `failure_threshold` consecutive failures
//     report (false, why) once. A success in between resets the count.
//   - HTTP: a status in [status_min, status_max] is a success. With `https`
//     a TLS handshake (SNI = host when it is a name) comes first; the
//     certificate is checked only with `tls_verify` (system CA paths, host
//     name), off by default: probes mostly go to loopback with
//     self-signed certificates. libssl is loaded by the first https probe
//     (tls_client.h), so herdd maps no OpenSSL until one exists.
//   - gRPC: after the TCP connect (from the component's netns when
//     netns_pid is set), the connected socket is handed to gRPC
//     (grpc_health.h) for one grpc.health.v1.Health/Check of `service`;
//     SERVING is a success, any other answer or error a failure.
//   - Exec: each attempt is one `exec` call (the component's ExecRunner:
//     a process in the container, exit 0 = success); at `timeout` the
//     attempt is aborted (the runner kills and reaps the process) and
//     fails with "timeout".
//   - With `netns_pid`, each attempt's socket is made inside that process's
//     network namespace: a short-lived helper thread (one per attempt)
//     opens /proc/<pid>/ns/net, setns()es into it, creates a non-blocking
//     socket and ends; the socket (which stays in that namespace) is
//     handed back to the executor and connects asynchronously there. No
//     herdd thread ever stays in a component's namespace. The attempt's
//     timeout covers the helper too.
//   - Every finished attempt (not an aborted one) is handed to the
//     AttemptObserver, when one is set, with its outcome, detail and
//     duration: status reporting keeps the last one, and a per-attempt
//     metric can hook in there. It runs on the executor; it must not
//     cancel() the probe.
//   - After a report of false, the probe is finished: it never reports again.
//     Create a new probe for a new task.
//   - cancel() closes the socket and cancels every timer; once it returns
//     the callback never runs again (also when cancel() is called from
//     inside the callback). Pending handlers become no-ops: each checks the
//     cancelled/finished flags and its attempt's identity first. Stop paths
//     therefore never wait behind a probe (a stop that hangs behind a
//     readiness wait is what the original supervisor did).
//
// Lifetime: handlers hold shared_from_this(), so the object lives while
// work is pending; dropping the last outside pointer does NOT stop it (a
// liveness probe would run on), so owners call cancel(). After cancel() or
// a final report there is no pending work left and the io_context can run
// out of work.
//
// The detail string says what happened, e.g. "connect 127.0.0.1:8080:
// connection refused", "GET /health: status 503", "GET /health: timeout
// after 1000ms", "not ready within 60000ms after 14 attempts, last error:
// ...". An invalid spec (port 0, empty host, bad path) is reported as (false,
// "invalid probe: ...") asynchronously after start().
//
// Thread-safety: not thread-safe except attempts(), which any thread may
// read. In debug builds start() and cancel() assert that they run on the
// probe's executor when it is an io_context executor or a strand of one.
#pragma once

#include <atomic>
#include <boost/asio/ip/address.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/asio.h"

namespace herd::supervise {

class TlsContext;  // tls_client.h

// kExec: starts one exec attempt; `done(ok, detail)` must be called on the
// probe's executor once it has finished. Returns a function that aborts
// the attempt (kills the process); `done` may still be called afterwards,
// and is then ignored.
using ExecDone = std::function<void(bool ok, std::string detail)>;
using ExecRunner = std::function<std::function<void()>(ExecDone done)>;

struct ProbeSpec {
  enum class Kind { kTcp, kHttp, kExec, kGrpc } kind = Kind::kTcp;
  std::string service;  // kGrpc: HealthCheckRequest.service ("" = the server as a whole)
  // kExec: the command (for details) and what runs it (ExecRunner).
  std::vector<std::string> command;
  ExecRunner exec;
  std::string host = "127.0.0.1";  // IP literal or a name (resolved asynchronously)
  uint16_t port = 0;
  std::string path = "/";  // HTTP only; must start with '/', no spaces or controls
  std::chrono::milliseconds interval{1000};   // steady-state interval between attempts
  std::chrono::milliseconds timeout{1000};    // per attempt: connect (+ request/response for HTTP)
  std::chrono::milliseconds max_wait{60000};  // give up on readiness after this; 0 = never
  uint32_t success_threshold = 1;             // consecutive successes to report ready
  uint32_t failure_threshold = 3;             // consecutive failures after ready to report failed
                                              // (only with continue_after_ready)
  bool continue_after_ready = false;          // keep probing at `interval` after ready (liveness)
  std::chrono::milliseconds initial_interval{5};  // fast start: doubling up to `interval`
  // Called on the executor after every attempt with its duration (metrics).
  std::function<void(std::chrono::nanoseconds took, bool ok)> on_attempt;
  bool https = false;         // HTTP: TLS (tls_client.h) before the request
  bool tls_verify = false;    // https: check the certificate chain and host name
  uint16_t status_min = 200;  // HTTP: success range, inclusive
  uint16_t status_max = 399;
  bool liveness = false;                       // see the contract above
  std::chrono::milliseconds initial_delay{0};  // liveness: before attempt 1
  // Non-zero: connect from inside the network namespace of this process
  // (/proc/<pid>/ns/net; a component with "network": "none"), never from
  // herdd's. `host` must then be an IP address.
  uint32_t netns_pid = 0;
};

// One finished attempt, for AttemptObserver.
struct ProbeAttempt {
  bool ok = false;
  std::string detail;  // e.g. "GET /health: status 404"
  std::chrono::milliseconds duration{0};
};
// Values below their minimum are raised to it: interval, timeout and
// initial_interval >= 1 ms (initial_interval <= interval), thresholds >= 1,
// a negative max_wait means 0 (never give up).

class ReadinessProbe : public std::enable_shared_from_this<ReadinessProbe> {
 public:
  // ready == true: readiness reached. ready == false: gave up (max_wait) or,
  // after ready with continue_after_ready, failure_threshold consecutive
  // failures; `detail` says why (the last error). Runs on the executor.
  using Callback = std::function<void(bool ready, std::string detail)>;
  using AttemptObserver = std::function<void(const ProbeAttempt&)>;

  static std::shared_ptr<ReadinessProbe> create(asio::any_io_executor executor, ProbeSpec spec,
                                                Callback cb);

  ReadinessProbe(const ReadinessProbe&) = delete;
  ReadinessProbe& operator=(const ReadinessProbe&) = delete;
  ~ReadinessProbe();

  // Starts attempt 1 at once (and the max_wait timer). Once only; a second
  // call, or a call after cancel(), does nothing. REQUIRES: on the executor.
  void start();

  // Sets the per-attempt observer (before start()). REQUIRES: on the executor.
  void observe_attempts(AttemptObserver observer) { attempt_observer_ = std::move(observer); }

  // Closes the socket, cancels every timer; afterwards the callback never
  // runs. Idempotent. REQUIRES: on the executor.
  void cancel();

  // Attempts started so far (the one in flight included). Any thread.
  uint64_t attempts() const { return attempts_.load(std::memory_order_relaxed); }

 private:
  struct Attempt;
  enum class Phase { kNetns, kResolve, kConnect, kHandshake, kSend, kReceive, kExec, kGrpc };

  ReadinessProbe(asio::any_io_executor executor, ProbeSpec spec, Callback cb);

  bool stale(const std::shared_ptr<Attempt>& a) const;

  void do_attempt();
  void connect_in_netns(const std::shared_ptr<Attempt>& a);
  void on_netns_socket(const std::shared_ptr<Attempt>& a, int fd, const std::string& error);
  void on_resolved(const std::shared_ptr<Attempt>& a, const boost::system::error_code& ec);
  void on_connected(const std::shared_ptr<Attempt>& a, const boost::system::error_code& ec);
  void start_grpc(const std::shared_ptr<Attempt>& a);
  void send_request(const std::shared_ptr<Attempt>& a);
  void on_sent(const std::shared_ptr<Attempt>& a, const boost::system::error_code& ec);
  void on_status_line(const std::shared_ptr<Attempt>& a, const boost::system::error_code& ec,
                      std::size_t line_end);
  void on_attempt_timeout(const std::shared_ptr<Attempt>& a);
  void finish_attempt(bool ok, std::string detail);
  void schedule_next();
  void on_max_wait();

  // Final report: finishes the probe (no pending work left), then calls back.
  void finish(bool ready, std::string detail);
  void stop_io();

  std::string phase_label(Phase phase) const;

  asio::any_io_executor executor_;
  ProbeSpec spec_;
  Callback cb_;
  AttemptObserver attempt_observer_;
  std::chrono::steady_clock::time_point attempt_started_{};
  std::string invalid_;                       // non-empty: why the spec is unusable
  std::optional<asio::ip::address> address_;  // set when spec_.host is an IP literal
  std::string host_port_;                     // "127.0.0.1:8080", "[::1]:8080"
  std::string request_;                       // the HTTP request, built once

  asio::steady_timer attempt_timer_;   // per-attempt timeout
  asio::steady_timer interval_timer_;  // wait before the next attempt
  asio::steady_timer deadline_timer_;  // max_wait

  std::shared_ptr<Attempt> current_;  // the attempt in flight, if any
  // The last finished gRPC call, kept until the next one finishes (see
  // grpc_health.h on why a call must outlive its completion a while).
  std::shared_ptr<void> previous_grpc_;
  std::shared_ptr<TlsContext> tls_context_;  // https: one client context per probe
  std::string tls_error_;                    // https: why there is no context
  bool started_ = false;
  bool cancelled_ = false;
  bool done_ = false;   // finished: a final report was made, or cancelled
  bool ready_ = false;  // readiness was reported
  uint32_t consecutive_successes_ = 0;
  uint32_t consecutive_failures_ = 0;  // counted after ready only
  std::chrono::milliseconds next_delay_;
  std::string last_error_;
  std::atomic<uint64_t> attempts_{0};
};

}  // namespace herd::supervise
