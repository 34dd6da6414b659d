// herd::registry::Resolver: what a pull does before any blob moves — turn
// an image reference into a manifest descriptor (resolve), fetch a
// manifest or index by digest and prove it is the one named
// (fetch_manifest), and pick the node's manifest out of an index
// (select_platform). The registry protocol as containerd 1.6's own client
// speaks it (remotes/docker/resolver.go, authorizer.go; see
// /work/shared/REGISTRY-NOTES.md).
//
// Endpoints: containerd's certs.d / hosts.toml (hosts.h), read from
// RegistryOptions::hosts_dir at each call, in order; resolve() uses those
// with the `resolve` capability, fetch_manifest() those with `pull`. A
// request to a mirror carries `?ns=<reference domain>`. A 404 or an error
// from one endpoint moves on to the next; when all fail, the first error
// that is not NotFound is returned, else NotFound naming the reference and
// the hosts asked.
//
// resolve(): HEAD /v2/<repository>/manifests/<tag or digest> with the
// Accept list (OCI index, OCI manifest, Docker manifest list, Docker
// schema 2, */*). The descriptor comes from Content-Type,
// Docker-Content-Digest and Content-Length; a 405, or a 2xx lacking the
// digest or the length, is asked again as a GET whose body (at most
// kMaxManifestBytes) is hashed. Schema 1 manifests are refused
// (FailedPrecondition, "schema 1 manifest ...: re-push it as Docker v2
// schema 2 or OCI"); any media type that is neither a manifest nor an
// index is refused too. A reference by digest must resolve to that digest.
//
// fetch_manifest(): GET /v2/<repository>/manifests/<digest>, at most
// kMaxManifestBytes; the body's SHA-256 must equal the descriptor's digest
// (and its size the descriptor's size when that is not 0) before it is
// returned: else DataLoss "digest mismatch for sha256:...".
//
// Auth, per endpoint host and scope (repository:<repo>:pull), cached:
// requests go anonymous first; a 401 is answered once, from its
// WWW-Authenticate (Bearer preferred, else Basic). Bearer: GET the token
// URL (Basic credentials from the auth file when it has a username and
// password for the reference's domain, else anonymous); the token is
// cached until its expires_in. Basic: username and password from the auth
// file, cached for the Resolver's life. A 401 after answering, a refused
// token request, or a Basic challenge without credentials is
// kUnauthenticated "unauthorized: <host>: <registry's reason>"; a 403 is
// kPermissionDenied "denied: <host>: ...". A cached answer that meets a
// 401 is dropped and the challenge answered afresh, once. Secrets never
// appear in messages and nothing here logs. Not supported: identity
// tokens (OAuth refresh tokens, POSTed by containerd), credential helpers.
//
// Retries, per request: 429 (Retry-After seconds honoured, at most
// kMaxRetryAfter), 5xx and transport Unavailable errors, at most
// kMaxAttempts attempts in all, waiting retry::kRegistry (common/backoff.h)
// with jitter (each wait drawn from [d/2, d]). Other 4xx are never
// retried. Each wait is an Asio timer that ends at once, with Cancelled,
// when the Cancellation fires.
//
// The auth file (RegistryOptions::auth_file, docker's config.json) is
// read only when a challenge needs credentials. hosts.toml and CA files
// are small local files read on the calling executor (bounded, never
// blocking on a FIFO; see small_file.h).
//
// Strand: a Resolver, like its HttpClient, is confined to the client's
// executor; its coroutines run there. The HttpClient must outlive it.
// Arguments are taken by value, so a caller's temporaries may go.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "common/asio.h"
#include "common/status.h"
#include "containerd/oci_parse.h"
#include "registry/hosts.h"
#include "registry/http.h"
#include "registry/reference.h"

