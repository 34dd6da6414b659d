// libcurl's multi interface on Asio (contract in http.h).
//
// Sockets: curl opens them through open_socket (so they are CLOEXEC and
// herd knows them from birth) and closes them through close_socket; in
// between each has a stream_descriptor that waits for what curl last asked
// for (socket callback). Descriptors for sockets curl made itself (its
// resolver's wake-up pair) are made on first sight and dropped on
// CURL_POLL_REMOVE, before curl closes them. Every wait carries the
// socket's generation, so a wait cancelled or superseded never acts.
#include "registry/http.h"

#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>

#include "registry/curl_api.h"

namespace herd::registry {

// ------------------------------------------------------------ Cancellation

void Cancellation::cancel() {
  if (cancelled_) return;
  cancelled_ = true;
  auto fns = std::move(fns_);
  fns_.clear();
  for (auto& [id, fn] : fns) fn();
}

uint64_t Cancellation::on_cancel(std::function<void()> fn) {
  const uint64_t id = ++next_;
  if (cancelled_) {
    fn();
    return id;
  }
  fns_.emplace(id, std::move(fn));
  return id;
}

void Cancellation::remove(uint64_t id) { fns_.erase(id); }

std::optional<std::string> HttpResponse::header(std::string_view name) const {
  auto it = headers.find(std::string(name));
  if (it == headers.end()) return std::nullopt;
  return it->second;
}

// ------------------------------------------------------------ the client

namespace {

// libcurl's functions; only called once Impl::ensure_multi() loaded it
// (every easy handle, slist and multi call follows a successful one).
const curl::Api& cu() { return *curl::api(); }

std::string method_name(HttpRequest::Method m) {
  return m == HttpRequest::Method::kHead ? "HEAD" : "GET";
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

// The system CA bundle, read once: a per-host CA is trusted in addition to
// the system's, as containerd does, and curl's CA blob replaces its file.
const std::string& system_ca_bundle() {
  static const std::string bundle = [] {
    for (const char* path : {"/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/cert.pem"}) {
      std::ifstream in(path, std::ios::binary);
      if (!in) continue;
      std::ostringstream ss;
      ss << in.rdbuf();
      return ss.str();
    }
    return std::string();
  }();
  return bundle;
}

}  // namespace

struct Transfer;

struct HttpClient::Impl {
  explicit Impl(asio::any_io_executor ex) : executor(std::move(ex)), timer(executor) {}
  // libcurl and the multi handle come with the first request (curl_api.h).
  Status ensure_multi() {
    if (multi != nullptr) return Status::Ok();
    std::string why;
    if (curl::api(&why) == nullptr) return Status::Unavailable("registry client: " + why);
    multi = cu().multi_init();
    if (multi == nullptr) return Status::Internal("curl_multi_init failed");
    cu().multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, &Impl::on_socket);
    cu().multi_setopt(multi, CURLMOPT_SOCKETDATA, this);
    cu().multi_setopt(multi, CURLMOPT_TIMERFUNCTION, &Impl::on_timer);
    cu().multi_setopt(multi, CURLMOPT_TIMERDATA, this);
    return Status::Ok();
  }
  ~Impl();

  struct Sock {
    std::unique_ptr<asio::posix::stream_descriptor> d;
    int what = CURL_POLL_NONE;
    bool opened_by_us = false;
    bool reading = false, writing = false;
    uint64_t gen = 0;
  };

  static int on_socket(CURL*, curl_socket_t fd, int what, void* self, void*) {
    static_cast<Impl*>(self)->socket_changed(fd, what);
    return 0;
  }
  static int on_timer(CURLM*, long timeout_ms, void* self) {
    static_cast<Impl*>(self)->timer_changed(timeout_ms);
    return 0;
  }
  static curl_socket_t open_socket(void* self, curlsocktype purpose, curl_sockaddr* a) {
    if (purpose != CURLSOCKTYPE_IPCXN) return CURL_SOCKET_BAD;
    int fd = ::socket(a->family, a->socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->protocol);
    if (fd < 0) return CURL_SOCKET_BAD;
    auto* impl = static_cast<Impl*>(self);
    Sock& s = impl->socks[fd];
    s.d = std::make_unique<asio::posix::stream_descriptor>(impl->executor, fd);
    s.opened_by_us = true;
    return fd;
  }
  static int close_socket(void* self, curl_socket_t fd) {
    static_cast<Impl*>(self)->forget(fd);
    return ::close(fd);
  }

