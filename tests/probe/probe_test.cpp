// ReadinessProbe against real loopback listeners made here (127.0.0.1 only):
// plain TCP acceptors, a tiny HTTP responder and a server that accepts but
// never answers. Integration-labelled because it uses real sockets; it needs
// nothing outside this process.
//
// No assertions on exact timings. Every test runs its io_context until it
// runs out of work: the probe must leave nothing behind once it reported its
// final result or was cancelled. The watchdog is run_for(kWatchdog): if work
// is still pending then (a hang, or a timer the probe forgot), the context
// is stopped and the test FAILs.
#include "supervise/probe.h"

#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace {

namespace asio = herd::asio;
using herd::supervise::ProbeSpec;
using herd::supervise::ReadinessProbe;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using namespace std::chrono_literals;

constexpr auto kWatchdog = 20s;

tcp::endpoint loopback(uint16_t port) { return {asio::ip::make_address("127.0.0.1"), port}; }

// Runs `ioc` until it has no work left; FAILs if that takes over kWatchdog.
void run_to_completion(asio::io_context& ioc) {
  ioc.run_for(kWatchdog);
  if (!ioc.stopped()) {
    ioc.stop();
    FAIL("io_context still had pending work after the watchdog period");
  }
}

tcp::acceptor listen_on(asio::io_context& ioc, uint16_t port) {
  tcp::acceptor a(ioc);
  tcp::endpoint ep = loopback(port);
  a.open(ep.protocol());
  a.set_option(tcp::acceptor::reuse_address(true));
  a.bind(ep);
  a.listen();
  return a;
}

// A loopback TCP port held (bound) for the whole test, so no other process
// (ctest runs test cases in parallel) can take it and the kernel never picks
// it as a connect's source port. While not listening it refuses
// connections; while listening it accepts each one and closes it at once.
class TcpPort {
 public:
  enum class State { kListening, kRefusing };
  explicit TcpPort(asio::io_context& ioc, State state = State::kListening) : acceptor_(ioc) {
    hold(0);
    port_ = acceptor_.local_endpoint().port();
    if (state == State::kListening) listen();
  }
  uint16_t port() const { return port_; }

  void listen() {
    acceptor_.listen();
    accept();
  }

  // Back to refusing: the listener is closed, the port stays held.
  void stop_listening() {
    acceptor_.close();
    hold(port_);
  }

  void close() { acceptor_.close(); }

 private:
  void hold(uint16_t port) {
    tcp::endpoint ep = loopback(port);
    acceptor_.open(ep.protocol());
    // Lets stop_listening() bind again over the TIME_WAIT of closed connections.
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(ep);
  }

  void accept() {
    acceptor_.async_accept([this](const error_code& ec, tcp::socket s) {
      if (ec) return;
      error_code ignored;
      s.close(ignored);
      accept();
    });
  }

  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
};

std::string status_response(int status) {
  return "HTTP/1.1 " + std::to_string(status) +
         " Whatever\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
}

// Reads each request's head, records it and answers with response_for(n)
// (n = 1, 2, ... per connection), then closes the connection.
class HttpResponder {
 public:
  HttpResponder(asio::io_context& ioc, std::function<std::string(std::size_t)> response_for)
      : acceptor_(listen_on(ioc, 0)),
        port_(acceptor_.local_endpoint().port()),
        response_for_(std::move(response_for)) {
    accept();
  }
  uint16_t port() const { return port_; }
  void close() { acceptor_.close(); }
  const std::vector<std::string>& requests() const { return requests_; }

 private:
  struct Session {
    explicit Session(tcp::socket s) : socket(std::move(s)) {}
    tcp::socket socket;
    std::string in;
    std::string out;
  };

  void accept() {
    acceptor_.async_accept([this](const error_code& ec, tcp::socket s) {
      if (ec) return;
      auto session = std::make_shared<Session>(std::move(s));
      asio::async_read_until(session->socket, asio::dynamic_buffer(session->in, 8192), "\r\n\r\n",
                             [this, session](const error_code& e, std::size_t n) {
                               if (e) return;
                               requests_.push_back(session->in.substr(0, n));
                               session->out = response_for_(requests_.size());
                               asio::async_write(session->socket, asio::buffer(session->out),
                                                 [session](const error_code&, std::size_t) {
                                                   error_code ignored;
                                                   session->socket.shutdown(
                                                       tcp::socket::shutdown_both, ignored);
                                                   session->socket.close(ignored);
                                                 });
                             });
      accept();
    });
  }

