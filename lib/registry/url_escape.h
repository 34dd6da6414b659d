// herd::registry::query_escape: one query value (or key) escaped as Go's
// url.QueryEscape does: A-Z a-z 0-9 '-' '_' '.' '~' kept, ' ' as '+',
// every other byte as %XX (upper-case hex). Used for token-request
// parameters and the mirror `ns` parameter.
//
// Pure; any thread.
#pragma once

#include <string>
#include <string_view>

namespace herd::registry {

inline std::string query_escape(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out += c;
    } else if (c == ' ') {
      out += '+';
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    }
  }
  return out;
}

}  // namespace herd::registry
