#include "registry/resolver.h"

#include <algorithm>
#include <charconv>
#include <optional>

#include <nlohmann/json.hpp>

#include "common/backoff.h"
#include "common/sha256.h"
#include "registry/auth_file.h"
#include "registry/challenge.h"
#include "registry/small_file.h"

namespace herd::registry {
namespace {

constexpr std::chrono::seconds kManifestTimeout{120};
constexpr std::size_t kMaxCaBytes = 1 << 20;

bool is_2xx(long s) { return s >= 200 && s < 300; }

// "application/x; charset=utf-8" -> "application/x".
std::string media_type_of(std::string_view content_type) {
  auto semi = content_type.find(';');
  std::string_view t = content_type.substr(0, semi);
  while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
  return std::string(t);
}

std::optional<int64_t> parse_size(const std::optional<std::string>& v) {
  if (!v || v->empty()) return std::nullopt;
  int64_t n = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec != std::errc() || p != v->data() + v->size() || n < 0) return std::nullopt;
  return n;
}

// The registry's own words from an error body ({"errors":[{"message":..}]}),
// made printable; the status code otherwise.
std::string reason(const HttpResponse& r) {
  std::string out = "HTTP " + std::to_string(r.status);
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_object() && j.contains("errors") && j["errors"].is_array() && !j["errors"].empty()) {
    const auto& e = j["errors"][0];
    if (e.is_object()) {
      if (e.contains("code") && e["code"].is_string())
        out += " " + printable(e["code"].get<std::string>(), 64);
      if (e.contains("message") && e["message"].is_string())
        out += ": " + printable(e["message"].get<std::string>());
    }
  }
  return out;
}

std::string base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::string platform_text(const containerd::Platform& p) {
  return p.os + "/" + p.architecture + (p.variant.empty() ? "" : "/" + p.variant);
}

Status unauthorized(const HostEndpoint& ep, const std::string& why) {
  return Status(Code::kUnauthenticated, "unauthorized: " + ep.host + ": " + why);
}

// A Status for a non-2xx answer to a manifest request.
Status status_error(const Reference& ref, const HostEndpoint& ep, const HttpResponse& r) {
  if (r.status == 404)
    return Status::NotFound(ref.to_string() + ": not found on " + ep.host + " (" + reason(r) + ")");
  if (r.status == 403)
    return Status(Code::kPermissionDenied, "denied: " + ep.host + ": " + reason(r));
  if (r.status == 429 || r.status >= 500)
    return Status::Unavailable(ref.to_string() + ": " + ep.host + " answered " + reason(r));
  return Status::FailedPrecondition(ref.to_string() + ": " + ep.host + " answered " + reason(r));
}

}  // namespace

bool is_schema1_type(std::string_view t) {
  return t == "application/vnd.docker.distribution.manifest.v1+prettyjws" ||
         t == "application/vnd.docker.distribution.manifest.v1+json" || t == "text/plain";
}

Resolver::Resolver(HttpClient& http, RegistryOptions options, containerd::Platform platform)
    : http_(http),
      options_(std::move(options)),
      platform_(std::move(platform)),
      jitter_(std::random_device{}()) {}

asio::awaitable<Status> Resolver::sleep(std::chrono::milliseconds d,
                                        std::shared_ptr<Cancellation> cancel) {
  if (cancel && cancel->cancelled()) co_return Status::Cancelled("registry request cancelled");
  asio::steady_timer timer(co_await asio::this_coro::executor, d);
  uint64_t id = 0;
  if (cancel) {
    std::function<void()> fn = [&timer] { timer.cancel(); };
    id = cancel->on_cancel(std::move(fn));
  }
  boost::system::error_code ec;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  if (cancel) cancel->remove(id);
  if (cancel && cancel->cancelled()) co_return Status::Cancelled("registry request cancelled");
  co_return Status::Ok();
}

Result<TlsOptions> Resolver::tls_for(const HostEndpoint& ep) const {
  TlsOptions tls;
  for (const auto& path : ep.ca_paths) {
    auto pem = internal::read_small_file(path, kMaxCaBytes, "registry CA");
    if (!pem.ok()) return pem.status();
    if (!pem->has_value()) return Status::NotFound("registry CA \"" + path + "\": no such file");
    tls.ca_pem += **pem;
    tls.ca_pem += "\n";
  }
  if (!ep.client_certs.empty()) {
    tls.client_cert = ep.client_certs.front().cert;
    tls.client_key = ep.client_certs.front().key;
  }
  tls.skip_verify = ep.skip_verify.value_or(false);
  return tls;
}

