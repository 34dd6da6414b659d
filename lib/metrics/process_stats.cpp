#include "metrics/process_stats.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

namespace herd::metrics {

namespace {

std::string read_small(const char* path) {
  std::ifstream f(path);
  if (!f) return {};
  std::string s;
  std::getline(f, s, '\0');
  return s.size() > 65536 ? std::string() : s;
}

// The boot time from /proc/stat's "btime" line.
std::optional<double> boot_time() {
  std::ifstream f("/proc/stat");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("btime ", 0) == 0) return std::strtod(line.c_str() + 6, nullptr);
  }
  return std::nullopt;
}

}  // namespace

ProcessStats read_process_stats() {
  ProcessStats out;
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const std::string stat = read_small("/proc/self/stat");
  // Fields after the command's closing ')': state is field 3.
  const size_t close = stat.rfind(')');
  if (close != std::string::npos && ticks > 0) {
    std::istringstream in(stat.substr(close + 2));
    std::string field;
    double utime = 0;
    double stime = 0;
    double start = 0;
    bool ok = true;
    for (int i = 3; i <= 22 && ok; ++i) {
      ok = static_cast<bool>(in >> field);
      if (!ok) break;
      if (i == 14) utime = std::strtod(field.c_str(), nullptr);
      if (i == 15) stime = std::strtod(field.c_str(), nullptr);
      if (i == 22) start = std::strtod(field.c_str(), nullptr);
    }
    if (ok) {
      out.cpu_seconds = (utime + stime) / ticks;
      if (auto bt = boot_time()) out.start_time_seconds = *bt + start / ticks;
    }
  }
  const std::string statm = read_small("/proc/self/statm");
  unsigned long size = 0;
  unsigned long resident = 0;
  if (std::sscanf(statm.c_str(), "%lu %lu", &size, &resident) == 2) {
    out.resident_bytes =
        static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE));
  }
  if (DIR* d = ::opendir("/proc/self/fd")) {
    double n = 0;
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') n += 1;
    }
    ::closedir(d);
    out.open_fds = n - 1;  // the directory's own fd
  }
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
    out.max_fds = static_cast<double>(rl.rlim_cur);
  }
  return out;
}

}  // namespace herd::metrics
