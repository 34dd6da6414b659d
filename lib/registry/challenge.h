// The registry's side of token authentication (remotes/docker/auth/ in
// containerd, RFC 7235, the distribution token spec):
//   - parse_challenges: a `WWW-Authenticate` header value into challenges;
//   - select_challenge: which one to answer (Bearer, else Basic);
//   - bearer_token_url: the GET URL of a token request;
//   - parse_token_response: the token server's JSON answer.
//
// Every input comes from the network and is hostile. Bounds: a header
// value at most kMaxChallengeHeader (8 KiB), at most kMaxChallengeParams
// (32) auth-params over all its challenges, a token answer at most
// kMaxTokenResponse (1 MiB) with JSON nesting at most 8, a token at most
// kMaxTokenLength (64 KiB). Errors are kInvalidArgument and say what and
// where ("WWW-Authenticate at byte 17: unterminated quoted string").
// Nothing throws.
//
// Pure; any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace herd::registry {

inline constexpr std::size_t kMaxChallengeHeader = 8 << 10;
inline constexpr std::size_t kMaxChallengeParams = 32;
inline constexpr std::size_t kMaxTokenResponse = 1 << 20;
inline constexpr std::size_t kMaxTokenLength = 64 << 10;
inline constexpr std::size_t kMaxRealmLength = 2048;
inline constexpr std::chrono::seconds kDefaultTokenLifetime{60};
inline constexpr std::chrono::seconds kMinTokenLifetime{60};

struct Challenge {
  std::string scheme;                         // lower-cased: "bearer", "basic", ...
  std::map<std::string, std::string> params;  // keys lower-cased, values unquoted
  std::string token68;                        // "Scheme token68" form (no params then); rarely used

  // params[key] or "" when absent.
  std::string param(const std::string& key) const {
    auto it = params.find(key);
    return it == params.end() ? std::string() : it->second;
  }
};

// Parses one header value: `Bearer realm="https://a/token",service="a"`,
// several comma-separated challenges (`Basic realm="x", Bearer realm="y"`)
// and the token68 form (`Negotiate abc==`). Grammar of RFC 7235 section
// 2.1: tokens, quoted strings with quoted-pairs (`\"`, `\\`; a backslash
// before a control byte is an error), optional whitespace around '=' and
// ','; empty list elements are skipped. Refused: control bytes (NUL, CR,
// LF...) outside quoted-string HTAB, an unterminated quoted string, a
// parameter without a value, a parameter named twice in one challenge,
// more than the bounds above. An empty (or all-whitespace) value gives an
// empty list.
Result<std::vector<Challenge>> parse_challenges(std::string_view header);

// The challenge herd answers: the first "bearer", else the first "basic",
// else nullptr (Digest, Negotiate... are not supported, as containerd).
const Challenge* select_challenge(const std::vector<Challenge>& challenges);

// "repository:<repository>:pull", the scope of a pull.
std::string pull_scope(std::string_view repository);

// `<realm>?service=<service>&scope=<s1>&scope=<s2>`: the token request of
// a Bearer challenge, values escaped with query_escape; `service` omitted
// when empty, one `scope=` per non-empty scope in order; appended with '&'
// when the realm already has a query. The realm must be an absolute
// http:// or https:// URL of at most kMaxRealmLength bytes with a host,
// no fragment, no userinfo and no byte outside visible ASCII.
Result<std::string> bearer_token_url(std::string_view realm, std::string_view service,
                                     const std::vector<std::string>& scopes);

struct TokenResponse {
  std::string token;  // "token", else "access_token"; visible ASCII only
  // "expires_in": absent -> kDefaultTokenLifetime; below kMinTokenLifetime
  // -> kMinTokenLifetime (the token spec's minimum); longer than a year is
  // cut to a year.
  std::chrono::seconds expires_in = kDefaultTokenLifetime;
  std::optional<std::string> issued_at;  // as sent (RFC 3339), at most 64 bytes
  std::optional<std::string> refresh_token;
};

// Parses a token server's 200 answer. Refused: not a JSON object, deeper
// than 8, bigger than the bound, no non-empty token, a token/field of the
// wrong type, a token with bytes outside 0x21..0x7e (it goes into an
// Authorization header), expires_in not an integer or negative.
Result<TokenResponse> parse_token_response(std::string_view body);

}  // namespace herd::registry