  tcp::acceptor acceptor_;
  uint16_t port_;
  std::function<std::string(std::size_t)> response_for_;
  std::vector<std::string> requests_;
};

// Accepts connections and holds them open without ever answering.
class SilentServer {
 public:
  explicit SilentServer(asio::io_context& ioc)
      : acceptor_(listen_on(ioc, 0)), port_(acceptor_.local_endpoint().port()) {
    accept();
  }
  uint16_t port() const { return port_; }
  std::size_t connections() const { return sockets_.size(); }
  std::function<void()> on_accept;
  void close() {
    acceptor_.close();
    for (auto& s : sockets_) {
      error_code ignored;
      s.close(ignored);
    }
  }

 private:
  void accept() {
    acceptor_.async_accept([this](const error_code& ec, tcp::socket s) {
      if (ec) return;
      sockets_.push_back(std::move(s));
      if (on_accept) on_accept();
      accept();
    });
  }
  tcp::acceptor acceptor_;
  uint16_t port_;
  std::vector<tcp::socket> sockets_;
};

struct Report {
  bool ready;
  std::string detail;
  uint64_t attempts;
};

// One probe on a strand of `ioc`, started on that strand, recording its
// reports; `then` runs after each report (on the strand).
class ProbeRun {
 public:
  ProbeRun(asio::io_context& ioc, ProbeSpec spec) : strand_(asio::make_strand(ioc)) {
    probe_ =
        ReadinessProbe::create(strand_, std::move(spec), [this](bool ready, std::string detail) {
          reports.push_back({ready, detail, probe_->attempts()});
          if (then) then(reports.back());
        });
  }
  void start() {
    asio::post(strand_, [p = probe_] { p->start(); });
  }
  ReadinessProbe& probe() { return *probe_; }
  asio::strand<asio::io_context::executor_type>& strand() { return strand_; }

  std::vector<Report> reports;
  std::function<void(const Report&)> then;

 private:
  asio::strand<asio::io_context::executor_type> strand_;
  std::shared_ptr<ReadinessProbe> probe_;
};

ProbeSpec tcp_spec(uint16_t port) {
  ProbeSpec s;
  s.kind = ProbeSpec::Kind::kTcp;
  s.port = port;
  s.interval = 50ms;
  s.timeout = 1s;
  s.max_wait = 10s;
  return s;
}

ProbeSpec http_spec(uint16_t port, std::string path = "/") {
  ProbeSpec s = tcp_spec(port);
  s.kind = ProbeSpec::Kind::kHttp;
  s.path = std::move(path);
  return s;
}

}  // namespace

TEST_CASE("tcp probe is ready at once when the port listens") {
  asio::io_context ioc;
  TcpPort listener(ioc);
  ProbeRun run(ioc, tcp_spec(listener.port()));
  run.then = [&](const Report&) { listener.close(); };
  run.start();
  run_to_completion(ioc);

  REQUIRE(run.reports.size() == 1);
  CHECK(run.reports[0].ready);
  CHECK_THAT(run.reports[0].detail, Contains("127.0.0.1:" + std::to_string(listener.port())));
  CHECK(run.reports[0].attempts == 1);
  CHECK(run.probe().attempts() == 1);
}

TEST_CASE("tcp probe becomes ready soon after the listener appears") {
  asio::io_context ioc;
  TcpPort listener(ioc, TcpPort::State::kRefusing);
  asio::steady_timer opener(ioc, 50ms);
  opener.async_wait([&](const error_code&) { listener.listen(); });

  ProbeSpec spec = tcp_spec(listener.port());
  spec.interval = 1s;  // the fast start, not the interval, must catch the opening
  ProbeRun run(ioc, spec);
  run.then = [&](const Report&) { listener.close(); };
  run.start();
  run_to_completion(ioc);

  REQUIRE(run.reports.size() == 1);
  CHECK(run.reports[0].ready);
  CHECK(run.reports[0].attempts > 1);
}

