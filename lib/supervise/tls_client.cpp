#include "supervise/tls_client.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <cerrno>
#include <cstring>

#include "common/dl_library.h"

namespace herd::supervise {
namespace {

constexpr const char* kLibrary = "libssl.so.3";

// The OpenSSL functions herd calls; libcrypto's are found through libssl's
// handle (dlsym searches the library's dependencies too).
struct Api {
  const SSL_METHOD* (*TLS_client_method)();
  SSL_CTX* (*SSL_CTX_new)(const SSL_METHOD*);
  void (*SSL_CTX_free)(SSL_CTX*);
  void (*SSL_CTX_set_verify)(SSL_CTX*, int, SSL_verify_cb);
  int (*SSL_CTX_set_default_verify_paths)(SSL_CTX*);
  long (*SSL_CTX_ctrl)(SSL_CTX*, int, long, void*);
  uint64_t (*SSL_CTX_set_options)(SSL_CTX*, uint64_t);
  SSL* (*SSL_new)(SSL_CTX*);
  void (*SSL_free)(SSL*);
  int (*SSL_set_fd)(SSL*, int);
  long (*SSL_ctrl)(SSL*, int, long, void*);
  X509_VERIFY_PARAM* (*SSL_get0_param)(SSL*);
  int (*SSL_connect)(SSL*);
  int (*SSL_read)(SSL*, void*, int);
  int (*SSL_write)(SSL*, const void*, int);
  int (*SSL_get_error)(const SSL*, int);
  long (*SSL_get_verify_result)(const SSL*);
  int (*X509_VERIFY_PARAM_set1_host)(X509_VERIFY_PARAM*, const char*, size_t);
  int (*X509_VERIFY_PARAM_set1_ip_asc)(X509_VERIFY_PARAM*, const char*);
  const char* (*X509_verify_cert_error_string)(long);
  unsigned long (*ERR_peek_error)();
  void (*ERR_clear_error)();
  const char* (*ERR_reason_error_string)(unsigned long);
};

struct Loaded {
  Api api{};
  bool ok = false;
  std::string error;
};

Loaded load() {
  Loaded l;
  DlLibrary lib(kLibrary, "libssl3");
  if (!lib.handle()) {
    l.error = lib.error();
    return l;
  }
  Api& a = l.api;
  int (*init_ssl)(uint64_t, const OPENSSL_INIT_SETTINGS*) = nullptr;
  l.ok = lib.symbol("OPENSSL_init_ssl", init_ssl) &&
         lib.symbol("TLS_client_method", a.TLS_client_method) &&
         lib.symbol("SSL_CTX_new", a.SSL_CTX_new) && lib.symbol("SSL_CTX_free", a.SSL_CTX_free) &&
         lib.symbol("SSL_CTX_set_verify", a.SSL_CTX_set_verify) &&
         lib.symbol("SSL_CTX_set_default_verify_paths", a.SSL_CTX_set_default_verify_paths) &&
         lib.symbol("SSL_CTX_ctrl", a.SSL_CTX_ctrl) &&
         lib.symbol("SSL_CTX_set_options", a.SSL_CTX_set_options) &&
         lib.symbol("SSL_new", a.SSL_new) && lib.symbol("SSL_free", a.SSL_free) &&
         lib.symbol("SSL_set_fd", a.SSL_set_fd) && lib.symbol("SSL_ctrl", a.SSL_ctrl) &&
         lib.symbol("SSL_get0_param", a.SSL_get0_param) &&
         lib.symbol("SSL_connect", a.SSL_connect) && lib.symbol("SSL_read", a.SSL_read) &&
         lib.symbol("SSL_write", a.SSL_write) && lib.symbol("SSL_get_error", a.SSL_get_error) &&
         lib.symbol("SSL_get_verify_result", a.SSL_get_verify_result) &&
         lib.symbol("X509_VERIFY_PARAM_set1_host", a.X509_VERIFY_PARAM_set1_host) &&
         lib.symbol("X509_VERIFY_PARAM_set1_ip_asc", a.X509_VERIFY_PARAM_set1_ip_asc) &&
         lib.symbol("X509_verify_cert_error_string", a.X509_verify_cert_error_string) &&
         lib.symbol("ERR_peek_error", a.ERR_peek_error) &&
         lib.symbol("ERR_clear_error", a.ERR_clear_error) &&
         lib.symbol("ERR_reason_error_string", a.ERR_reason_error_string);
  if (!l.ok) {
    l.error = lib.error();
  } else if (init_ssl(OPENSSL_INIT_LOAD_SSL_STRINGS | OPENSSL_INIT_LOAD_CRYPTO_STRINGS, nullptr) !=
             1) {
    l.ok = false;
    l.error = std::string(kLibrary) + ": OPENSSL_init_ssl failed";
  }
  return l;
}

const Api* api(std::string* error) {
  static const Loaded loaded = load();  // thread-safe, once
  if (!loaded.ok) {
    if (error) *error = loaded.error;
    return nullptr;
  }
  return &loaded.api;
}

}  // namespace

std::shared_ptr<TlsContext> TlsContext::make(bool verify, std::string* error) {
  const Api* a = api(error);
  if (!a) return nullptr;
  SSL_CTX* ctx = a->SSL_CTX_new(a->TLS_client_method());
  if (!ctx) {
    if (error) *error = "SSL_CTX_new failed";
    return nullptr;
  }
  // SSL_CTX_set_min_proto_version is a macro over SSL_CTX_ctrl.
  a->SSL_CTX_ctrl(ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, TLS1_2_VERSION, nullptr);
  // An HTTP server that closes after its response without close_notify is
  // normal (Connection: close); the read sees it as the end, not an error.
  a->SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  if (verify) {
    // A node without CA paths fails verification later, with the reason.
    (void)a->SSL_CTX_set_default_verify_paths(ctx);
    a->SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  } else {
    a->SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  return std::shared_ptr<TlsContext>(new TlsContext(ctx, verify));
}

TlsContext::~TlsContext() {
  if (const Api* a = api(nullptr)) a->SSL_CTX_free(ctx_);
}

std::shared_ptr<TlsSession> TlsSession::make(std::shared_ptr<TlsContext> ctx,
                                             asio::ip::tcp::socket& socket, const std::string& host,
                                             bool host_is_ip, std::string* error) {
  const Api* a = api(error);
  if (!a) return nullptr;
  boost::system::error_code ec;
  socket.non_blocking(true, ec);
  if (ec) {
    if (error) *error = ec.message();
    return nullptr;
  }
  SSL* ssl = a->SSL_new(ctx->native());
  if (!ssl) {
    if (error) *error = "SSL_new failed";
    return nullptr;
  }
  std::shared_ptr<TlsSession> s(new TlsSession(std::move(ctx), ssl, socket));
  bool ok = a->SSL_set_fd(ssl, socket.native_handle()) == 1;
  if (ok && !host_is_ip) {  // SSL_set_tlsext_host_name, a macro over SSL_ctrl
    ok = a->SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                     const_cast<char*>(host.c_str())) == 1;
  }
  if (ok && s->ctx_->verify()) {
    X509_VERIFY_PARAM* param = a->SSL_get0_param(ssl);
    ok = host_is_ip ? a->X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) == 1
                    : a->X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size()) == 1;
  }
  if (!ok) {
    if (error) *error = "cannot set up a TLS session for " + host;
    return nullptr;
  }
  return s;
}

