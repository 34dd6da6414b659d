#include "config/checks.h"

#include <vector>

#include "config/json_reader.h"
#include "registry/reference.h"

namespace herd::config::internal {
namespace {

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool is_alnum(char c) { return is_lower_alnum(c) || (c >= 'A' && c <= 'Z'); }
bool is_separator(char c) { return c == '.' || c == '_' || c == '-'; }
bool is_control(char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }
bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

// [A-Za-z0-9]+ runs joined by single separators; false on empty input.
// `alnum` says which characters make up a run.
bool is_separated_runs(std::string_view s, bool (*alnum)(char)) {
  if (s.empty()) return false;
  bool after_separator = true;  // at the start a separator is not allowed either
  for (char c : s) {
    if (alnum(c)) {
      after_separator = false;
    } else if (is_separator(c)) {
      if (after_separator) return false;
      after_separator = true;
    } else {
      return false;
    }
  }
  return !after_separator;
}

bool parse_id(std::string_view text, uint32_t* out) {
  constexpr uint64_t kMaxId = 4294967294;  // (uid_t)-1 means "no change"
  if (text.empty() || text.size() > 10) return false;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > kMaxId) return false;
  *out = static_cast<uint32_t>(v);
  return true;
}

}  // namespace

Problem check_component_name(std::string_view name) {
  if (name.empty()) return "must not be empty";
  bool chars_ok = is_lower_alnum(name.front()) && name.size() <= 63;
  for (char c : name) chars_ok = chars_ok && (is_lower_alnum(c) || is_separator(c));
  if (!chars_ok) {
    return "must match ^[a-z0-9][a-z0-9_.-]{0,62}$ (it becomes the containerd container id), got " +
           quote(name);
  }
  if (!is_separated_runs(name, is_lower_alnum)) {
    return "must not have two of '.', '_', '-' in a row or one at the end (containerd id rule), "
           "got " +
           quote(name);
  }
  return std::nullopt;
}

Problem check_namespace(std::string_view ns) {
  if (ns.empty()) return "must not be empty";
  if (ns.size() > 76) return "must be at most 76 characters, got " + std::to_string(ns.size());
  if (!is_separated_runs(ns, is_alnum)) {
    return "must be letters and digits joined by single '.', '_' or '-' (containerd namespace "
           "rule), got " +
           quote(ns);
  }
  return std::nullopt;
}

Result<std::string> normalize_absolute_path(std::string_view path) {
  if (path.empty()) return Status::InvalidArgument("must not be empty");
  if (path.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument("must not contain a NUL byte");
  }
  if (path.front() != '/') {
    return Status::InvalidArgument("must be an absolute path, got " + quote(path));
  }
  std::string out;
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    if (i == path.size()) break;
    const size_t end = std::min(path.find('/', i), path.size());
    const std::string_view segment = path.substr(i, end - i);
    if (segment == "." || segment == "..") {
      return Status::InvalidArgument("must not contain \".\" or \"..\" segments, got " +
                                     quote(path));
    }
    out += '/';
    out += segment;
    i = end;
  }
  if (out.empty()) out = "/";
  return out;
}

Problem check_mount_target(std::string_view target) {
  if (target == "/") return std::string("must not be \"/\"");
  for (std::string_view dir : {"/proc", "/sys", "/dev"}) {
    if (target == dir || (target.starts_with(dir) && target[dir.size()] == '/')) {
      return "must not be " + std::string(dir) + " or below it (kernel file systems), got " +
             quote(target);
    }
  }
  return std::nullopt;
}

Problem check_data_name(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 255 && name != "." && name != "..";
  for (char c : name) ok = ok && (is_alnum(c) || is_separator(c));
  if (!ok) {
    return "must be a simple directory name ([A-Za-z0-9_.-], not \".\" or \"..\"), got " +
           quote(name);
  }
  return std::nullopt;
}

Result<uint32_t> parse_mode(std::string_view text) {
  bool ok = text.size() == 3 || text.size() == 4;
  uint32_t mode = 0;
  for (char c : text) {
    ok = ok && c >= '0' && c <= '7';
    mode = mode * 8 + static_cast<uint32_t>(c - '0');
  }
  if (!ok) {
    return Status::InvalidArgument("must be an octal mode of 3 or 4 digits such as \"0755\", got " +
                                   quote(text));
  }
  return mode;
}

