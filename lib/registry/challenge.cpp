// WWW-Authenticate (RFC 7235 section 2.1 / 4.1) as a small hand-written
// scanner, and the token server's JSON answer.
#include "registry/challenge.h"

#include <nlohmann/json.hpp>

#include "common/json_limits.h"
#include "registry/reference.h"
#include "registry/url_escape.h"

namespace herd::registry {

namespace {

// tchar of RFC 7230: visible ASCII except the separators.
bool is_tchar(unsigned char c) {
  if (c <= 0x20 || c >= 0x7f) return false;
  switch (c) {
    case '"':
    case '(':
    case ')':
    case ',':
    case '/':
    case ':':
    case ';':
    case '<':
    case '=':
    case '>':
    case '?':
    case '@':
    case '[':
    case '\\':
    case ']':
    case '{':
    case '}':
      return false;
    default:
      return true;
  }
}

bool is_token68_char(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

class ChallengeScanner {
 public:
  explicit ChallengeScanner(std::string_view text) : s_(text) {}

  Result<std::vector<Challenge>> run() {
    for (std::size_t i = 0; i < s_.size(); ++i) {
      const auto c = static_cast<unsigned char>(s_[i]);
      if ((c < 0x20 && c != '\t') || c == 0x7f) {
        static constexpr char kHex[] = "0123456789abcdef";
        return error(i, std::string("control byte 0x") + kHex[c >> 4] + kHex[c & 0xf]);
      }
    }
    std::vector<Challenge> out;
    while (true) {
      skip_list_separators();
      if (at_end()) return out;
      Challenge ch;
      const std::size_t scheme_at = pos_;
      std::string_view scheme = token();
      if (scheme.empty()) return error(scheme_at, "expected an authentication scheme");
      ch.scheme = lower(scheme);
      const bool spaced = skip_ows();
      if (at_end() || peek() == ',') {
        out.push_back(std::move(ch));
        continue;
      }
      if (!spaced)
        return error(pos_, "expected a space after the scheme \"" + printable(scheme) + "\"");
      if (auto t68 = try_token68(); !t68.empty()) {
        ch.token68 = std::string(t68);
        out.push_back(std::move(ch));
        skip_ows();
        if (!at_end() && peek() != ',') return error(pos_, "unexpected character after token68");
        continue;
      }
      // auth-param *( OWS "," OWS [ auth-param ] ), until what follows a
      // comma is a new challenge (a token not followed by '=').
      while (true) {
        if (auto s = param(ch); !s.ok()) return s;
        skip_ows();
        if (at_end()) break;
        if (peek() != ',') return error(pos_, "expected ',' after a parameter");
        const std::size_t comma = pos_;
        skip_list_separators();
        if (at_end()) break;
        const std::size_t key_at = pos_;
        (void)token();
        skip_ows();
        const bool is_param = !at_end() && peek() == '=' && pos_ > key_at;
        pos_ = key_at;
        if (!is_param) {
          pos_ = comma;
          break;
        }
      }
      out.push_back(std::move(ch));
    }
  }

 private:
  Status error(std::size_t at, const std::string& what) const {
    return Status::InvalidArgument("WWW-Authenticate at byte " + std::to_string(at) + ": " + what);
  }
  bool at_end() const { return pos_ >= s_.size(); }
  char peek() const { return s_[pos_]; }
  bool skip_ows() {
    const std::size_t start = pos_;
    while (!at_end() && (peek() == ' ' || peek() == '\t')) ++pos_;
    return pos_ > start;
  }
  void skip_list_separators() {
    while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == ',')) ++pos_;
  }
  std::string_view token() {
    const std::size_t start = pos_;
    while (!at_end() && is_tchar(static_cast<unsigned char>(peek()))) ++pos_;
    return s_.substr(start, pos_ - start);
  }
  // token68 followed by OWS and the end or a ',': consumed; else nothing.
  std::string_view try_token68() {
    std::size_t p = pos_;
    while (p < s_.size() && is_token68_char(static_cast<unsigned char>(s_[p]))) ++p;
    if (p == pos_) return {};
    while (p < s_.size() && s_[p] == '=') ++p;
    std::size_t q = p;
    while (q < s_.size() && (s_[q] == ' ' || s_[q] == '\t')) ++q;
    if (q < s_.size() && s_[q] != ',') return {};
    std::string_view t = s_.substr(pos_, p - pos_);
    pos_ = p;
    return t;
  }
  Status param(Challenge& ch) {
    const std::size_t key_at = pos_;
    std::string_view key = token();
    if (key.empty()) return error(key_at, "expected a parameter name");
    skip_ows();
    if (at_end() || peek() != '=')
      return error(pos_, "parameter \"" + printable(key) + "\" has no '='");
    ++pos_;
    skip_ows();
    std::string value;
    if (!at_end() && peek() == '"') {
      if (auto s = quoted(value); !s.ok()) return s;
    } else {
      const std::size_t value_at = pos_;
      std::string_view t = token();
      if (t.empty()) return error(value_at, "parameter \"" + printable(key) + "\" has no value");
      value = std::string(t);
    }
    if (++params_ > kMaxChallengeParams)
      return error(key_at, "more than " + std::to_string(kMaxChallengeParams) + " parameters");
    if (!ch.params.emplace(lower(key), std::move(value)).second)
      return error(key_at, "parameter \"" + printable(key) + "\" given twice");
    return Status::Ok();
  }
  Status quoted(std::string& value) {
    const std::size_t open = pos_++;
    while (!at_end()) {
      const auto c = static_cast<unsigned char>(peek());
      if (c == '"') {
        ++pos_;
        return Status::Ok();
      }
      if (c == '\\') {
        if (pos_ + 1 >= s_.size()) break;
        const auto e = static_cast<unsigned char>(s_[pos_ + 1]);
        if (e < 0x20 && e != '\t') return error(pos_, "backslash before a control byte");
        value += static_cast<char>(e);
        pos_ += 2;
        continue;
      }
      value += static_cast<char>(c);
      ++pos_;
    }
    return error(open, "unterminated quoted string");
  }

