// herd::control::ImportUpload: receives one ImportImage stream (a name,
// then data chunks) into an unnamed temporary file, bounded in size.
//
// - create(dir, max_bytes) makes `dir` if it is missing (mode 0700; its
//   missing parents 0755, as systemd's StateDirectory= does), refuses it unless it is a directory
//   owned by herdd's euid (a symlink is refused), narrows it to 0700, and
//   opens an unnamed file in it (O_TMPFILE; where the filesystem has none,
//   a mkstemp name unlinked at once). The file never has a name a client
//   could learn or that outlives the upload: closing it frees it.
// - feed(message): the first message must be the header (a non-empty name
//   of at most kMaxImportNameBytes, the size), every later one `data`;
//   anything else is INVALID_ARGUMENT, and so are more data bytes than the
//   header announced. A size above max_bytes is RESOURCE_EXHAUSTED naming
//   the limit, before a byte is written. After an error every feed fails.
// - finish(): at the end of the stream, the file rewound to offset 0 and
//   the name through printable(); INVALID_ARGUMENT when no header came or
//   the data fell short of its size (a stream cut short never imports).
//
// Threads: blocking file I/O (write, lseek): call it on gRPC's threads,
// never on herdd's event loop. Not thread-safe: one caller at a time.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "common/status.h"
#include "common/unique_fd.h"
#include "herd/v1/control.pb.h"

namespace herd::control {

class ImportUpload {
 public:
  static Result<ImportUpload> create(const std::string& dir, uint64_t max_bytes);
  // On an already open, empty, writable file (tests, the fuzz target).
  ImportUpload(UniqueFd file, uint64_t max_bytes);

  Status feed(const herd::v1::ImportImageRequest& message);

  struct Archive {
    UniqueFd file;
    std::string name;  // printable()
    uint64_t bytes = 0;
  };
  Result<Archive> finish();

  uint64_t bytes() const { return bytes_; }
  bool named() const { return !name_.empty(); }

 private:
  UniqueFd file_;
  uint64_t max_bytes_;
  uint64_t bytes_ = 0;
  uint64_t size_ = 0;
  std::string name_;
  bool failed_ = false;
};

}  // namespace herd::control
