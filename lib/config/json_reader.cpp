#include "config/json_reader.h"

#include <algorithm>
#include <limits>

namespace herd::config::internal {

std::string pointer_append(std::string_view base, std::string_view key) {
  std::string out(base);
  out.reserve(out.size() + key.size() + 1);
  out += '/';
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

std::string pointer_append(std::string_view base, size_t index) {
  std::string out(base);
  out += '/';
  out += std::to_string(index);
  return out;
}

std::string type_phrase(const Json& value) {
  switch (value.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::boolean:
      return "a boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float:
      return "a number";
    case Json::value_t::string:
      return "a string";
    case Json::value_t::array:
      return "an array";
    case Json::value_t::object:
      return "an object";
    default:
      return "an unsupported value";
  }
}

std::string quote(std::string_view text) {
  constexpr size_t kMax = 60;
  const bool cut = text.size() > kMax;
  std::string s(cut ? text.substr(0, kMax) : text);
  // dump() escapes quotes and control characters; replace invalid UTF-8
  // rather than throwing.
  std::string out = Json(s).dump(-1, ' ', false, Json::error_handler_t::replace);
  if (cut) out.insert(out.size() - 1, "...");
  return out;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  const size_t n = a.size();
  const size_t m = b.size();
  // d[i][j] = distance between a[0..i) and b[0..j).
  std::vector<std::vector<size_t>> d(n + 1, std::vector<size_t>(m + 1, 0));
  for (size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (size_t i = 1; i <= n; ++i) {
    for (size_t j = 1; j <= m; ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[n][m];
}

std::string did_you_mean(std::string_view given, const std::vector<std::string_view>& candidates) {
  constexpr size_t kMaxDistance = 2;
  std::string_view best;
  size_t best_distance = kMaxDistance + 1;
  for (std::string_view c : candidates) {
    const size_t longer = std::max(given.size(), c.size());
    if (longer - std::min(given.size(), c.size()) > kMaxDistance) continue;  // cheap bound
    const size_t dist = edit_distance(given, c);
    // A distance as large as the candidate itself means "anything".
    if (dist < best_distance && dist < c.size()) {
      best = c;
      best_distance = dist;
    }
  }
  if (best_distance > kMaxDistance) return "";
  return " (did you mean \"" + std::string(best) + "\"?)";
}

namespace {

std::string expected(std::string_view what, const Json& value) {
  return "expected " + std::string(what) + ", got " + type_phrase(value);
}

std::string range_message(int64_t min, int64_t max, const std::string& got) {
  if (max == std::numeric_limits<int64_t>::max()) {
    return "must be at least " + std::to_string(min) + ", got " + got;
  }
  return "must be between " + std::to_string(min) + " and " + std::to_string(max) + ", got " + got;
}

}  // namespace

std::optional<std::string> read_string(const Json& value, const std::string& path, Errors& errors) {
  if (!value.is_string()) {
    errors.add(path, expected("a string", value));
    return std::nullopt;
  }
  return value.get_ref<const std::string&>();
}

std::optional<bool> read_bool(const Json& value, const std::string& path, Errors& errors) {
  if (!value.is_boolean()) {
    errors.add(path, expected("a boolean (true or false)", value));
    return std::nullopt;
  }
  return value.get<bool>();
}

std::optional<int64_t> read_int(const Json& value, const std::string& path, int64_t min,
                                int64_t max, Errors& errors) {
  if (value.is_number_unsigned()) {
    const uint64_t u = value.get<uint64_t>();
    if (u > static_cast<uint64_t>(max) || (min > 0 && u < static_cast<uint64_t>(min))) {
      errors.add(path, range_message(min, max, std::to_string(u)));
      return std::nullopt;
    }
    return static_cast<int64_t>(u);
  }
  if (value.is_number_integer()) {
    const int64_t i = value.get<int64_t>();
    if (i < min || i > max) {
      errors.add(path, range_message(min, max, std::to_string(i)));
      return std::nullopt;
    }
    return i;
  }
  if (value.is_number_float()) {
    errors.add(path, "expected an integer, got " + value.dump());
    return std::nullopt;
  }
  errors.add(path, expected("an integer", value));
  return std::nullopt;
}

std::optional<double> read_number(const Json& value, const std::string& path, Errors& errors) {
  if (!value.is_number()) {
    errors.add(path, expected("a number", value));
    return std::nullopt;
  }
  return value.get<double>();
}

std::optional<Duration> read_duration(const Json& value, const std::string& path, Duration min,
                                      Errors& errors) {
  if (!value.is_string()) {
    errors.add(path, expected("a duration string such as \"30s\"", value));
    return std::nullopt;
  }
  Result<Duration> d = parse_duration(value.get_ref<const std::string&>());
  if (!d.ok()) {
    errors.add(path, d.status().message());
    return std::nullopt;
  }
  if (*d < min) {
    const std::string bound =
        min == Duration(1) ? std::string("greater than 0") : "at least " + format_duration(min);
    errors.add(path, "must be " + bound + ", got " + quote(value.get_ref<const std::string&>()));
    return std::nullopt;
  }
  return *d;
}

ObjectReader::ObjectReader(const Json& value, std::string path,
                           std::vector<std::string_view> allowed, Errors& errors)
    : path_(std::move(path)), errors_(errors) {
  if (!value.is_object()) {
    errors_.add(path_, expected("an object", value));
    return;
  }
  object_ = &value;
  for (const auto& item : value.items()) {
    const std::string& key = item.key();
    if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
    errors_.add(path_of(key), "unknown key " + quote(key) + did_you_mean(key, allowed));
  }
}

const Json* ObjectReader::find(std::string_view key) const {
  if (object_ == nullptr) return nullptr;
  auto it = object_->find(key);
  if (it == object_->end()) return nullptr;
  return &*it;
}

void ObjectReader::error(std::string_view key, std::string message) {
  errors_.add(path_of(key), std::move(message));
}

bool ObjectReader::require(std::string_view key) {
  if (object_ == nullptr) return false;
  if (find(key) != nullptr) return true;
  error(key, "required key is missing");
  return false;
}

std::optional<std::string> ObjectReader::get_string(std::string_view key) {
  const Json* v = find(key);
  if (v == nullptr) return std::nullopt;
  return read_string(*v, path_of(key), errors_);
}

std::optional<bool> ObjectReader::get_bool(std::string_view key) {
  const Json* v = find(key);
  if (v == nullptr) return std::nullopt;
  return read_bool(*v, path_of(key), errors_);
}

std::optional<int64_t> ObjectReader::get_int(std::string_view key, int64_t min, int64_t max) {
  const Json* v = find(key);
  if (v == nullptr) return std::nullopt;
  return read_int(*v, path_of(key), min, max, errors_);
}

std::optional<double> ObjectReader::get_number(std::string_view key) {
  const Json* v = find(key);
  if (v == nullptr) return std::nullopt;
  return read_number(*v, path_of(key), errors_);
}

std::optional<Duration> ObjectReader::get_duration(std::string_view key, Duration min) {
  const Json* v = find(key);
  if (v == nullptr) return std::nullopt;
  return read_duration(*v, path_of(key), min, errors_);
}

}  // namespace herd::config::internal
