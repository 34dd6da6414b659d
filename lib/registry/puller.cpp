#include "registry/puller.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "common/backoff.h"
#include "common/sha256.h"
#include "containerd/oci_parse.h"

namespace herd::registry {

using containerd::CallOptions;
using containerd::Canceller;
using containerd::Client;
using containerd::Labels;
using containerd::OciDescriptor;

namespace {

using namespace std::chrono_literals;

constexpr auto kLeaseExpiry = std::chrono::hours(1);
constexpr std::chrono::milliseconds kBlobWriteTimeout{30 * 60 * 1000};
constexpr int kLockedAttempts = 5;  // a ref another writer holds

constexpr char kGcContentPrefix[] = "containerd.io/gc.ref.content.";
constexpr char kDistributionSource[] = "containerd.io/distribution.source.";

// A one-shot broadcast on the Puller's executor: wait() returns once set()
// was called (at once if it was).
class Signal {
 public:
  explicit Signal(const asio::any_io_executor& ex)
      : timer_(ex, std::chrono::steady_clock::time_point::max()) {}
  void set() {
    set_ = true;
    timer_.cancel();
  }
  bool is_set() const { return set_; }
  asio::awaitable<void> wait() {
    while (!set_) {
      boost::system::error_code ec;
      co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }

 private:
  bool set_ = false;
  asio::steady_timer timer_;
};

// A wake-up for one waiter that more may follow: ring() ends the current
// (or the next) wait.
class Bell {
 public:
  explicit Bell(const asio::any_io_executor& ex)
      : timer_(ex, std::chrono::steady_clock::time_point::max()) {}
  void ring() {
    rung_ = true;
    timer_.cancel();
  }
  asio::awaitable<void> wait() {
    while (!rung_) {
      boost::system::error_code ec;
      co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    rung_ = false;
  }

 private:
  bool rung_ = false;
  asio::steady_timer timer_;
};

// containerd's ingest ref of a blob (remotes/handlers.go MakeRefKey).
std::string ref_key(const std::string& kind, const std::string& digest) {
  return kind + "-" + digest;
}

Status with_unreachable(Status s, const Reference& ref) {
  if (s.code() != Code::kUnavailable) return s;
  return Status::Unavailable("registry unreachable: " + ref.host() + ": " + s.message());
}

bool retryable(const Status& s) {
  return s.code() == Code::kUnavailable || s.code() == Code::kDeadlineExceeded;
}

}  // namespace

std::string distribution_source_key(std::string_view domain) {
  auto colon = domain.rfind(':');
  if (colon != std::string_view::npos) domain = domain.substr(0, colon);
  return std::string(kDistributionSource) + std::string(domain);
}

std::string merge_distribution_source(std::string_view existing, std::string_view repository) {
  std::set<std::string> repos;
  size_t start = 0;
  while (start <= existing.size() && !existing.empty()) {
    size_t comma = existing.find(',', start);
    std::string_view part = existing.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    if (!part.empty()) repos.emplace(part);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  if (!repository.empty()) repos.emplace(repository);
  std::string out;
  for (const auto& r : repos) out += (out.empty() ? "" : ",") + r;
  return out;
}

// One run of a pull, shared by the callers of one reference.
struct Puller::Flight {
  explicit Flight(const asio::any_io_executor& ex) : done(ex) {}
  Reference ref;
  std::string key;
  std::shared_ptr<Cancellation> cancel = std::make_shared<Cancellation>();
  std::shared_ptr<Canceller> ccancel = std::make_shared<Canceller>();
  int waiters = 0;
  Signal done;
  Result<PullResult> result;
  uint64_t next_listener = 0;
  std::map<uint64_t, std::function<void(const BlobProgress&)>> listeners;

  void cancel_all() {
    cancel->cancel();
    ccancel->cancel();
  }
  void report(const BlobProgress& p) {
    auto copy = listeners;  // a listener may go while we call
    for (auto& [id, fn] : copy) fn(p);
  }
};

// A blob being written, shared by every pull that needs it.
struct BlobFlight {
  explicit BlobFlight(const asio::any_io_executor& ex) : done(ex) {}
  Signal done;
  Status result;
};

// The bridge from an HTTP body (pushed, chunk by chunk) to Content.Write
// (which pulls: the reactor asks for the bytes at an offset once the last
// write is acknowledged). At most one chunk waits here for containerd.
struct BlobStream {
  explicit BlobStream(const asio::any_io_executor& ex) : bell(ex), fetched(ex) {}
  Bell bell;                     // a request arrived, or the stream closed
  Signal fetched;                // the fetch loop ended
  std::optional<int64_t> asked;  // the offset of the pending request
  Client::ChunkDone pending;
  bool closed = false;
  Status error;  // once set, every request gets it
  int64_t handed = 0;
  bool hashing = false;
  Sha256 hash;
  uint64_t bytes_fetched = 0;
  std::shared_ptr<Cancellation> cancel = std::make_shared<Cancellation>();

  void give(Status s, std::string bytes) {
    auto done = std::move(pending);
    pending = nullptr;
    asked.reset();
    done(std::move(s), std::move(bytes));
  }
  void fail(Status s) {
    if (error.ok()) error = std::move(s);
    if (pending) give(error, std::string());
  }
  void request(int64_t offset, Client::ChunkDone done) {
    if (!error.ok() || closed) {
      done(error.ok() ? Status::Cancelled("blob write closed") : error, std::string());
      return;
    }
    asked = offset;
    pending = std::move(done);
    bell.ring();
  }
  asio::awaitable<bool> wait_request() {
    while (!pending && !closed && error.ok()) co_await bell.wait();
    co_return pending != nullptr && !closed && error.ok();
  }
};

struct Puller::Impl {
  Impl(asio::any_io_executor ex, Client& c, Options o)
      : executor(ex),
        client(c),
        options(std::move(o)),
        http(ex),
        resolver(http, options.registry, options.platform) {}

  asio::any_io_executor executor;
  Client& client;
  Options options;
  HttpClient http;
  Resolver resolver;
  std::map<std::string, std::shared_ptr<Flight>> flights;
  std::map<std::string, std::shared_ptr<BlobFlight>> blobs;

  CallOptions call(const std::shared_ptr<Canceller>& c, const std::string& lease = {}) const {
    CallOptions o;
    o.timeout = options.call_timeout;
    o.canceller = c;
    o.lease = lease;
    return o;
  }

  // A registry Cancellation that fires when `c` does (posted here).
  std::pair<std::shared_ptr<Cancellation>, uint64_t> bridge(const std::shared_ptr<Canceller>& c) {
    auto reg = std::make_shared<Cancellation>();
    uint64_t id = 0;
    if (c) {
      std::weak_ptr<Cancellation> weak = reg;
      std::function<void()> fn = [weak, ex = executor] {
        asio::post(ex, [weak] {
          if (auto r = weak.lock()) r->cancel();
        });
      };
      id = c->on_cancel(std::move(fn));
    }
    return {reg, id};
  }

  asio::awaitable<void> run(std::shared_ptr<Flight> f);
  asio::awaitable<Result<PullResult>> pull_under(std::shared_ptr<Flight> f, CallOptions lo);
  // An index or manifest into the content store (fetched only when it is
  // not there), and its verified bytes.
  asio::awaitable<Result<std::string>> manifest_blob(std::shared_ptr<Flight> f, std::string kind,
                                                     OciDescriptor d, CallOptions lo,
                                                     PullResult* out);
  asio::awaitable<Status> ensure_labels(std::string digest, Labels wanted, CallOptions lo);
  asio::awaitable<Status> put_blob(std::shared_ptr<Flight> f, std::string kind, OciDescriptor d,
                                   CallOptions lo, PullResult* out);
  asio::awaitable<Status> stream_blob(std::shared_ptr<Flight> f, std::string kind, OciDescriptor d,
                                      Labels labels, CallOptions lo, PullResult* out);
  asio::awaitable<void> fetch_loop(std::shared_ptr<Flight> f, std::shared_ptr<BlobStream> st,
                                   std::string kind, OciDescriptor d);
  // Labels the blob lacks, merged with what it has; empty when none.
  static Labels missing_labels(const containerd::ContentInfo& info, const Labels& wanted);
  Labels source_label(const Reference& ref) const {
    Labels l;
    l[distribution_source_key(ref.domain())] = ref.repository();
    return l;
  }
};

Labels Puller::Impl::missing_labels(const containerd::ContentInfo& info, const Labels& wanted) {
  Labels out;
  for (const auto& [k, v] : wanted) {
    auto it = info.labels().find(k);
    std::string want = v;
    if (k.rfind(kDistributionSource, 0) == 0 && it != info.labels().end())
      want = merge_distribution_source(it->second, v);
    if (it == info.labels().end() || it->second != want) out[k] = want;
  }
  return out;
}

Puller::Puller(asio::any_io_executor executor, Client& client, Options options)
    : executor_(executor), impl_(std::make_unique<Impl>(executor, client, std::move(options))) {}

Puller::~Puller() {
  for (auto& [k, f] : impl_->flights) f->cancel_all();
}

void Puller::set_registry_options(RegistryOptions options) {
  impl_->options.registry = options;
  impl_->resolver.set_options(std::move(options));
}

size_t Puller::pulls_in_flight() const { return impl_->flights.size() + impl_->blobs.size(); }

asio::awaitable<Result<PullResult>> Puller::pull(std::string reference, PullRequest request) {
  co_return co_await asio::co_spawn(executor_, pull_here(std::move(reference), std::move(request)),
                                    asio::use_awaitable);
}

asio::awaitable<Result<Resolved>> Puller::resolve(std::string reference,
                                                  std::shared_ptr<Canceller> cancel) {
  auto body = [this, reference = std::move(reference),
               cancel = std::move(cancel)]() -> asio::awaitable<Result<Resolved>> {
    auto ref = parse_reference(reference);
    if (!ref.ok()) co_return ref.status();
    auto [reg, id] = impl_->bridge(cancel);
    auto r = co_await impl_->resolver.resolve(*ref, reg);
    if (cancel) cancel->remove(id);
    if (!r.ok()) co_return with_unreachable(r.status(), *ref);
    co_return r;
  };
  co_return co_await asio::co_spawn(executor_, std::move(body), asio::use_awaitable);
}

asio::awaitable<Result<PullResult>> Puller::pull_here(std::string reference, PullRequest request) {
  auto ref = parse_reference(reference);
  if (!ref.ok()) co_return ref.status();
  const std::string key = ref->to_string();
  auto& slot = impl_->flights[key];
  if (!slot) {
    slot = std::make_shared<Flight>(executor_);
    slot->ref = *ref;
    slot->key = key;
    asio::co_spawn(executor_, impl_->run(slot), asio::detached);
  }
  std::shared_ptr<Flight> f = slot;
  ++f->waiters;
  uint64_t listener = 0;
  if (request.progress) f->listeners.emplace(listener = ++f->next_listener, request.progress);

  // Wait for the run, or for this caller's cancel.
  auto wake = std::make_shared<Bell>(executor_);
  uint64_t cancel_id = 0;
  if (request.cancel) {
    std::weak_ptr<Bell> weak = wake;
    std::function<void()> fn = [weak, ex = executor_] {
      asio::post(ex, [weak] {
        if (auto w = weak.lock()) w->ring();
      });
    };
    cancel_id = request.cancel->on_cancel(std::move(fn));
  }
  auto done_waiter = [](std::shared_ptr<Flight> fl,
                        std::shared_ptr<Bell> w) -> asio::awaitable<void> {
    co_await fl->done.wait();
    w->ring();
  };
  if (!f->done.is_set()) asio::co_spawn(executor_, done_waiter(f, wake), asio::detached);
  while (!f->done.is_set() && !(request.cancel && request.cancel->cancelled()))
    co_await wake->wait();
  if (request.cancel) request.cancel->remove(cancel_id);
  f->listeners.erase(listener);
  --f->waiters;
  if (f->done.is_set()) co_return f->result;
  if (f->waiters == 0) f->cancel_all();
  co_return Status::Cancelled("pull of " + key + " cancelled");
}

asio::awaitable<void> Puller::Impl::run(std::shared_ptr<Flight> f) {
  Result<PullResult> result;
  auto lease = co_await client.leases_create(
      "", std::chrono::duration_cast<std::chrono::seconds>(kLeaseExpiry), {}, call(f->ccancel));
  if (!lease.ok()) {
    result = lease.status();
  } else {
    result = co_await pull_under(f, call(f->ccancel, lease->id()));
    // Not the pull's canceller: a cancelled pull still drops its lease.
    // A failed pull collects at once (sync) what only its lease held.
    CallOptions cleanup = CallOptions::with_timeout(10s);
    (void)co_await client.leases_delete(lease->id(), !result.ok(), cleanup);
  }
  if (!result.ok() && f->cancel->cancelled())
    result = Status::Cancelled("pull of " + f->key + " cancelled");
  f->result = std::move(result);
  if (auto it = flights.find(f->key); it != flights.end() && it->second == f) flights.erase(it);
  f->done.set();
}

asio::awaitable<Status> Puller::Impl::ensure_labels(std::string digest, Labels wanted,
                                                    CallOptions lo) {
  auto info = co_await client.content_info(digest, lo);
  if (!info.ok()) co_return info.status();
  Labels add = missing_labels(*info, wanted);
  if (add.empty()) co_return Status::Ok();
  auto set = co_await client.content_set_labels(digest, std::move(add), lo);
  co_return set.status();
}

asio::awaitable<Result<std::string>> Puller::Impl::manifest_blob(std::shared_ptr<Flight> f,
                                                                 std::string kind, OciDescriptor d,
                                                                 CallOptions lo, PullResult* out) {
  BlobProgress p;
  p.kind = kind;
  p.digest = d.digest;
  p.total = d.size;
  auto info = co_await client.content_info(d.digest, lo);
  if (!info.ok() && !info.status().is_not_found()) co_return info.status();
  // Fetched from the registry only when the content write asks for bytes:
  // a manifest another namespace holds is adopted by the STAT (as ctr).
  auto fetched = std::make_shared<std::optional<std::string>>();
  if (!info.ok()) {
    Client::ChunkSource source = [this, f, d, fetched](int64_t offset, Client::ChunkDone done) {
      auto fetch = [this, f, d, fetched, offset,
                    done = std::move(done)]() mutable -> asio::awaitable<void> {
        if (!*fetched) {
          auto r = co_await resolver.fetch_manifest(f->ref, d, f->cancel);
          if (!r.ok()) {
            done(with_unreachable(r.status(), f->ref), std::string());
            co_return;
          }
          *fetched = std::move(*r);
        }
        done(Status::Ok(), (*fetched)->substr(static_cast<size_t>(offset)));
      };
      asio::co_spawn(executor, std::move(fetch), asio::detached);
    };
    Labels none;  // labels come once the bytes are parsed (ensure_labels)
    Status s = co_await client.content_write(ref_key(kind, d.digest), d.size, d.digest,
                                             std::move(none), std::move(source), lo);
    if (!s.ok()) co_return s;
  }
  std::string bytes;
  if (*fetched) {
    bytes = std::move(**fetched);
    ++out->blobs_fetched;
    out->bytes_fetched += bytes.size();
  } else {
    ++out->blobs_present;
    p.present = true;
    auto read = co_await client.content_read(d.digest, kMaxManifestBytes, lo);
    if (!read.ok()) co_return read.status();
    if ("sha256:" + sha256_hex(*read) != d.digest)
      co_return Status::DataLoss("digest mismatch for " + d.digest +
                                 ": the content store holds other bytes");
    bytes = std::move(*read);
  }
  p.done = d.size;
  p.finished = true;
  f->report(p);
  co_return bytes;
}

asio::awaitable<Status> Puller::Impl::put_blob(std::shared_ptr<Flight> f, std::string kind,
                                               OciDescriptor d, CallOptions lo, PullResult* out) {
  if (d.size <= 0)
    co_return Status::FailedPrecondition(kind + " " + d.digest + " of " + f->ref.name() +
                                         ": descriptor size " + std::to_string(d.size) +
                                         " (a blob has at least one byte)");
  Labels labels = source_label(f->ref);
  for (;;) {
    // Another pull writes it: wait for that one, then look again.
    if (auto it = blobs.find(d.digest); it != blobs.end()) {
      auto other = it->second;
      co_await other->done.wait();
      if (f->cancel->cancelled()) co_return Status::Cancelled("pull cancelled");
      continue;
    }
    auto info = co_await client.content_info(d.digest, lo);
    if (info.ok()) {
      Labels add = missing_labels(*info, labels);
      if (!add.empty()) {
        auto set = co_await client.content_set_labels(d.digest, std::move(add), lo);
        if (!set.ok()) co_return set.status();
      }
      ++out->blobs_present;
      BlobProgress p;
      p.kind = kind;
      p.digest = d.digest;
      p.total = p.done = d.size;
      p.present = p.finished = true;
      f->report(p);
      co_return Status::Ok();
    }
    if (!info.status().is_not_found()) co_return info.status();
    auto mine = std::make_shared<BlobFlight>(executor);
    blobs[d.digest] = mine;
    Status s;
    Backoff backoff(retry::kRegistry);
    for (int attempt = 1;; ++attempt) {
      s = co_await stream_blob(f, kind, d, labels, lo, out);
      // Unavailable from containerd at the start: the ref is locked by
      // another writer (ctr, another herdd); wait for it.
      if (s.code() != Code::kUnavailable || attempt >= kLockedAttempts ||
          s.message().find("locked") == std::string::npos)
        break;
      asio::steady_timer t(executor, backoff.next());
      boost::system::error_code ec;
      co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (f->cancel->cancelled()) break;
    }
    mine->result = s;
    if (auto it = blobs.find(d.digest); it != blobs.end() && it->second == mine) blobs.erase(it);
    mine->done.set();
    co_return s;
  }
}

asio::awaitable<Status> Puller::Impl::stream_blob(std::shared_ptr<Flight> f, std::string kind,
                                                  OciDescriptor d, Labels labels, CallOptions lo,
                                                  PullResult* out) {
  auto st = std::make_shared<BlobStream>(executor);
  uint64_t link = f->cancel->on_cancel([st] { st->cancel->cancel(); });
  asio::co_spawn(executor, fetch_loop(f, st, kind, d), asio::detached);
  Client::ChunkSource source = [st, ex = executor](int64_t offset, Client::ChunkDone done) {
    asio::post(ex, [st, offset, done = std::move(done)]() mutable {
      st->request(offset, std::move(done));
    });
  };
  CallOptions wo = lo;
  wo.timeout = kBlobWriteTimeout;
  Status s = co_await client.content_write(ref_key(kind, d.digest), d.size, d.digest,
                                           std::move(labels), std::move(source), wo);
  st->closed = true;
  st->cancel->cancel();
  st->bell.ring();
  co_await st->fetched.wait();
  f->cancel->remove(link);
  if (s.ok()) {
    out->bytes_fetched += st->bytes_fetched;
    if (st->bytes_fetched > 0)
      ++out->blobs_fetched;
    else
      ++out->blobs_present;  // adopted from another namespace
    BlobProgress p;
    p.kind = kind;
    p.digest = d.digest;
    p.total = p.done = d.size;
    p.present = st->bytes_fetched == 0;
    p.finished = true;
    f->report(p);
  } else if (!st->error.ok() && st->error.code() != Code::kCancelled) {
    s = st->error;  // the fetch's own words, not the write's echo of them
  }
  co_return s;
}

asio::awaitable<void> Puller::Impl::fetch_loop(std::shared_ptr<Flight> f,
                                               std::shared_ptr<BlobStream> st, std::string kind,
                                               OciDescriptor d) {
  const std::string what = kind + " " + d.digest;
  if (co_await st->wait_request()) {
    st->handed = *st->asked;
    st->hashing = st->handed == 0;
    BlobProgress p;
    p.kind = kind;
    p.digest = d.digest;
    p.total = d.size;
    Backoff backoff(retry::kRegistry);
    int resumes = 0;
    while (st->handed < d.size && st->error.ok() && !st->closed) {
      const int64_t start = st->handed;
      auto skip = std::make_shared<int64_t>(0);
      auto seen = std::make_shared<bool>(false);
      HttpClient::Sink sink = [st, f, d, start, skip, seen, what, &p](
                                  const HttpResponse& head,
                                  std::string_view chunk) -> asio::awaitable<Status> {
        if (chunk.empty()) co_return Status::Ok();
        if (!*seen) {
          *seen = true;
          *skip = (start > 0 && head.status == 200) ? start : 0;  // Range ignored
        }
        if (*skip > 0) {
          int64_t n = std::min<int64_t>(*skip, static_cast<int64_t>(chunk.size()));
          chunk.remove_prefix(static_cast<size_t>(n));
          *skip -= n;
          if (chunk.empty()) co_return Status::Ok();
        }
        if (st->handed + static_cast<int64_t>(chunk.size()) > d.size) {
          Status s = Status::DataLoss(what + ": the registry sent more than the descriptor's " +
                                      std::to_string(d.size) + " bytes");
          st->fail(s);
          co_return s;
        }
        if (!co_await st->wait_request())
          co_return st->error.ok() ? Status::Cancelled("blob write closed") : st->error;
        st->bytes_fetched += chunk.size();
        if (st->hashing) st->hash.update(chunk);
        if (st->hashing && st->handed + static_cast<int64_t>(chunk.size()) == d.size) {
          const std::string got = "sha256:" + to_hex(st->hash.finish());
          if (got != d.digest) {
            Status s = Status::DataLoss("digest mismatch for " + d.digest + ": " + f->ref.host() +
                                        " sent " + std::to_string(d.size) + " bytes of " + got);
            st->fail(s);
            co_return s;
          }
        }
        st->handed += static_cast<int64_t>(chunk.size());
        st->give(Status::Ok(), std::string(chunk));
        p.done = st->handed;
        p.finished = false;  // stream_blob reports the end, once committed
        f->report(p);
        co_return Status::Ok();
      };
      auto r = co_await resolver.fetch_blob(f->ref, d, static_cast<uint64_t>(start),
                                            std::move(sink), st->cancel);
      if (!st->error.ok() || st->closed) break;
      if (r.ok() && st->handed >= d.size) break;
      Status why =
          r.ok() ? Status::Unavailable(what + ": the body ended at " + std::to_string(st->handed) +
                                       " of " + std::to_string(d.size) + " bytes")
                 : r.status();
      // Only a transfer that moved bytes is resumed: one that failed before
      // its first byte was retried by the Resolver already (kMaxAttempts).
      if (!retryable(why) || st->handed == start || ++resumes > kMaxResumes) {
        st->fail(with_unreachable(why, f->ref));
        break;
      }
      asio::steady_timer t(executor, backoff.next());
      uint64_t id = st->cancel->on_cancel([&t] { t.cancel(); });
      boost::system::error_code ec;
      co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      st->cancel->remove(id);
      if (st->cancel->cancelled()) {
        st->fail(Status::Cancelled(what + ": cancelled"));
        break;
      }
    }
  }
  // A request still pending (the stream was closed under it) is answered.
  if (st->pending) st->fail(Status::Cancelled(what + ": cancelled"));
  st->fetched.set();
}

asio::awaitable<Result<PullResult>> Puller::Impl::pull_under(std::shared_ptr<Flight> f,
                                                             CallOptions lo) {
  PullResult out;
  out.name = f->key;
  auto resolved = co_await resolver.resolve(f->ref, f->cancel);
  if (!resolved.ok()) co_return with_unreachable(resolved.status(), f->ref);
  OciDescriptor d = resolved->descriptor;
  d.platform.reset();
  out.target = d;

  std::set<std::string> seen;
  for (size_t depth = 0; containerd::is_index_type(d.media_type); ++depth) {
    if (depth >= containerd::kMaxIndexDepth || !seen.insert(d.digest).second)
      co_return Status::FailedPrecondition(f->key + ": indexes nested deeper than " +
                                           std::to_string(containerd::kMaxIndexDepth) +
                                           " or naming themselves");
    auto bytes = co_await manifest_blob(f, "index", d, lo, &out);
    if (!bytes.ok()) co_return bytes.status();
    auto index = containerd::parse_index(*bytes, "index " + d.digest, true);
    if (!index.ok()) co_return index.status();
    auto child = resolver.select_platform(*bytes);
    if (!child.ok()) co_return child.status().with_context(f->key);
    Labels labels = source_label(f->ref);
    for (size_t i = 0; i < index->manifests.size(); ++i)
      labels[kGcContentPrefix + std::string("m.") + std::to_string(i)] = index->manifests[i].digest;
    Status s = co_await ensure_labels(d.digest, std::move(labels), lo);
    if (!s.ok()) co_return s;
    d = *child;
    d.platform.reset();
  }
  if (!containerd::is_manifest_type(d.media_type))
    co_return Status::FailedPrecondition(f->key + ": " + d.digest + " has media type \"" +
                                         printable(d.media_type) + "\", not a manifest");
  auto bytes = co_await manifest_blob(f, "manifest", d, lo, &out);
  if (!bytes.ok()) co_return bytes.status();
  auto manifest = containerd::parse_manifest(*bytes, "manifest " + d.digest);
  if (!manifest.ok()) co_return manifest.status();
  {
    Labels labels = source_label(f->ref);
    labels[kGcContentPrefix + std::string("config")] = manifest->config.digest;
    for (size_t i = 0; i < manifest->layers.size(); ++i)
      labels[kGcContentPrefix + std::string("l.") + std::to_string(i)] = manifest->layers[i].digest;
    Status s = co_await ensure_labels(d.digest, std::move(labels), lo);
    if (!s.ok()) co_return s;
  }

  // Config and layers, kMaxParallelBlobs at a time.
  std::vector<std::pair<std::string, OciDescriptor>> work;
  work.emplace_back("config", manifest->config);
  for (const auto& l : manifest->layers) work.emplace_back("layer", l);
  size_t next = 0;
  int running = 0;
  Status first_error;
  Signal all_done(executor);
  auto worker = [&]() -> asio::awaitable<void> {
    while (next < work.size() && first_error.ok()) {
      auto& [kind, blob] = work[next++];
      Status s = co_await put_blob(f, kind, blob, lo, &out);
      if (!s.ok() && first_error.ok()) first_error = s;
    }
    if (--running == 0) all_done.set();
  };
  const int workers = std::min<int>(kMaxParallelBlobs, static_cast<int>(work.size()));
  running = workers;
  for (int i = 0; i < workers; ++i) asio::co_spawn(executor, worker(), asio::detached);
  co_await all_done.wait();
  if (!first_error.ok()) co_return first_error;

  containerd::Image img;
  img.set_name(out.name);
  *img.mutable_target() = containerd::to_proto(out.target);
  auto created = co_await client.images_create(img, lo);
  if (!created.ok() && created.status().is_already_exists())
    created = co_await client.images_update(img, lo);
  if (!created.ok()) co_return created.status();

  auto unpacked = co_await containerd::unpack_image(client, out.name, options.snapshotter, lo);
  if (!unpacked.ok()) co_return unpacked.status();
  out.image = std::move(*unpacked);
  co_return out;
}

}  // namespace herd::registry
