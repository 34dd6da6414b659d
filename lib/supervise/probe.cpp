#include "supervise/probe.h"

#include <algorithm>
#include <boost/asio/buffer.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>
#include <cassert>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/strand_check.h"
#include "supervise/grpc_health.h"
#include "supervise/tls_client.h"

namespace herd::supervise {
namespace {

using tcp = asio::ip::tcp;
using boost::system::error_code;
using std::chrono::milliseconds;

// Only the status line is read; a server that sends more before it is cut.
constexpr std::size_t kMaxResponseBytes = 4096;

std::string ms_string(milliseconds d) { return std::to_string(d.count()) + "ms"; }

// "connection refused" rather than "Connection refused": herd's messages
// are lower-case clauses joined by ": ".
std::string describe(const error_code& ec) {
  std::string m = ec.message();
  if (!m.empty()) m[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(m[0])));
  return m;
}

// Why `spec` cannot be probed, or "" when it can.
std::string validate(const ProbeSpec& spec) {
  if (spec.kind == ProbeSpec::Kind::kExec) {
    if (spec.command.empty()) return "invalid probe: exec without a command";
    if (!spec.exec) return "invalid probe: exec probes need a running task";
    return "";
  }
  if (spec.host.empty()) return "invalid probe: empty host";
  if (spec.port == 0) return "invalid probe: port 0";
  if (spec.kind == ProbeSpec::Kind::kHttp) {
    if (spec.path.empty() || spec.path.front() != '/') {
      return "invalid probe: HTTP path \"" + spec.path + "\" does not start with '/'";
    }
    for (unsigned char c : spec.path) {
      if (c <= 0x20 || c == 0x7f) {
        return "invalid probe: HTTP path contains a space or control character";
      }
    }
  }
  for (unsigned char c : spec.host) {
    if (c <= 0x20 || c == 0x7f) return "invalid probe: host contains a space or control character";
  }
  if (spec.netns_pid != 0) {
    error_code ec;
    (void)asio::ip::make_address(spec.host, ec);
    if (ec) {
      return "invalid probe: host \"" + spec.host +
             "\" is not an IP address (needed to probe inside the component's network namespace)";
    }
  }
  return "";
}

// On a helper thread of its own (which ends right after): enters the
// network namespace of `pid` and makes a non-blocking TCP socket of
// `family` there; the socket keeps that namespace for its life. Returns the
// fd, or -1 with `error` set.
int socket_in_netns(uint32_t pid, int family, std::string& error) {
  const std::string path = "/proc/" + std::to_string(pid) + "/ns/net";
  const int ns = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (ns < 0) {
    error = "open " + path + ": " + std::strerror(errno);
    return -1;
  }
  const int entered = ::setns(ns, CLONE_NEWNET);
  const int setns_errno = errno;
  ::close(ns);
  if (entered != 0) {
    error = "setns " + path + ": " + std::strerror(setns_errno);
    return -1;
  }
  const int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) error = std::string("socket in ") + path + ": " + std::strerror(errno);
  return fd;
}

ProbeSpec normalised(ProbeSpec spec) {
  constexpr milliseconds kMin{1};
  spec.interval = std::max(spec.interval, kMin);
  spec.timeout = std::max(spec.timeout, kMin);
  spec.initial_interval = std::clamp(spec.initial_interval, kMin, spec.interval);
  spec.max_wait = std::max(spec.max_wait, milliseconds{0});
  spec.success_threshold = std::max<uint32_t>(spec.success_threshold, 1);
  spec.failure_threshold = std::max<uint32_t>(spec.failure_threshold, 1);
  spec.initial_delay = std::max(spec.initial_delay, milliseconds{0});
  if (spec.status_min > spec.status_max) std::swap(spec.status_min, spec.status_max);
  if (spec.liveness) {
    spec.max_wait = milliseconds{0};
    spec.continue_after_ready = true;
  }
  return spec;
}

// The status code of an HTTP/1.x status line ("HTTP/1.1 200 OK"), if it is one.
std::optional<int> parse_status_line(std::string_view line) {
  constexpr std::string_view kPrefix = "HTTP/1.";
  if (line.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  line.remove_prefix(kPrefix.size());
  // minor version digit, one space, three digits, then end or a space.
  if (line.size() < 5 || !std::isdigit(static_cast<unsigned char>(line[0])) || line[1] != ' ') {
    return std::nullopt;
  }
  int code = 0;
  for (std::size_t i = 2; i < 5; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(line[i]))) return std::nullopt;
    code = code * 10 + (line[i] - '0');
  }
  if (line.size() > 5 && line[5] != ' ') return std::nullopt;
  if (code < 100) return std::nullopt;
  return code;
}

