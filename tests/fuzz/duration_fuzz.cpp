// libFuzzer target: parse_duration and format_duration on any bytes. Traps
// when a parsed duration is outside [0, kMaxDuration], does not survive
// format_duration -> parse_duration, or cannot be added to
// steady_clock::now() without overflow; an error must name the input.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "config/duration.h"

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using herd::config::Duration;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const herd::Result<Duration> d = herd::config::parse_duration(text);
  if (!d.ok()) {
    check(d.status().code() == herd::Code::kInvalidArgument);
    check(d.status().message().starts_with("invalid duration \""));
    check(d.status().message().size() < 400);  // the input is cut short in it
  } else {
    check(*d >= Duration::zero() && *d <= herd::config::kMaxDuration);
    const std::string canonical = herd::config::format_duration(*d);
    const herd::Result<Duration> back = herd::config::parse_duration(canonical);
    check(back.ok() && *back == *d);
    // A deadline from it: no signed overflow (UBSan would trap) and later
    // than now.
    const auto now = std::chrono::steady_clock::now();
    check(now + *d >= now);
  }
  // format_duration takes any count, negative ones and the extremes too.
  if (size >= sizeof(int64_t)) {
    int64_t count = 0;
    std::memcpy(&count, data, sizeof count);
    check(!herd::config::format_duration(Duration(count)).empty());
  }
  return 0;
}