TEST_CASE("http probe: 200 is ready and the request is well formed") {
  asio::io_context ioc;
  HttpResponder server(ioc, [](std::size_t) { return status_response(200); });
  ProbeRun run(ioc, http_spec(server.port(), "/health"));
  run.then = [&](const Report&) { server.close(); };
  run.start();
  run_to_completion(ioc);

  REQUIRE(run.reports.size() == 1);
  CHECK(run.reports[0].ready);
  CHECK(run.reports[0].detail == "GET /health: status 200");
  REQUIRE(server.requests().size() == 1);
  const std::string& req = server.requests()[0];
  CHECK_THAT(req, StartsWith("GET /health HTTP/1.1\r\n"));
  CHECK_THAT(req, Contains("\r\nHost: 127.0.0.1:" + std::to_string(server.port()) + "\r\n"));
  CHECK_THAT(req, Contains("\r\nConnection: close\r\n"));
}

TEST_CASE("http probe: 503 is not ready until it turns 200") {
  asio::io_context ioc;
  HttpResponder server(ioc, [](std::size_t n) { return status_response(n <= 3 ? 503 : 200); });
  ProbeRun run(ioc, http_spec(server.port(), "/ready"));
  run.then = [&](const Report&) { server.close(); };
  run.start();
  run_to_completion(ioc);

  REQUIRE(run.reports.size() == 1);  // failures before readiness are not reported
  CHECK(run.reports[0].ready);
  CHECK(run.reports[0].attempts == 4);
  CHECK(server.requests().size() == 4);
}

TEST_CASE("http probe: 302 is ready") {
  asio::io_context ioc;
  HttpResponder server(ioc, [](std::size_t) { return status_response(302); });
  ProbeRun run(ioc, http_spec(server.port()));
  run.then = [&](const Report&) { server.close(); };
  run.start();
  run_to_completion(ioc);

  REQUIRE(run.reports.size() == 1);
  CHECK(run.reports[0].ready);
  CHECK(run.reports[0].detail == "GET /: status 302");
}

TEST_CASE("max_wait gives up with the last failure in the detail") {
  asio::io_context ioc;

  SECTION("connection refused") {
    TcpPort refusing(ioc, TcpPort::State::kRefusing);
    const uint16_t port = refusing.port();
    ProbeSpec spec = tcp_spec(port);
    spec.max_wait = 150ms;
    ProbeRun run(ioc, spec);
    run.start();
    run_to_completion(ioc);

    REQUIRE(run.reports.size() == 1);
    CHECK_FALSE(run.reports[0].ready);
    CHECK_THAT(run.reports[0].detail, Contains("not ready within 150ms"));
    CHECK_THAT(run.reports[0].detail,
               Contains("connect 127.0.0.1:" + std::to_string(port) + ": connection refused"));
    CHECK(run.reports[0].attempts > 1);
  }

  SECTION("http status 500") {
    HttpResponder server(ioc, [](std::size_t) { return status_response(500); });
    ProbeSpec spec = http_spec(server.port(), "/health");
    spec.max_wait = 150ms;
    ProbeRun run(ioc, spec);
    run.then = [&](const Report&) { server.close(); };
    run.start();
    run_to_completion(ioc);

    REQUIRE(run.reports.size() == 1);
    CHECK_FALSE(run.reports[0].ready);
    CHECK_THAT(run.reports[0].detail, Contains("GET /health: status 500"));
  }

  SECTION("malformed status line") {
    HttpResponder server(ioc, [](std::size_t) { return std::string("SSH-2.0-OpenSSH\r\n"); });
    ProbeSpec spec = http_spec(server.port());
    spec.max_wait = 100ms;
    ProbeRun run(ioc, spec);
    run.then = [&](const Report&) { server.close(); };
    run.start();
    run_to_completion(ioc);

    REQUIRE(run.reports.size() == 1);
    CHECK_FALSE(run.reports[0].ready);
    CHECK_THAT(run.reports[0].detail, Contains("malformed status line \"SSH-2.0-OpenSSH\""));
  }

  SECTION("no status line within the read limit") {
    HttpResponder server(ioc, [](std::size_t) { return std::string(10000, 'x'); });
    ProbeSpec spec = http_spec(server.port());
    spec.max_wait = 100ms;
    ProbeRun run(ioc, spec);
    run.then = [&](const Report&) { server.close(); };
    run.start();
    run_to_completion(ioc);

    REQUIRE(run.reports.size() == 1);
    CHECK_FALSE(run.reports[0].ready);
    CHECK_THAT(run.reports[0].detail, Contains("no status line in the first 4096 bytes"));
  }
}