// A status line quoted for a detail: at most 64 bytes, controls replaced.
std::string quote(std::string_view s) {
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size() && i < 64; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    out += (c < 0x20 || c >= 0x7f) ? '?' : static_cast<char>(c);
  }
  if (s.size() > 64) out += "...";
  return out + "\"";
}

}  // namespace

// One attempt's I/O objects. Each attempt gets its own socket and resolver,
// so a late completion of an aborted attempt can never touch the next one.
struct ReadinessProbe::Attempt {
  explicit Attempt(const asio::any_io_executor& ex) : resolver(ex), socket(ex) {}

  void close() {
    error_code ignored;
    resolver.cancel();
    socket.close(ignored);
    if (abort) std::exchange(abort, nullptr)();
    if (grpc) grpc->cancel();
  }

  tcp::resolver resolver;
  tcp::socket socket;
  tcp::resolver::results_type endpoints;
  std::string response;
  Phase phase = Phase::kConnect;
  std::function<void()> abort;           // exec: kills the process of this attempt
  std::shared_ptr<GrpcHealthCall> grpc;  // grpc: the Check call, once connected
  std::shared_ptr<TlsSession> tls;       // https, once connected
};

std::shared_ptr<ReadinessProbe> ReadinessProbe::create(asio::any_io_executor executor,
                                                       ProbeSpec spec, Callback cb) {
  return std::shared_ptr<ReadinessProbe>(
      new ReadinessProbe(std::move(executor), std::move(spec), std::move(cb)));
}

ReadinessProbe::ReadinessProbe(asio::any_io_executor executor, ProbeSpec spec, Callback cb)
    : executor_(std::move(executor)),
      spec_(normalised(std::move(spec))),
      cb_(std::move(cb)),
      invalid_(validate(spec_)),
      attempt_timer_(executor_),
      interval_timer_(executor_),
      deadline_timer_(executor_),
      next_delay_(spec_.initial_interval) {
  error_code ec;
  asio::ip::address address = asio::ip::make_address(spec_.host, ec);
  if (!ec) address_ = address;
  const bool v6 = spec_.host.find(':') != std::string::npos;
  host_port_ = (v6 ? "[" + spec_.host + "]" : spec_.host) + ":" + std::to_string(spec_.port);
  if (spec_.kind == ProbeSpec::Kind::kHttp && spec_.https) {
    // libssl is loaded here, by the first https probe (tls_client.h); when
    // it cannot be, every attempt fails with the reason.
    tls_context_ = TlsContext::make(spec_.tls_verify, &tls_error_);
  }
  if (spec_.kind == ProbeSpec::Kind::kHttp) {
    request_ = "GET " + spec_.path + " HTTP/1.1\r\n" +  //
               "Host: " + host_port_ + "\r\n" +         //
               "User-Agent: herd-probe\r\n" +           //
               "Accept: */*\r\n" +                      //
               "Connection: close\r\n\r\n";
  }
}

ReadinessProbe::~ReadinessProbe() = default;

void ReadinessProbe::start() {
  assert(running_on(executor_));
  if (started_ || cancelled_) return;
  started_ = true;
  if (!invalid_.empty()) {
    // Asynchronous like every other report: the caller is never re-entered.
    asio::post(executor_, [self = shared_from_this()] {
      if (self->done_) return;
      self->finish(false, self->invalid_);
    });
    return;
  }
  if (spec_.liveness) {
    // As if ready: failures count from attempt 1, steady interval.
    ready_ = true;
    interval_timer_.expires_after(spec_.initial_delay);
    interval_timer_.async_wait([self = shared_from_this()](const error_code& ec) {
      if (ec || self->done_) return;
      self->do_attempt();
    });
    return;
  }
  if (spec_.max_wait.count() > 0) {
    deadline_timer_.expires_after(spec_.max_wait);
    deadline_timer_.async_wait([self = shared_from_this()](const error_code& ec) {
      if (ec || self->done_ || self->ready_) return;
      self->on_max_wait();
    });
  }
  do_attempt();
}

void ReadinessProbe::cancel() {
  assert(running_on(executor_));
  if (cancelled_) return;
  cancelled_ = true;
  done_ = true;
  stop_io();
  cb_ = nullptr;  // safe inside the callback: report paths call a copy
}

bool ReadinessProbe::stale(const std::shared_ptr<Attempt>& a) const {
  return done_ || a != current_;
}

