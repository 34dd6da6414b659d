// libFuzzer target: WWW-Authenticate parsing, challenge selection, token
// URLs and token answers (lib/registry/challenge.h). The first byte picks
// the parser. Invariants: schemes and parameter names come back
// lower-case; a Bearer realm that builds a URL starts with it.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "registry/challenge.h"

using namespace herd::registry;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    auto r = parse_challenges(text);
    if (!r.ok()) return 0;
    for (const auto& c : *r) {
      for (char ch : c.scheme)
        if (ch >= 'A' && ch <= 'Z') __builtin_trap();
      for (const auto& [k, v] : c.params)
        for (char ch : k)
          if (ch >= 'A' && ch <= 'Z') __builtin_trap();
    }
    if (const Challenge* c = select_challenge(*r)) {
      const std::string realm = c->param("realm");
      auto url = bearer_token_url(realm, c->param("service"), {pull_scope("library/x")});
      if (url.ok() && url->compare(0, realm.size(), realm) != 0) __builtin_trap();
    }
  } else {
    auto t = parse_token_response(text);
    if (t.ok() && (t->token.empty() || t->expires_in < kMinTokenLifetime)) __builtin_trap();
  }
  return 0;
}
