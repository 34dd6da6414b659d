// herd::containerd::OciArchive: read access to an image archive stored in a
// tar file: an OCI image layout (`oci-layout`, `index.json`, `blobs/`; what
// `scripts/build-images` writes and `ctr export` makes) or a docker-save
// archive (`manifest.json`; `docker save`, `podman save`, skopeo's
// docker-archive:).
//
// open() scans the tar headers once (tar_reader.h: every size, offset and
// name checked, links resolved) and remembers where every regular file's
// data lies; files are then read by range, so a large layer is streamed,
// never loaded whole. The archive is hostile: reads are bounded, and a
// blob is only handed out for parsing after its size and sha256 matched
// its descriptor (read_verified_blob). index.json and manifest.json, which
// no digest names, are bounded in size and nesting.
//
// Thread-safety: after open(), const methods may be called from any thread
// at once. Every method that reads blocks on file I/O and hashing: call
// it on a BlockingPool thread (run_blocking), never on the event loop.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "containerd/byte_source.h"
#include "containerd/oci_parse.h"
#include "containerd/tar_reader.h"

namespace herd::containerd {

class OciArchive {
 public:
  using Entry = TarEntry;

  // Scans `source` (blocking).
  static Result<OciArchive> open(std::shared_ptr<const ByteSource> source);
  // Opens `path` with O_NONBLOCK (a FIFO never blocks it), refuses anything
  // but a regular file, then scans it. For tests and tools.
  static Result<OciArchive> open(const std::filesystem::path& path);

  const std::string& name() const { return source_->name(); }
  const TarIndex& entries() const { return entries_; }
  bool has(const std::string& file) const { return entries_.count(file) > 0; }

  // The entry of a file (by normalised name).
  Result<Entry> file(const std::string& name) const;
  // The entry of blob `digest` ("sha256:<hex>").
  Result<Entry> blob(const std::string& digest) const;

  // Reads a whole file; kOutOfRange when it is larger than max_size.
  Result<std::string> read_file(const std::string& name,
                                uint64_t max_size = kMaxJsonDocument) const;
  // Reads at most `len` bytes at `offset` of an entry into buf (fewer at
  // its end, none past it).
  Status read_range(const Entry& e, uint64_t offset, uint64_t len, std::string& buf) const;
  Status read_blob_range(const std::string& digest, uint64_t offset, uint64_t len,
                         std::string& buf) const;
  // Reads blob `digest` whole and checks it is `size` bytes (at most
  // max_size) whose sha256 is `digest`: kDataLoss otherwise.
  Result<std::string> read_verified_blob(const std::string& digest, int64_t size,
                                         uint64_t max_size) const;

  // A file's sha256 ("sha256:<hex>"), size, and whether it starts with the
  // gzip magic (1f 8b).
  struct FileDigest {
    std::string digest;
    uint64_t size = 0;
    bool gzip = false;
  };
  Result<FileDigest> hash_file(const std::string& name) const;

  // OCI layout: checks `oci-layout`, parses `index.json` (bounded).
  Result<std::vector<LayoutEntry>> index() const;
  // docker-save: parses `manifest.json` (bounded).
  Result<std::vector<DockerArchiveImage>> docker_manifest() const;

 private:
  OciArchive() = default;
  std::shared_ptr<const ByteSource> source_;
  TarIndex entries_;
};

}  // namespace herd::containerd
