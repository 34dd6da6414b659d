// Where and how to reach a registry: containerd's `certs.d` layout
// (remotes/docker/config/hosts.go, containerd 1.6), read the same way.
//
// For a registry host "h" or "h:port" (a reference's domain, e.g.
// "docker.io", "localhost:5000") under `hosts_dir`, the first of these that
// exists is the host's directory: "<hosts_dir>/h_port_" (only with a port),
// "<hosts_dir>/h:port" (or "h"), "<hosts_dir>/_default".
//   - With a non-empty hosts.toml there: its endpoints (below).
//   - Without one (or empty): the default endpoint, with every "*.crt" of
//     the directory as a CA and every "*.cert" as a client certificate whose
//     key is the "*.key" of the same stem, if present (else the key is in
//     the .cert file); names sorted.
//   - No directory at all (or hosts_dir empty): the default endpoint.
// The default endpoint: docker.io -> https://registry-1.docker.io/v2;
// loopback (127.0.0.0/8, ::1) and "localhost" -> plain http with
// skip_verify; anything else https. Capabilities pull, resolve, push.
//
// hosts.toml (a strict TOML subset, herd's own reader):
//   server = "https://registry.example"        # optional
//   capabilities = [...] / ca / client / skip_verify / override_path /
//   [header]                                    # apply to `server`
//   [host."https://mirror.example:5000"]        # tried first, in file order
//     capabilities = ["pull", "resolve"]        # default: all three
//     ca = "ca.pem"  or  ["a.pem", "/abs/b.pem"] # relative to the directory
//     client = "both.pem"  or  [["cert.pem", "key.pem"], "both2.pem"]
//       (as containerd: a plain array of strings is several combined
//       cert+key files, not one pair)
//     skip_verify = true
//     override_path = true                      # the URL's path is the API root
//   [host."https://mirror.example:5000".header]
//     x-custom = "v"  or  ["v1", "v2"]
// Result: the [host.*] endpoints in file order, then `server` (when there
// is no `server`: the default endpoint, which keeps the top-level ca /
// client / skip_verify / header but not capabilities nor path, as
// containerd). A URL without "http" at its start gets "https://"; its path
// is cleaned and gets "/v2" appended unless it ends in "/v2" or
// override_path is set ("/" counts as no path, not containerd's "//v2").
//
// TOML supported: comments, bare / "basic" / 'literal' keys, dotted keys,
// [tables] (each once), basic strings with every TOML escape, literal
// strings, booleans, arrays (multi-line, nested), one-line inline tables,
// and other scalars (numbers, dates) as opaque words for ignored keys.
// Refused: multi-line strings, [[arrays of tables]], a key or table
// defined twice, control bytes, invalid escapes or UTF-8 code points,
// a wrong type for a known key, an unknown capability, header names that
// are not HTTP tokens, header values or paths with control bytes.
// Unknown keys are ignored with a warning (containerd ignores them).
// Deviation from containerd: a hosts.toml that does not parse is an error
// (containerd logs it and falls back to the directory's certificates,
// silently bypassing the mirrors the file names).
//
// Bounds: kMaxHostsFile (64 KiB), lines of at most kMaxHostsLine bytes,
// at most kMaxHostEndpoints [host] tables, values nested at most 4 deep,
// at most 4096 values in all. Errors are kInvalidArgument: `hosts.toml
// "/etc/containerd/certs.d/x/hosts.toml" line 3: ...`.
//
// parse_hosts_toml, default_endpoint, is_loopback_host, is_mirror and
// with_namespace are pure (any thread); load_hosts reads the file system
// (small blocking reads: a blocking pool, not a network strand).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace herd::registry {

inline constexpr std::size_t kMaxHostsFile = 64 << 10;
inline constexpr std::size_t kMaxHostsLine = 4096;
inline constexpr std::size_t kMaxHostEndpoints = 16;
inline constexpr std::size_t kMaxCertFiles = 1024;  // entries scanned in a directory

struct Capabilities {
  bool pull = true;
  bool resolve = true;
  bool push = true;
  friend bool operator==(const Capabilities&, const Capabilities&) = default;
};

struct ClientCert {
  std::string cert;
  std::string key;  // empty: the key is in `cert`
  friend bool operator==(const ClientCert&, const ClientCert&) = default;
};

struct HostEndpoint {
  std::string scheme = "https";  // "http" or "https"
  std::string host;              // "mirror.example:5000", "[::1]:5000"
  std::string path = "/v2";      // API root, no trailing '/'; may be empty
  Capabilities capabilities;
  std::vector<std::string> ca_paths;
  std::vector<ClientCert> client_certs;
  std::optional<bool> skip_verify;
  std::vector<std::pair<std::string, std::vector<std::string>>> headers;  // file order

  // scheme + "://" + host + path + suffix ("/library/x/manifests/latest").
  std::string url(std::string_view suffix) const;
};

struct HostsConfig {
  std::string directory;                // the directory used; empty when none
  std::vector<HostEndpoint> endpoints;  // in the order to try
  std::vector<std::string> warnings;    // ignored keys, with file and line
};

// The endpoint for `registry_host` without any configuration (see above).
// kInvalidArgument when registry_host is not a host[:port].
Result<HostEndpoint> default_endpoint(std::string_view registry_host);

// Parses the hosts.toml `text` of `directory` (relative paths are joined
// to it; it is also named in messages) for `registry_host`.
Result<HostsConfig> parse_hosts_toml(std::string_view text, std::string_view directory,
                                     std::string_view registry_host);

// The whole lookup above. kInvalidArgument for a malformed host or file,
// kUnavailable when the file system fails otherwise.
Result<HostsConfig> load_hosts(const std::string& hosts_dir, std::string_view registry_host);

// The directories looked at, in order (see above).
std::vector<std::string> host_directory_candidates(const std::string& hosts_dir,
                                                   std::string_view registry_host);

// Whether host[:port] is "localhost" or a loopback IP (127.0.0.0/8, ::1,
// ::ffff:127.0.0.0/104), as containerd's docker.IsLocalhost.
bool is_loopback_host(std::string_view host);

// Whether `endpoint` is a mirror for references of `reference_domain`
// (its host differs; registry-1.docker.io is not a mirror of docker.io).
bool is_mirror(const HostEndpoint& endpoint, std::string_view reference_domain);

// `path_and_query` with "ns=<reference_domain>" added ('?' or '&'), as
// containerd does for requests to a mirror; unchanged when `endpoint` is
// not a mirror.
std::string with_namespace(const HostEndpoint& endpoint, std::string_view path_and_query,
                           std::string_view reference_domain);

}  // namespace herd::registry
