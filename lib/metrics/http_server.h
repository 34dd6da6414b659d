// herd::metrics::MetricsServer: herdd's Prometheus endpoint, `GET /metrics`
// over HTTP/1.1 on Boost.Beast, on a TCP address or a unix socket
// (config.h, MetricsConfig::listen).
//
// Contract:
// - Only GET /metrics (a query string is ignored) is served: 200 with
//   render()'s text and Content-Type exposition.h's kContentType. Another
//   path is 404, another method 405, a request with a body 413, a request
//   whose header exceeds 8 KiB or that does not parse 400; the error
//   answers close the connection.
// - At most `max_connections` connections at once; one more is accepted
//   and closed at once (the client sees a reset or EOF, herdd nothing).
// - Every read and write has `timeout` (10 s): a client that sends its
//   request slowly, or keeps an idle keep-alive connection, is closed then.
// - accept() errors such as EMFILE are retried after 100 ms; they never
//   end the server.
// - A unix socket path is unlinked first when a socket is there (a stale
//   one of an earlier herdd), refused when anything else is; it is made
//   0660 after bind.
// - stop() closes the acceptor and every connection; handlers still queued
//   become no-ops. The server lives while any of its handlers is pending.
//
// Strand: everything runs on the executor given to start() (herdd's event
// loop): render() is called there, so it may read the loop's state.
// Nothing blocks: reads, writes and accepts are asynchronous.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "common/asio.h"
#include "common/status.h"

namespace herd::metrics {

class MetricsServer {
 public:
  struct Options {
    std::string listen;  // "127.0.0.1:9464", "[::1]:9464" or "/run/herd/metrics.sock"
    std::size_t max_connections = 16;
    std::chrono::milliseconds timeout{10000};
  };
  using Render = std::function<std::string()>;

  // Binds and listens; Unavailable (naming the address and the errno
  // text) when it cannot.
  static Result<std::unique_ptr<MetricsServer>> start(asio::any_io_executor executor,
                                                      Options options, Render render);
  ~MetricsServer();
  void stop();
  // What it listens on: "127.0.0.1:9464" or the socket path.
  const std::string& endpoint() const { return endpoint_; }

  struct Impl;

 private:
  MetricsServer() = default;
  std::shared_ptr<Impl> impl_;
  std::string endpoint_;
};

}  // namespace herd::metrics