asio::awaitable<Result<std::vector<HostEndpoint>>> Resolver::endpoints(const Reference& ref,
                                                                       bool for_resolve) {
  auto hosts = load_hosts(options_.hosts_dir, ref.domain());
  if (!hosts.ok()) co_return hosts.status();
  std::vector<HostEndpoint> out;
  for (auto& ep : hosts->endpoints)
    if (for_resolve ? ep.capabilities.resolve : ep.capabilities.pull) out.push_back(ep);
  if (out.empty())
    co_return Status::FailedPrecondition(std::string("no endpoint of ") + ref.domain() +
                                         " has the " + (for_resolve ? "resolve" : "pull") +
                                         " capability (hosts.toml)");
  co_return out;
}

asio::awaitable<Result<HttpResponse>> Resolver::with_retries(HttpRequest req,
                                                             const HttpClient::Sink* sink) {
  Backoff backoff(retry::kRegistry);
  // Bytes a stream handed on: once there are some, a failure is the
  // caller's to resume (from where it stands), never retried from here.
  auto delivered = std::make_shared<uint64_t>(0);
  HttpClient::Sink counting;
  if (sink)
    counting = [delivered, sink](const HttpResponse& head,
                                 std::string_view chunk) -> asio::awaitable<Status> {
      *delivered += chunk.size();
      co_return co_await (*sink)(head, chunk);
    };
  for (int attempt = 1;; ++attempt) {
    HttpRequest copy = req;
    // Not a ?: of two co_awaits: g++ 12 miscompiles that (a double free).
    Result<HttpResponse> r;
    if (sink)
      r = co_await http_.stream(std::move(copy), counting);
    else
      r = co_await http_.fetch(std::move(copy));
    if (*delivered > 0) co_return r;
    std::optional<std::chrono::milliseconds> wait;
    if (!r.ok()) {
      if (r.status().code() != Code::kUnavailable || attempt >= kMaxAttempts) co_return r;
    } else if (r->status == 429 || r->status >= 500) {
      if (attempt >= kMaxAttempts) co_return r;
      if (r->status == 429) {
        if (auto s = parse_size(r->header("retry-after")))
          wait = std::chrono::milliseconds(std::min<int64_t>(*s, kMaxRetryAfter.count()) * 1000);
      }
    } else {
      co_return r;
    }
    std::chrono::milliseconds d = backoff.next();
    if (!wait) {
      std::uniform_int_distribution<int64_t> half(d.count() / 2, d.count());
      wait = std::chrono::milliseconds(half(jitter_));
    }
    Status slept = co_await sleep(*wait, req.cancel);
    if (!slept.ok()) co_return slept;
  }
}