std::string ReadinessProbe::phase_label(Phase phase) const {
  switch (phase) {
    case Phase::kNetns:
      return "socket in the network namespace of pid " + std::to_string(spec_.netns_pid);
    case Phase::kResolve:
      return "resolve " + spec_.host;
    case Phase::kConnect:
      return "connect " + host_port_;
    case Phase::kHandshake:
      return "TLS handshake " + host_port_;
    case Phase::kSend:
    case Phase::kReceive:
      return "GET " + spec_.path;
    case Phase::kGrpc:
      return "grpc Check(\"" + spec_.service + "\") " + host_port_;
    case Phase::kExec: {
      std::string argv;
      for (const auto& arg : spec_.command) {
        if (!argv.empty()) argv += ' ';
        argv += arg.size() > 64 ? arg.substr(0, 64) + "..." : arg;
        if (argv.size() > 200) break;
      }
      return "exec [" + argv + "]";
    }
  }
  return "probe";
}

void ReadinessProbe::do_attempt() {
  auto a = std::make_shared<Attempt>(executor_);
  current_ = a;
  attempts_.fetch_add(1, std::memory_order_relaxed);
  attempt_started_ = std::chrono::steady_clock::now();
  auto self = shared_from_this();

  attempt_timer_.expires_after(spec_.timeout);
  attempt_timer_.async_wait([self, a](const error_code& ec) {
    if (ec || self->stale(a)) return;
    self->on_attempt_timeout(a);
  });

  if (spec_.kind == ProbeSpec::Kind::kExec) {
    a->phase = Phase::kExec;
    a->abort = spec_.exec([self, a](bool ok, std::string detail) {
      if (self->stale(a)) return;
      self->finish_attempt(ok, self->phase_label(Phase::kExec) + ": " + detail);
    });
    return;
  }
  if (address_ && spec_.netns_pid != 0) return connect_in_netns(a);
  if (address_) {
    a->phase = Phase::kConnect;
    a->socket.async_connect(tcp::endpoint(*address_, spec_.port),
                            [self, a](const error_code& ec) { self->on_connected(a, ec); });
    return;
  }
  a->phase = Phase::kResolve;
  a->resolver.async_resolve(spec_.host, std::to_string(spec_.port),
                            [self, a](const error_code& ec, tcp::resolver::results_type results) {
                              a->endpoints = std::move(results);
                              self->on_resolved(a, ec);
                            });
}

void ReadinessProbe::connect_in_netns(const std::shared_ptr<Attempt>& a) {
  a->phase = Phase::kNetns;
  const uint32_t pid = spec_.netns_pid;
  const int family = address_->is_v6() ? AF_INET6 : AF_INET;
  try {
    // The thread holds no reference once it has posted: the probe is
    // only ever destroyed on its executor.
    std::thread([self = shared_from_this(), a, pid, family, ex = executor_]() mutable {
      std::string error;
      const int fd = socket_in_netns(pid, family, error);
      asio::post(ex, [self = std::move(self), a = std::move(a), fd, error = std::move(error)] {
        self->on_netns_socket(a, fd, error);
      });
    }).detach();
  } catch (const std::system_error& e) {
    finish_attempt(false, phase_label(Phase::kNetns) + ": no helper thread: " + e.what());
  }
}

void ReadinessProbe::on_netns_socket(const std::shared_ptr<Attempt>& a, int fd,
                                     const std::string& error) {
  if (stale(a)) {
    if (fd >= 0) ::close(fd);
    return;
  }
  if (fd < 0) return finish_attempt(false, phase_label(Phase::kNetns) + ": " + error);
  error_code ec;
  a->socket.assign(address_->is_v6() ? tcp::v6() : tcp::v4(), fd, ec);
  if (ec) {
    ::close(fd);
    return finish_attempt(false, phase_label(Phase::kNetns) + ": " + describe(ec));
  }
  a->phase = Phase::kConnect;
  a->socket.async_connect(
      tcp::endpoint(*address_, spec_.port),
      [self = shared_from_this(), a](const error_code& e) { self->on_connected(a, e); });
}

void ReadinessProbe::on_resolved(const std::shared_ptr<Attempt>& a, const error_code& ec) {
  if (stale(a)) return;
  if (ec) return finish_attempt(false, phase_label(a->phase) + ": " + describe(ec));
  a->phase = Phase::kConnect;
  auto self = shared_from_this();
  // Tries every address of the name in turn (e.g. ::1, then 127.0.0.1).
  asio::async_connect(
      a->socket, a->endpoints,
      [self, a](const error_code& e, const tcp::endpoint&) { self->on_connected(a, e); });
}

