#include "containerd/byte_source.h"

#include "common/file_kind.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace herd::containerd {

namespace {

Status check_range(const ByteSource& s, uint64_t offset, uint64_t len) {
  if (offset > s.size() || len > s.size() - offset)
    return Status(Code::kOutOfRange, "archive " + s.name() + ": read of " + std::to_string(len) +
                                         " bytes at offset " + std::to_string(offset) +
                                         " passes its end (" + std::to_string(s.size()) +
                                         " bytes)");
  return Status::Ok();
}

}  // namespace

Result<std::shared_ptr<const FdSource>> FdSource::make(std::shared_ptr<UniqueFd> fd,
                                                       std::string name) {
  if (!fd || !fd->valid()) return Status::InvalidArgument("archive " + name + ": no open file");
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0)
    return Status::Unavailable("archive " + name + ": fstat: " + std::strerror(errno));
  if (!S_ISREG(st.st_mode))
    return Status::InvalidArgument("archive " + name + ": " + file_kind(st.st_mode) +
                                   ", not a regular file");
  return std::make_shared<const FdSource>(std::move(fd), std::move(name),
                                          static_cast<uint64_t>(st.st_size));
}

Status FdSource::read_at(uint64_t offset, char* buf, uint64_t len) const {
  if (auto s = check_range(*this, offset, len); !s.ok()) return s;
  uint64_t done = 0;
  while (done < len) {
    ssize_t n = ::pread(fd_->get(), buf + done, len - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::Unavailable("archive " + name_ + ": read at offset " +
                                 std::to_string(offset + done) + ": " + std::strerror(errno));
    }
    if (n == 0)
      return Status::DataLoss("archive " + name_ + ": file ended at offset " +
                              std::to_string(offset + done) + " (it shrank while being read)");
    done += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

Status MemorySource::read_at(uint64_t offset, char* buf, uint64_t len) const {
  if (auto s = check_range(*this, offset, len); !s.ok()) return s;
  if (len > 0) std::memcpy(buf, bytes_.data() + offset, len);
  return Status::Ok();
}

}  // namespace herd::containerd
