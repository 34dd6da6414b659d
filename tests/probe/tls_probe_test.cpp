// The https probe (on the libssl it loads itself, tls_client.h) against a
// real TLS server on loopback made here: asio::ssl with a self-signed
// certificate generated in-process (OpenSSL), answering every request with
// a set answer (204 by default). Certificate checking is off by default (a
// self-signed loopback server is then fine); when asked for, it refuses
// that certificate, accepts it once it is trusted (SSL_CERT_FILE, which
// OpenSSL's default verify paths read) and then checks the host name.
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
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

// A P-256 key and a self-signed certificate for CN=herd-test, valid 1 h,
// with subjectAltName `san` (none when empty). When `pem_out` is given, the
// certificate is also written there (a CA file that trusts it).
void self_signed(ssl::context& ctx, const std::string& san = "", const std::string& pem_out = "") {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  REQUIRE(key);
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("herd-test"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  if (!san.empty()) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, san.c_str());
    REQUIRE(ext);
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
  }
  REQUIRE(X509_sign(cert, key, EVP_sha256()) > 0);
  REQUIRE(SSL_CTX_use_certificate(ctx.native_handle(), cert) == 1);
  REQUIRE(SSL_CTX_use_PrivateKey(ctx.native_handle(), key) == 1);
  if (!pem_out.empty()) {
    FILE* f = std::fopen(pem_out.c_str(), "w");
    REQUIRE(f);
    REQUIRE(PEM_write_X509(f, cert) == 1);
    std::fclose(f);
  }
  X509_free(cert);
  EVP_PKEY_free(key);
}

constexpr const char* k204 = "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";

// Accepts TLS connections on 127.0.0.1, answers each request with `answer`
// (none: closes the TLS session without one), closes.
class TlsServer {
 public:
  explicit TlsServer(asio::io_context& ioc, std::string answer = k204, const std::string& san = "",
                     const std::string& ca_out = "")
      : answer_(std::move(answer)),
        ctx_(ssl::context::tls_server),
        acceptor_(ioc, {asio::ip::make_address("127.0.0.1"), 0}) {
    self_signed(ctx_, san, ca_out);
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
                               [this, c](const error_code& r, std::size_t) {
                                 if (r) return;
                                 if (answer_.empty()) {  // TLS close_notify, then FIN
                                   c->stream.async_shutdown([c](const error_code&) {
                                     error_code ignored;
                                     c->stream.lowest_layer().close(ignored);
                                   });
                                   return;
                                 }
                                 asio::async_write(c->stream, asio::buffer(answer_),
                                                   [c](const error_code&, std::size_t) {
                                                     error_code ignored;
                                                     c->stream.lowest_layer().close(ignored);
                                                   });
                               });
      });
      accept();
    });
  }
  std::string answer_;
  ssl::context ctx_;
  tcp::acceptor acceptor_;
};

// Not TLS at all: answers any connection with a plain HTTP status line.
class PlainServer {
 public:
  explicit PlainServer(asio::io_context& ioc)
      : acceptor_(ioc, {asio::ip::make_address("127.0.0.1"), 0}) {
    accept();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  void close() { acceptor_.close(); }

 private:
  void accept() {
    acceptor_.async_accept([this](const error_code& ec, tcp::socket s) {
      if (ec) return;
      auto sock = std::make_shared<tcp::socket>(std::move(s));
      static const std::string kAnswer = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
      asio::async_write(*sock, asio::buffer(kAnswer), [sock](const error_code&, std::size_t) {});
      accept();
    });
  }
  tcp::acceptor acceptor_;
};

struct Outcome {
  bool reported = false;
  bool ready = false;
  std::string detail;
};

template <class Server>
Outcome probe_once(asio::io_context& ioc, Server& server, bool verify,
                   const std::string& host = "127.0.0.1") {
  ProbeSpec spec;
  spec.host = host;
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
  CHECK_THAT(out.detail, Catch::Contains("certificate verify failed (self-signed certificate)"));
}

// SSL_CERT_FILE for one test: OpenSSL's default verify paths read it when
// a context is made, so the probe trusts the test server's certificate.
struct TrustedCa {
  std::filesystem::path file = std::filesystem::temp_directory_path() /
                               ("herd-tls-ca-" + std::to_string(::getpid()) + ".pem");
  TrustedCa() { ::setenv("SSL_CERT_FILE", file.c_str(), 1); }
  ~TrustedCa() {
    ::unsetenv("SSL_CERT_FILE");
    std::filesystem::remove(file);
  }
};

TEST_CASE("https probe: tls_verify accepts a trusted certificate for the probed name or IP") {
  TrustedCa ca;
  asio::io_context ioc;
  TlsServer server(ioc, k204, "DNS:localhost,IP:127.0.0.1", ca.file.string());
  SECTION("by IP") {
    Outcome out = probe_once(ioc, server, /*verify=*/true, "127.0.0.1");
    REQUIRE(out.reported);
    INFO(out.detail);
    CHECK(out.ready);
    CHECK(out.detail == "GET /health: status 204");
  }
  SECTION("by name (SNI, host name check)") {
    Outcome out = probe_once(ioc, server, /*verify=*/true, "localhost");
    REQUIRE(out.reported);
    INFO(out.detail);
    CHECK(out.ready);
  }
}

TEST_CASE("https probe: tls_verify refuses a trusted certificate for another name") {
  TrustedCa ca;
  asio::io_context ioc;
  TlsServer server(ioc, k204, "DNS:herd.invalid", ca.file.string());
  Outcome out = probe_once(ioc, server, /*verify=*/true, "localhost");
  REQUIRE(out.reported);
  CHECK_FALSE(out.ready);
  INFO(out.detail);
  CHECK_THAT(out.detail, Catch::Contains("TLS handshake localhost:"));
  CHECK_THAT(out.detail, Catch::Contains("hostname mismatch"));
}

TEST_CASE("https probe: a server that does not speak TLS fails in the handshake") {
  asio::io_context ioc;
  PlainServer server(ioc);
  Outcome out = probe_once(ioc, server, /*verify=*/false);
  REQUIRE(out.reported);
  CHECK_FALSE(out.ready);
  INFO(out.detail);
  CHECK_THAT(out.detail, Catch::Contains("TLS handshake 127.0.0.1:"));
  CHECK_THAT(out.detail, Catch::Contains("wrong version number"));
}

TEST_CASE("https probe: the status line rules hold over TLS") {
  struct Case {
    const char* what;
    std::string answer;  // empty: the server closes the TLS session without one
    const char* detail;
  };
  const Case cases[] = {
      {"closed after the handshake", "", "GET /health: connection closed before a status line"},
      {"no line end in the first 4 KiB", std::string(5000, 'x'),
       "GET /health: no status line in the first 4096 bytes"},
      {"a 503 is a failure, with its status", "HTTP/1.1 503 Service Unavailable\r\n\r\n",
       "GET /health: status 503"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    asio::io_context ioc;
    TlsServer server(ioc, c.answer);
    Outcome out = probe_once(ioc, server, /*verify=*/false);
    REQUIRE(out.reported);
    CHECK_FALSE(out.ready);
    CHECK_THAT(out.detail, Catch::Contains(c.detail));
  }
}