TEST_CASE("max_wait reports at once while an attempt hangs") {
  // The attempt timeout (and the interval) are far beyond the watchdog: the
  // report must come from the max_wait timer, not from the attempt ending.
  asio::io_context ioc;
  SilentServer server(ioc);
  ProbeSpec spec = http_spec(server.port());
  spec.timeout = 60s;
  spec.interval = 60s;
  spec.max_wait = 100ms;
  ProbeRun run(ioc, spec);
  run.then = [&](const Report&) { server.close(); };
  run.start();
  run_to_completion(ioc);

  REQUIRE(run.reports.size() == 1);
  CHECK_FALSE(run.reports[0].ready);
  CHECK_THAT(run.reports[0].detail, Contains("not ready within 100ms after 1 attempt"));
  CHECK_THAT(run.reports[0].detail, Contains("still in progress (GET /)"));
}

TEST_CASE("a silent HTTP server fails each attempt by its timeout") {
  asio::io_context ioc;
  SilentServer server(ioc);
  ProbeSpec spec = http_spec(server.port(), "/health");
  spec.timeout = 50ms;
  spec.interval = 20ms;
  spec.max_wait = 400ms;
  ProbeRun run(ioc, spec);
  run.then = [&](const Report&) { server.close(); };
  run.start();
  run_to_completion(ioc);

  REQUIRE(run.reports.size() == 1);
  CHECK_FALSE(run.reports[0].ready);
  CHECK_THAT(run.reports[0].detail,
             Contains("last error: GET /health: timeout after 50ms waiting for the status line"));
  CHECK(run.reports[0].attempts >= 2);
  CHECK(server.connections() >= 2);
}

TEST_CASE("cancel during an attempt stops all callbacks") {
  asio::io_context ioc;
  SilentServer server(ioc);
  ProbeSpec spec = http_spec(server.port());
  spec.timeout = 60s;
  spec.max_wait = 60s;
  ProbeRun run(ioc, spec);
  uint64_t attempts_at_cancel = 0;
  server.on_accept = [&] {
    // The probe has connected and waits for a status line that never comes.
    asio::post(run.strand(), [&] {
      attempts_at_cancel = run.probe().attempts();
      run.probe().cancel();
      run.probe().cancel();  // idempotent
      server.close();
    });
  };
  run.start();
  run_to_completion(ioc);  // the 60 s timers must be gone

  CHECK(run.reports.empty());
  CHECK(attempts_at_cancel == 1);
  CHECK(run.probe().attempts() == 1);
}

TEST_CASE("cancel during the wait between attempts stops all callbacks") {
  asio::io_context ioc;
  TcpPort refusing(ioc, TcpPort::State::kRefusing);
  ProbeSpec spec = tcp_spec(refusing.port());
  spec.interval = 60s;
  spec.initial_interval = 60s;
  spec.max_wait = 0ms;  // never give up: only cancel() can end this probe
  ProbeRun run(ioc, spec);
  asio::steady_timer canceller(run.strand(), 50ms);
  uint64_t attempts_at_cancel = 0;
  canceller.async_wait([&](const error_code&) {
    attempts_at_cancel = run.probe().attempts();
    run.probe().cancel();
  });
  run.start();
  run_to_completion(ioc);

  CHECK(run.reports.empty());
  CHECK(attempts_at_cancel == 1);
  CHECK(run.probe().attempts() == 1);
}

TEST_CASE("cancel before start and start after cancel do nothing") {
  asio::io_context ioc;
  TcpPort refusing(ioc, TcpPort::State::kRefusing);
  ProbeRun run(ioc, tcp_spec(refusing.port()));
  asio::post(run.strand(), [&] { run.probe().cancel(); });
  run.start();
  run_to_completion(ioc);

  CHECK(run.reports.empty());
  CHECK(run.probe().attempts() == 0);
}

