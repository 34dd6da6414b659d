// check_metrics_listen (config.h): the `metrics.listen` address syntax.
#include <arpa/inet.h>

#include <string>

#include "config/config.h"

namespace herd::config {

Status check_metrics_listen(std::string_view listen) {
  if (listen.empty()) return Status::InvalidArgument("must not be empty");
  if (listen.front() == '/') {
    if (listen.size() > 107) {
      return Status::InvalidArgument("a unix socket path must be at most 107 bytes, got " +
                                     std::to_string(listen.size()));
    }
    return Status::Ok();
  }
  const size_t colon = listen.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == listen.size()) {
    return Status::InvalidArgument(
        "must be HOST:PORT (\"127.0.0.1:9464\", \"[::1]:9464\") or an absolute unix socket path");
  }
  std::string host(listen.substr(0, colon));
  const std::string_view port = listen.substr(colon + 1);
  unsigned long p = 0;
  for (char c : port) {
    if (c < '0' || c > '9' || port.size() > 5) {
      return Status::InvalidArgument("the port must be a number 1..65535");
    }
    p = p * 10 + static_cast<unsigned long>(c - '0');
  }
  if (p < 1 || p > 65535) return Status::InvalidArgument("the port must be a number 1..65535");
  unsigned char buf[16];
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    if (inet_pton(AF_INET6, host.c_str(), buf) == 1) return Status::Ok();
    return Status::InvalidArgument("\"[" + host.substr(0, 64) + "]\" is not an IPv6 address");
  }
  if (inet_pton(AF_INET, host.c_str(), buf) == 1) return Status::Ok();
  return Status::InvalidArgument(
      "the host must be an IPv4 address or a bracketed IPv6 one, got \"" + host.substr(0, 64) +
      "\" (names are not resolved)");
}

}  // namespace herd::config