asio::awaitable<Result<Resolver::CachedAuth>> Resolver::answer_challenge(
    const Reference& ref, const HostEndpoint& ep, const HttpResponse& unauthorized_response,
    std::shared_ptr<Cancellation> cancel) {
  auto header = unauthorized_response.header("www-authenticate");
  if (!header) co_return unauthorized(ep, reason(unauthorized_response) + " without a challenge");
  auto challenges = parse_challenges(*header);
  if (!challenges.ok()) co_return unauthorized(ep, challenges.status().message());
  const Challenge* c = select_challenge(*challenges);
  if (!c)
    co_return unauthorized(ep, "no supported challenge (Bearer or Basic) in WWW-Authenticate");

  std::optional<Credentials> creds;
  if (!options_.auth_file.empty()) {
    auto file = load_auth_file(options_.auth_file);
    if (!file.ok()) co_return file.status();
    auto found = find_credentials(*file, ref.domain());
    if (!found.ok()) co_return found.status();
    creds = std::move(*found);
  }
  const bool has_basic = creds && !creds->username.empty();

  if (c->scheme == "basic") {
    if (!has_basic)
      co_return unauthorized(ep, reason(unauthorized_response) + "; no credentials for " +
                                     ref.domain() + " in the auth file");
    CachedAuth a;
    a.header = "Authorization: Basic " + base64(creds->username + ":" + creds->password);
    a.expires = std::chrono::steady_clock::time_point::max();
    co_return a;
  }

  // Bearer.
  std::vector<std::string> scopes;
  std::string scope = c->param("scope");
  if (!scope.empty()) scopes.push_back(scope);
  std::string pull = pull_scope(ref.repository());
  if (scope != pull) scopes.push_back(pull);
  auto url = bearer_token_url(c->param("realm"), c->param("service"), scopes);
  if (!url.ok()) co_return unauthorized(ep, url.status().message());
  HttpRequest token;
  token.url = *url;
  token.max_body = kMaxTokenResponse;
  token.timeout = kManifestTimeout;
  token.connect_timeout = options_.connect_timeout;
  token.stall_timeout = options_.stall_timeout;
  token.cancel = cancel;
  token.headers.push_back("Accept: application/json");
  if (has_basic)
    token.headers.push_back("Authorization: Basic " +
                            base64(creds->username + ":" + creds->password));
  auto r = co_await with_retries(std::move(token));
  if (!r.ok()) co_return r.status().with_context("token request for " + ep.host);
  if (r->status != 200) co_return unauthorized(ep, "token server answered " + reason(*r));
  auto parsed = parse_token_response(r->body);
  if (!parsed.ok()) co_return unauthorized(ep, "token answer: " + parsed.status().message());
  CachedAuth a;
  a.header = "Authorization: Bearer " + parsed->token;
  a.expires = std::chrono::steady_clock::now() + parsed->expires_in;
  co_return a;
}

asio::awaitable<Result<HttpResponse>> Resolver::request(const Reference& ref,
                                                        const HostEndpoint& ep, HttpRequest req,
                                                        const HttpClient::Sink* sink) {
  auto tls = tls_for(ep);
  if (!tls.ok()) co_return tls.status();
  req.tls = std::move(*tls);
  req.connect_timeout = options_.connect_timeout;
  req.stall_timeout = options_.stall_timeout;
  for (const auto& [name, values] : ep.headers)
    for (const auto& v : values) req.headers.push_back(name + ": " + v);

  const std::string key = ep.host + " " + pull_scope(ref.repository());
  bool answered = false;
  for (;;) {
    HttpRequest attempt = req;
    auto cached = auth_.find(key);
    const bool sent_auth =
        cached != auth_.end() && cached->second.expires > std::chrono::steady_clock::now();
    if (sent_auth) attempt.headers.push_back(cached->second.header);
    auto r = co_await with_retries(std::move(attempt), sink);
    if (!r.ok() || r->status != 401) co_return r;
    if (answered) co_return unauthorized(ep, reason(*r));
    auth_.erase(key);
    auto a = co_await answer_challenge(ref, ep, *r, req.cancel);
    if (!a.ok()) co_return a.status();
    auth_[key] = std::move(*a);
    answered = true;
  }
}

