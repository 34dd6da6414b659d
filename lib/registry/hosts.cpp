// certs.d lookup and hosts.toml interpretation (containerd 1.6's
// remotes/docker/config/hosts.go), on herd's TOML subset reader.
#include "registry/hosts.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "registry/reference.h"
#include "registry/small_file.h"
#include "registry/toml_subset.h"
#include "registry/url_escape.h"

namespace herd::registry {

namespace {

using internal::TomlValue;
using Kind = TomlValue::Kind;

constexpr std::size_t kMaxHostLength = 255;
constexpr std::size_t kMaxUrlPath = 1024;
constexpr std::size_t kMaxHeaders = 64;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool valid_port(std::string_view p) {
  if (p.empty() || p.size() > 5) return false;
  unsigned v = 0;
  for (char c : p) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  return v >= 1 && v <= 65535;
}

// host[:port] with host a DNS name or IPv4 literal, or [IPv6][:port].
// Splits into name (without brackets) and port.
bool split_host(std::string_view hp, std::string_view& name, std::string_view& port) {
  if (hp.empty() || hp.size() > kMaxHostLength) return false;
  port = {};
  if (hp.front() == '[') {
    const auto close = hp.find(']');
    if (close == std::string_view::npos) return false;
    name = hp.substr(1, close - 1);
    std::string_view rest = hp.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':' || !valid_port(rest.substr(1))) return false;
      port = rest.substr(1);
    }
    std::string n(name);
    in6_addr a{};
    return !n.empty() && n.size() < 64 && ::inet_pton(AF_INET6, n.c_str(), &a) == 1;
  }
  name = hp;
  if (auto colon = hp.find(':'); colon != std::string_view::npos) {
    name = hp.substr(0, colon);
    port = hp.substr(colon + 1);
    if (!valid_port(port)) return false;
  }
  if (name.empty()) return false;
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (!alnum(name.front()) || !alnum(name.back())) return false;
  char prev = '\0';
  for (char c : name) {
    if (!alnum(c) && c != '-' && c != '.' && c != '_') return false;
    if (c == '.' && prev == '.') return false;
    prev = c;
  }
  return true;
}

bool valid_host(std::string_view hp) {
  std::string_view name, port;
  return split_host(hp, name, port);
}

Status bad_host(std::string_view host) {
  return Status::InvalidArgument("registry host \"" + printable(host) +
                                 "\": not a host name or IP address with an optional :port");
}

bool has_control(std::string_view s) {
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return true;
  }
  return false;
}

bool is_http_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return false;
    if (std::string_view("\"(),/:;<=>?@[\\]{}").find(c) != std::string_view::npos) return false;
  }
  return true;
}

// path.Clean for an absolute path: "" and "/" give "".
std::string clean_path(std::string_view p) {
  std::vector<std::string_view> parts;
  std::size_t i = 0;
  while (i <= p.size()) {
    std::size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    std::string_view part = p.substr(i, j - i);
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    i = j + 1;
  }
  std::string out;
  for (auto part : parts) {
    out += '/';
    out += part;
  }
  return out;
}

std::string join_path(std::string_view dir, std::string_view p) {
  if (!p.empty() && p.front() == '/') return std::string(p);
  std::string out(dir);
  if (!out.empty() && out.back() != '/') out += '/';
  out += p;
  return out;
}

class Interpreter {
 public:
  Interpreter(std::string what, std::string_view dir) : what_(std::move(what)), dir_(dir) {}

  Status error(int line, const std::string& why) const {
    return Status::InvalidArgument(what_ + " line " + std::to_string(line) + ": " + why);
  }
  void warn(int line, const std::string& key) {
    warnings_.push_back(what_ + " line " + std::to_string(line) + ": unknown key " + key +
                        " ignored");
  }
  std::vector<std::string> take_warnings() { return std::move(warnings_); }

