// herd::printable: a string from outside (a client, an archive, a config)
// made safe to put into one log line or one error message.
//
// printable(s, max) returns `s` with
// - printable ASCII and valid UTF-8 kept as they are, except:
// - `\` as `\\`, newline as `\n`, carriage return as `\r`, tab as `\t`,
//   every other C0 control and DEL as `\xNN`;
// - C1 controls (U+0080..U+009F), the line and paragraph separators
//   (U+2028, U+2029) and the bidirectional overrides and isolates
//   (U+202A..U+202E, U+2066..U+2069) as `\uXXXX`: none of them can start
//   a forged line or reorder what a terminal shows;
// - every byte that is not part of valid UTF-8 (a stray continuation byte,
//   a truncated or overlong sequence, a surrogate, anything above
//   U+10FFFF) as `\xNN`.
// At most `max` bytes of that result are kept, cut at a character or escape
// boundary, and "…" is appended when anything was cut. So the result holds
// no control character and is at most max + 3 bytes long.
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace herd {

namespace log_text_detail {

// The length of the valid UTF-8 sequence at s[i] and its code point, or 0.
inline size_t utf8_sequence(std::string_view s, size_t i, uint32_t& cp) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char b0 = byte(i);
  size_t len = 0;
  uint32_t min = 0;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
    cp = b0 & 0x1Fu;
    min = 0x80;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    cp = b0 & 0x0Fu;
    min = 0x800;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    cp = b0 & 0x07u;
    min = 0x10000;
  } else {
    return 0;
  }
  if (s.size() - i < len) return 0;
  for (size_t k = 1; k < len; ++k) {
    const unsigned char b = byte(i + k);
    if ((b & 0xC0u) != 0x80u) return 0;
    cp = (cp << 6) | (b & 0x3Fu);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

inline bool escaped_code_point(uint32_t cp) {
  return (cp >= 0x80 && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 ||
         (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

inline std::string hex_escape(const char* prefix, uint32_t v, int digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = prefix;
  for (int d = digits - 1; d >= 0; --d) out += kHex[(v >> (4 * d)) & 0xFu];
  return out;
}

}  // namespace log_text_detail

inline std::string printable(std::string_view s, size_t max = 256) {
  using namespace log_text_detail;
  std::string out;
  out.reserve(s.size() < max ? s.size() : max);
  size_t i = 0;
  while (i < s.size()) {
    std::string piece;
    const unsigned char b = static_cast<unsigned char>(s[i]);
    size_t used = 1;
    if (b == '\\') {
      piece = "\\\\";
    } else if (b == '\n') {
      piece = "\\n";
    } else if (b == '\r') {
      piece = "\\r";
    } else if (b == '\t') {
      piece = "\\t";
    } else if (b < 0x20 || b == 0x7F) {
      piece = hex_escape("\\x", b, 2);
    } else if (b < 0x80) {
      piece.assign(1, static_cast<char>(b));
    } else {
      uint32_t cp = 0;
      size_t len = utf8_sequence(s, i, cp);
      if (len == 0) {
        piece = hex_escape("\\x", b, 2);
      } else {
        used = len;
        piece = escaped_code_point(cp) ? hex_escape("\\u", cp, 4) : std::string(s.substr(i, len));
      }
    }
    if (out.size() + piece.size() > max) {
      out += "\u2026";
      return out;
    }
    out += piece;
    i += used;
  }
  return out;
}

}  // namespace herd
