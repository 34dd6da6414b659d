#include "metrics/http_server.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include <spdlog/spdlog.h>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "metrics/exposition.h"

namespace herd::metrics {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using unix_socket = asio::local::stream_protocol;
using error_code = boost::system::error_code;

constexpr std::size_t kHeaderLimit = 8 * 1024;
constexpr std::chrono::milliseconds kAcceptRetry{100};

// What every listener and connection shares; lives while any handler does.
struct MetricsServer::Impl {
  asio::any_io_executor executor;
  Options options;
  Render render;
  std::size_t connections = 0;
  bool stopped = false;
  std::function<void()> close_acceptor;
};

namespace {

using Impl = MetricsServer::Impl;

template <class Protocol>
class Session : public std::enable_shared_from_this<Session<Protocol>> {
 public:
  using Socket = typename Protocol::socket;
  Session(Socket socket, std::shared_ptr<Impl> impl)
      : stream_(std::move(socket)), impl_(std::move(impl)) {
    ++impl_->connections;
  }
  ~Session() { --impl_->connections; }

  void run() { read(); }

 private:
  void read() {
    if (impl_->stopped) return;
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    parser_->body_limit(0);
    stream_.expires_after(impl_->options.timeout);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::on_read, this->shared_from_this()));
  }

  void on_read(error_code ec, std::size_t) {
    if (impl_->stopped) return;
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset) {
      close();
      return;
    }
    if (ec == http::error::body_limit) {
      reply(http::status::payload_too_large, "a request body is not accepted\n", false);
      return;
    }
    if (ec) {
      reply(http::status::bad_request, "bad request\n", false);
      return;
    }
    const auto& req = parser_->get();
    std::string_view target(req.target().data(), req.target().size());
    if (const size_t q = target.find('?'); q != std::string_view::npos)
      target = target.substr(0, q);
    if (target != "/metrics") {
      reply(http::status::not_found, "only /metrics is served here\n", false);
      return;
    }
    if (req.method() != http::verb::get && req.method() != http::verb::head) {
      reply(http::status::method_not_allowed, "only GET\n", false);
      return;
    }
    std::string body;
    try {
      body = impl_->render();
    } catch (const std::exception& e) {  // bad_alloc: an answer all the same
      reply(http::status::internal_server_error, std::string("render: ") + e.what() + "\n", false);
      return;
    }
    reply(http::status::ok, std::move(body), req.keep_alive(), req.method() == http::verb::head);
  }

  void reply(http::status status, std::string body, bool keep_alive, bool head = false) {
    res_ = {};
    res_.version(11);
    res_.result(status);
    res_.set(http::field::server, "herdd");
    res_.set(http::field::content_type,
             status == http::status::ok ? kContentType : "text/plain; charset=utf-8");
    if (status == http::status::method_not_allowed) res_.set(http::field::allow, "GET, HEAD");
    res_.keep_alive(keep_alive);
    res_.body() = std::move(body);
    res_.prepare_payload();
    if (head) res_.body().clear();
    stream_.expires_after(impl_->options.timeout);
    http::async_write(stream_, res_,
                      beast::bind_front_handler(&Session::on_write, this->shared_from_this()));
  }

  void on_write(error_code ec, std::size_t) {
    if (ec || impl_->stopped) return;
    if (!res_.keep_alive()) {
      close();
      return;
    }
    read();
  }

  void close() {
    error_code ignored;
    stream_.socket().shutdown(Socket::shutdown_send, ignored);
    stream_.socket().close(ignored);
  }

  beast::basic_stream<Protocol, asio::any_io_executor, beast::unlimited_rate_policy> stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::empty_body>> parser_;
  http::response<http::string_body> res_;
  std::shared_ptr<Impl> impl_;
};

template <class Protocol>
class Listener : public std::enable_shared_from_this<Listener<Protocol>> {
 public:
  Listener(typename Protocol::acceptor acceptor, std::shared_ptr<Impl> impl)
      : acceptor_(std::move(acceptor)), retry_(impl->executor), impl_(std::move(impl)) {}