  // A [host."<url>"] name or `server`: scheme, host and path.
  Status endpoint_url(std::string_view url, bool override_path, int line, HostEndpoint& e) const {
    auto bad = [&](const std::string& why) {
      return error(line, "endpoint \"" + printable(url) + "\": " + why);
    };
    if (url.empty()) return bad("empty");
    if (url.size() > kMaxUrlPath)
      return bad("longer than " + std::to_string(kMaxUrlPath) + " bytes");
    for (char c : url) {
      const auto u = static_cast<unsigned char>(c);
      if (u <= 0x20 || u >= 0x7f) return bad("contains a space, control or non-ASCII byte");
    }
    std::string full = url.starts_with("http") ? std::string(url) : "https://" + std::string(url);
    std::string_view v = full;
    if (v.starts_with("https://")) {
      e.scheme = "https";
      v.remove_prefix(8);
    } else if (v.starts_with("http://")) {
      e.scheme = "http";
      v.remove_prefix(7);
    } else {
      return bad("scheme is neither http:// nor https://");
    }
    if (v.find_first_of("?#") != std::string_view::npos) return bad("has a query or fragment");
    const auto slash = v.find('/');
    std::string_view authority = v.substr(0, slash);
    if (authority.find('@') != std::string_view::npos) return bad("has user information");
    if (!valid_host(authority)) return bad("malformed host \"" + printable(authority) + "\"");
    e.host = std::string(authority);
    e.path = slash == std::string_view::npos ? std::string() : clean_path(v.substr(slash));
    if (!override_path && !e.path.ends_with("/v2")) e.path += "/v2";
    return Status::Ok();
  }

  Status string_list(const TomlValue& v, const std::string& key,
                     std::vector<std::string>& out) const {
    if (v.kind == Kind::kString) {
      out.push_back(v.text);
      return Status::Ok();
    }
    if (v.kind != Kind::kArray)
      return error(v.line, key + ": expected a string or an array of strings, not " +
                               internal::toml_kind_name(v.kind));
    for (const auto& item : v.items) {
      if (item.kind != Kind::kString)
        return error(item.line, key + ": expected strings in the array, not " +
                                    internal::toml_kind_name(item.kind));
      out.push_back(item.text);
    }
    return Status::Ok();
  }

  Status file_path(const TomlValue& v, const std::string& key, const std::string& p,
                   std::string& out) const {
    if (p.empty()) return error(v.line, key + ": empty path");
    if (p.size() > 4096 || has_control(p)) return error(v.line, key + ": malformed path");
    out = join_path(dir_, p);
    return Status::Ok();
  }

  // The keys of one endpoint's table (a [host."..."] or the top level).
  // `prefix` names it in messages; `top` skips "server" and "host".
  Status endpoint_config(const TomlValue& t, const std::string& prefix, bool top, HostEndpoint& e,
                         bool& override_path) {
    override_path = false;
    if (auto* o = t.find("override_path")) {
      if (o->kind != Kind::kBool)
        return error(o->line, prefix + "override_path: expected a boolean");
      override_path = o->boolean;
    }
    for (std::size_t i = 0; i < t.keys.size(); ++i) {
      const std::string& k = t.keys[i];
      const TomlValue& v = t.items[i];
      const std::string key = prefix + k;
      if (top && (k == "server" || k == "host")) continue;
      if (k == "override_path") continue;
      if (k == "capabilities") {
        std::vector<std::string> caps;
        if (v.kind != Kind::kArray) return error(v.line, key + ": expected an array of strings");
        if (auto s = string_list(v, key, caps); !s.ok()) return s;
        if (!caps.empty()) e.capabilities = Capabilities{false, false, false};
        for (const auto& c : caps) {
          const std::string lc = lower(c);
          if (lc == "pull") {
            e.capabilities.pull = true;
          } else if (lc == "resolve") {
            e.capabilities.resolve = true;
          } else if (lc == "push") {
            e.capabilities.push = true;
          } else {
            return error(v.line, key + ": unknown capability \"" + printable(c) +
                                     "\" (pull, resolve, push)");
          }
        }
      } else if (k == "ca") {
        std::vector<std::string> paths;
        if (auto s = string_list(v, key, paths); !s.ok()) return s;
        for (const auto& p : paths) {
          std::string full;
          if (auto s = file_path(v, key, p, full); !s.ok()) return s;
          e.ca_paths.push_back(std::move(full));
        }
      } else if (k == "client") {
        if (auto s = client(v, key, e); !s.ok()) return s;
      } else if (k == "skip_verify") {
        if (v.kind != Kind::kBool) return error(v.line, key + ": expected a boolean");
        e.skip_verify = v.boolean;
      } else if (k == "header") {
        if (auto s = headers(v, key, e); !s.ok()) return s;
      } else {
        warn(v.line, key);
      }
    }
    return Status::Ok();
  }