TEST_CASE("cancel from inside the ready callback ends a liveness probe") {
  asio::io_context ioc;
  TcpPort listener(ioc);
  ProbeSpec spec = tcp_spec(listener.port());
  spec.continue_after_ready = true;
  spec.interval = 10ms;
  ProbeRun run(ioc, spec);
  run.then = [&](const Report&) {
    run.probe().cancel();
    listener.close();
  };
  run.start();
  run_to_completion(ioc);

  REQUIRE(run.reports.size() == 1);
  CHECK(run.reports[0].ready);
  CHECK(run.probe().attempts() == 1);
}

TEST_CASE("success_threshold 3 needs three consecutive successes") {
  asio::io_context ioc;

  SECTION("three successes in a row") {
    TcpPort listener(ioc);
    ProbeSpec spec = tcp_spec(listener.port());
    spec.success_threshold = 3;
    ProbeRun run(ioc, spec);
    run.then = [&](const Report&) { listener.close(); };
    run.start();
    run_to_completion(ioc);

    REQUIRE(run.reports.size() == 1);
    CHECK(run.reports[0].ready);
    CHECK(run.reports[0].attempts == 3);
  }

  SECTION("a failure in between starts the count over") {
    HttpResponder server(ioc, [](std::size_t n) { return status_response(n == 2 ? 503 : 200); });
    ProbeSpec spec = http_spec(server.port());
    spec.success_threshold = 3;
    ProbeRun run(ioc, spec);
    run.then = [&](const Report&) { server.close(); };
    run.start();
    run_to_completion(ioc);

    REQUIRE(run.reports.size() == 1);
    CHECK(run.reports[0].ready);
    CHECK(run.reports[0].attempts == 5);  // 200, 503, 200, 200, 200
  }
}

TEST_CASE("continue_after_ready with failure_threshold 2 reports failure") {
  asio::io_context ioc;

  SECTION("after the listener is closed") {
    TcpPort listener(ioc);
    ProbeSpec spec = tcp_spec(listener.port());
    spec.continue_after_ready = true;
    spec.failure_threshold = 2;
    spec.interval = 20ms;
    ProbeRun run(ioc, spec);
    run.then = [&](const Report& r) {
      if (r.ready) listener.stop_listening();
    };
    run.start();
    run_to_completion(ioc);  // the probe must stop after its failure report

    REQUIRE(run.reports.size() == 2);
    CHECK(run.reports[0].ready);
    CHECK_FALSE(run.reports[1].ready);
    CHECK_THAT(run.reports[1].detail, Contains("2 consecutive failures after ready"));
    CHECK_THAT(run.reports[1].detail, Contains("connection refused"));
    CHECK(run.reports[1].attempts == run.reports[0].attempts + 2);
  }

  SECTION("a success in between resets the failure count") {
    // 200 (ready), 503, 200, 503, 503 (failed)
    HttpResponder server(
        ioc, [](std::size_t n) { return status_response(n == 2 || n == 4 || n == 5 ? 503 : 200); });
    ProbeSpec spec = http_spec(server.port(), "/live");
    spec.continue_after_ready = true;
    spec.failure_threshold = 2;
    spec.interval = 10ms;
    ProbeRun run(ioc, spec);
    run.then = [&](const Report& r) {
      if (!r.ready) server.close();
    };
    run.start();
    run_to_completion(ioc);

    REQUIRE(run.reports.size() == 2);
    CHECK(run.reports[0].ready);
    CHECK(run.reports[0].attempts == 1);
    CHECK_FALSE(run.reports[1].ready);
    CHECK(run.reports[1].attempts == 5);
    CHECK_THAT(run.reports[1].detail, Contains("GET /live: status 503"));
  }
}

TEST_CASE("an invalid spec is reported once and asynchronously") {
  asio::io_context ioc;
  ProbeSpec spec = http_spec(0);
  ProbeRun run(ioc, spec);
  run.start();
  run_to_completion(ioc);

  REQUIRE(run.reports.size() == 1);
  CHECK_FALSE(run.reports[0].ready);
  CHECK(run.reports[0].detail == "invalid probe: port 0");
  CHECK(run.probe().attempts() == 0);
}

