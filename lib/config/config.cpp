// The config schema's top level: parse_config() and load_config(), the
// JSON syntax pass that runs before any tree is built, and the keys of the
// document itself (containerd, paths, stop_budget, the components list).
// One component is read by component_schema.cpp; see json_reader.h for the
// reading toolkit, checks.h for single-value rules, dependencies.h for
// depends_on.
#include "config/config.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/file_kind.h"
#include "common/json_limits.h"
#include "config/checks.h"
#include "config/dependencies.h"
#include "config/json_reader.h"
#include "config/schema.h"

namespace herd::config {

using internal::DependencyNode;
using internal::Errors;
using internal::get_array;
using internal::get_path;
using internal::Json;
using internal::ObjectReader;
using internal::pointer_append;
using internal::quote;
using internal::read_component;
using internal::report;

namespace {

// Closes its descriptor.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

constexpr size_t kMaxUnixSocketPath = 107;  // sizeof(sun_path) - 1

// --- containerd ---------------------------------------------------------

ContainerdConfig read_containerd(const Json& value, const std::string& path, Errors& errors) {
  ContainerdConfig out;
  ObjectReader r(value, path, {"address", "namespace"}, errors);
  if (std::optional<std::string> address = r.get_string("address")) {
    std::string_view a = *address;
    if (a.starts_with("unix://")) a.remove_prefix(7);
    Result<std::string> normalized = internal::normalize_absolute_path(a);
    if (normalized.ok()) {
      out.address = std::move(normalized).value();
    } else {
      r.error("address", normalized.status().message() + " (containerd's unix socket)");
    }
  }
  if (std::optional<std::string> ns = r.get_string("namespace")) {
    report(errors, r.path_of("namespace"), internal::check_namespace(*ns));
    out.namespace_name = *ns;
  }
  return out;
}

RegistryConfig read_registry(const Json& value, const std::string& path, Errors& errors) {
  RegistryConfig out;
  ObjectReader r(value, path, {"auth_file", "hosts_dir"}, errors);
  if (r.has("auth_file")) out.auth_file = get_path(r, "auth_file");
  if (r.has("hosts_dir")) {
    if (auto dir = get_path(r, "hosts_dir")) out.hosts_dir = *dir;
  }
  return out;
}

MetricsConfig read_metrics(const Json& value, const std::string& path, Errors& errors) {
  MetricsConfig out;
  ObjectReader r(value, path, {"listen"}, errors);
  if (!r.is_object()) return out;
  if (!r.require("listen")) return out;
  if (std::optional<std::string> listen = r.get_string("listen")) {
    Status s = check_metrics_listen(*listen);
    if (s.ok()) {
      out.listen = *listen;
    } else {
      r.error("listen", s.message());
    }
  }
  return out;
}

OutputConfig read_output(const Json& value, const std::string& path, Errors& errors) {
  OutputConfig out;
  ObjectReader r(value, path, {"max_file_bytes", "max_files"}, errors);
  if (!r.is_object()) return out;
  if (auto b = r.get_int("max_file_bytes", 4096, int64_t{1} << 40)) {
    out.max_file_bytes = static_cast<uint64_t>(*b);
  }
  if (auto n = r.get_int("max_files", 1, 100)) out.max_files = static_cast<uint32_t>(*n);
  return out;
}

// --- top level ---------------------------------------------------------------

Config read_config(const Json& doc, Errors& errors) {
  Config config;
  ObjectReader r(doc, "",
                 {"containerd", "registry", "data_path", "control_socket", "control_group",
                  "stop_budget", "shim_group", "metrics", "output", "reconcile_interval",
                  "max_concurrent_starts", "components"},
                 errors);
  if (!r.is_object()) return config;
  if (const Json* containerd = r.find("containerd")) {
    config.containerd = read_containerd(*containerd, r.path_of("containerd"), errors);
  }
  if (const Json* registry = r.find("registry")) {
    config.registry = read_registry(*registry, r.path_of("registry"), errors);
  }
  if (const Json* metrics = r.find("metrics")) {
    config.metrics = read_metrics(*metrics, r.path_of("metrics"), errors);
  }
  if (const Json* output = r.find("output")) {
    config.output = read_output(*output, r.path_of("output"), errors);
  }
  if (auto path = get_path(r, "data_path")) config.data_path = *path;
  if (auto path = get_path(r, "control_socket")) {
    if (path->size() > kMaxUnixSocketPath) {
      r.error("control_socket",
              "must be at most 107 bytes (unix socket limit), got " + std::to_string(path->size()));
    } else {
      config.control_socket = *path;
    }
  }
  if (auto group = r.get_string("control_group")) {
    report(errors, r.path_of("control_group"), internal::check_group(*group));
    config.control_group = *group;
  }
  if (auto d = r.get_duration("stop_budget", Duration(1))) config.stop_budget = *d;
  if (auto group = r.get_string("shim_group")) {
    report(errors, r.path_of("shim_group"), internal::check_shim_group(*group));
    config.shim_group = *group;
  }
  if (auto d = r.get_duration("reconcile_interval", std::chrono::seconds(1))) {
    config.reconcile_interval = *d;
  }
  if (auto n = r.get_int("max_concurrent_starts", 1, 1024)) {
    config.max_concurrent_starts = static_cast<uint32_t>(*n);
  }

  if (!r.require("components")) return config;
  const Json* components = get_array(r, "components");
  if (components == nullptr) return config;
  if (components->size() > kMaxComponents) {
    r.error("components", "has " + std::to_string(components->size()) +
                              " entries, more than the maximum of " +
                              std::to_string(kMaxComponents));
    return config;
  }
  std::vector<DependencyNode> nodes(components->size());
  std::map<std::string, size_t> first_index;
  for (size_t i = 0; i < components->size(); ++i) {
    const std::string path = pointer_append("/components", i);
    Component c = read_component((*components)[i], path, errors, nodes[i]);
    if (!nodes[i].name.empty()) {
      auto [it, inserted] = first_index.emplace(nodes[i].name, i);
      if (!inserted) {
        errors.add(pointer_append(path, "name"),
                   "duplicate component name " + quote(nodes[i].name) + " (first at " +
                       pointer_append("/components", it->second) + ")");
      }
    }
    // The resolved group: the component's own, else the top level's; ""
    // opts out of the default.
    if (!c.shim_group) c.shim_group = config.shim_group;
    if (c.shim_group && c.shim_group->empty()) c.shim_group.reset();
    config.components.push_back(std::move(c));
  }
  internal::check_dependencies(nodes, errors);
  return config;
}

// --- JSON syntax ---------------------------------------------------------------

// The first pass over the text, before any tree is built (a SAX handler:
// it sees every value, key and bracket in document order). It reports
// syntax errors by throwing the parser's exception (caught in
// parse_config), keys that appear twice in one object (JSON allows it;
// nlohmann keeps the last, which hides a mistake), and keys over
// kMaxKeyBytes or objects over kMaxObjectKeys: the tree of such a text is
// never built, since inserting into an ordered object is linear in its
// size. (nlohmann's parser callbacks are not used for this: with a
// callback, closing an object scans every element of the array holding
// it, quadratic in the array's length.) Paths are built only when an error
// is reported, so the pass stays linear in the input.
class KeyChecker {
 public:
  using number_integer_t = Json::number_integer_t;
  using number_unsigned_t = Json::number_unsigned_t;
  using number_float_t = Json::number_float_t;
  using string_t = Json::string_t;
  using binary_t = Json::binary_t;

