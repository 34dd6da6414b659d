// The TLS client of https probes, on Debian's libssl loaded the first time
// an https probe is made (dlopen of libssl.so.3), not when herdd starts.
//
// Why: herdd's gRPC is Debian's libgrpc_unsecure, which maps no OpenSSL;
// the https probe was the only user of libssl + libcrypto, and linking
// them (through asio::ssl, whose static initialiser also runs OpenSSL's
// init) cost 1.7 MB of herdd's RSS on every node, most of which probe no
// https endpoint. Loaded on demand, a node with an https probe pays it from
// that probe on. OpenSSL's headers give the types and constants only.
//
// Contract.
// - TlsContext::make(verify) loads the library once (thread-safe) and makes
//   one client SSL_CTX: TLS 1.2+, with `verify` the system CA paths and
//   peer verification, without it no verification at all. nullptr with
//   *error when the library cannot be loaded (the package depends on
//   libssl3, so only a broken install) or the context cannot be made.
// - TlsSession drives one handshake/write/read at a time over a connected
//   asio socket the caller owns and keeps open until the operation's
//   handler has run. It runs on the socket's executor (the probe's strand):
//   every step is SSL_* on the non-blocking fd, and a WANT_READ/WANT_WRITE
//   is an async_wait for that readiness, so no thread blocks. Closing the
//   socket ends a pending operation with "operation aborted"; its handler
//   still runs, once, on the executor.
// - Errors are text for a probe's detail: OpenSSL's reason ("wrong version
//   number", "certificate verify failed (self-signed certificate)"), or the
//   socket's (errno), or "connection closed".
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/asio.h"  // first: see there

#include <boost/asio/ip/tcp.hpp>

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace herd::supervise {

class TlsContext {
 public:
  static std::shared_ptr<TlsContext> make(bool verify, std::string* error);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;
  SSL_CTX* native() const { return ctx_; }
  bool verify() const { return verify_; }

 private:
  TlsContext(SSL_CTX* ctx, bool verify) : ctx_(ctx), verify_(verify) {}
  SSL_CTX* ctx_;
  bool verify_;
};

class TlsSession : public std::enable_shared_from_this<TlsSession> {
 public:
  // `host`: sent as SNI when it is a name (`host_is_ip` false); with the
  // context's `verify`, the name (or IP) the certificate must carry.
  static std::shared_ptr<TlsSession> make(std::shared_ptr<TlsContext> ctx,
                                          asio::ip::tcp::socket& socket, const std::string& host,
                                          bool host_is_ip, std::string* error);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // error: empty on success.
  using Done = std::function<void(const std::string& error)>;
  void async_handshake(Done done);
  // Writes all of `data` (which outlives the operation).
  void async_write(std::string_view data, Done done);

  enum class ReadEnd { kFound, kClosed, kFull, kError };
  // Appends to *buffer until it holds `delim` (kFound, `end` = the offset
  // just past the first delim), the peer closes (kClosed), *buffer reaches
  // `max` bytes without it (kFull) or an error (kError, with `error`).
  using ReadDone = std::function<void(ReadEnd how, std::size_t end, const std::string& error)>;
  void async_read_until(std::string* buffer, std::size_t max, std::string_view delim,
                        ReadDone done);

 private:
  TlsSession(std::shared_ptr<TlsContext> ctx, SSL* ssl, asio::ip::tcp::socket& socket)
      : ctx_(std::move(ctx)), ssl_(ssl), socket_(socket) {}
  // Runs `op` (an SSL_* call) until it does not ask to wait; then
  // `next(ret, ssl_error)`, or next(-1, -1) with *aborted_ when a wait failed.
  void drive(std::function<int()> op, std::function<void(int ret, int err)> next);
  std::string error_text(int ret, int err);

  std::shared_ptr<TlsContext> ctx_;
  SSL* ssl_;
  asio::ip::tcp::socket& socket_;
  std::string wait_error_;  // the async_wait's error, for error_text
};

}  // namespace herd::supervise
