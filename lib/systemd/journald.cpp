#include "systemd/journald.h"

#include <sys/stat.h>

namespace herd::systemd {

bool journald_available(const std::string& socket_path) {
  struct stat st {};
  return ::stat(socket_path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

}  // namespace herd::systemd
