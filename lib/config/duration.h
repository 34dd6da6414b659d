// Durations as written in herd's config: "500ms", "2s", "5m", "1h",
// "1m30s", "1.5s", "0".
//
// Contract: parse_duration accepts one or more <number><unit> segments with
// units h, m, s, ms, each at most once and in decreasing order ("1h30m",
// "1m0.5s"); a number is decimal digits with an optional fraction ("1.5s").
// The bare string "0" is the zero duration. The value is held in whole
// milliseconds: a fraction finer than 1 ms ("1.0001s") is an error, never
// silently rounded. Negative values, whitespace, missing or unknown units
// and values longer than kMaxDuration (10 years) are errors whose message
// quotes the input and says what is wrong. Digits are accumulated with
// overflow checks, so no text (a million digits, "1e400s") can wrap around.
//
// Deadlines: every parsed Duration is in [0, kMaxDuration], so
// `steady_clock::now() + d` (and the sum of a few of them) cannot overflow
// (steady_clock counts int64 nanoseconds from boot: about 292 years).
//
// format_duration is the inverse: the canonical form with no zero parts
// ("1m30s", "1h0.5s", "500ms", "0s"); parse_duration(format_duration(d)) == d
// for every d >= 0.
//
// Thread-safety: pure functions, no shared state.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/status.h"

namespace herd::config {

using Duration = std::chrono::milliseconds;

// The longest duration herd accepts: 10 years of 365 days, "87600h".
inline constexpr Duration kMaxDuration = std::chrono::hours(10 * 365 * 24);
static_assert(std::chrono::duration_cast<std::chrono::steady_clock::duration>(kMaxDuration) <
                  std::chrono::steady_clock::duration::max() / 16,
              "now() + a few maximal durations must fit in steady_clock");

// The duration written in `text`, or InvalidArgument with a message like
// `invalid duration "30": missing unit (use ms, s, m or h)`.
Result<Duration> parse_duration(std::string_view text);

// The canonical text of `d` (see above); negative values get a leading '-'.
std::string format_duration(Duration d);

}  // namespace herd::config
