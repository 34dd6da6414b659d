#include "config/duration.h"

#include <cstddef>
#include <cstdint>
#include <limits>

namespace herd::config {
namespace {

struct Unit {
  std::string_view name;
  int64_t millis;
};

// In decreasing order of size; a unit is read as a whole run of letters.
constexpr Unit kUnits[] = {{"h", 3'600'000}, {"m", 60'000}, {"s", 1'000}, {"ms", 1}};

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// `text` for a message: at most 60 bytes of it ("..." after a cut), with
// '"', '\\' and every byte outside printable ASCII escaped (\xNN), so a
// hostile value can neither flood nor forge a log line.
std::string printable(std::string_view text) {
  constexpr std::size_t kMax = 60;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < text.size() && i < kMax; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (text.size() > kMax) out += "...";
  return out;
}

Status invalid(std::string_view text, std::string_view why) {
  std::string m = "invalid duration \"";
  m += printable(text);
  m += "\": ";
  m += why;
  return Status::InvalidArgument(std::move(m));
}

// a * b + c without overflow, or false.
bool mul_add(int64_t a, int64_t b, int64_t c, int64_t* out) {
  int64_t product = 0;
  if (__builtin_mul_overflow(a, b, &product)) return false;
  return !__builtin_add_overflow(product, c, out);
}

Status too_long(std::string_view text) {
  return invalid(text, "too large: longer than the maximum of " + format_duration(kMaxDuration) +
                           " (10 years)");
}

}  // namespace

Result<Duration> parse_duration(std::string_view text) {
  if (text.empty()) return invalid(text, "empty (write e.g. \"30s\" or \"0\")");
  if (text == "0") return Duration::zero();
  if (text.front() == '-') return invalid(text, "must not be negative");

  constexpr std::string_view kUseUnits = " (use ms, s, m or h)";
  int64_t total = 0;
  int last_unit = -1;  // index into kUnits of the previous segment
  size_t i = 0;
  while (i < text.size()) {
    // Number: digits, optionally '.' and more digits.
    const size_t int_start = i;
    while (i < text.size() && is_digit(text[i])) ++i;
    const std::string_view int_part = text.substr(int_start, i - int_start);
    std::string_view frac_part;
    bool has_dot = false;
    if (i < text.size() && text[i] == '.') {
      has_dot = true;
      const size_t frac_start = ++i;
      while (i < text.size() && is_digit(text[i])) ++i;
      frac_part = text.substr(frac_start, i - frac_start);
    }
    if (int_part.empty() && !has_dot) {
      if (i < text.size() && is_letter(text[i])) {
        return invalid(text, "a number must come before each unit");
      }
      std::string why = "unexpected character '";
      why += printable(text.substr(i, 1));
      why += "'";
      return invalid(text, why);
    }
    if (int_part.empty() || (has_dot && frac_part.empty())) {
      return invalid(text, "malformed number (write e.g. \"1.5s\")");
    }

    // Unit: a run of letters.
    const size_t unit_start = i;
    while (i < text.size() && is_letter(text[i])) ++i;
    const std::string_view unit_name = text.substr(unit_start, i - unit_start);
    if (unit_name.empty()) {
      if (i < text.size()) {
        std::string why = "unexpected character '";
        why += printable(text.substr(i, 1));
        why += "'";
        return invalid(text, why);
      }
      return invalid(text, std::string("missing unit") + std::string(kUseUnits));
    }
    int unit = -1;
    for (int u = 0; u < static_cast<int>(std::size(kUnits)); ++u) {
      if (kUnits[u].name == unit_name) unit = u;
    }
    if (unit < 0) {
      return invalid(text,
                     "unknown unit \"" + printable(unit_name) + "\"" + std::string(kUseUnits));
    }
    if (unit <= last_unit) {
      return invalid(text, "units must be in decreasing order, each at most once (e.g. \"1m30s\")");
    }
    last_unit = unit;

    // Value in milliseconds: int_part * unit + frac_part * unit / 10^len.
    const int64_t unit_ms = kUnits[unit].millis;
    int64_t whole = 0;
    for (char c : int_part) {
      if (!mul_add(whole, 10, c - '0', &whole)) return too_long(text);
    }
    int64_t segment = 0;
    if (!mul_add(whole, unit_ms, 0, &segment)) return too_long(text);
    // The fraction contributes frac * unit_ms / 10^digits, which must be a
    // whole number of milliseconds. unit_ms <= 3.6e6, so trailing zeros
    // aside at most 7 fraction digits can matter; strip zeros first.
    std::string_view frac = frac_part;
    while (!frac.empty() && frac.back() == '0') frac.remove_suffix(1);
    if (!frac.empty()) {
      if (frac.size() > 7) return invalid(text, "finer than the 1ms resolution");
      int64_t numerator = 0;
      int64_t denominator = 1;
      for (char c : frac) {
        numerator = numerator * 10 + (c - '0');
        denominator *= 10;
      }
      numerator *= unit_ms;
      if (numerator % denominator != 0) return invalid(text, "finer than the 1ms resolution");
      if (__builtin_add_overflow(segment, numerator / denominator, &segment)) {
        return too_long(text);
      }
    }
    if (__builtin_add_overflow(total, segment, &total)) return too_long(text);
    if (total > kMaxDuration.count()) return too_long(text);
  }
  return Duration(total);
}

std::string format_duration(Duration d) {
  int64_t count = d.count();
  if (count == 0) return "0s";
  std::string out;
  uint64_t ms = 0;
  if (count < 0) {
    out = "-";
    ms = static_cast<uint64_t>(0) - static_cast<uint64_t>(count);
  } else {
    ms = static_cast<uint64_t>(count);
  }
  const uint64_t hours = ms / 3'600'000;
  const uint64_t minutes = ms / 60'000 % 60;
  const uint64_t seconds = ms / 1'000 % 60;
  const uint64_t millis = ms % 1'000;
  if (hours == 0 && minutes == 0 && seconds == 0) {
    return out + std::to_string(millis) + "ms";
  }
  if (hours != 0) out += std::to_string(hours) + "h";
  if (minutes != 0) out += std::to_string(minutes) + "m";
  if (seconds != 0 || millis != 0) {
    out += std::to_string(seconds);
    if (millis != 0) {
      std::string frac = std::to_string(millis + 1000).substr(1);  // zero-padded 3 digits
      while (frac.back() == '0') frac.pop_back();
      out += "." + frac;
    }
    out += "s";
  }
  return out;
}

}  // namespace herd::config
