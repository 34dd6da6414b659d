#include "registry/small_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/file_kind.h"
#include "common/unique_fd.h"
#include "registry/reference.h"

namespace herd::registry::internal {

Result<std::optional<std::string>> read_small_file(const std::string& path, std::size_t max_bytes,
                                                   const std::string& what) {
  const std::string name = what + " \"" + printable(path, 400) + "\"";
  if (path.empty() || path.find('\0') != std::string::npos)
    return Status::InvalidArgument(name + ": not a valid path");
  UniqueFd fd{::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)};
  if (!fd) {
    if (errno == ENOENT) return std::optional<std::string>();
    return Status::Unavailable(name + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Status::Unavailable(name + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode))
    return Status::InvalidArgument(name + ": " + file_kind(st.st_mode) + ", not a regular file");
  if (static_cast<std::uint64_t>(st.st_size) > max_bytes)
    return Status::InvalidArgument(name + ": " + std::to_string(st.st_size) +
                                   " bytes, more than the maximum of " + std::to_string(max_bytes));
  std::string text(max_bytes + 1, '\0');
  std::size_t got = 0;
  while (got < text.size()) {
    const ssize_t n = ::read(fd.get(), text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::Unavailable(name + ": " + std::strerror(errno));
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  if (got > max_bytes)
    return Status::InvalidArgument(name + ": grew beyond the maximum of " +
                                   std::to_string(max_bytes) + " bytes while read");
  text.resize(got);
  return std::optional<std::string>(std::move(text));
}

}  // namespace herd::registry::internal
