// Durations on a command line (herdctl --timeout, herdd --connect-timeout):
// the config's syntax (duration.h: "10s", "500ms", "1m30s") or a bare
// number, which is seconds ("30", "1.5"), as the options always took.
//
// Contract: parse_cli_duration returns the duration, or InvalidArgument
// whose message quotes the text (printable, at most 60 bytes) and says what
// is wrong, e.g. `invalid duration "10x": unknown unit "x" (use ms, s, m or
// h)`. A bare number is read as <number>s by parse_duration, so the same
// bounds apply (at most kMaxDuration, whole milliseconds). Zero is
// accepted here; an option that needs a positive value says so itself.
//
// Thread-safety: a pure function.
#pragma once

#include <string_view>

#include "common/status.h"
#include "config/duration.h"

namespace herd::config {

Result<Duration> parse_cli_duration(std::string_view text);

}  // namespace herd::config