  explicit KeyChecker(Errors* errors) : errors_(errors) {}

  // True when a key or object over a limit was found.
  bool over_limit() const { return over_limit_; }

  bool null() { return value(); }
  bool boolean(bool) { return value(); }
  bool number_integer(number_integer_t) { return value(); }
  bool number_unsigned(number_unsigned_t) { return value(); }
  bool number_float(number_float_t, const string_t&) { return value(); }
  bool string(string_t&) { return value(); }
  bool binary(binary_t&) { return value(); }
  bool start_object(std::size_t) { return open(true); }
  bool start_array(std::size_t) { return open(false); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }

  bool key(string_t& key) {
    if (stack_.empty()) return true;
    Frame& top = stack_.back();
    top.key.clear();
    if (key.size() > kMaxKeyBytes) {
      over_limit_ = true;
      errors_->add(errors_->full() ? std::string() : path_of_top(),
                   "a key of " + std::to_string(key.size()) +
                       " bytes is longer than the maximum of " + std::to_string(kMaxKeyBytes) +
                       " (" + quote(key) + ")");
      return true;
    }
    if (++top.key_count > kMaxObjectKeys) {
      over_limit_ = true;
      if (top.key_count == kMaxObjectKeys + 1) {
        errors_->add(
            errors_->full() ? std::string() : path_of_top(),
            "more than the maximum of " + std::to_string(kMaxObjectKeys) + " keys in one object");
      }
      return true;
    }
    top.key = key;
    if (!top.keys.insert(key).second) {
      errors_->add(errors_->full() ? std::string() : pointer_append(path_of_top(), key),
                   "duplicate key " + quote(key) + " in one object");
    }
    return true;
  }

  template <class Exception>
  bool parse_error(std::size_t /*position*/, const std::string& /*last_token*/,
                   const Exception& e) {
    throw e;  // parse_config reports it
  }

 private:
  struct Frame {
    bool is_object;
    std::set<std::string> keys;  // at most kMaxObjectKeys
    std::string key;             // objects: the key whose value comes next
    size_t next_index = 0;       // arrays: index of the next element
    size_t key_count = 0;        // objects: keys seen, those over a limit included
  };

  // A scalar or container starts in the top frame.
  bool value() {
    if (!stack_.empty() && !stack_.back().is_object) ++stack_.back().next_index;
    return true;
  }
  bool open(bool is_object) {
    value();
    stack_.push_back(Frame{is_object, {}, {}, 0, 0});
    return true;
  }
  bool close() {
    if (!stack_.empty()) stack_.pop_back();
    return true;
  }

