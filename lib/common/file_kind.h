// herd::file_kind: what an fstat mode is, for messages ("a FIFO",
// "a directory", ...). One wording for every place that refuses a file
// that is not a regular one (archives, the config, uploads, herdctl).
//
// Pure; any thread.
#pragma once

#include <sys/stat.h>

namespace herd {

inline const char* file_kind(mode_t mode, const char* other = "not a regular file") {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return "a regular file";
    case S_IFDIR:
      return "a directory";
    case S_IFIFO:
      return "a FIFO";
    case S_IFCHR:
      return "a character device";
    case S_IFBLK:
      return "a block device";
    case S_IFSOCK:
      return "a socket";
    case S_IFLNK:
      return "a symbolic link";
    default:
      return other;
  }
}

}  // namespace herd
