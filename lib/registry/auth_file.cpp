#include "registry/auth_file.h"

#include <nlohmann/json.hpp>

#include "common/json_limits.h"
#include "registry/reference.h"
#include "registry/small_file.h"

namespace herd::registry {

namespace {

constexpr std::string_view kDockerHubAuthKey = "https://index.docker.io/v1/";

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

bool has_forbidden_byte(std::string_view s) {
  return s.find_first_of(std::string_view("\0\r\n", 3)) != std::string_view::npos;
}

using Json = nlohmann::ordered_json;

}  // namespace

std::optional<std::string> decode_base64(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = text[i + static_cast<std::size_t>(k)];
      if (c == '=' && last && k >= 2) {
        v[k] = 0;
        ++pad;
        continue;
      }
      if (pad > 0) return std::nullopt;  // data after '='
      v[k] = base64_value(c);
      if (v[k] < 0) return std::nullopt;
    }
    const unsigned n = (static_cast<unsigned>(v[0]) << 18) | (static_cast<unsigned>(v[1]) << 12) |
                       (static_cast<unsigned>(v[2]) << 6) | static_cast<unsigned>(v[3]);
    out += static_cast<char>((n >> 16) & 0xff);
    if (pad == 2) {
      if ((n & 0xffff) != 0) return std::nullopt;  // non-zero trailing bits
      break;
    }
    out += static_cast<char>((n >> 8) & 0xff);
    if (pad == 1) {
      if ((n & 0xff) != 0) return std::nullopt;
      break;
    }
    out += static_cast<char>(n & 0xff);
  }
  return out;
}

std::string auth_host_key(std::string_view key) {
  std::string k;
  for (char c : key) k += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  std::string_view v = k;
  if (v.starts_with("https://")) {
    v.remove_prefix(8);
  } else if (v.starts_with("http://")) {
    v.remove_prefix(7);
  }
  v = v.substr(0, v.find('/'));
  if (is_docker_hub(v) && v.find(':') == std::string_view::npos) return "docker.io";
  return std::string(v);
}

std::string auth_file_path(std::string_view docker_config_env, std::string_view home_env) {
  if (!docker_config_env.empty()) return std::string(docker_config_env) + "/config.json";
  if (!home_env.empty()) return std::string(home_env) + "/.docker/config.json";
  return {};
}

Result<AuthFile> parse_auth_file(std::string_view text) {
  auto bad = [](const std::string& where, const std::string& why) -> Status {
    return Status::InvalidArgument("docker auth file" + (where.empty() ? "" : ": " + where) + ": " +
                                   why);
  };
  if (text.size() > kMaxAuthFile)
    return bad("", std::to_string(text.size()) + " bytes, more than the maximum of " +
                       std::to_string(kMaxAuthFile));
  if (!json_nesting_within(text, 8)) return bad("", "JSON nested deeper than 8");
  try {
    const Json doc = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) return bad("", "not valid JSON");
    if (!doc.is_object()) return bad("", "not a JSON object");
    AuthFile out;
    if (auto it = doc.find("credsStore"); it != doc.end() && !it->is_null()) {
      if (!it->is_string()) return bad("credsStore", "expected a string");
      out.creds_store = it->get<std::string>();
    }
    if (auto it = doc.find("credHelpers"); it != doc.end() && !it->is_null()) {
      if (!it->is_object()) return bad("credHelpers", "expected an object");
      if (it->size() > kMaxAuthEntries)
        return bad("credHelpers", "more than " + std::to_string(kMaxAuthEntries) + " entries");
      for (const auto& [k, v] : it->items()) {
        if (!v.is_string())
          return bad("credHelpers[\"" + printable(k) + "\"]", "expected a string");
        out.cred_helpers[k] = v.get<std::string>();
      }
    }
    auto auths = doc.find("auths");
    if (auths == doc.end() || auths->is_null()) return out;
    if (!auths->is_object()) return bad("auths", "expected an object");
    if (auths->size() > kMaxAuthEntries)
      return bad("auths", "more than " + std::to_string(kMaxAuthEntries) + " entries");
    for (const auto& item : auths->items()) {
      // Named, not structured bindings: clang 14 cannot capture those.
      const std::string& key = item.key();
      const Json& entry = item.value();
      const std::string where = "auths[\"" + printable(key) + "\"]";
      if (key.empty()) return bad(where, "empty key");
      if (!entry.is_object()) return bad(where, "expected an object");
      auto field = [&](const char* name, std::string& value) -> Status {
        auto f = entry.find(name);
        if (f == entry.end() || f->is_null()) return Status::Ok();
        if (!f->is_string()) return bad(where + "." + name, "expected a string");
        const auto& s = f->get_ref<const std::string&>();
        if (s.size() > kMaxAuthField)
          return bad(where + "." + name, "longer than " + std::to_string(kMaxAuthField) + " bytes");
        value = s;
        return Status::Ok();
      };
      std::string auth;
      Credentials c;
      if (auto s = field("auth", auth); !s.ok()) return s;
      if (auto s = field("username", c.username); !s.ok()) return s;
      if (auto s = field("password", c.password); !s.ok()) return s;
      if (auto s = field("identitytoken", c.identity_token); !s.ok()) return s;
      if (!auth.empty()) {
        auto decoded = decode_base64(auth);
        if (!decoded) return bad(where + ".auth", "not valid base64");
        const auto colon = decoded->find(':');
        if (colon == std::string::npos)
          return bad(where + ".auth", "does not decode to \"user:password\"");
        c.username = decoded->substr(0, colon);
        c.password = decoded->substr(colon + 1);
      }
      if (has_forbidden_byte(c.username) || has_forbidden_byte(c.password) ||
          has_forbidden_byte(c.identity_token))
        return bad(where, "credentials contain a NUL, CR or LF byte");
      AuthEntry e;
      e.key = key;
      e.host = auth_host_key(key);
      if (e.host.empty()) return bad(where, "names no host");
      if (!c.username.empty() || !c.password.empty() || !c.identity_token.empty())
        e.credentials = std::move(c);
      out.auths.push_back(std::move(e));
    }
    return out;
  } catch (const std::exception& e) {
    return bad("", std::string("unexpected: ") + e.what());
  }
}

Result<AuthFile> load_auth_file(const std::string& path) {
  auto text = internal::read_small_file(path, kMaxAuthFile, "docker auth file");
  if (!text.ok()) return text.status();
  if (!text->has_value()) return AuthFile{};
  auto parsed = parse_auth_file(**text);
  if (!parsed.ok()) {
    // Built in steps: g++ 12 -O3 sees a false -Wrestrict in "\"" + s + "\"".
    std::string quoted = "\"";
    quoted += printable(path, 400);
    quoted += '"';
    return parsed.status().with_context(quoted);
  }
  return parsed;
}

Result<std::optional<Credentials>> find_credentials(const AuthFile& file, std::string_view host) {
  if (host.empty()) return Status::InvalidArgument("credentials lookup: empty registry host");
  const std::string want = auth_host_key(host);
  const AuthEntry* found = nullptr;
  for (const auto& e : file.auths)
    if (e.credentials && e.key == host) {
      found = &e;
      break;
    }
  if (!found && want == "docker.io") {
    for (const auto& e : file.auths)
      if (e.credentials && e.key == kDockerHubAuthKey) {
        found = &e;
        break;
      }
  }
  if (!found) {
    for (const auto& e : file.auths)
      if (e.credentials && e.host == want) {
        found = &e;
        break;
      }
  }
  if (!found || !found->credentials) return std::optional<Credentials>();
  return std::optional<Credentials>(*found->credentials);
}

}  // namespace herd::registry