  Sock* sock(curl_socket_t fd) {
    auto it = socks.find(fd);
    return it == socks.end() ? nullptr : &it->second;
  }

  // Drops herd's descriptor of `fd` (curl keeps the fd itself).
  void forget(curl_socket_t fd) {
    auto it = socks.find(fd);
    if (it == socks.end()) return;
    boost::system::error_code ec;
    it->second.d->cancel(ec);
    (void)it->second.d->release();
    socks.erase(it);
  }

  void socket_changed(curl_socket_t fd, int what) {
    if (what == CURL_POLL_REMOVE) {
      Sock* s = sock(fd);
      if (!s) return;
      if (!s->opened_by_us) {
        forget(fd);  // curl closes it next, without close_socket
        return;
      }
      s->what = CURL_POLL_NONE;
      ++s->gen;
      s->reading = s->writing = false;
      boost::system::error_code ec;
      s->d->cancel(ec);
      return;
    }
    Sock* s = sock(fd);
    if (!s) {
      Sock& n = socks[fd];
      n.d = std::make_unique<asio::posix::stream_descriptor>(executor, fd);
      s = &n;
    }
    if (s->what != what) {
      // A changed interest: the old waits go, the new ones are armed.
      ++s->gen;
      s->reading = s->writing = false;
      boost::system::error_code ec;
      s->d->cancel(ec);
      s->what = what;
    }
    arm(fd);
  }

  void arm(curl_socket_t fd) {
    Sock* s = sock(fd);
    if (!s) return;
    const uint64_t gen = s->gen;
    if ((s->what & CURL_POLL_IN) && !s->reading) {
      s->reading = true;
      s->d->async_wait(asio::posix::descriptor_base::wait_read,
                       [this, alive = alive, fd, gen](boost::system::error_code ec) {
                         if (!*alive) return;
                         ready(fd, gen, CURL_CSELECT_IN, ec);
                       });
    }
    if ((s->what & CURL_POLL_OUT) && !s->writing) {
      s->writing = true;
      s->d->async_wait(asio::posix::descriptor_base::wait_write,
                       [this, alive = alive, fd, gen](boost::system::error_code ec) {
                         if (!*alive) return;
                         ready(fd, gen, CURL_CSELECT_OUT, ec);
                       });
    }
  }

  void ready(curl_socket_t fd, uint64_t gen, int kind, boost::system::error_code ec) {
    Sock* s = sock(fd);
    if (!s || s->gen != gen) return;
    if (kind == CURL_CSELECT_IN) s->reading = false;
    if (kind == CURL_CSELECT_OUT) s->writing = false;
    if (ec == asio::error::operation_aborted) return;
    int running = 0;
    cu().multi_socket_action(multi, fd, ec ? CURL_CSELECT_ERR : kind, &running);
    collect();
    arm(fd);  // one-shot waits: wait again for what curl still wants
  }

  void timer_changed(long timeout_ms) {
    ++timer_gen;
    if (timeout_ms < 0) {
      timer.cancel();
      return;
    }
    const uint64_t gen = timer_gen;
    timer.expires_after(std::chrono::milliseconds(timeout_ms));
    timer.async_wait([this, alive = alive, gen](boost::system::error_code ec) {
      if (!*alive || ec || gen != timer_gen) return;
      int running = 0;
      cu().multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
      collect();
    });
  }

  // Finished transfers: recorded and woken.
  void collect();

  void add(Transfer& t);
  void remove(Transfer& t);

  asio::any_io_executor executor;
  CURLM* multi = nullptr;
  asio::steady_timer timer;
  uint64_t timer_gen = 0;
  std::map<curl_socket_t, Sock> socks;
  size_t active = 0;
  // Handlers check it: after the client is gone they do nothing.
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);
};

struct Transfer {
  Transfer(HttpClient::Impl& i, HttpRequest r) : impl(i), req(std::move(r)), wake(i.executor) {}
  ~Transfer() {
    if (req.cancel && cancel_id) req.cancel->remove(cancel_id);
    impl.remove(*this);
    if (easy) cu().easy_cleanup(easy);
    if (header_list) cu().slist_free_all(header_list);
  }