asio::awaitable<Result<Resolved>> Resolver::resolve(Reference ref,
                                                    std::shared_ptr<Cancellation> cancel) {
  auto eps = co_await endpoints(ref, true);
  if (!eps.ok()) co_return eps.status();
  std::optional<Status> first_error;
  std::string hosts_asked;
  for (const auto& ep : *eps) {
    hosts_asked += (hosts_asked.empty() ? "" : ", ") + ep.host;
    const std::string suffix =
        with_namespace(ep, "/" + ref.repository() + "/manifests/" + ref.object(), ref.domain());
    HttpRequest head;
    head.method = HttpRequest::Method::kHead;
    head.url = ep.url(suffix);
    head.headers.push_back("Accept: " + std::string(kManifestAccept));
    head.timeout = kManifestTimeout;
    head.max_body = kMaxManifestBytes;
    head.cancel = cancel;
    HttpRequest get = head;
    get.method = HttpRequest::Method::kGet;

    auto r = co_await request(ref, ep, std::move(head));
    if (!r.ok() && r.status().code() == Code::kCancelled) co_return r.status();
    Descriptor d;
    bool need_get = false;
    if (r.ok() && is_2xx(r->status)) {
      auto digest = r->header("docker-content-digest");
      auto size = parse_size(r->header("content-length"));
      if (!digest || !size) {
        need_get = true;
      } else {
        d.digest = *digest;
        d.size = *size;
        d.media_type = media_type_of(r->header("content-type").value_or(""));
      }
    } else if (r.ok() && r->status == 405) {
      need_get = true;
    }
    if (need_get) {
      r = co_await request(ref, ep, std::move(get));
      if (!r.ok() && r.status().code() == Code::kCancelled) co_return r.status();
      if (r.ok() && is_2xx(r->status)) {
        d.digest = "sha256:" + sha256_hex(r->body);
        d.size = static_cast<int64_t>(r->body.size());
        d.media_type = media_type_of(r->header("content-type").value_or(""));
        if (auto named = r->header("docker-content-digest"); named && *named != d.digest)
          co_return Status::DataLoss("digest mismatch for " + *named + ": " + ep.host +
                                     " sent a manifest of " + d.digest);
      }
    }
    if (!r.ok()) {
      if (!first_error) first_error = r.status();
      continue;
    }
    if (!is_2xx(r->status)) {
      Status s = status_error(ref, ep, *r);
      if (!first_error || (first_error->is_not_found() && !s.is_not_found())) first_error = s;
      continue;
    }
    if (is_schema1_type(d.media_type))
      co_return Status::FailedPrecondition("schema 1 manifest (" + d.media_type + ") for " +
                                           ref.to_string() +
                                           ": not supported; re-push it as Docker v2 "
                                           "schema 2 or OCI");
    if (!containerd::is_manifest_type(d.media_type) && !containerd::is_index_type(d.media_type))
      co_return Status::FailedPrecondition(ref.to_string() + ": " + ep.host +
                                           " answered an unsupported media type \"" +
                                           printable(d.media_type) + "\"");
    if (Status s = containerd::check_digest(d.digest); !s.ok())
      co_return Status::FailedPrecondition(ref.to_string() + ": " + ep.host +
                                           " answered an unusable digest: " + s.message());
    if (!ref.digest().empty() && d.digest != ref.digest())
      co_return Status::DataLoss("digest mismatch for " + ref.digest() + ": " + ep.host +
                                 " resolved it to " + d.digest);
    if (d.size <= 0 || static_cast<uint64_t>(d.size) > kMaxManifestBytes)
      co_return Status::FailedPrecondition(ref.to_string() + ": manifest size " +
                                           std::to_string(d.size) + " out of bounds (1.." +
                                           std::to_string(kMaxManifestBytes) + ")");
    Resolved out;
    out.descriptor = std::move(d);
    out.endpoint = ep;
    co_return out;
  }
  if (first_error && !first_error->is_not_found()) co_return *first_error;
  co_return Status::NotFound(ref.to_string() + ": not found on " + hosts_asked);
}

asio::awaitable<Result<std::string>> Resolver::fetch_manifest(
    Reference ref, Descriptor descriptor, std::shared_ptr<Cancellation> cancel) {
  if (Status s = containerd::check_digest(descriptor.digest); !s.ok()) co_return s;
  auto eps = co_await endpoints(ref, false);
  if (!eps.ok()) co_return eps.status();
  std::optional<Status> first_error;
  std::string hosts_asked;
  for (const auto& ep : *eps) {
    hosts_asked += (hosts_asked.empty() ? "" : ", ") + ep.host;
    HttpRequest get;
    get.url = ep.url(with_namespace(ep, "/" + ref.repository() + "/manifests/" + descriptor.digest,
                                    ref.domain()));
    std::string accept = "Accept: ";
    if (!descriptor.media_type.empty() &&
        std::string_view(kManifestAccept).find(descriptor.media_type) == std::string_view::npos)
      accept += descriptor.media_type + ", ";
    get.headers.push_back(accept + std::string(kManifestAccept));
    get.timeout = kManifestTimeout;
    get.max_body = kMaxManifestBytes;
    get.cancel = cancel;
    auto r = co_await request(ref, ep, std::move(get));
    if (!r.ok()) {
      if (r.status().code() == Code::kCancelled) co_return r.status();
      if (!first_error) first_error = r.status();
      continue;
    }
    if (!is_2xx(r->status)) {
      Status s = status_error(ref, ep, *r);
      if (!first_error || (first_error->is_not_found() && !s.is_not_found())) first_error = s;
      continue;
    }
    const std::string got = "sha256:" + sha256_hex(r->body);
    if (got != descriptor.digest)
      co_return Status::DataLoss("digest mismatch for " + descriptor.digest + ": " + ep.host +
                                 " sent " + std::to_string(r->body.size()) + " bytes of " + got);
    if (descriptor.size > 0 && static_cast<uint64_t>(descriptor.size) != r->body.size())
      co_return Status::DataLoss("size mismatch for " + descriptor.digest + ": expected " +
                                 std::to_string(descriptor.size) + " bytes, " + ep.host + " sent " +
                                 std::to_string(r->body.size()));
    co_return std::move(r->body);
  }
  if (first_error && !first_error->is_not_found()) co_return *first_error;
  co_return Status::NotFound(ref.name() + "@" + descriptor.digest + ": not found on " +
                             hosts_asked);
}

