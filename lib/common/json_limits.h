// herd::json_nesting_within: a pre-check of untrusted JSON text before any
// parser builds a tree from it. nlohmann::json parses iteratively, but
// copying, comparing or destroying a deep tree recurses once per level, so
// 200 000 nested arrays overflow the stack. Every JSON text herd reads from
// outside (the config file, archive blobs, registry answers) passes this
// first: one linear scan, no allocation.
//
// Pure; any thread.
#pragma once

#include <cstddef>
#include <string_view>

namespace herd {

// The deepest nesting of arrays and objects herd accepts anywhere.
inline constexpr std::size_t kMaxJsonDepth = 64;

// True when no array/object in `text` is nested deeper than `max_depth`
// (a top-level object is depth 1). Brackets inside strings (with escapes)
// do not count. Malformed text may pass: the parser rejects it next.
inline bool json_nesting_within(std::string_view text, std::size_t max_depth = kMaxJsonDepth) {
  std::size_t depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // skip the escaped character
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        if (++depth > max_depth) return false;
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;
        break;
      default:
        break;
    }
  }
  return true;
}

}  // namespace herd