  std::string_view s_;
  std::size_t pos_ = 0;
  std::size_t params_ = 0;
};

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && lower(s.substr(0, prefix.size())) == prefix;
}

}  // namespace

Result<std::vector<Challenge>> parse_challenges(std::string_view header) {
  if (header.size() > kMaxChallengeHeader)
    return Status::InvalidArgument("WWW-Authenticate: " + std::to_string(header.size()) +
                                   " bytes, more than the maximum of " +
                                   std::to_string(kMaxChallengeHeader));
  return ChallengeScanner(header).run();
}

const Challenge* select_challenge(const std::vector<Challenge>& challenges) {
  for (const auto& c : challenges)
    if (c.scheme == "bearer") return &c;
  for (const auto& c : challenges)
    if (c.scheme == "basic") return &c;
  return nullptr;
}

std::string pull_scope(std::string_view repository) {
  return "repository:" + std::string(repository) + ":pull";
}

Result<std::string> bearer_token_url(std::string_view realm, std::string_view service,
                                     const std::vector<std::string>& scopes) {
  auto bad = [&](const std::string& why) -> Status {
    return Status::InvalidArgument("token realm \"" + printable(realm) + "\": " + why);
  };
  if (realm.empty()) return bad("empty");
  if (realm.size() > kMaxRealmLength)
    return bad("longer than " + std::to_string(kMaxRealmLength) + " bytes");
  for (char c : realm) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return bad("contains a space, control or non-ASCII byte");
  }
  std::size_t after_scheme = 0;
  if (starts_with_nocase(realm, "https://")) {
    after_scheme = 8;
  } else if (starts_with_nocase(realm, "http://")) {
    after_scheme = 7;
  } else {
    return bad("not an http:// or https:// URL");
  }
  if (realm.find('#') != std::string_view::npos) return bad("has a fragment");
  std::string_view authority = realm.substr(after_scheme);
  authority = authority.substr(0, authority.find_first_of("/?"));
  if (authority.empty()) return bad("has no host");
  if (authority.find('@') != std::string_view::npos) return bad("has user information");

  std::string url(realm);
  char sep = '?';
  if (auto q = url.find('?'); q != std::string::npos)
    sep = (q + 1 == url.size() || url.back() == '&') ? '\0' : '&';
  auto add = [&](std::string_view key, std::string_view value) {
    if (sep != '\0') url += sep;
    url += key;
    url += '=';
    url += query_escape(value);
    sep = '&';
  };
  if (!service.empty()) add("service", service);
  for (const auto& s : scopes)
    if (!s.empty()) add("scope", s);
  return url;
}

Result<TokenResponse> parse_token_response(std::string_view body) {
  auto bad = [](const std::string& why) -> Status {
    return Status::InvalidArgument("token response: " + why);
  };
  if (body.size() > kMaxTokenResponse)
    return bad(std::to_string(body.size()) + " bytes, more than the maximum of " +
               std::to_string(kMaxTokenResponse));
  if (!json_nesting_within(body, 8)) return bad("JSON nested deeper than 8");
  try {
    const auto doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) return bad("not valid JSON");
    if (!doc.is_object()) return bad("not a JSON object");
    auto string_field = [&](const char* key, std::size_t max,
                            std::optional<std::string>& out) -> Status {
      auto it = doc.find(key);
      if (it == doc.end() || it->is_null()) return Status::Ok();
      if (!it->is_string()) return bad(std::string(key) + ": expected a string");
      const auto& s = it->get_ref<const std::string&>();
      if (s.size() > max)
        return bad(std::string(key) + ": longer than " + std::to_string(max) + " bytes");
      out = s;
      return Status::Ok();
    };
    std::optional<std::string> token, access_token;
    TokenResponse r;
    if (auto s = string_field("token", kMaxTokenLength, token); !s.ok()) return s;
    if (auto s = string_field("access_token", kMaxTokenLength, access_token); !s.ok()) return s;
    if (auto s = string_field("issued_at", 64, r.issued_at); !s.ok()) return s;
    if (auto s = string_field("refresh_token", kMaxTokenLength, r.refresh_token); !s.ok()) return s;
    const char* which = "token";
    if (token && !token->empty()) {
      r.token = std::move(*token);
    } else if (access_token && !access_token->empty()) {
      r.token = std::move(*access_token);
      which = "access_token";
    } else {
      return bad("no token (neither \"token\" nor \"access_token\")");
    }
    for (char c : r.token) {
      const auto u = static_cast<unsigned char>(c);
      if (u < 0x21 || u > 0x7e) return bad(std::string(which) + ": a byte outside visible ASCII");
    }
    if (auto it = doc.find("expires_in"); it != doc.end() && !it->is_null()) {
      if (it->is_number_unsigned()) {
        const auto v = it->get<std::uint64_t>();
        constexpr std::uint64_t kYear = 365ull * 24 * 3600;
        r.expires_in = std::chrono::seconds(static_cast<std::int64_t>(v > kYear ? kYear : v));
      } else if (it->is_number_integer()) {
        return bad("expires_in: negative");
      } else {
        return bad("expires_in: expected a whole number of seconds");
      }
      if (r.expires_in < kMinTokenLifetime) r.expires_in = kMinTokenLifetime;
    }
    return r;
  } catch (const std::exception& e) {
    return bad(std::string("unexpected: ") + e.what());
  }
}

}  // namespace herd::registry
