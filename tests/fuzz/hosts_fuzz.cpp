// libFuzzer target: herd's hosts.toml reader (lib/registry/hosts.h, on the
// TOML subset of toml_subset.h). Whatever parses must give at least one
// endpoint (the last is the server or the default), each with an http(s)
// scheme and a host, at most kMaxHostEndpoints + 1 of them.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "registry/hosts.h"

using namespace herd::registry;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto r = parse_hosts_toml(text, "/etc/containerd/certs.d/registry.example:5000",
                            "registry.example:5000");
  if (!r.ok()) return 0;
  if (r->endpoints.empty() || r->endpoints.size() > kMaxHostEndpoints + 1) __builtin_trap();
  for (const auto& e : r->endpoints) {
    if ((e.scheme != "http" && e.scheme != "https") || e.host.empty()) __builtin_trap();
    for (const auto& [name, values] : e.headers)
      for (const auto& v : values)
        for (char c : v)
          if (c == '\r' || c == '\n' || c == '\0') __builtin_trap();
    (void)with_namespace(e, "/v2/x/manifests/latest", "registry.example:5000");
  }
  return 0;
}
