// herd::registry::HttpClient: HTTP(S) requests on the Asio loop, through
// libcurl's multi interface. No thread per request and nothing polls: curl
// tells which sockets it waits on (CURLMOPT_SOCKETFUNCTION) and when its
// next timeout is due (CURLMOPT_TIMERFUNCTION); Asio waits for exactly
// those and hands the readiness back with curl_multi_socket_action. Name
// resolution runs in curl's own resolver thread, so nothing blocks the
// loop. libcurl itself is loaded with the first request (curl_api.h): a
// herdd that never pulls never maps it.
//
// Requests:
// - GET or HEAD, HTTP/1.1, http and https only (also after redirects);
//   redirects followed up to `max_redirects` (blob stores answer 307). An
//   Authorization header is not sent on to another host (curl's rule).
// - TLS with the system CAs, plus a per-request CA bundle (PEM text),
//   client certificate and key files, or no verification (skip_verify).
// - Proxies from the environment (http_proxy, https_proxy, no_proxy).
// - Deadlines: connect_timeout for the connection, `timeout` for the whole
//   transfer, and a stall guard (no byte for `stall_timeout` fails it).
// - `range_from` asks for the body from that offset (Range: bytes=N-).
//
// Bodies:
// - fetch() keeps the body in memory, at most `max_body` bytes (more is an
//   error): manifests, indexes, token answers, error documents.
// - stream() hands a 2xx body to `sink` in chunks of up to kChunkBytes,
//   with at most one sink call in flight: while the sink works (a
//   Content.Write to containerd), the transfer is paused
//   (CURL_WRITEFUNC_PAUSE), so a layer is never held in memory: at most
//   two chunks per transfer. The sink's first call tells the response's
//   status and headers; a non-2xx body is kept (bounded) as with fetch().
//   A sink error ends the transfer with that error. A transfer that fails
//   midway (the connection cut, a stall) first hands the sink every body
//   byte that arrived, so a caller resumes exactly after them.
//
// Errors: transport failures are Unavailable ("GET http://...: Couldn't
// connect to server"), timeouts DeadlineExceeded, a cancelled request
// Cancelled; an HTTP status is not an error here (the caller decides).
//
// Cancellation: a Cancellation passed in the request ends the transfer at
// once when cancelled (the coroutine then returns Cancelled promptly).
//
// Strand: an HttpClient and its Cancellations are confined to the
// executor given at construction (a strand or a one-thread io_context);
// the coroutines must run there. Destroying the client aborts whatever is
// in flight; it must outlive the coroutines it runs.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/asio.h"
#include "common/status.h"

namespace herd::registry {

// A cancel signal for requests, confined to the client's executor.
class Cancellation {
 public:
  void cancel();
  bool cancelled() const { return cancelled_; }
  // `fn` runs once, on cancel() (at once if already cancelled); the id
  // removes it again.
  uint64_t on_cancel(std::function<void()> fn);
  void remove(uint64_t id);

 private:
  bool cancelled_ = false;
  uint64_t next_ = 0;
  std::map<uint64_t, std::function<void()>> fns_;
};

struct TlsOptions {
  std::string ca_pem;       // extra CAs (PEM text), trusted with the system's
  std::string client_cert;  // PEM file path
  std::string client_key;   // PEM file path
  bool skip_verify = false;
};

// Has a user-provided constructor: an aggregate passed by value to a
// coroutine trips g++ 12 (common/asio.h).
struct HttpRequest {
  HttpRequest() {}
  enum class Method { kGet, kHead };
  Method method = Method::kGet;
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  TlsOptions tls;
  std::optional<uint64_t> range_from;
  int max_redirects = 10;
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds timeout{30 * 60 * 1000};
  std::chrono::milliseconds stall_timeout{30000};
  size_t max_body = 4 << 20;  // fetch(), and non-2xx bodies of stream()
  std::shared_ptr<Cancellation> cancel;
};

struct HttpResponse {
  long status = 0;
  std::string url;  // the effective URL, after redirects
  // Headers of the final response; names lowercased, values trimmed. A
  // name given twice keeps both, in order.
  std::multimap<std::string, std::string> headers;
  std::string body;         // fetch(); stream(): only for a non-2xx status
  uint64_t body_bytes = 0;  // bytes of body received (stream(): handed to the sink)

  // The first value of `name` (lowercase), if any.
  std::optional<std::string> header(std::string_view name) const;
};

class HttpClient {
 public:
  // 256 KiB: a Content.Write per chunk costs little at this size, and a
  // pull of three layers at once holds about 3 x 4 chunks (gathered,
  // handed, the request, gRPC's copy): the pull benchmark's RSS goal.
  static constexpr size_t kChunkBytes = 256 << 10;
  // curl's receive buffer for streamed bodies (its default is 16 KiB):
  // fewer reads and write callbacks per layer.
  static constexpr long kReceiveBufferBytes = 64 << 10;
  static constexpr size_t kMaxHeaderBytes = 64 << 10;  // all headers of one response

  explicit HttpClient(asio::any_io_executor executor);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  asio::awaitable<Result<HttpResponse>> fetch(HttpRequest request);

  // `head` is the response so far (status, url, headers; body empty).
  using Sink =
      std::function<asio::awaitable<Status>(const HttpResponse& head, std::string_view chunk)>;
  asio::awaitable<Result<HttpResponse>> stream(HttpRequest request, Sink sink);

  // Transfers in flight (tests, metrics).
  size_t active() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace herd::registry