void ReadinessProbe::on_connected(const std::shared_ptr<Attempt>& a, const error_code& ec) {
  if (stale(a)) return;
  if (ec) return finish_attempt(false, phase_label(Phase::kConnect) + ": " + describe(ec));
  // With nothing listening on a port of the ephemeral range, the kernel can
  // pick that very port as the source and the connect "succeeds" to itself
  // (TCP simultaneous open). That is no listener: count it as refused.
  error_code local_ec, remote_ec;
  const tcp::endpoint local = a->socket.local_endpoint(local_ec);
  const tcp::endpoint remote = a->socket.remote_endpoint(remote_ec);
  if (!local_ec && !remote_ec && local == remote) {
    return finish_attempt(
        false, phase_label(Phase::kConnect) + ": connection refused (connected to itself)");
  }
  if (spec_.kind == ProbeSpec::Kind::kTcp) {
    return finish_attempt(true, phase_label(Phase::kConnect) + ": connected");
  }
  if (spec_.kind == ProbeSpec::Kind::kGrpc) return start_grpc(a);
  if (!spec_.https) return send_request(a);
  a->phase = Phase::kHandshake;
  std::string error = tls_error_;
  if (tls_context_)
    a->tls = TlsSession::make(tls_context_, a->socket, spec_.host, address_.has_value(), &error);
  if (!a->tls) return finish_attempt(false, phase_label(Phase::kHandshake) + ": " + error);
  auto self = shared_from_this();
  a->tls->async_handshake([self, a](const std::string& e) {
    if (self->stale(a)) return;
    if (!e.empty())
      return self->finish_attempt(false, self->phase_label(Phase::kHandshake) + ": " + e);
    self->send_request(a);
  });
}

void ReadinessProbe::send_request(const std::shared_ptr<Attempt>& a) {
  a->phase = Phase::kSend;
  auto self = shared_from_this();
  // request_ outlives the write: the probe is kept alive by `self`.
  auto on_sent = [self, a](const error_code& e, std::size_t) { self->on_sent(a, e); };
  if (a->tls) {
    a->tls->async_write(request_, [self, a](const std::string& e) {
      if (self->stale(a)) return;
      if (!e.empty())
        return self->finish_attempt(false, self->phase_label(a->phase) + ": send: " + e);
      self->on_sent(a, error_code());
    });
  } else {
    asio::async_write(a->socket, asio::buffer(request_), std::move(on_sent));
  }
}

void ReadinessProbe::start_grpc(const std::shared_ptr<Attempt>& a) {
  error_code ec;
  const int fd = a->socket.release(ec);
  if (ec) return finish_attempt(false, phase_label(Phase::kGrpc) + ": " + describe(ec));
  a->phase = Phase::kGrpc;
  std::weak_ptr<ReadinessProbe> weak = weak_from_this();
  // `done` runs on a gRPC thread: back to the executor, where the probe
  // (and so its last reference) lives.
  a->grpc = grpc_health_check(
      executor_, fd, host_port_, spec_.service, spec_.timeout,
      [weak, a_weak = std::weak_ptr<Attempt>(a), ex = executor_](bool ok, std::string detail) {
        auto self = weak.lock();
        if (!self) return;
        asio::post(ex, [self = std::move(self), a_weak, ok, detail = std::move(detail)] {
          auto at = a_weak.lock();
          if (!at || self->stale(at)) return;
          self->finish_attempt(ok, self->phase_label(Phase::kGrpc) + ": " + detail);
        });
      });
}

void ReadinessProbe::on_sent(const std::shared_ptr<Attempt>& a, const error_code& ec) {
  if (stale(a)) return;
  if (ec) return finish_attempt(false, phase_label(a->phase) + ": send: " + describe(ec));
  a->phase = Phase::kReceive;
  auto self = shared_from_this();
  auto on_line = [self, a](const error_code& e, std::size_t n) { self->on_status_line(a, e, n); };
  if (a->tls) {
    a->tls->async_read_until(
        &a->response, kMaxResponseBytes, "\r\n",
        [self, a](TlsSession::ReadEnd how, std::size_t end, const std::string& e) {
          if (self->stale(a)) return;
          switch (how) {
            case TlsSession::ReadEnd::kFound:
              return self->on_status_line(a, error_code(), end);
            case TlsSession::ReadEnd::kClosed:
              return self->on_status_line(a, asio::error::eof, 0);
            case TlsSession::ReadEnd::kFull:
              return self->on_status_line(a, asio::error::not_found, 0);
            case TlsSession::ReadEnd::kError:
              return self->finish_attempt(false, self->phase_label(a->phase) + ": " + e);
          }
        });
  } else {
    asio::async_read_until(a->socket, asio::dynamic_buffer(a->response, kMaxResponseBytes), "\r\n",
                           std::move(on_line));
  }
}

