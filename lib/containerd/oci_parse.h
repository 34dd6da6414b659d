// Pure parsers of the JSON documents of image archives and of the content
// store: OCI / Docker descriptors, manifests and indexes, an OCI layout's
// index.json, a docker-save manifest.json; docker reference normalisation
// and platform matching. No gRPC, no I/O: fuzzed (tests/fuzz/oci_fuzz.cpp).
//
// Every text is hostile. Each parser first bounds the text's size and
// nesting (json_nesting_within) and only then builds a tree; every field
// is type-checked; counts are bounded. Errors are kInvalidArgument and
// name the document (`what`, e.g. "index sha256:ab12cd34ef56…") and the
// field path: "index sha256:ab12…: manifests[0].platform: expected an
// object". Nothing throws.
//
// Pure; any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace herd::containerd {

inline constexpr std::string_view kOciIndexType = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kDockerListType =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kOciManifestType = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kDockerManifestType =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerConfigType =
    "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kDockerLayerType = "application/vnd.docker.image.rootfs.diff.tar";
inline constexpr std::string_view kDockerLayerGzipType =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";

// Bounds on what an archive or the content store may hand herd.
inline constexpr std::size_t kMaxIndexDepth = 8;             // index -> index -> ... -> manifest
inline constexpr std::size_t kMaxJsonDocument = 4 << 20;     // manifests, indexes, index.json
inline constexpr std::size_t kMaxConfigDocument = 16 << 20;  // image configs
inline constexpr std::size_t kMaxDescriptors = 4096;  // manifests of an index, layers of a manifest
inline constexpr std::size_t kMaxAnnotations = 1024;
inline constexpr std::size_t kMaxDockerImages = 1024;  // entries of manifest.json

bool is_index_type(std::string_view media_type);
bool is_manifest_type(std::string_view media_type);

struct Platform {
  std::string os;
  std::string architecture;
  std::string variant;
};

struct OciDescriptor {
  OciDescriptor() {}  // user-provided: safe to pass into coroutines (common/asio.h)
  std::string media_type;
  std::string digest;
  int64_t size = 0;
  std::optional<Platform> platform;
  std::map<std::string, std::string> annotations;
};

struct OciManifest {
  OciDescriptor config;
  std::vector<OciDescriptor> layers;
};

struct OciIndex {
  std::vector<OciDescriptor> manifests;
};

// A manifest named by an OCI layout's index.json.
struct LayoutEntry {
  OciDescriptor descriptor;
  std::string image_name;  // io.containerd.image.name, else ref.name if it is a full name
};

// One image of a docker-save manifest.json: paths inside the archive.
struct DockerArchiveImage {
  DockerArchiveImage() {}  // user-provided: safe to pass into coroutines
  std::string config;
  std::vector<std::string> repo_tags;
  std::vector<std::string> layers;
};

// "sha256:<64 lower-case hex>", the only digest herd accepts.
Status check_digest(std::string_view digest);
// "blobs/sha256/<hex>" for a digest that passes check_digest.
Result<std::string> blob_path(std::string_view digest);
// "sha256:ab12cd34ef56…": short form for messages (the text as is when malformed).
std::string short_digest(std::string_view digest);

// An OCI or Docker image manifest.
Result<OciManifest> parse_manifest(std::string_view text, const std::string& what);
// An OCI index or Docker manifest list. `with_platforms`: type-check each
// entry's `platform` too (resolving needs it; importing copies the index
// as it is and ignores it).
Result<OciIndex> parse_index(std::string_view text, const std::string& what, bool with_platforms);
// An OCI layout's index.json (entries must name a manifest or an index).
Result<std::vector<LayoutEntry>> parse_layout_index(std::string_view text, const std::string& what);
// A docker-save manifest.json.
Result<std::vector<DockerArchiveImage>> parse_docker_manifest(std::string_view text,
                                                              const std::string& what);

// A Docker schema-2 manifest naming `config` and `layers` (synthesised for
// docker-save archives), and its containerd gc labels.
std::string docker_manifest_json(const OciDescriptor& config,
                                 const std::vector<OciDescriptor>& layers);

// A reference as docker normalises it: "busybox" -> "docker.io/library/
// busybox:latest", "user/x:1" -> "docker.io/user/x:1", "host:5000/x:t"
// kept. kInvalidArgument for a malformed one.
Result<std::string> normalize_docker_ref(std::string_view ref);

// The platform of this build: linux, the OCI architecture, its variant
// (arm64: "v8", arm: "v6".."v8", else empty).
Platform host_platform();
// Whether an index entry of platform `p` runs on `host`: same os and
// architecture, and for arm/arm64 a variant the host runs (empty matches).
// Returns 0 for no match, 1 for a compatible variant, 2 for an exact one.
int platform_match(const Platform& p, const Platform& host);

}  // namespace herd::containerd