  void signal() {
    signalled = true;
    wake.cancel();
  }
  asio::awaitable<void> wait() {
    while (!signalled) {
      wake.expires_at(asio::steady_timer::time_point::max());
      boost::system::error_code ec;
      co_await wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    signalled = false;
  }

  bool status_2xx() const { return resp.status >= 200 && resp.status < 300; }

  // curl callbacks (run inside curl_multi_socket_action, on the strand).
  static size_t on_header(char* p, size_t size, size_t n, void* self) {
    const size_t total = size * n;
    return static_cast<Transfer*>(self)->header(std::string_view(p, total)) ? total : 0;
  }
  static size_t on_write(char* p, size_t size, size_t n, void* self) {
    return static_cast<Transfer*>(self)->write(std::string_view(p, size * n));
  }

  // One header line; false ends the transfer (a limit was hit).
  bool header(std::string_view line) {
    header_bytes += line.size();
    if (header_bytes > HttpClient::kMaxHeaderBytes) {
      error = Status::DataLoss("headers over " + std::to_string(HttpClient::kMaxHeaderBytes) +
                               " bytes");
      return false;
    }
    line = trim(line);
    if (line.substr(0, 5) == "HTTP/") {  // a new response (after a redirect, or 100)
      resp.headers.clear();
      resp.status = 0;
      auto sp = line.find(' ');
      if (sp != std::string_view::npos && line.size() >= sp + 4) {
        long status_code = 0;
        for (char c : line.substr(sp + 1, 3)) {
          if (c < '0' || c > '9') return true;  // curl itself rejects it
          status_code = status_code * 10 + (c - '0');
        }
        resp.status = status_code;
      }
      return true;
    }
    auto colon = line.find(':');
    if (colon != std::string_view::npos && colon > 0) {
      if (resp.headers.size() >= 256) {
        error = Status::DataLoss("more than 256 headers");
        return false;
      }
      resp.headers.emplace(lower(trim(line.substr(0, colon))),
                           std::string(trim(line.substr(colon + 1))));
    }
    return true;
  }

  size_t write(std::string_view chunk) {
    if (!streaming || !status_2xx()) {
      if (resp.body.size() + chunk.size() > req.max_body) {
        error = Status::DataLoss("body over " + std::to_string(req.max_body) + " bytes");
        return 0;
      }
      resp.body.append(chunk);
      resp.body_bytes += chunk.size();
      return chunk.size();
    }
    if (sink_busy && buf.size() + chunk.size() > HttpClient::kChunkBytes) {
      paused = true;
      return CURL_WRITEFUNC_PAUSE;  // curl hands the same bytes again on unpause
    }
    buf.append(chunk);
    resp.body_bytes += chunk.size();
    if (!sink_busy && buf.size() >= HttpClient::kChunkBytes) hand_off();
    return chunk.size();
  }

  void hand_off() {
    inflight.swap(buf);
    buf.clear();
    sink_busy = true;
    signal();
  }

  HttpClient::Impl& impl;
  HttpRequest req;
  HttpResponse resp;
  CURL* easy = nullptr;
  curl_slist* header_list = nullptr;
  char errbuf[CURL_ERROR_SIZE] = {};
  bool in_multi = false;
  bool done = false;
  bool cancelled = false;
  CURLcode code = CURLE_OK;
  Status error;  // a limit hit in a callback, or the sink's failure
  size_t header_bytes = 0;
  uint64_t cancel_id = 0;

  bool streaming = false;
  std::string buf;       // body bytes gathered for the next sink call
  std::string inflight;  // the bytes the sink has now
  bool sink_busy = false;
  bool paused = false;

  asio::steady_timer wake;
  bool signalled = false;
};

HttpClient::Impl::~Impl() {
  *alive = false;
  timer.cancel();
  if (multi != nullptr) cu().multi_cleanup(multi);  // closes cached connections (close_socket)
  for (auto& [fd, s] : socks) {
    boost::system::error_code ec;
    s.d->cancel(ec);
    (void)s.d->release();
  }
}

void HttpClient::Impl::add(Transfer& t) {
  cu().multi_add_handle(multi, t.easy);
  t.in_multi = true;
  ++active;
}

void HttpClient::Impl::remove(Transfer& t) {
  if (!t.in_multi) return;
  cu().multi_remove_handle(multi, t.easy);
  t.in_multi = false;
  --active;
}

void HttpClient::Impl::collect() {
  int left = 0;
  while (CURLMsg* msg = cu().multi_info_read(multi, &left)) {
    if (msg->msg != CURLMSG_DONE) continue;
    Transfer* t = nullptr;
    cu().easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, reinterpret_cast<char**>(&t));
    if (!t) continue;
    t->code = msg->data.result;
    remove(*t);
    t->done = true;
    t->signal();
  }
}

