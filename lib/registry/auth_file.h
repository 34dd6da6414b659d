// Credentials users already have: docker's config.json
// (~/.docker/config.json, $DOCKER_CONFIG/config.json), the `auths` part.
//
//   {"auths": {"https://index.docker.io/v1/": {"auth": "dXNlcjpwYXNz"},
//              "registry.example:5000": {"username": "u", "password": "p"},
//              "ghcr.io": {"identitytoken": "..."}}}
//
// Keys are "host[:port]" or URLs: matching strips "http://" / "https://"
// and everything from the first '/' after the host, and compares hosts
// ASCII case-insensitively; "docker.io", "index.docker.io" and
// "registry-1.docker.io" are all Docker Hub. Precedence for a host: a key
// equal to the host as asked, then (Docker Hub) "https://index.docker.io/v1/",
// then the first matching key in file order; entries without credentials
// are passed over.
//
// An entry gives: `auth` (base64 of "user:pass", standard alphabet with
// '=' padding, decoded strictly here: no whitespace, no junk, no non-zero
// trailing bits; it must contain ':'; it wins over username/password as in
// docker), else `username` + `password`, and independently `identitytoken`
// (an OAuth refresh token). An entry with none of them (`{}`, what docker
// writes when a credsStore holds the secret) gives no credentials.
// `credsStore` / `credHelpers` are recorded but herd runs no helper.
// Credentials must not contain NUL, CR or LF.
//
// Bounds: kMaxAuthFile (1 MiB), JSON nesting at most 8, kMaxAuthEntries
// entries, each field at most 64 KiB. Errors are kInvalidArgument naming
// the file part: `docker auth file: auths["ghcr.io"].auth: not valid base64`.
// Nothing throws; secrets never appear in messages.
//
// parse_auth_file and find_credentials are pure (any thread);
// load_auth_file does a small blocking file read (see small_file.h).
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace herd::registry {

inline constexpr std::size_t kMaxAuthFile = 1 << 20;
inline constexpr std::size_t kMaxAuthEntries = 1024;
inline constexpr std::size_t kMaxAuthField = 64 << 10;

struct Credentials {
  std::string username;  // with password: Basic credentials
  std::string password;
  std::string identity_token;  // an OAuth2 refresh token, when set

  friend bool operator==(const Credentials&, const Credentials&) = default;
};

struct AuthEntry {
  std::string key;   // as written in the file
  std::string host;  // matched form: lower-case host[:port], "docker.io" for Docker Hub
  std::optional<Credentials> credentials;  // nullopt: an empty entry
};

struct AuthFile {
  std::vector<AuthEntry> auths;                     // file order
  std::string creds_store;                          // "credsStore" (not run by herd)
  std::map<std::string, std::string> cred_helpers;  // "credHelpers" (not run by herd)
};

// Parses a config.json text (other top-level keys are ignored).
Result<AuthFile> parse_auth_file(std::string_view json);

// Reads and parses the file at `path`; a missing file is an empty AuthFile.
Result<AuthFile> load_auth_file(const std::string& path);

// "$DOCKER_CONFIG/config.json" when docker_config is non-empty, else
// "$HOME/.docker/config.json"; empty when both are empty.
std::string auth_file_path(std::string_view docker_config_env, std::string_view home_env);

// The matched form of a key or host (see above): "https://Index.Docker.io/v1/"
// -> "docker.io", "http://reg:5000/x" -> "reg:5000".
std::string auth_host_key(std::string_view key_or_host);

// Credentials for `host` (a reference domain or API host, e.g. "docker.io",
// "registry-1.docker.io", "localhost:5000"); std::nullopt when none.
// kInvalidArgument for an empty host.
Result<std::optional<Credentials>> find_credentials(const AuthFile& file, std::string_view host);

// Strict standard base64 (RFC 4648 section 4 with padding); nullopt when
// `text` is not exactly that.
std::optional<std::string> decode_base64(std::string_view text);

}  // namespace herd::registry