TEST_CASE("liveness mode: a recovering probe never reports, the threshold reports once") {
  asio::io_context ioc;
  // 200, 503, 200, 503, 200, 503, 503, 503 (failed at the 3rd in a row)
  HttpResponder server(
      ioc, [](std::size_t n) { return status_response(n == 2 || n == 4 || n >= 6 ? 503 : 200); });
  ProbeSpec spec = http_spec(server.port(), "/live");
  spec.liveness = true;
  spec.failure_threshold = 3;
  spec.interval = 5ms;
  spec.max_wait = 10ms;  // ignored in liveness mode
  ProbeRun run(ioc, spec);
  std::vector<herd::supervise::ProbeAttempt> attempts;
  run.probe().observe_attempts(
      [&](const herd::supervise::ProbeAttempt& a) { attempts.push_back(a); });
  run.then = [&](const Report&) { server.close(); };
  run.start();
  run_to_completion(ioc);

  REQUIRE(run.reports.size() == 1);  // never a "ready" report
  CHECK_FALSE(run.reports[0].ready);
  CHECK(run.reports[0].attempts == 8);
  CHECK_THAT(run.reports[0].detail, StartsWith("3 consecutive failures, last error: "));
  CHECK_THAT(run.reports[0].detail, Contains("GET /live: status 503"));
  REQUIRE(attempts.size() == 8);
  for (std::size_t i = 0; i < attempts.size(); ++i) {
    INFO(i);
    const bool ok = i == 0 || i == 2 || i == 4;
    CHECK(attempts[i].ok == ok);
    CHECK_THAT(attempts[i].detail, Contains(ok ? "status 200" : "status 503"));
  }
}

TEST_CASE("http status range: only codes inside it succeed") {
  asio::io_context ioc;
  // 302 fails with [200, 299]; 204 succeeds.
  HttpResponder server(ioc, [](std::size_t n) { return status_response(n == 1 ? 302 : 204); });
  ProbeSpec spec = http_spec(server.port());
  spec.status_min = 200;
  spec.status_max = 299;
  ProbeRun run(ioc, spec);
  run.then = [&](const Report&) { server.close(); };
  run.start();
  run_to_completion(ioc);
  REQUIRE(run.reports.size() == 1);
  CHECK(run.reports[0].ready);
  CHECK(run.reports[0].attempts == 2);
}

TEST_CASE("exec probe: the runner's outcome decides, a hang is aborted at the timeout") {
  asio::io_context ioc;
  int started = 0;
  int aborted = 0;
  std::vector<herd::supervise::ExecDone> pending;
  ProbeSpec spec;
  spec.kind = ProbeSpec::Kind::kExec;
  spec.command = {"check", "--quick"};
  spec.liveness = true;
  spec.failure_threshold = 2;
  spec.interval = 1ms;
  spec.timeout = 20ms;
  // Attempt 1 succeeds, attempt 2 fails, attempt 3 hangs (aborted at its timeout).
  spec.exec = [&](herd::supervise::ExecDone done) -> std::function<void()> {
    ++started;
    if (started == 1) asio::post(ioc, [done] { done(true, "exit code 0"); });
    if (started == 2) asio::post(ioc, [done] { done(false, "exit code 1: nope"); });
    if (started == 3) pending.push_back(done);
    return [&] { ++aborted; };
  };
  ProbeRun run(ioc, spec);
  std::vector<herd::supervise::ProbeAttempt> attempts;
  run.probe().observe_attempts(
      [&](const herd::supervise::ProbeAttempt& a) { attempts.push_back(a); });
  run.start();
  run_to_completion(ioc);
  REQUIRE(run.reports.size() == 1);
  CHECK_FALSE(run.reports[0].ready);
  CHECK_THAT(run.reports[0].detail, Contains("exec [check --quick]: timeout after 20ms, killed"));
  CHECK(started == 3);
  CHECK(aborted >= 1);  // the hung one at least (abort after a finished attempt is harmless)
  REQUIRE(attempts.size() == 3);
  CHECK(attempts[0].ok);
  CHECK(attempts[0].detail == "exec [check --quick]: exit code 0");
  CHECK(attempts[1].detail == "exec [check --quick]: exit code 1: nope");
  // A late completion of the aborted attempt is ignored.
  for (auto& done : pending) done(true, "late");
  CHECK(attempts.size() == 3);
}