TlsSession::~TlsSession() {
  if (const Api* a = api(nullptr)) a->SSL_free(ssl_);
}

void TlsSession::drive(std::function<int()> op, std::function<void(int, int)> next) {
  const Api* a = api(nullptr);
  a->ERR_clear_error();
  const int ret = op();
  const int err = ret > 0 ? SSL_ERROR_NONE : a->SSL_get_error(ssl_, ret);
  if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) return next(ret, err);
  const auto what = err == SSL_ERROR_WANT_READ ? asio::ip::tcp::socket::wait_read
                                               : asio::ip::tcp::socket::wait_write;
  socket_.async_wait(what, [self = shared_from_this(), op = std::move(op),
                            next = std::move(next)](const boost::system::error_code& ec) mutable {
    if (ec) {
      self->wait_error_ = ec == asio::error::operation_aborted ? "operation aborted" : ec.message();
      return next(-1, -1);
    }
    self->drive(std::move(op), std::move(next));
  });
}

std::string TlsSession::error_text(int ret, int err) {
  const Api* a = api(nullptr);
  std::string text;
  if (err == -1) {
    text = wait_error_;
  } else if (err == SSL_ERROR_ZERO_RETURN) {
    text = "connection closed";
  } else if (err == SSL_ERROR_SSL) {
    const unsigned long code = a->ERR_peek_error();
    const char* reason = code ? a->ERR_reason_error_string(code) : nullptr;
    text = reason ? reason : "TLS error";
    const long verify = a->SSL_get_verify_result(ssl_);
    if (verify != X509_V_OK) {
      text += std::string(" (") + a->X509_verify_cert_error_string(verify) + ")";
    }
  } else if (err == SSL_ERROR_SYSCALL) {
    // ret 0 / errno 0: the peer closed the connection mid-protocol.
    text = (ret == 0 || errno == 0) ? "connection closed" : std::strerror(errno);
  } else {
    text = "TLS error " + std::to_string(err);
  }
  a->ERR_clear_error();
  return text;
}