void ReadinessProbe::on_status_line(const std::shared_ptr<Attempt>& a, const error_code& ec,
                                    std::size_t line_end) {
  if (stale(a)) return;
  const std::string label = phase_label(a->phase);
  if (ec == asio::error::eof) {
    return finish_attempt(false, label + ": connection closed before a status line");
  }
  if (ec == asio::error::not_found) {
    return finish_attempt(false, label + ": no status line in the first " +
                                     std::to_string(kMaxResponseBytes) + " bytes");
  }
  if (ec) return finish_attempt(false, label + ": " + describe(ec));

  std::string_view line(a->response.data(), line_end >= 2 ? line_end - 2 : 0);
  std::optional<int> status = parse_status_line(line);
  if (!status) return finish_attempt(false, label + ": malformed status line " + quote(line));
  const bool ok = *status >= spec_.status_min && *status <= spec_.status_max;
  finish_attempt(ok, label + ": status " + std::to_string(*status));
}

void ReadinessProbe::on_attempt_timeout(const std::shared_ptr<Attempt>& a) {
  std::string what = phase_label(a->phase) + ": timeout after " + ms_string(spec_.timeout);
  if (a->phase == Phase::kExec) what += ", killed";
  if (a->phase == Phase::kReceive) what += " waiting for the status line";
  finish_attempt(false, std::move(what));
}

// Ends the attempt in flight and acts on its outcome. Only transitions are
// reported: ready once; failed once (then the probe is finished).
void ReadinessProbe::finish_attempt(bool ok, std::string detail) {
  attempt_timer_.cancel();
  if (current_ && spec_.on_attempt)
    spec_.on_attempt(std::chrono::steady_clock::now() - attempt_started_, ok);
  if (current_) {
    current_->close();
    if (current_->grpc) previous_grpc_ = current_->grpc;
  }
  current_.reset();
  if (attempt_observer_) {
    ProbeAttempt result;
    result.ok = ok;
    result.detail = detail;
    result.duration = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() -
                                                               attempt_started_);
    attempt_observer_(result);
  }

  if (ok) {
    consecutive_failures_ = 0;
    ++consecutive_successes_;
    if (!ready_ && consecutive_successes_ >= spec_.success_threshold) {
      ready_ = true;
      deadline_timer_.cancel();
      if (!spec_.continue_after_ready) return finish(true, std::move(detail));
      Callback cb = cb_;  // a copy: the callback may cancel() (and so reset cb_)
      if (cb) cb(true, std::move(detail));
      if (done_) return;
    }
  } else {
    consecutive_successes_ = 0;
    last_error_ = detail;
    if (ready_) {
      ++consecutive_failures_;
      if (consecutive_failures_ >= spec_.failure_threshold) {
        const std::string when = spec_.liveness ? "" : " after ready";
        return finish(false, std::to_string(consecutive_failures_) + " consecutive failure" +
                                 (consecutive_failures_ == 1 ? "" : "s") + when +
                                 ", last error: " + detail);
      }
    }
  }
  schedule_next();
}

void ReadinessProbe::schedule_next() {
  milliseconds delay = spec_.interval;
  if (!ready_) {
    // Fast start: initial_interval doubling up to interval.
    delay = next_delay_;
    next_delay_ = std::min(next_delay_ * 2, spec_.interval);
  }
  interval_timer_.expires_after(delay);
  interval_timer_.async_wait([self = shared_from_this()](const error_code& ec) {
    if (ec || self->done_) return;
    self->do_attempt();
  });
}

// The max_wait timer fired before readiness: report now, aborting an
// attempt in flight and the wait for the next one (the original slept
// out the last interval for nothing and ignored cancellation in its dial).
void ReadinessProbe::on_max_wait() {
  std::string detail = "not ready within " + ms_string(spec_.max_wait) + " after " +
                       std::to_string(attempts()) + " attempt" + (attempts() == 1 ? "" : "s");
  if (!last_error_.empty()) detail += ", last error: " + last_error_;
  if (current_) {
    detail += ", attempt " + std::to_string(attempts()) + " still in progress (" +
              phase_label(current_->phase) + ")";
  }
  finish(false, std::move(detail));
}

void ReadinessProbe::finish(bool ready, std::string detail) {
  done_ = true;
  stop_io();
  Callback cb = std::move(cb_);
  cb_ = nullptr;
  if (cb) cb(ready, std::move(detail));
}

void ReadinessProbe::stop_io() {
  attempt_timer_.cancel();
  interval_timer_.cancel();
  deadline_timer_.cancel();
  if (current_) current_->close();
  current_.reset();
}

}  // namespace herd::supervise
