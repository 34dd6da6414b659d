// HttpClient against a real HTTP server on loopback (http_fixture.py,
// started here and stopped by its pid): bodies in memory and streamed with
// back-pressure, HEAD, redirects, ranges, statuses, a cut body, a server
// that never answers, cancellation, and the limits.
#include "registry/http.h"

#include <catch2/catch.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "../support/child_process.h"
#include "common/sha256.h"

using namespace std::chrono_literals;
using herd::Code;
using herd::Result;
using herd::Status;
using herd::registry::Cancellation;
using herd::registry::HttpClient;
using herd::registry::HttpRequest;
using herd::registry::HttpResponse;
namespace asio = boost::asio;

namespace {

std::string blob(size_t n, size_t start = 0) {
  std::string s;
  s.reserve(n - start);
  for (size_t i = start; i < n; ++i) s.push_back(static_cast<char>((i * 7 + 3) & 0xff));
  return s;
}

struct Server {
  herd::testing::ChildProcess child{{"python3", HERD_HTTP_FIXTURE}};
  std::string base;
  Server() { base = "http://127.0.0.1:" + child.read_port(); }
};

Server& server() {
  static Server s;
  return s;
}

// Runs `body` on a fresh io_context to completion.
template <class T>
T run(std::function<asio::awaitable<T>(HttpClient&)> body) {
  asio::io_context io;
  HttpClient client(io.get_executor());
  std::optional<T> out;
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { out = co_await body(client); },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  io.run();
  REQUIRE(out.has_value());
  CHECK(client.active() == 0);
  return std::move(*out);
}

Result<HttpResponse> get(const std::string& path,
                         HttpRequest::Method m = HttpRequest::Method::kGet) {
  std::function<asio::awaitable<Result<HttpResponse>>(HttpClient&)> f =
      [&](HttpClient& c) -> asio::awaitable<Result<HttpResponse>> {
    HttpRequest r;
    r.method = m;
    r.url = server().base + path;
    co_return co_await c.fetch(std::move(r));
  };
  return run(f);
}

}  // namespace

TEST_CASE("http: a GET keeps the body and the final response's headers", "[http]") {
  auto r = get("/blob/1000");
  REQUIRE(r.ok());
  CHECK(r->status == 200);
  CHECK(r->body == blob(1000));
  CHECK(r->header("docker-content-digest") == std::optional<std::string>("sha256:test"));
  CHECK(r->header("content-length") == std::optional<std::string>("1000"));
}

TEST_CASE("http: HEAD has headers and no body", "[http]") {
  auto r = get("/blob/5000", HttpRequest::Method::kHead);
  REQUIRE(r.ok());
  CHECK(r->status == 200);
  CHECK(r->body.empty());
  CHECK(r->header("content-length") == std::optional<std::string>("5000"));
}

TEST_CASE("http: a 307 is followed to the blob", "[http]") {
  auto r = get("/redirect/300");
  REQUIRE(r.ok());
  CHECK(r->status == 200);
  CHECK(r->url == server().base + "/blob/300");
  CHECK(r->body == blob(300));
}

TEST_CASE("http: an HTTP error status is a response, with its headers and body", "[http]") {
  auto r = get("/status/429");
  REQUIRE(r.ok());
  CHECK(r->status == 429);
  CHECK(r->header("retry-after") == std::optional<std::string>("1"));
  CHECK(r->body == "status 429");
}

TEST_CASE("http: range_from resumes a body at an offset", "[http]") {
  std::function<asio::awaitable<Result<HttpResponse>>(HttpClient&)> f =
      [](HttpClient& c) -> asio::awaitable<Result<HttpResponse>> {
    HttpRequest r;
    r.url = server().base + "/blob/4096";
    r.range_from = 1000;
    co_return co_await c.fetch(std::move(r));
  };
  auto r = run(f);
  REQUIRE(r.ok());
  CHECK(r->status == 206);
  CHECK(r->body == blob(4096, 1000));
}