asio::awaitable<Result<HttpResponse>> Resolver::fetch_blob(Reference ref, Descriptor descriptor,
                                                           uint64_t offset, HttpClient::Sink sink,
                                                           std::shared_ptr<Cancellation> cancel) {
  if (Status s = containerd::check_digest(descriptor.digest); !s.ok()) co_return s;
  auto eps = co_await endpoints(ref, false);
  if (!eps.ok()) co_return eps.status();
  const std::string what = "blob " + descriptor.digest + " of " + ref.name();
  auto delivered = std::make_shared<uint64_t>(0);
  HttpClient::Sink counting = [delivered, &sink](
                                  const HttpResponse& head,
                                  std::string_view chunk) -> asio::awaitable<Status> {
    *delivered += chunk.size();
    co_return co_await sink(head, chunk);
  };
  std::optional<Status> first_error;
  std::string hosts_asked;
  for (const auto& ep : *eps) {
    hosts_asked += (hosts_asked.empty() ? "" : ", ") + ep.host;
    HttpRequest get;
    get.url = ep.url(
        with_namespace(ep, "/" + ref.repository() + "/blobs/" + descriptor.digest, ref.domain()));
    if (offset > 0) get.range_from = offset;
    get.cancel = cancel;
    auto r = co_await request(ref, ep, std::move(get), &counting);
    // A transfer that moved bytes is the caller's to resume, whatever ended it.
    if (*delivered > 0 || (!r.ok() && r.status().code() == Code::kCancelled))
      co_return r.ok() ? r : Result<HttpResponse>(r.status().with_context(what));
    if (!r.ok()) {
      if (!first_error) first_error = r.status().with_context(what);
      continue;
    }
    if (!is_2xx(r->status)) {
      Status s =
          r->status == 404
              ? Status::NotFound(what + ": not found on " + ep.host + " (" + reason(*r) + ")")
              : status_error(ref, ep, *r).with_context(what);
      if (!first_error || (first_error->is_not_found() && !s.is_not_found())) first_error = s;
      continue;
    }
    co_return r;
  }
  if (first_error && !first_error->is_not_found()) co_return *first_error;
  co_return Status::NotFound(what + ": not found on " + hosts_asked);
}

Result<Descriptor> Resolver::select_platform(std::string_view index_bytes) const {
  auto index = containerd::parse_index(index_bytes, "index", true);
  if (!index.ok()) return index.status();
  const Descriptor* best = nullptr;
  int best_score = 0;
  std::string seen;
  for (const auto& m : index->manifests) {
    if (!m.platform) continue;
    seen += (seen.empty() ? "" : ", ") + platform_text(*m.platform);
    if (!containerd::is_manifest_type(m.media_type) && !containerd::is_index_type(m.media_type))
      continue;
    int score = containerd::platform_match(*m.platform, platform_);
    if (score > best_score) {
      best = &m;
      best_score = score;
    }
  }
  if (!best)
    return Status::NotFound(
        "no manifest for " + platform_text(platform_) +
        " in the index (it has: " + (seen.empty() ? std::string("no platforms") : seen) + ")");
  Descriptor out = *best;
  return out;
}

}  // namespace herd::registry