Result<User> parse_user(std::string_view text) {
  if (text == "root") return User{0, 0};
  User user;
  const size_t colon = text.find(':');
  uint32_t gid = 0;
  bool ok = parse_id(text.substr(0, colon), &user.uid);
  if (ok && colon != std::string_view::npos) {
    ok = parse_id(text.substr(colon + 1), &gid);
    user.gid = gid;
  }
  if (!ok) {
    return Status::InvalidArgument(
        "must be \"root\", \"<uid>\" or \"<uid>:<gid>\" with numeric ids up to 4294967294, got " +
        quote(text));
  }
  return user;
}

Problem check_env_name(std::string_view name) {
  bool ok = !name.empty() && !(name.front() >= '0' && name.front() <= '9');
  for (char c : name) ok = ok && (is_alnum(c) || c == '_');
  if (!ok) {
    return "invalid environment variable name " + quote(name) +
           " (must match [A-Za-z_][A-Za-z0-9_]*)";
  }
  return std::nullopt;
}

Problem check_hostname(std::string_view name) {
  const std::string why =
      "must be a host name (letters, digits and '-' in dot-separated labels, "
      "at most 64 characters), got " +
      quote(name);
  if (name.empty() || name.size() > 64) return why;
  size_t start = 0;
  while (start <= name.size()) {
    const size_t end = std::min(name.find('.', start), name.size());
    const std::string_view label = name.substr(start, end - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return why;
    }
    for (char c : label) {
      if (!is_alnum(c) && c != '-') return why;
    }
    start = end + 1;
  }
  return std::nullopt;
}

Problem check_shim_group(std::string_view group) {
  bool ok = !group.empty() && group.size() <= 64;
  for (char c : group) ok = ok && (is_alnum(c) || c == '_' || c == '.' || c == '-');
  if (ok) return std::nullopt;
  return "must be 1 to 64 of [A-Za-z0-9_.-], got " + quote(group);
}

Problem check_image(std::string_view image) {
  if (image.empty()) return std::string("must not be empty");
  for (char c : image) {
    if (is_space(c) || is_control(c)) {
      return "must not contain whitespace or control characters, got " + quote(image);
    }
  }
  // What a pull and the image record will use: docker's grammar.
  auto ref = registry::parse_reference(image);
  if (!ref.ok()) return ref.status().message();
  return std::nullopt;
}

Problem check_probe_host(std::string_view host) {
  if (host.empty()) return std::string("must not be empty");
  for (char c : host) {
    if (is_space(c) || is_control(c) || c == '/') {
      return "must be a host name or IP address, got " + quote(host);
    }
  }
  return std::nullopt;
}

Problem check_http_path(std::string_view path) {
  if (path.empty() || path.front() != '/') return "must start with '/', got " + quote(path);
  for (char c : path) {
    if (is_space(c) || is_control(c)) {
      return "must not contain whitespace or control characters, got " + quote(path);
    }
  }
  return std::nullopt;
}

Problem check_group(std::string_view group) {
  uint32_t gid = 0;
  if (parse_id(group, &gid)) return std::nullopt;
  bool ok = !group.empty() && group.size() <= 32 && group.front() != '-';
  for (char c : group) ok = ok && (is_alnum(c) || is_separator(c));
  if (!ok) return "must be a group name or numeric gid, got " + quote(group);
  return std::nullopt;
}

Problem check_no_nul(std::string_view text) {
  if (text.find('\0') != std::string_view::npos) return std::string("must not contain a NUL byte");
  return std::nullopt;
}

Problem check_label(std::string_view key, std::string_view value) {
  constexpr std::string_view kReserved = "io.herd.";
  constexpr size_t kMaxSize = 4096;  // containerd's limit for key + value
  if (key.empty()) return std::string("label keys must not be empty");
  if (key.starts_with(kReserved)) {
    return "label keys starting with \"io.herd.\" are reserved for herd, got " + quote(key);
  }
  if (key.size() + value.size() > kMaxSize) {
    return "label key and value together must be at most 4096 bytes, got " +
           std::to_string(key.size() + value.size());
  }
  return std::nullopt;
}

}  // namespace herd::config::internal
