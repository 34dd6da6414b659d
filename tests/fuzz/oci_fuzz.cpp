// libFuzzer target: the OCI / docker JSON parsers of oci_parse.h (index,
// manifest, index.json, docker manifest.json, reference normalisation),
// and the image-config parsers of oci_spec.h behind the same nesting
// check import and resolve use. The first byte picks the parser.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/json_limits.h"
#include "containerd/oci_parse.h"
#include "containerd/oci_spec.h"

using namespace herd::containerd;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::string what = "fuzz";
  switch (data[0] % 6) {
    case 0: {
      auto i = parse_index(text, what, true);
      if (i.ok()) {
        for (const auto& m : i->manifests)
          if (m.platform) (void)platform_match(*m.platform, host_platform());
      }
      break;
    }
    case 1: {
      auto m = parse_manifest(text, what);
      // What herd synthesises from a parsed manifest parses back.
      if (m.ok() && !parse_manifest(docker_manifest_json(m->config, m->layers), what).ok())
        __builtin_trap();
      break;
    }
    case 2:
      (void)parse_layout_index(text, what);
      break;
    case 3: {
      auto d = parse_docker_manifest(text, what);
      if (d.ok())
        for (const auto& img : *d)
          for (const auto& tag : img.repo_tags) (void)normalize_docker_ref(tag);
      break;
    }
    case 4:
      if (herd::json_nesting_within(text)) {
        (void)parse_diff_ids(text);
        (void)parse_image_config(text);
      }
      break;
    case 5: {
      auto r = normalize_docker_ref(text);
      // Normalising is idempotent.
      if (r.ok() && normalize_docker_ref(*r).value() != *r) __builtin_trap();
      break;
    }
  }
  return 0;
}
