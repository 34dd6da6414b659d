#include "systemd/rotating_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace herd::systemd {

RotatingFile::RotatingFile(std::string path, uint64_t max_bytes, uint32_t max_files)
    : path_(std::move(path)), max_bytes_(max_bytes), max_files_(max_files < 1 ? 1 : max_files) {}

RotatingFile::~RotatingFile() {
  if (fd_ >= 0) ::close(fd_);
}

bool RotatingFile::open() {
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (fd_ < 0) return false;
  struct stat st {};
  size_ = ::fstat(fd_, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  return true;
}

void RotatingFile::rotate() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (max_files_ == 1) {
    if (::truncate(path_.c_str(), 0) != 0) {
      // open() appends to whatever is left; the next rotation tries again
    }
    return;
  }
  // path.<n-1> -> path.<n>, ..., path -> path.1; the oldest is replaced.
  for (uint32_t i = max_files_ - 1; i >= 1; --i) {
    const std::string from = i == 1 ? path_ : path_ + "." + std::to_string(i - 1);
    const std::string to = path_ + "." + std::to_string(i);
    ::rename(from.c_str(), to.c_str());  // a missing one: ENOENT, fine
  }
}

bool RotatingFile::write(std::string_view data) {
  if (fd_ < 0 && !open()) return false;
  if (size_ > 0 && size_ + data.size() > max_bytes_) {
    rotate();
    if (!open()) return false;
  }
  while (!data.empty()) {
    const ssize_t n = ::write(fd_, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd_);
      fd_ = -1;
      return false;
    }
    size_ += static_cast<uint64_t>(n);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace herd::systemd