void TlsSession::async_handshake(Done done) {
  const Api* a = api(nullptr);
  drive([a, ssl = ssl_] { return a->SSL_connect(ssl); },
        [self = shared_from_this(), done = std::move(done)](int ret, int err) {
          done(ret == 1 ? std::string() : self->error_text(ret, err));
        });
}

void TlsSession::async_write(std::string_view data, Done done) {
  if (data.empty()) return asio::post(socket_.get_executor(), [done] { done(std::string()); });
  const Api* a = api(nullptr);
  drive([a, ssl = ssl_, data] { return a->SSL_write(ssl, data.data(), int(data.size())); },
        [self = shared_from_this(), data, done = std::move(done)](int ret, int err) mutable {
          if (ret <= 0) return done(self->error_text(ret, err));
          // Partial writes only with SSL_MODE_ENABLE_PARTIAL_WRITE (not set),
          // but a short count is handled anyway.
          self->async_write(data.substr(static_cast<std::size_t>(ret)), std::move(done));
        });
}

void TlsSession::async_read_until(std::string* buffer, std::size_t max, std::string_view delim,
                                  ReadDone done) {
  if (auto at = buffer->find(delim); at != std::string::npos) {
    return asio::post(socket_.get_executor(),
                      [done, end = at + delim.size()] { done(ReadEnd::kFound, end, {}); });
  }
  if (buffer->size() >= max) {
    return asio::post(socket_.get_executor(), [done] { done(ReadEnd::kFull, 0, {}); });
  }
  const Api* a = api(nullptr);
  const std::size_t old = buffer->size();
  buffer->resize(max);
  drive([a, ssl = ssl_, buffer, old,
         max] { return a->SSL_read(ssl, buffer->data() + old, static_cast<int>(max - old)); },
        [self = shared_from_this(), buffer, old, max, delim, done = std::move(done)](
            int ret, int err) mutable {
          buffer->resize(old + static_cast<std::size_t>(ret > 0 ? ret : 0));
          if (ret > 0) return self->async_read_until(buffer, max, delim, std::move(done));
          if (err == SSL_ERROR_ZERO_RETURN || (err == SSL_ERROR_SYSCALL && ret == 0)) {
            return done(ReadEnd::kClosed, 0, {});
          }
          done(ReadEnd::kError, 0, self->error_text(ret, err));
        });
}

}  // namespace herd::supervise