namespace {

Status setup(Transfer& t) {
  CURL* e = cu().easy_init();
  if (!e) return Status::Internal("curl_easy_init failed");
  t.easy = e;
  const HttpRequest& r = t.req;
  cu().easy_setopt(e, CURLOPT_URL, r.url.c_str());
  cu().easy_setopt(e, CURLOPT_PRIVATE, &t);
  cu().easy_setopt(e, CURLOPT_ERRORBUFFER, t.errbuf);
  cu().easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  cu().easy_setopt(e, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
  cu().easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  cu().easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  cu().easy_setopt(e, CURLOPT_FOLLOWLOCATION, r.max_redirects > 0 ? 1L : 0L);
  cu().easy_setopt(e, CURLOPT_MAXREDIRS, static_cast<long>(std::max(r.max_redirects, 0)));
  cu().easy_setopt(e, CURLOPT_USERAGENT, "herd");
  cu().easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(r.connect_timeout.count()));
  cu().easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(r.timeout.count()));
  cu().easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
  cu().easy_setopt(
      e, CURLOPT_LOW_SPEED_TIME,
      static_cast<long>(std::max<int64_t>(
          1, std::chrono::duration_cast<std::chrono::seconds>(r.stall_timeout).count())));
  if (r.method == HttpRequest::Method::kHead) cu().easy_setopt(e, CURLOPT_NOBODY, 1L);
  std::string range;
  if (r.range_from) {
    range = std::to_string(*r.range_from) + "-";
    cu().easy_setopt(e, CURLOPT_RANGE, range.c_str());  // curl copies strings
  }
  for (const auto& h : r.headers) {
    if (h.find('\n') != std::string::npos || h.find('\r') != std::string::npos)
      return Status::InvalidArgument("header with a line break: " + h.substr(0, 64));
    curl_slist* n = cu().slist_append(t.header_list, h.c_str());
    if (!n) return Status::Internal("curl_slist_append failed");
    t.header_list = n;
  }
  if (t.header_list) cu().easy_setopt(e, CURLOPT_HTTPHEADER, t.header_list);
  if (!r.tls.ca_pem.empty()) {
    std::string pem = system_ca_bundle() + "\n" + r.tls.ca_pem;
    curl_blob blob{pem.data(), pem.size(), CURL_BLOB_COPY};
    cu().easy_setopt(e, CURLOPT_CAINFO_BLOB, &blob);
  }
  if (!r.tls.client_cert.empty()) cu().easy_setopt(e, CURLOPT_SSLCERT, r.tls.client_cert.c_str());
  if (!r.tls.client_key.empty()) cu().easy_setopt(e, CURLOPT_SSLKEY, r.tls.client_key.c_str());
  if (r.tls.skip_verify) {
    cu().easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    cu().easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  cu().easy_setopt(e, CURLOPT_HEADERFUNCTION, &Transfer::on_header);
  cu().easy_setopt(e, CURLOPT_HEADERDATA, &t);
  if (t.streaming) cu().easy_setopt(e, CURLOPT_BUFFERSIZE, HttpClient::kReceiveBufferBytes);
  cu().easy_setopt(e, CURLOPT_WRITEFUNCTION, &Transfer::on_write);
  cu().easy_setopt(e, CURLOPT_WRITEDATA, &t);
  cu().easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, &HttpClient::Impl::open_socket);
  cu().easy_setopt(e, CURLOPT_OPENSOCKETDATA, &t.impl);
  cu().easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, &HttpClient::Impl::close_socket);
  cu().easy_setopt(e, CURLOPT_CLOSESOCKETDATA, &t.impl);
  return Status::Ok();
}

