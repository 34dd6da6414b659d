// Images without a registry: import an image archive natively, resolve an
// image to its manifest and config, and unpack its layers into a
// snapshotter. Compositions of Client calls; no shelling out to `ctr`.
//
// import_archive: the archive is hostile (herdd is root). Its tar is
// scanned with every size, offset and name checked (tar_reader.h); every
// manifest or index blob is checked against its descriptor's size and
// sha256 before it is parsed, with bounded size, nesting (json_limits.h),
// counts and index depth (oci_parse.h); an index that names itself is an
// error, never a recursion. Only what verified blobs say becomes a label.
// - OCI layout: every blob below each index.json entry is written into
//   containerd's content store (skipping blobs already there; containerd
//   checks each layer's digest at commit) under a temporary lease, with
//   the garbage-collection labels containerd expects (a manifest names
//   its config and layers with containerd.io/gc.ref.content.*, an index
//   its manifests), then one image record per named entry
//   (io.containerd.image.name, else a full org.opencontainers.image.ref.name).
// - docker-save (`docker save`, `podman save`, skopeo docker-archive:):
//   manifest.json's config and layers are hashed, layers typed tar or
//   tar.gzip by their magic bytes, an uncompressed layer's digest checked
//   against the config's diff id, a Docker schema-2 manifest synthesised
//   with gc labels, and one image record per RepoTag, normalised as docker
//   does (busybox:latest -> docker.io/library/busybox:latest). The
//   `repositories` file is ignored, as ctr does when manifest.json exists.
// All reading and hashing of the file runs on the BlockingPool; the
// calling strand only awaits results and talks to containerd. Leases are
// deleted with call options of their own (not the caller's canceller), so
// a cancelled or failed import leaves nothing behind once containerd's
// collector runs; content_write aborts its ingest.
//
// resolve_image: follows index -> ... -> manifest in a bounded loop
// (kMaxIndexDepth indexes, none twice), picking the entry whose platform
// matches this host (os, architecture, arm variant); every JSON text read
// from the content store is bounded and type-checked, a wrong type being
// kInvalidArgument naming the blob and the field path. The JSON is parsed
// on the calling strand (bounded: 4 MiB manifests, 16 MiB configs).
//
// unpack_image: for every layer whose chain id has no committed snapshot
// yet: Snapshots.Prepare on the parent chain, Diff.Apply of the layer,
// Snapshots.Commit under the chain id (chain(L1) = diffid(L1); chain(Ln) =
// sha256(chain(Ln-1) + " " + diffid(Ln))). The config blob is then labelled
// containerd.io/gc.ref.snapshot.<snapshotter> = top chain id, so the
// snapshots live as long as the image. Existing chains are skipped, so an
// unpacked image costs one Stat per layer. A failed or cancelled step
// removes what it prepared (not under the caller's canceller); the work
// runs under a lease that also expires by itself.
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
#include "containerd/oci_parse.h"
#include "containerd/oci_spec.h"

namespace herd::containerd {

// An image as herd runs it.
struct ResolvedImage {
  std::string name;
  Descriptor manifest;  // the platform manifest (not an index)
  std::string config_digest;
  std::string config_json;  // the OCI image config blob
  std::vector<Descriptor> layers;
  std::vector<std::string> diff_ids;
  std::vector<std::string> chain_ids;  // one per layer; back() is the rootfs parent
  const std::string& top_chain_id() const { return chain_ids.back(); }
};

// The content store's descriptor (media type, digest, size) of a parsed one.
Descriptor to_proto(const OciDescriptor& d);

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
                                                           ArchiveFile archive, CallOptions o = {});
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
