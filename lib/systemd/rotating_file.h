// herd::systemd::RotatingFile: an append-only output file capped in size
// and count, for herd-logger's file mode (component output without
// journald; config `output`, docs/configuration.md).
//
// Contract:
// - The current file is `path`; older ones are path.1 (the newest) up to
//   path.<max_files - 1>. Before a write would take the current file past
//   max_bytes, the files shift by one (the oldest is removed) and a new
//   current file starts; a line is never split across two files. A single
//   line longer than max_bytes starts a file of its own (herd-logger's
//   lines are at most 64 KiB; max_bytes is at least 4096).
// - With max_files == 1 the current file is truncated instead of kept.
// - Files are created 0640; an existing current file is appended to and
//   its size counted (a restarted logger goes on where it was).
// - write() returns false when the file cannot be opened or written (the
//   caller counts the line as dropped); the next write tries again.
//
// Thread-safety: none; one writer (herd-logger's sender thread).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace herd::systemd {

class RotatingFile {
 public:
  RotatingFile(std::string path, uint64_t max_bytes, uint32_t max_files);
  ~RotatingFile();
  RotatingFile(const RotatingFile&) = delete;
  RotatingFile& operator=(const RotatingFile&) = delete;

  // Appends `data` (one or more whole lines).
  bool write(std::string_view data);
  uint64_t size() const { return size_; }

 private:
  bool open();
  void rotate();

  std::string path_;
  uint64_t max_bytes_;
  uint32_t max_files_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

}  // namespace herd::systemd