namespace herd::registry {

inline constexpr std::size_t kMaxManifestBytes = 4 << 20;
inline constexpr int kMaxAttempts = 4;
inline constexpr std::chrono::seconds kMaxRetryAfter{10};

// One line: the Accept header of manifest requests, in containerd's order.
inline constexpr std::string_view kManifestAccept =
    "application/vnd.oci.image.index.v1+json, "
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json, */*";

// User-provided constructor: passed into coroutines (common/asio.h).
struct RegistryOptions {
  RegistryOptions() {}
  std::string hosts_dir;  // containerd's certs.d; empty: default endpoints only
  std::string auth_file;  // docker's config.json; empty: anonymous only
  // Every request of the Resolver (manifests, blobs, tokens): the TCP and
  // TLS connect, and the stall guard (no byte for this long fails the
  // request, DeadlineExceeded; curl counts whole seconds, at least 1).
  // HttpRequest's defaults.
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds stall_timeout{30000};
};

using Descriptor = containerd::OciDescriptor;

struct Resolved {
  Resolved() {}
  Descriptor descriptor;  // media type, digest, size (no platform)
  HostEndpoint endpoint;  // the endpoint that answered
};

// Whether `media_type` is a Docker schema 1 manifest (refused).
bool is_schema1_type(std::string_view media_type);

class Resolver {
 public:
  Resolver(HttpClient& http, RegistryOptions options,
           containerd::Platform platform = containerd::host_platform());
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // See above. `cancel` may be null.
  asio::awaitable<Result<Resolved>> resolve(Reference ref, std::shared_ptr<Cancellation> cancel);

  // The manifest or index `descriptor` names, verified. `cancel` may be null.
  asio::awaitable<Result<std::string>> fetch_manifest(Reference ref, Descriptor descriptor,
                                                      std::shared_ptr<Cancellation> cancel);

  // One transfer of a blob (GET /v2/<repository>/blobs/<digest>, from
  // `offset` with a Range when it is > 0; redirects followed) from the
  // first endpoint with `pull` that has it, auth and retries as for
  // manifests while no body byte has reached `sink`. `sink` gets the 2xx
  // body; a 200 to a Range request is the whole body (the sink skips).
  // Returns the final response once the body ended (body_bytes may fall
  // short of the descriptor: the caller resumes), or the error; after the
  // first byte an error is returned as it is, for the caller to resume.
  // Checks nothing of the bytes: that is the caller's (it knows the size
  // and hashes as they stream). `cancel` may be null.
  asio::awaitable<Result<HttpResponse>> fetch_blob(Reference ref, Descriptor descriptor,
                                                   uint64_t offset, HttpClient::Sink sink,
                                                   std::shared_ptr<Cancellation> cancel);

  // The index's (OCI index or Docker manifest list) entry for the node's
  // platform: the best platform_match (an exact variant before a
  // compatible one, then file order). NotFound listing the platforms the
  // index has when none runs here; InvalidArgument for a malformed index.
  Result<Descriptor> select_platform(std::string_view index_bytes) const;

  const containerd::Platform& platform() const { return platform_; }

  // New hosts directory and auth file (a config reload); cached tokens
  // and credentials are dropped.
  void set_options(RegistryOptions options) {
    options_ = std::move(options);
    auth_.clear();
  }

 private:
  struct CachedAuth {
    std::string header;  // "Authorization: ..."
    std::chrono::steady_clock::time_point expires;
  };

  asio::awaitable<Result<std::vector<HostEndpoint>>> endpoints(const Reference& ref,
                                                               bool for_resolve);
  // One logical request with auth and retries; an HTTP status other than
  // 401 is returned as a response.
  // With a sink, the body is streamed into it (HttpClient::stream).
  asio::awaitable<Result<HttpResponse>> request(const Reference& ref, const HostEndpoint& ep,
                                                HttpRequest req,
                                                const HttpClient::Sink* sink = nullptr);
  // Retries of 429 / 5xx / Unavailable around one fetch, or one stream
  // until its first body byte.
  asio::awaitable<Result<HttpResponse>> with_retries(HttpRequest req,
                                                     const HttpClient::Sink* sink = nullptr);
  // The Authorization header answering `challenge_header` (from a 401 of
  // `ep`), or the error to return.
  asio::awaitable<Result<CachedAuth>> answer_challenge(const Reference& ref, const HostEndpoint& ep,
                                                       const HttpResponse& unauthorized,
                                                       std::shared_ptr<Cancellation> cancel);
  asio::awaitable<Status> sleep(std::chrono::milliseconds d, std::shared_ptr<Cancellation> cancel);
  Result<TlsOptions> tls_for(const HostEndpoint& ep) const;

  HttpClient& http_;
  RegistryOptions options_;
  containerd::Platform platform_;
  std::map<std::string, CachedAuth> auth_;  // key: endpoint host + " " + scope
  std::minstd_rand jitter_;
};

}  // namespace herd::registry