  // The JSON pointer of the innermost open array/object.
  std::string path_of_top() const {
    std::string path;
    for (size_t i = 0; i + 1 < stack_.size(); ++i) {
      const Frame& f = stack_[i];
      path = f.is_object ? pointer_append(path, f.key) : pointer_append(path, f.next_index - 1);
    }
    return path;
  }

  Errors* errors_;
  std::vector<Frame> stack_;
  bool over_limit_ = false;
};

// Byte offset of the first '[' or '{' nested deeper than `max_depth`, by
// the rules of json_nesting_within (which says whether there is one).
size_t too_deep_at(std::string_view text, size_t max_depth) {
  size_t depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return i;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return text.size();
}

// 1-based line and column of byte `offset`.
std::string line_and_column(std::string_view text, size_t offset) {
  size_t line = 1;
  size_t col = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(col);
}

// "invalid JSON at line 3, column 5: syntax error while parsing ..." from
// nlohmann's "[json.exception.parse_error.101] parse error at line 3,
// column 5: syntax error ...".
std::string syntax_message(const Json::parse_error& e, std::string_view text) {
  std::string what = e.what();
  std::string detail = what;
  const size_t column = what.find(", column ");
  if (column != std::string::npos) {
    const size_t colon = what.find(": ", column);
    if (colon != std::string::npos) detail = what.substr(colon + 2);
  }
  // Line and column of byte e.byte (1-based; past the end at end of input).
  const size_t end = std::min<size_t>(e.byte == 0 ? 0 : e.byte - 1, text.size());
  return "invalid JSON at " + line_and_column(text, end) + ": " + detail;
}

}  // namespace

// --- public ----------------------------------------------------------------------

ParseResult parse_config(std::string_view json_text) {
  ParseResult result;
  if (json_text.size() > kMaxConfigBytes) {
    result.errors.push_back(ConfigError{"", "the config is " + std::to_string(json_text.size()) +
                                                " bytes, more than the maximum of " +
                                                std::to_string(kMaxConfigBytes) + " (4 MiB)"});
    return result;
  }
  if (!json_nesting_within(json_text, kMaxJsonDepth)) {
    result.errors.push_back(ConfigError{
        "", "invalid JSON at " + line_and_column(json_text, too_deep_at(json_text, kMaxJsonDepth)) +
                ": arrays and objects nested deeper than the maximum of " +
                std::to_string(kMaxJsonDepth)});
    return result;
  }
  try {
    Errors errors;
    Json doc;
    try {
      KeyChecker checker(&errors);
      Json::sax_parse(json_text.begin(), json_text.end(), &checker);
      if (checker.over_limit()) {
        result.errors = errors.take();
        return result;
      }
      doc = Json::parse(json_text.begin(), json_text.end());
    } catch (const Json::parse_error& e) {
      result.errors.push_back(ConfigError{"", syntax_message(e, json_text)});
      return result;
    } catch (const Json::exception& e) {
      // E.g. out_of_range 406, "number overflow parsing '1e999'".
      std::string what = e.what();
      const size_t tag_end = what.find("] ");
      if (what.starts_with("[json.exception.") && tag_end != std::string::npos) {
        what.erase(0, tag_end + 2);
      }
      result.errors.push_back(ConfigError{"", "invalid JSON: " + what});
      return result;
    }
    Config config = read_config(doc, errors);
    result.errors = errors.take();
    if (result.errors.empty()) result.config = std::move(config);
  } catch (const std::exception& e) {
    // Not expected (the readers check types before reading); never let it out.
    result.config.reset();
    result.errors.push_back(
        ConfigError{"", std::string("internal error while reading config: ") + e.what()});
  }
  return result;
}

ParseResult load_config(const std::filesystem::path& file) {
  ParseResult result;
  const std::string name = file.string();
  auto fail = [&](const std::string& why) {
    result.errors.push_back(ConfigError{"", "cannot read " + quote(name) + ": " + why});
    return result;
  };
  // O_NONBLOCK: opening a FIFO must not wait for a writer.
  Fd fd{::open(name.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)};
  if (fd.get() < 0) return fail(std::strerror(errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return fail(std::strerror(errno));
  if (!S_ISREG(st.st_mode))
    return fail(std::string("not a regular file (") + file_kind(st.st_mode, "not a plain file") +
                ")");
  if (static_cast<uint64_t>(st.st_size) > kMaxConfigBytes) {
    return fail(std::to_string(st.st_size) + " bytes, more than the maximum of " +
                std::to_string(kMaxConfigBytes) + " (4 MiB)");
  }
  // Sized by the file, one byte more so that growth shows: a file that
  // grew meanwhile is read on (the buffer doubles) up to one byte more
  // than the limit, and parse_config's size check refuses it. (Not the
  // limit up front: a zero-filled 4 MiB buffer on every load and reload.)
  std::string text;
  text.resize(static_cast<size_t>(st.st_size) + 1);
  size_t got = 0;
  for (;;) {
    if (got == text.size()) {
      if (text.size() > kMaxConfigBytes) break;
      text.resize(std::min<size_t>(text.size() * 2, kMaxConfigBytes + 1));
    }
    const ssize_t n = ::read(fd.get(), text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(std::strerror(errno));
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  text.resize(got);
  return parse_config(text);
}

}  // namespace herd::config
