// Internal to lib/config: reading typed values out of a JSON document while
// collecting every problem as a ConfigError at its JSON pointer.
//
// The readers never throw and never stop at an error: a value of the wrong
// type is reported and read as "absent", so the caller keeps validating the
// rest of the document. Pure functions and short-lived objects on the
// caller's stack; no shared state.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace herd::config::internal {

// Objects keep their keys in document order, so errors and repeated
// entries (rlimits) come out in the order the user wrote them.
using Json = nlohmann::ordered_json;

// Collected errors, in the order found. At most kMaxErrors are kept; later
// ones are only counted, and take() ends the list with one error saying how
// many were left out. Callers whose message is costly to build (a
// did-you-mean search) may skip it when full().
class Errors {
 public:
  void add(std::string path, std::string message) {
    ++count_;
    if (full()) return;
    list_.push_back(ConfigError{std::move(path), std::move(message)});
  }
  // Every error added, kept or not.
  size_t count() const { return count_; }
  bool full() const { return list_.size() >= kMaxErrors; }
  std::vector<ConfigError> take() {
    if (count_ > list_.size()) {
      list_.push_back(ConfigError{"", "... and " + std::to_string(count_ - list_.size()) +
                                          " more errors (only the first " +
                                          std::to_string(kMaxErrors) + " are listed)"});
    }
    count_ = 0;
    return std::move(list_);
  }

 private:
  std::vector<ConfigError> list_;
  size_t count_ = 0;
};

// `base` + "/" + `key` with '~' and '/' escaped as RFC 6901 says.
std::string pointer_append(std::string_view base, std::string_view key);
// `base` + "/" + the decimal index.
std::string pointer_append(std::string_view base, size_t index);

// "a string", "an object", "null", "a number", ...: for "got ..." messages.
std::string type_phrase(const Json& value);

// `text` quoted as a JSON string, shortened to ~60 chars for messages.
std::string quote(std::string_view text);

// Optimal string alignment distance (insert, delete, substitute, swap two
// neighbours: each costs 1).
size_t edit_distance(std::string_view a, std::string_view b);

// ` (did you mean "x"?)` for the candidate closest to `given` within edit
// distance 2 (first in list order on ties), or "".
std::string did_you_mean(std::string_view given, const std::vector<std::string_view>& candidates);

// Typed reads of one value at `path`. Each reports a type or range error
// and returns nullopt when the value does not fit.
std::optional<std::string> read_string(const Json& value, const std::string& path, Errors& errors);
std::optional<bool> read_bool(const Json& value, const std::string& path, Errors& errors);
// An integer in [min, max]; floats such as 80.0 are rejected.
std::optional<int64_t> read_int(const Json& value, const std::string& path, int64_t min,
                                int64_t max, Errors& errors);
// Any JSON number.
std::optional<double> read_number(const Json& value, const std::string& path, Errors& errors);
// A duration string (see duration.h), at least `min`.
std::optional<Duration> read_duration(const Json& value, const std::string& path, Duration min,
                                      Errors& errors);

// A JSON object read key by key. The constructor reports "expected an
// object" when `value` is not one, and every key not in `allowed` as
// unknown (with a did-you-mean hint among `allowed`).
class ObjectReader {
 public:
  ObjectReader(const Json& value, std::string path, std::vector<std::string_view> allowed,
               Errors& errors);

  bool is_object() const { return object_ != nullptr; }
  const std::string& path() const { return path_; }
  std::string path_of(std::string_view key) const { return pointer_append(path_, key); }
  Errors& errors() { return errors_; }

  // The value at `key`, or nullptr when absent (or this is not an object).
  const Json* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }

  // Reports `message` at path_of(key).
  void error(std::string_view key, std::string message);
  // Reports "required key is missing" at path_of(key) when absent and this
  // is an object; returns whether the key is present.
  bool require(std::string_view key);

  // find() + the matching read_*(); nullopt when absent or invalid.
  std::optional<std::string> get_string(std::string_view key);
  std::optional<bool> get_bool(std::string_view key);
  std::optional<int64_t> get_int(std::string_view key, int64_t min, int64_t max);
  std::optional<double> get_number(std::string_view key);
  std::optional<Duration> get_duration(std::string_view key, Duration min = Duration::zero());

 private:
  const Json* object_ = nullptr;
  std::string path_;
  Errors& errors_;
};

}  // namespace herd::config::internal
