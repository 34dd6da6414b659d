#include "containerd/call_errors.h"

#include <mutex>

namespace herd::containerd {

namespace {

std::mutex& table_mu() {
  static std::mutex mu;
  return mu;
}

std::map<std::string, uint64_t>& table() {
  static std::map<std::string, uint64_t> t;
  return t;
}

}  // namespace

void count_call_error(const char* method) {
  std::lock_guard lock(table_mu());
  ++table()[method];
}

std::map<std::string, uint64_t> call_errors() {
  std::lock_guard lock(table_mu());
  return table();
}

}  // namespace herd::containerd