  void accept() {
    if (impl_->stopped) return;
    acceptor_.async_accept(
        beast::bind_front_handler(&Listener::on_accept, this->shared_from_this()));
  }

  void close() {
    error_code ignored;
    acceptor_.close(ignored);
    retry_.cancel();
  }

 private:
  void on_accept(error_code ec, typename Protocol::socket socket) {
    if (impl_->stopped || ec == asio::error::operation_aborted) return;
    if (ec) {  // EMFILE, ENFILE, ENOBUFS...: wait, then go on
      spdlog::warn("metrics: accept: {}; retrying in {} ms", ec.message(), kAcceptRetry.count());
      retry_.expires_after(kAcceptRetry);
      retry_.async_wait([self = this->shared_from_this()](error_code e) {
        if (!e) self->accept();
      });
      return;
    }
    if (impl_->connections >= impl_->options.max_connections) {
      error_code ignored;
      socket.close(ignored);
    } else {
      std::make_shared<Session<Protocol>>(std::move(socket), impl_)->run();
    }
    accept();
  }

  typename Protocol::acceptor acceptor_;
  asio::steady_timer retry_;
  std::shared_ptr<Impl> impl_;
};

template <class Protocol>
Result<std::string> listen_on(const std::shared_ptr<Impl>& impl,
                              const typename Protocol::endpoint& ep, const std::string& shown) {
  typename Protocol::acceptor acceptor(impl->executor);
  error_code ec;
  acceptor.open(ep.protocol(), ec);
  if (!ec && std::is_same_v<Protocol, tcp>) {
    acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  }
  if (!ec) acceptor.bind(ep, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Status::Unavailable("metrics: cannot listen on " + shown + ": " + ec.message());
  std::string endpoint = shown;
  if constexpr (std::is_same_v<Protocol, tcp>) {
    const auto local = acceptor.local_endpoint(ec);
    if (!ec) {
      const auto a = local.address();
      endpoint = (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" +
                 std::to_string(local.port());
    }
  }
  auto listener = std::make_shared<Listener<Protocol>>(std::move(acceptor), impl);
  impl->close_acceptor = [listener] { listener->close(); };
  listener->accept();
  return endpoint;
}

}  // namespace

Result<std::unique_ptr<MetricsServer>> MetricsServer::start(asio::any_io_executor executor,
                                                            Options options, Render render) {
  auto impl = std::make_shared<Impl>();
  impl->executor = executor;
  impl->render = std::move(render);
  impl->options = options;
  const std::string& listen = options.listen;
  Result<std::string> endpoint = Status::InvalidArgument("metrics: no listen address");
  if (!listen.empty() && listen.front() == '/') {
    struct stat st {};
    if (::lstat(listen.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) {
        return Status::Unavailable("metrics: " + listen + " exists and is not a socket");
      }
      ::unlink(listen.c_str());
    }
    endpoint = listen_on<unix_socket>(impl, unix_socket::endpoint(listen), listen);
    if (endpoint.ok()) ::chmod(listen.c_str(), 0660);
  } else {
    const size_t colon = listen.rfind(':');
    if (colon == std::string::npos)
      return Status::InvalidArgument("metrics: bad address " + listen);
    std::string host = listen.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    error_code ec;
    const auto address = asio::ip::make_address(host, ec);
    if (ec) return Status::InvalidArgument("metrics: bad address " + listen + ": " + ec.message());
    const auto port = static_cast<unsigned short>(std::stoul(listen.substr(colon + 1)));
    endpoint = listen_on<tcp>(impl, tcp::endpoint(address, port), listen);
  }
  if (!endpoint.ok()) return endpoint.status();
  std::unique_ptr<MetricsServer> server(new MetricsServer());
  server->impl_ = std::move(impl);
  server->endpoint_ = std::move(endpoint).value();
  return server;
}

MetricsServer::~MetricsServer() { stop(); }

void MetricsServer::stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  if (impl_->close_acceptor) impl_->close_acceptor();
  impl_->close_acceptor = nullptr;
}

}  // namespace herd::metrics