  Status client(const TomlValue& v, const std::string& key, HostEndpoint& e) const {
    auto one = [&](const TomlValue& item, std::string_view p, ClientCert& c) {
      return file_path(item, key, std::string(p), c.cert);
    };
    if (v.kind == Kind::kString) {
      ClientCert c;
      if (auto s = one(v, v.text, c); !s.ok()) return s;
      e.client_certs.push_back(std::move(c));
      return Status::Ok();
    }
    if (v.kind != Kind::kArray)
      return error(
          v.line, key + ": expected a string or an array, not " + internal::toml_kind_name(v.kind));
    for (const auto& item : v.items) {
      ClientCert c;
      if (item.kind == Kind::kString) {
        if (auto s = one(item, item.text, c); !s.ok()) return s;
      } else if (item.kind == Kind::kArray) {
        std::vector<std::string> pair;
        if (auto s = string_list(item, key, pair); !s.ok()) return s;
        if (pair.size() != 2)
          return error(item.line, key + ": a pair must be [\"cert\", \"key\"], not " +
                                      std::to_string(pair.size()) + " strings");
        if (auto s = file_path(item, key, pair[0], c.cert); !s.ok()) return s;
        if (!pair[1].empty())
          if (auto s = file_path(item, key, pair[1], c.key); !s.ok()) return s;
      } else {
        return error(item.line, key + ": expected a path or a [cert, key] pair, not " +
                                    internal::toml_kind_name(item.kind));
      }
      e.client_certs.push_back(std::move(c));
    }
    return Status::Ok();
  }

  Status headers(const TomlValue& v, const std::string& key, HostEndpoint& e) const {
    if (v.kind != Kind::kTable) return error(v.line, key + ": expected a table");
    if (v.keys.size() > kMaxHeaders)
      return error(v.line, key + ": more than " + std::to_string(kMaxHeaders) + " headers");
    for (std::size_t i = 0; i < v.keys.size(); ++i) {
      const std::string& name = v.keys[i];
      const std::string hkey = key + "." + printable(name, 80);
      if (!is_http_token(name)) return error(v.items[i].line, hkey + ": not an HTTP header name");
      std::vector<std::string> values;
      if (auto s = string_list(v.items[i], hkey, values); !s.ok()) return s;
      for (const auto& value : values) {
        for (char c : value) {
          const auto u = static_cast<unsigned char>(c);
          if ((u < 0x20 && c != '\t') || u == 0x7f)
            return error(v.items[i].line, hkey + ": a control byte in the value");
        }
      }
      e.headers.emplace_back(name, std::move(values));
    }
    return Status::Ok();
  }

 private:
  std::string what_;
  std::string dir_;
  std::vector<std::string> warnings_;
};

std::string quoted_key(std::string_view k) { return "\"" + printable(k, 120) + "\""; }

}  // namespace

std::string HostEndpoint::url(std::string_view suffix) const {
  return scheme + "://" + host + path + std::string(suffix);
}

