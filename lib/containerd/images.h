// Images without a registry: import an OCI archive natively, resolve an
// image to its manifest and config, and unpack its layers into a
// snapshotter. Compositions of Client calls; no shelling out to `ctr`.
//
// import_archive: writes every blob of the archive into containerd's content
// store (skipping blobs already there) under a temporary lease, with the
// garbage-collection labels containerd expects (a manifest names its config
// and layers with containerd.io/gc.ref.content.*, an index its manifests),
// then creates or updates one image record per named manifest.
//
// unpack_image: for every layer whose chain id has no committed snapshot
// yet: Snapshots.Prepare on the parent chain, Diff.Apply of the layer,
// Snapshots.Commit under the chain id (chain(L1) = diffid(L1); chain(Ln) =
// sha256(chain(Ln-1) + " " + diffid(Ln))). The config blob is then labelled
// containerd.io/gc.ref.snapshot.<snapshotter> = top chain id, so the
// snapshots live as long as the image. Existing chains are skipped, so an
// unpacked image costs one Stat per layer. A failed step removes what it
// prepared; the work runs under a lease that also expires by itself.
//
// Strand: coroutines; they complete on the awaiting coroutine's executor.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/asio.h"
#include "common/blocking_pool.h"
#include "common/status.h"
#include "common/unique_fd.h"
#include "containerd/client.h"
#include "containerd/oci_spec.h"

namespace herd::containerd {

// An image as herd runs it.
struct ResolvedImage {
  std::string name;
  Descriptor manifest;               // the platform manifest (not an index)
  std::string config_digest;
  std::string config_json;           // the OCI image config blob
  std::vector<Descriptor> layers;
  std::vector<std::string> diff_ids;
  std::vector<std::string> chain_ids;  // one per layer; back() is the rootfs parent
  const std::string& top_chain_id() const { return chain_ids.back(); }
};

// chain ids from diff ids (see above).
std::vector<std::string> chain_ids(const std::vector<std::string>& diff_ids);

// The OCI platform architecture of this build ("amd64", "arm64", ...).
std::string_view host_architecture();

// An image archive opened for import. `name` is only for messages (the
// path from the config, or the file name herdctl sent), never opened.
struct ArchiveFile {
  ArchiveFile() {}  // user-provided: safe to pass into coroutines
  std::shared_ptr<UniqueFd> fd;
  std::string name;
};

// Opens `path` for import without ever blocking: O_RDONLY | O_NONBLOCK |
// O_CLOEXEC, then fstat; anything but a regular file (a FIFO, a device, a
// directory) is kInvalidArgument naming the path and what it is. Blocking
// I/O: call it through run_blocking.
Result<ArchiveFile> open_archive_file(const std::filesystem::path& path);

// Imports every named image of an archive (an OCI layout or a docker-save
// archive). All reading and hashing of the file runs on `pool`; the
// calling strand only awaits results and talks to containerd.
asio::awaitable<Result<std::vector<Image>>> import_archive(Client& client, BlockingPool& pool,
                                                           ArchiveFile archive,
                                                           CallOptions o = {});
// The same for a path (opened with open_archive_file on `pool`).
asio::awaitable<Result<std::vector<Image>>> import_archive(Client& client, BlockingPool& pool,
                                                           std::filesystem::path path,
                                                           CallOptions o = {});

asio::awaitable<Result<ResolvedImage>> resolve_image(Client& client, std::string name,
                                                     CallOptions o = {});

asio::awaitable<Result<ResolvedImage>> unpack_image(Client& client, std::string name,
                                                    std::string snapshotter = kDefaultSnapshotter,
                                                    CallOptions o = {});

}  // namespace herd::containerd