TEST_CASE("http: a streamed body reaches the sink in bounded chunks, one call at a time",
          "[http][stream]") {
  const size_t n = 5 * 1024 * 1024 + 123;
  size_t total = 0, calls = 0, biggest = 0, in_flight = 0, max_in_flight = 0;
  herd::Sha256 hash;
  long status_seen = 0;
  std::function<asio::awaitable<Result<HttpResponse>>(HttpClient&)> f =
      [&](HttpClient& c) -> asio::awaitable<Result<HttpResponse>> {
    HttpRequest r;
    r.url = server().base + "/blob/" + std::to_string(n);
    HttpClient::Sink sink = [&](const HttpResponse& head,
                                std::string_view chunk) -> asio::awaitable<Status> {
      ++in_flight;
      max_in_flight = std::max(max_in_flight, in_flight);
      status_seen = head.status;
      // A slow consumer: yield to the loop a few times, as a content write
      // to containerd would, while the transfer must wait.
      for (int i = 0; i < 3; ++i)
        co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
      hash.update(chunk);
      total += chunk.size();
      biggest = std::max(biggest, chunk.size());
      ++calls;
      --in_flight;
      co_return Status::Ok();
    };
    co_return co_await c.stream(std::move(r), std::move(sink));
  };
  auto r = run(f);
  REQUIRE(r.ok());
  CHECK(r->status == 200);
  CHECK(r->body.empty());
  CHECK(r->body_bytes == n);
  CHECK(status_seen == 200);
  CHECK(total == n);
  CHECK(max_in_flight == 1);
  CHECK(biggest <= HttpClient::kChunkBytes + 16 * 1024);
  CHECK(calls >= 5);
  CHECK(herd::to_hex(hash.finish()) == herd::sha256_hex(blob(n)));
}

TEST_CASE("http: a sink error ends the transfer with that error", "[http][stream]") {
  std::function<asio::awaitable<Result<HttpResponse>>(HttpClient&)> f =
      [](HttpClient& c) -> asio::awaitable<Result<HttpResponse>> {
    HttpRequest r;
    r.url = server().base + "/blob/3000000";
    HttpClient::Sink sink = [](const HttpResponse&, std::string_view) -> asio::awaitable<Status> {
      co_return Status::DataLoss("digest mismatch for sha256:abc");
    };
    co_return co_await c.stream(std::move(r), std::move(sink));
  };
  auto r = run(f);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Code::kDataLoss);
  CHECK(r.status().message().find("digest mismatch for sha256:abc") != std::string::npos);
}

TEST_CASE("http: a non-2xx body is kept, not streamed", "[http][stream]") {
  bool called = false;
  std::function<asio::awaitable<Result<HttpResponse>>(HttpClient&)> f =
      [&](HttpClient& c) -> asio::awaitable<Result<HttpResponse>> {
    HttpRequest r;
    r.url = server().base + "/status/503";
    HttpClient::Sink sink = [&](const HttpResponse&, std::string_view) -> asio::awaitable<Status> {
      called = true;
      co_return Status::Ok();
    };
    co_return co_await c.stream(std::move(r), std::move(sink));
  };
  auto r = run(f);
  REQUIRE(r.ok());
  CHECK(r->status == 503);
  CHECK(r->body == "status 503");
  CHECK_FALSE(called);
}

TEST_CASE("http: transport failures name the request", "[http][faults]") {
  SECTION("a body cut in the middle") {
    auto r = get("/cut/100000");
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Code::kUnavailable);
    CHECK(r.status().message().find("GET " + server().base + "/cut/100000") != std::string::npos);
  }
  SECTION("nothing listening") {
    // A port that was just free: bind, read it, close.
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    const std::string url = "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/x";
    std::function<asio::awaitable<Result<HttpResponse>>(HttpClient&)> f =
        [&](HttpClient& c) -> asio::awaitable<Result<HttpResponse>> {
      HttpRequest r;
      r.url = url;
      co_return co_await c.fetch(std::move(r));
    };
    auto r = run(f);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Code::kUnavailable);
    CHECK(r.status().message().find(url) != std::string::npos);
  }
  SECTION("a server that never answers meets the deadline") {
    std::function<asio::awaitable<Result<HttpResponse>>(HttpClient&)> f =
        [](HttpClient& c) -> asio::awaitable<Result<HttpResponse>> {
      HttpRequest r;
      r.url = server().base + "/hang";
      r.timeout = 300ms;
      co_return co_await c.fetch(std::move(r));
    };
    auto r = run(f);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Code::kDeadlineExceeded);
  }
}

