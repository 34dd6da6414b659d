// herd::registry::internal::parse_toml_subset: the strict, bounded TOML
// subset hosts.toml needs (see hosts.h for what is supported and refused),
// parsed into a small tree. Internal to lib/registry.
//
// Pure; any thread.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace herd::registry::internal {

inline constexpr std::size_t kMaxTomlDepth = 4;    // arrays / inline tables in a value
inline constexpr std::size_t kMaxTomlKeyPath = 8;  // table + key parts of one key
inline constexpr std::size_t kMaxTomlValues = 4096;

struct TomlValue {
  enum class Kind { kString, kBool, kWord, kArray, kTable };
  Kind kind = Kind::kTable;
  std::string text;  // kString: the value; kWord: the raw scalar (number, date)
  bool boolean = false;
  std::vector<std::string> keys;  // kTable: keys in definition order
  std::vector<TomlValue> items;   // kArray: elements; kTable: values of `keys`
  int line = 0;                   // where it was defined (1-based)
  bool header_defined = false;    // kTable: named by a [header] already
  bool is_inline = false;         // kTable: an inline table, closed

  const TomlValue* find(std::string_view key) const {
    for (std::size_t i = 0; i < keys.size(); ++i)
      if (keys[i] == key) return &items[i];
    return nullptr;
  }
};

// `what` names the text in messages: `<what> line 3: ...`.
Result<TomlValue> parse_toml_subset(std::string_view text, const std::string& what,
                                    std::size_t max_line = 4096);

const char* toml_kind_name(TomlValue::Kind kind);

}  // namespace herd::registry::internal
