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
#include <string>
#include <vector>

#include "common/asio.h"
#include "common/status.h"
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

asio::awaitable<Result<std::vector<Image>>> import_archive(Client& client,
                                                           std::filesystem::path archive,
                                                           CallOptions o = {});

asio::awaitable<Result<ResolvedImage>> resolve_image(Client& client, std::string name,
                                                     CallOptions o = {});

asio::awaitable<Result<ResolvedImage>> unpack_image(Client& client, std::string name,
                                                    std::string snapshotter = kDefaultSnapshotter,
                                                    CallOptions o = {});

}  // namespace herd::containerd