bool is_loopback_host(std::string_view host) {
  std::string_view name, port;
  if (!split_host(host, name, port)) return false;
  if (lower(name) == "localhost") return true;
  const std::string n(name);
  in_addr a4{};
  if (::inet_pton(AF_INET, n.c_str(), &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  in6_addr a6{};
  if (::inet_pton(AF_INET6, n.c_str(), &a6) == 1) {
    static constexpr unsigned char kLoop[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    if (std::memcmp(a6.s6_addr, kLoop, 16) == 0) return true;
    static constexpr unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return std::memcmp(a6.s6_addr, kMapped, 12) == 0 && a6.s6_addr[12] == 127;
  }
  return false;
}

Result<HostEndpoint> default_endpoint(std::string_view registry_host) {
  if (!valid_host(registry_host)) return bad_host(registry_host);
  HostEndpoint e;
  if (registry_host == kDockerHubDomain) {
    e.host = std::string(kDockerHubHost);
  } else if (is_loopback_host(registry_host)) {
    e.scheme = "http";
    e.host = std::string(registry_host);
    e.skip_verify = true;
  } else {
    e.host = std::string(registry_host);
  }
  return e;
}

Result<HostsConfig> parse_hosts_toml(std::string_view text, std::string_view directory,
                                     std::string_view registry_host) {
  const std::string what =
      "hosts.toml \"" + printable(join_path(directory, "hosts.toml"), 400) + "\"";
  if (!valid_host(registry_host)) return bad_host(registry_host);
  if (text.size() > kMaxHostsFile)
    return Status::InvalidArgument(what + ": " + std::to_string(text.size()) +
                                   " bytes, more than the maximum of " +
                                   std::to_string(kMaxHostsFile));
  auto tree = internal::parse_toml_subset(text, what, kMaxHostsLine);
  if (!tree.ok()) return tree.status();
  Interpreter in(what, directory);
  HostsConfig out;
  out.directory = std::string(directory);

  if (const TomlValue* hosts = tree->find("host")) {
    if (hosts->kind != Kind::kTable) return in.error(hosts->line, "host: expected a table");
    if (hosts->keys.size() > kMaxHostEndpoints)
      return in.error(hosts->line,
                      "more than " + std::to_string(kMaxHostEndpoints) + " [host] tables");
    for (std::size_t i = 0; i < hosts->keys.size(); ++i) {
      const TomlValue& t = hosts->items[i];
      const std::string prefix = "host." + quoted_key(hosts->keys[i]) + ".";
      if (t.kind != Kind::kTable)
        return in.error(t.line, "host." + quoted_key(hosts->keys[i]) + ": expected a table");
      HostEndpoint e;
      bool override_path = false;
      if (auto s = in.endpoint_config(t, prefix, false, e, override_path); !s.ok()) return s;
      if (auto s = in.endpoint_url(hosts->keys[i], override_path, t.line, e); !s.ok()) return s;
      out.endpoints.push_back(std::move(e));
    }
  }

  HostEndpoint server;
  bool override_path = false;
  if (auto s = in.endpoint_config(*tree, "", true, server, override_path); !s.ok()) return s;
  const TomlValue* url = tree->find("server");
  if (url && url->kind != Kind::kString) return in.error(url->line, "server: expected a string");
  if (url && !url->text.empty()) {
    if (auto s = in.endpoint_url(url->text, override_path, url->line, server); !s.ok()) return s;
  } else {
    // The default endpoint keeps the top-level TLS settings and headers.
    auto d = default_endpoint(registry_host);
    if (!d.ok()) return d.status();
    server.scheme = d->scheme;
    server.host = d->host;
    server.path = d->path;
    server.capabilities = d->capabilities;
    if (d->skip_verify) server.skip_verify = d->skip_verify;
  }
  out.endpoints.push_back(std::move(server));
  out.warnings = in.take_warnings();
  return out;
}

std::vector<std::string> host_directory_candidates(const std::string& hosts_dir,
                                                   std::string_view registry_host) {
  std::vector<std::string> out;
  const std::string host(registry_host);
  if (const auto colon = host.rfind(':'); colon != std::string::npos && colon > 0)
    out.push_back(join_path(hosts_dir, host.substr(0, colon) + "_" + host.substr(colon + 1) + "_"));
  out.push_back(join_path(hosts_dir, host));
  out.push_back(join_path(hosts_dir, "_default"));
  return out;
}

namespace {

// The default endpoint with the directory's *.crt / *.cert (+ .key) files.
Result<HostsConfig> load_cert_files(const std::string& dir, std::string_view registry_host) {
  auto d = default_endpoint(registry_host);
  if (!d.ok()) return d.status();
  const std::string where = "certificate directory \"" + printable(dir, 400) + "\"";
  std::unique_ptr<DIR, int (*)(DIR*)> handle(::opendir(dir.c_str()), ::closedir);
  if (!handle) return Status::Unavailable(where + ": " + std::strerror(errno));
  std::vector<std::string> names;
  std::size_t seen = 0;
  errno = 0;
  while (dirent* ent = ::readdir(handle.get())) {
    if (++seen > kMaxCertFiles)
      return Status::InvalidArgument(where + ": more than " + std::to_string(kMaxCertFiles) +
                                     " entries");
    std::string name = ent->d_name;
    if (name.ends_with(".crt") || name.ends_with(".cert")) names.push_back(std::move(name));
  }
  std::sort(names.begin(), names.end());
  HostEndpoint e = std::move(*d);
  for (const auto& name : names) {
    const std::string full = join_path(dir, name);
    struct stat st {};
    if (::stat(full.c_str(), &st) != 0 || S_ISDIR(st.st_mode)) continue;
    if (name.ends_with(".crt")) {
      e.ca_paths.push_back(full);
    } else {
      ClientCert c{full, ""};
      const std::string key = full.substr(0, full.size() - 5) + ".key";
      if (::stat(key.c_str(), &st) == 0) {
        c.key = key;
      } else if (errno != ENOENT) {
        return Status::Unavailable(where + ": " + printable(key, 400) + ": " +
                                   std::strerror(errno));
      }
      e.client_certs.push_back(std::move(c));
    }
  }
  HostsConfig out;
  out.directory = dir;
  out.endpoints.push_back(std::move(e));
  return out;
}

}  // namespace

Result<HostsConfig> load_hosts(const std::string& hosts_dir, std::string_view registry_host) {
  if (!valid_host(registry_host)) return bad_host(registry_host);
  std::string dir;
  if (!hosts_dir.empty()) {
    if (hosts_dir.find('\0') != std::string::npos)
      return Status::InvalidArgument("hosts directory: not a valid path");
    for (const auto& candidate : host_directory_candidates(hosts_dir, registry_host)) {
      struct stat st {};
      if (::stat(candidate.c_str(), &st) != 0) {
        if (errno == ENOENT) continue;
        return Status::Unavailable("hosts directory \"" + printable(candidate, 400) +
                                   "\": " + std::strerror(errno));
      }
      if (!S_ISDIR(st.st_mode))
        return Status::InvalidArgument("hosts directory \"" + printable(candidate, 400) +
                                       "\": not a directory");
      dir = candidate;
      break;
    }
  }
  if (dir.empty()) {
    auto d = default_endpoint(registry_host);
    if (!d.ok()) return d.status();
    HostsConfig out;
    out.endpoints.push_back(std::move(*d));
    return out;
  }
  auto text = internal::read_small_file(join_path(dir, "hosts.toml"), kMaxHostsFile, "hosts.toml");
  if (!text.ok()) return text.status();
  if (!text->has_value() || (*text)->empty()) return load_cert_files(dir, registry_host);
  return parse_hosts_toml(**text, dir, registry_host);
}

bool is_mirror(const HostEndpoint& endpoint, std::string_view reference_domain) {
  if (endpoint.host == reference_domain) return false;
  return !(reference_domain == kDockerHubDomain && endpoint.host == kDockerHubHost);
}

std::string with_namespace(const HostEndpoint& endpoint, std::string_view path_and_query,
                           std::string_view reference_domain) {
  std::string out(path_and_query);
  if (!is_mirror(endpoint, reference_domain)) return out;
  const auto q = out.find('?');
  if (q == std::string::npos) {
    out += '?';
  } else if (q + 1 != out.size() && out.back() != '&') {
    out += '&';
  }
  out += "ns=" + query_escape(reference_domain);
  return out;
}

}  // namespace herd::registry
