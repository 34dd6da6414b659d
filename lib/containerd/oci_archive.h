// herd::containerd::OciArchive: read access to an OCI image layout stored
// in a tar file (what `scripts/build-images` writes and `ctr export` makes).
//
// open() scans the tar headers once (ustar, with GNU long names and pax
// `path` records) and remembers where every regular file's data is; blobs
// are then read by range with pread, so a large layer is streamed, never
// loaded whole. Only regular files are indexed.
//
// Thread-safety: after open(), const methods may be called from any thread.
// The file is read synchronously: a local archive, read in 1 MiB chunks.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace herd::containerd {

class OciArchive {
 public:
  struct Entry {
    uint64_t offset = 0;  // of the data in the tar file
    uint64_t size = 0;
  };

  // A manifest named by the archive's index.json.
  struct IndexEntry {
    std::string media_type;
    std::string digest;
    int64_t size = 0;
    std::string image_name;  // io.containerd.image.name, else ref.name if it is a full name
  };

  static Result<OciArchive> open(const std::filesystem::path& path);

  OciArchive(OciArchive&&) noexcept;
  OciArchive& operator=(OciArchive&&) noexcept;
  ~OciArchive();

  const std::filesystem::path& path() const { return path_; }
  const std::map<std::string, Entry>& entries() const { return entries_; }

  // Reads a whole file of the archive (for index.json, manifests, configs).
  Result<std::string> read_file(const std::string& name, uint64_t max_size = 16 << 20) const;
  // Reads `len` bytes at `offset` of blob `digest` ("sha256:<hex>") into buf.
  Status read_blob_range(const std::string& digest, uint64_t offset, uint64_t len,
                         std::string& buf) const;
  Result<Entry> blob(const std::string& digest) const;

  // Parses oci-layout and index.json.
  Result<std::vector<IndexEntry>> index() const;

 private:
  OciArchive() = default;
  std::filesystem::path path_;
  int fd_ = -1;
  std::map<std::string, Entry> entries_;
};

// "blobs/sha256/<hex>" for "sha256:<hex>"; error for a malformed digest.
Result<std::string> blob_path(const std::string& digest);

}  // namespace herd::containerd
