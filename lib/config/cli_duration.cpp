#include "config/cli_duration.h"

#include <string>

namespace herd::config {

namespace {

// Digits with at most one '.', not empty, not only a '.'.
bool bare_number(std::string_view text) {
  bool digit = false;
  bool dot = false;
  for (char c : text) {
    if (c >= '0' && c <= '9') {
      digit = true;
    } else if (c == '.' && !dot) {
      dot = true;
    } else {
      return false;
    }
  }
  return digit;
}

}  // namespace

Result<Duration> parse_cli_duration(std::string_view text) {
  if (text.size() > 64) {
    return Status::InvalidArgument("invalid duration: " + std::to_string(text.size()) +
                                   " bytes is too long");
  }
  if (!bare_number(text)) return parse_duration(text);
  std::string with_unit(text);
  with_unit += 's';
  Result<Duration> d = parse_duration(with_unit);
  if (!d.ok()) {
    return Status::InvalidArgument("invalid duration \"" + std::string(text) +
                                   "\": a bare number is seconds and " + std::string(text) + " s " +
                                   (with_unit.find('.') != std::string::npos
                                        ? "is finer than a millisecond or too long"
                                        : "is too long") +
                                   " (at most " + format_duration(kMaxDuration) + ")");
  }
  return d;
}

}  // namespace herd::config