TEST_CASE("http: a cancelled request ends at once with Cancelled", "[http]") {
  std::function<asio::awaitable<Result<HttpResponse>>(HttpClient&)> f =
      [](HttpClient& c) -> asio::awaitable<Result<HttpResponse>> {
    auto cancel = std::make_shared<Cancellation>();
    asio::steady_timer t(co_await asio::this_coro::executor, 100ms);
    t.async_wait([cancel](boost::system::error_code) { cancel->cancel(); });
    HttpRequest r;
    r.url = server().base + "/hang";
    r.timeout = 60s;
    r.cancel = cancel;
    co_return co_await c.fetch(std::move(r));
  };
  auto r = run(f);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Code::kCancelled);
}

TEST_CASE("http: limits on hostile answers", "[http][limits]") {
  SECTION("a body over max_body") {
    std::function<asio::awaitable<Result<HttpResponse>>(HttpClient&)> f =
        [](HttpClient& c) -> asio::awaitable<Result<HttpResponse>> {
      HttpRequest r;
      r.url = server().base + "/blob/100000";
      r.max_body = 1000;
      co_return co_await c.fetch(std::move(r));
    };
    auto r = run(f);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message().find("body over 1000 bytes") != std::string::npos);
  }
  SECTION("headers over 64 KiB") {
    auto r = get("/many-headers");
    REQUIRE_FALSE(r.ok());
    INFO(r.status().to_string());
    CHECK(r.status().message().find("headers over") != std::string::npos);
  }
}

TEST_CASE("http: request headers are sent; a header with a line break is refused", "[http]") {
  std::function<asio::awaitable<Result<HttpResponse>>(HttpClient&)> f =
      [](HttpClient& c) -> asio::awaitable<Result<HttpResponse>> {
    HttpRequest r;
    r.url = server().base + "/echo-headers";
    r.headers = {"X-Herd: yes", "Accept: application/vnd.oci.image.index.v1+json"};
    co_return co_await c.fetch(std::move(r));
  };
  auto r = run(f);
  REQUIRE(r.ok());
  CHECK(r->body.find("X-Herd: yes") != std::string::npos);
  CHECK(r->body.find("Accept: application/vnd.oci.image.index.v1+json") != std::string::npos);

  std::function<asio::awaitable<Result<HttpResponse>>(HttpClient&)> bad =
      [](HttpClient& c) -> asio::awaitable<Result<HttpResponse>> {
    HttpRequest req;
    req.url = server().base + "/echo-headers";
    req.headers = {"X-Evil: a\r\nHost: elsewhere"};
    co_return co_await c.fetch(std::move(req));
  };
  auto b = run(bad);
  REQUIRE_FALSE(b.ok());
  CHECK(b.status().code() == Code::kInvalidArgument);
}

TEST_CASE("http: many transfers at once on one loop", "[http]") {
  std::function<asio::awaitable<Result<HttpResponse>>(HttpClient&)> f =
      [](HttpClient& c) -> asio::awaitable<Result<HttpResponse>> {
    auto ex = co_await asio::this_coro::executor;
    int ok = 0;
    int finished = 0;
    asio::steady_timer all_done(ex, asio::steady_timer::time_point::max());
    for (int i = 0; i < 20; ++i) {
      asio::co_spawn(
          ex,
          [&c, &ok, &finished, &all_done, i]() -> asio::awaitable<void> {
            HttpRequest r;
            r.url = server().base + "/blob/" + std::to_string(10000 + i);
            auto got = co_await c.fetch(std::move(r));
            if (got.ok() && got->body == blob(10000 + i)) ++ok;
            if (++finished == 20) all_done.cancel();
          },
          asio::detached);
    }
    boost::system::error_code ec;
    co_await all_done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    HttpResponse summary;
    summary.status = ok;
    co_return summary;
  };
  auto r = run(f);
  REQUIRE(r.ok());
  CHECK(r->status == 20);
}