Result<HttpResponse> finish(Transfer& t) {
  const std::string what = method_name(t.req.method) + " " + t.req.url;
  if (t.cancelled) return Status::Cancelled(what + ": cancelled");
  if (!t.error.ok()) return Status(t.error.code(), what + ": " + t.error.message());
  if (t.code != CURLE_OK) {
    const std::string detail = t.errbuf[0] ? t.errbuf : cu().easy_strerror(t.code);
    if (t.code == CURLE_OPERATION_TIMEDOUT) return Status::DeadlineExceeded(what + ": " + detail);
    return Status::Unavailable(what + ": " + detail);
  }
  long code = 0;
  cu().easy_getinfo(t.easy, CURLINFO_RESPONSE_CODE, &code);
  t.resp.status = code;
  char* url = nullptr;
  cu().easy_getinfo(t.easy, CURLINFO_EFFECTIVE_URL, &url);
  if (url) t.resp.url = url;
  return std::move(t.resp);
}

}  // namespace

HttpClient::HttpClient(asio::any_io_executor executor)
    : impl_(std::make_unique<Impl>(std::move(executor))) {}

HttpClient::~HttpClient() = default;

size_t HttpClient::active() const { return impl_->active; }

asio::awaitable<Result<HttpResponse>> HttpClient::fetch(HttpRequest request) {
  Sink none;
  co_return co_await stream(std::move(request), std::move(none));
}

asio::awaitable<Result<HttpResponse>> HttpClient::stream(HttpRequest request, Sink sink) {
  if (Status loaded = impl_->ensure_multi(); !loaded.ok()) co_return loaded;
  auto t = std::make_unique<Transfer>(*impl_, std::move(request));
  t->streaming = static_cast<bool>(sink);
  if (t->streaming) {
    // At most a chunk and one receive buffer gather before a hand-off
    // (write()): reserved once, so appends never double the capacity.
    t->buf.reserve(kChunkBytes + static_cast<size_t>(kReceiveBufferBytes));
    t->inflight.reserve(kChunkBytes + static_cast<size_t>(kReceiveBufferBytes));
  }
  t->resp.url = t->req.url;
  if (Status s = setup(*t); !s.ok()) co_return s;
  Transfer* tp = t.get();
  if (t->req.cancel) {
    t->cancel_id = t->req.cancel->on_cancel([tp] {
      tp->cancelled = true;
      tp->impl.remove(*tp);
      tp->done = true;
      tp->signal();
    });
    if (t->done) co_return finish(*t);
  }
  impl_->add(*t);

  // Hands what the transfer gathered to the sink, one call at a time,
  // and resumes the transfer when it was paused for it.
  auto drain = [&]() -> asio::awaitable<bool> {
    while (t->sink_busy) {
      HttpResponse head;
      head.status = t->resp.status;
      head.url = t->resp.url;
      head.headers = t->resp.headers;
      head.body_bytes = t->resp.body_bytes;
      Status s = co_await sink(head, t->inflight);
      t->inflight.clear();
      t->sink_busy = false;
      if (!s.ok()) {
        t->error = s;
        impl_->remove(*t);
        co_return false;
      }
      if (t->cancelled) co_return false;
      if (t->buf.size() >= kChunkBytes || (t->done && !t->buf.empty())) {
        t->hand_off();
        continue;
      }
      if (t->paused && !t->done) {
        t->paused = false;
        cu().easy_pause(t->easy, CURLPAUSE_CONT);  // may call write() at once
      }
    }
    co_return true;
  };

  for (;;) {
    co_await t->wait();
    if (t->sink_busy && !co_await drain()) break;
    if (t->done) {
      // Also after a transport failure (a cut connection, a stall): the
      // bytes that came are good, and a caller resumes after them.
      if (t->error.ok() && !t->cancelled && t->streaming && t->status_2xx() && !t->buf.empty()) {
        t->hand_off();
        (void)co_await drain();
      }
      break;
    }
  }
  co_return finish(*t);
}

}  // namespace herd::registry
