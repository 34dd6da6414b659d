// herd::registry::Puller: pull an image from its registry into containerd,
// leaving exactly what containerd 1.6's own client (`ctr pull`) leaves, so
// containerd, ctr and nerdctl see the image as their own
// (/work/shared/REGISTRY-NOTES.md, "Store exactly as ctr pull does").
//
// One pull:
// 1. A lease (random id, containerd.io/gc.expire one hour on as a backstop
//    should herdd die) holds everything written; it is deleted at the end,
//    success or not, with call options of its own (never the cancelled
//    ones), so a failed or cancelled pull leaves nothing once containerd's
//    collector runs.
// 2. Resolve the reference (Resolver::resolve). An index (OCI index,
//    Docker manifest list) is fetched and verified, and the node's entry
//    chosen (Resolver::select_platform), at most containerd::kMaxIndexDepth
//    indexes deep; then the manifest, its config and its layers. Every
//    manifest and index is checked against its digest and size before it
//    is parsed (Resolver::fetch_manifest), and parsed with the bounds of
//    oci_parse.h.
// 3. Every blob goes into the content store: one already there is never
//    fetched (Content.Info); else Content.Write (STAT first, so an ingest
//    left by an earlier writer resumes and a blob another namespace holds
//    is adopted with no transfer), streamed from the HTTP body with one
//    write in flight: the transfer pauses while containerd writes, so at
//    most two chunks of a layer (HttpClient::kChunkBytes, 256 KiB) are in memory.
//    The SHA-256 is computed as the bytes stream (from offset 0; a resumed
//    ingest is checked by containerd at commit); a mismatch, or a body
//    longer than the descriptor, fails the write before its COMMIT and the
//    ingest is aborted (Content.Abort): nothing is committed. A transfer
//    cut midway resumes with a Range from where the ingest stands (a
//    registry answering 200 to the Range: the bytes before are skipped),
//    at most kMaxResumes times, waiting retry::kRegistry between; an
//    attempt that brought no byte is not resumed (the Resolver retried it
//    already: a blob answered 503 for ever costs kMaxAttempts requests,
//    not kMaxAttempts per resume). Ingest refs are containerd's:
//    "index-", "manifest-", "config-", "layer-" + digest; a ref another
//    writer holds (Unavailable) is retried.
//    Layers transfer kMaxParallelBlobs at a time, as ctr's.
// 4. Labels, as ctr's handlers leave them: on an index
//    containerd.io/gc.ref.content.m.<i> for every entry (fetched or not);
//    on a manifest containerd.io/gc.ref.content.config and
//    containerd.io/gc.ref.content.l.<i>; on every blob of the pull
//    containerd.io/distribution.source.<registry host, no port> = the
//    repository, merged with what another repository put there (sorted,
//    comma-separated, no duplicates). A blob already present gets the
//    labels it lacks (Content.Update of those keys only).
// 5. Images.Create {name: the normalised reference, target: the top
//    descriptor (the index when there is one)}; AlreadyExists: Update.
// 6. Unpack (containerd::unpack_image): snapshots of each layer chain,
//    containerd.io/uncompressed on layers and
//    containerd.io/gc.ref.snapshot.<snapshotter> on the config.
//
// Single flight: pulls of one normalised reference share one run; a caller
// that joins gets the same result. Cancelling a caller ends its wait at
// once (Cancelled); the run itself is cancelled when its last caller is.
// Blobs are shared the same way across runs: two images with a common
// layer fetch it once.
//
// Errors name what failed: the host and status ("127.0.0.1:5000 answered
// HTTP 503"), "unauthorized: <host>: ...", "digest mismatch for
// sha256:...", "registry unreachable: <host>: ..." (a transport failure of
// the resolve), a containerd call by its name.
//
// Strand: a Puller is confined to the executor it is made with (herdd's
// loop); its HttpClient and Resolver live there. pull() and resolve() may
// be awaited from any executor: they hop to the Puller's and complete on
// the caller's. A PullRequest's `progress` is called on the Puller's
// executor. The Client must outlive the Puller; destroying the Puller
// aborts its transfers (callers must be done awaiting by then).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/asio.h"
#include "common/status.h"
#include "containerd/client.h"
#include "containerd/images.h"
#include "registry/http.h"
#include "registry/reference.h"
#include "registry/resolver.h"

namespace herd::registry {

inline constexpr int kMaxResumes = 5;
inline constexpr int kMaxParallelBlobs = 3;

// Progress of one blob of a pull.
struct BlobProgress {
  std::string kind;  // "index", "manifest", "config", "layer"
  std::string digest;
  int64_t total = 0;
  int64_t done = 0;      // bytes in the content store (resumed bytes count)
  bool present = false;  // it was there already (nothing fetched)
  bool finished = false;
};

// User-provided constructor: passed into coroutines (common/asio.h).
struct PullRequest {
  PullRequest() {}
  // Aborts this caller's wait (and the pull, when no other caller waits).
  std::shared_ptr<containerd::Canceller> cancel;
  // Called on the Puller's executor as blobs move; may be empty.
  std::function<void(const BlobProgress&)> progress;
};

struct PullResult {
  std::string name;                 // the image record: the normalised reference
  Descriptor target;                // the top descriptor (index or manifest)
  containerd::ResolvedImage image;  // the platform manifest, config, layers, chains
  int blobs_fetched = 0;
  int blobs_present = 0;  // already in the content store (or adopted)
  uint64_t bytes_fetched = 0;
};

class Puller {
 public:
  struct Options {
    Options() {}
    RegistryOptions registry;
    std::string snapshotter = containerd::kDefaultSnapshotter;
    std::chrono::milliseconds call_timeout{10000};  // each ordinary containerd call
    containerd::Platform platform = containerd::host_platform();
  };

  Puller(asio::any_io_executor executor, containerd::Client& client, Options options);
  ~Puller();
  Puller(const Puller&) = delete;
  Puller& operator=(const Puller&) = delete;

  // Pulls `reference` (see above). InvalidArgument for a malformed one.
  asio::awaitable<Result<PullResult>> pull(std::string reference, PullRequest request);

  // The descriptor `reference` resolves to now (for `pull: always`: an
  // unchanged digest needs no pull). Fetches no blob.
  asio::awaitable<Result<Resolved>> resolve(std::string reference,
                                            std::shared_ptr<containerd::Canceller> cancel);

  // A config reload's `registry` settings, for pulls that start from now
  // on. Call on the Puller's executor.
  void set_registry_options(RegistryOptions options);

  const asio::any_io_executor& executor() const { return executor_; }
  // Runs of pulls and of blob writes in flight (tests).
  size_t pulls_in_flight() const;

  struct Flight;
  struct Impl;

 private:
  asio::awaitable<Result<PullResult>> pull_here(std::string reference, PullRequest request);
  asio::any_io_executor executor_;
  std::unique_ptr<Impl> impl_;
};

// The value of containerd.io/distribution.source.<host> after adding
// `repository` to `existing` (ctr's appendDistributionSourceLabel: sorted,
// comma-separated, without duplicates). Pure.
std::string merge_distribution_source(std::string_view existing, std::string_view repository);
// "containerd.io/distribution.source.<host without port>" for a domain.
std::string distribution_source_key(std::string_view domain);

}  // namespace herd::registry
