// The https probe against a real TLS server on loopback made here: asio::ssl
// with a self-signed certificate generated in-process (OpenSSL), answering
// every request with 204. Certificate checking is off by default (a
// self-signed loopback server is then fine) and, when asked for, refuses
// that certificate.
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "supervise/probe.h"

namespace {

namespace asio = herd::asio;
namespace ssl = asio::ssl;
using herd::supervise::ProbeSpec;
using herd::supervise::ReadinessProbe;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using namespace std::chrono_literals;

// A P-256 key and a self-signed certificate for CN=herd-test, valid 1 h.
void self_signed(ssl::context& ctx) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  REQUIRE(key);
  X509* cert = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("herd-test"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  REQUIRE(X509_sign(cert, key, EVP_sha256()) > 0);
  REQUIRE(SSL_CTX_use_certificate(ctx.native_handle(), cert) == 1);
  REQUIRE(SSL_CTX_use_PrivateKey(ctx.native_handle(), key) == 1);
  X509_free(cert);
  EVP_PKEY_free(key);
}

// Accepts TLS connections on 127.0.0.1, answers each request 204, closes.
class TlsServer {
 public:
  explicit TlsServer(asio::io_context& ioc)
      : ctx_(ssl::context::tls_server), acceptor_(ioc, {asio::ip::make_address("127.0.0.1"), 0}) {
    self_signed(ctx_);
    accept();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  void close() { acceptor_.close(); }
  int handshakes = 0;

 private:
  struct Conn {
    Conn(tcp::socket s, ssl::context& ctx) : stream(std::move(s), ctx) {}
    ssl::stream<tcp::socket> stream;
    std::string in;
  };
  void accept() {
    acceptor_.async_accept([this](const error_code& ec, tcp::socket s) {
      if (ec) return;
      auto c = std::make_shared<Conn>(std::move(s), ctx_);
      c->stream.async_handshake(ssl::stream_base::server, [this, c](const error_code& e) {
        if (e) return;
        ++handshakes;
        asio::async_read_until(c->stream, asio::dynamic_buffer(c->in), "\r\n\r\n",
                               [c](const error_code& r, std::size_t) {
                                 if (r) return;
                                 static const std::string kAnswer =
                                     "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
                                 asio::async_write(c->stream, asio::buffer(kAnswer),
                                                   [c](const error_code&, std::size_t) {
                                                     error_code ignored;
                                                     c->stream.lowest_layer().close(ignored);
                                                   });
                               });
      });
      accept();
    });
  }
  ssl::context ctx_;
  tcp::acceptor acceptor_;
};

struct Outcome {
  bool reported = false;
  bool ready = false;
  std::string detail;
};

Outcome probe_once(asio::io_context& ioc, TlsServer& server, bool verify) {
  ProbeSpec spec;
  spec.kind = ProbeSpec::Kind::kHttp;
  spec.https = true;
  spec.tls_verify = verify;
  spec.port = server.port();
  spec.path = "/health";
  spec.interval = 20ms;
  spec.max_wait = 2s;
  Outcome out;
  auto strand = asio::make_strand(ioc);
  auto probe = ReadinessProbe::create(strand, spec, [&](bool ready, std::string detail) {
    out.reported = true;
    out.ready = ready;
    out.detail = std::move(detail);
    server.close();
  });
  asio::post(strand, [probe] { probe->start(); });
  ioc.run_for(20s);
  return out;
}

}  // namespace

TEST_CASE("https probe: a self-signed loopback server is fine without tls_verify") {
  asio::io_context ioc;
  TlsServer server(ioc);
  Outcome out = probe_once(ioc, server, /*verify=*/false);
  REQUIRE(out.reported);
  CHECK(out.ready);
  CHECK(out.detail == "GET /health: status 204");
  CHECK(server.handshakes >= 1);
}

TEST_CASE("https probe: tls_verify refuses a self-signed certificate") {
  asio::io_context ioc;
  TlsServer server(ioc);
  Outcome out = probe_once(ioc, server, /*verify=*/true);
  REQUIRE(out.reported);
  CHECK_FALSE(out.ready);
  INFO(out.detail);
  CHECK_THAT(out.detail, Catch::Contains("TLS handshake 127.0.0.1:"));
  CHECK_THAT(out.detail, Catch::Contains("not ready within 2000ms"));
}
