#include "containerd/oci_parse.h"

#include <exception>
#include <nlohmann/json.hpp>

#include "common/json_limits.h"

namespace herd::containerd {

using nlohmann::json;

namespace {

std::string join(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

// Type-checked reads of a parsed document; every error names `what_` and
// the field path.
class Parser {
 public:
  explicit Parser(const std::string& what) : what_(what) {}

  Status error(const std::string& path, const std::string& msg) const {
    return Status::InvalidArgument(what_ + ": " + (path.empty() ? "" : path + ": ") + msg);
  }

  Result<json> parse(std::string_view text, size_t max_size) const {
    if (text.size() > max_size)
      return error("", "document of " + std::to_string(text.size()) + " bytes (at most " +
                           std::to_string(max_size) + ")");
    if (!json_nesting_within(text, kMaxJsonDepth))
      return error("", "JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return error("", "not valid JSON");
    return j;
  }

  Status object(const json& j, const std::string& path) const {
    return j.is_object() ? Status::Ok() : error(path, "expected an object");
  }
  Status array(const json& j, const std::string& path, size_t max) const {
    if (!j.is_array()) return error(path, "expected an array");
    if (j.size() > max)
      return error(path,
                   std::to_string(j.size()) + " entries (at most " + std::to_string(max) + ")");
    return Status::Ok();
  }
  Status string(const json& j, const std::string& path, std::string& out) const {
    if (!j.is_string()) return error(path, "expected a string");
    out = j.get<std::string>();
    return Status::Ok();
  }
  // obj[key] must exist and be a string.
  Status required_string(const json& obj, const std::string& path, const char* key,
                         std::string& out) const {
    auto it = obj.find(key);
    if (it == obj.end()) return error(join(path, key), "missing");
    return string(*it, join(path, key), out);
  }
  // obj[key] may be absent; when present it must be a string.
  Status optional_string(const json& obj, const std::string& path, const char* key,
                         std::string& out) const {
    auto it = obj.find(key);
    if (it == obj.end()) return Status::Ok();
    return string(*it, join(path, key), out);
  }

  Status string_map(const json& j, const std::string& path,
                    std::map<std::string, std::string>& out) const {
    if (auto s = object(j, path); !s.ok()) return s;
    if (j.size() > kMaxAnnotations)
      return error(path, std::to_string(j.size()) + " entries (at most " +
                             std::to_string(kMaxAnnotations) + ")");
    for (auto it = j.begin(); it != j.end(); ++it) {
      std::string v;
      if (auto s = string(it.value(), join(path, it.key()), v); !s.ok()) return s;
      out.emplace(it.key(), std::move(v));
    }
    return Status::Ok();
  }

  Status platform(const json& j, const std::string& path, Platform& p) const {
    if (auto s = object(j, path); !s.ok()) return s;
    if (auto s = required_string(j, path, "os", p.os); !s.ok()) return s;
    if (auto s = required_string(j, path, "architecture", p.architecture); !s.ok()) return s;
    if (auto s = optional_string(j, path, "variant", p.variant); !s.ok()) return s;
    std::string ignored;
    if (auto s = optional_string(j, path, "os.version", ignored); !s.ok()) return s;
    if (auto it = j.find("os.features"); it != j.end()) {
      if (auto s = array(*it, join(path, "os.features"), kMaxAnnotations); !s.ok()) return s;
    }
    return Status::Ok();
  }

  Status descriptor(const json& j, const std::string& path, bool with_platform,
                    OciDescriptor& d) const {
    if (auto s = object(j, path); !s.ok()) return s;
    if (auto s = required_string(j, path, "mediaType", d.media_type); !s.ok()) return s;
    if (auto s = required_string(j, path, "digest", d.digest); !s.ok()) return s;
    if (auto s = check_digest(d.digest); !s.ok()) return error(join(path, "digest"), s.message());
    auto size = j.find("size");
    if (size == j.end()) return error(join(path, "size"), "missing");
    if (!size->is_number_integer()) return error(join(path, "size"), "expected an integer");
    if (size->is_number_unsigned() ? size->get<uint64_t>() > uint64_t{1} << 62
                                   : size->get<int64_t>() < 0)
      return error(join(path, "size"), "out of range");
    d.size = size->get<int64_t>();
    if (auto it = j.find("annotations"); it != j.end()) {
      if (auto s = string_map(*it, join(path, "annotations"), d.annotations); !s.ok()) return s;
    }
    if (auto it = j.find("urls"); it != j.end()) {
      if (auto s = array(*it, join(path, "urls"), kMaxAnnotations); !s.ok()) return s;
    }
    if (with_platform) {
      if (auto it = j.find("platform"); it != j.end()) {
        Platform p;
        if (auto s = platform(*it, join(path, "platform"), p); !s.ok()) return s;
        d.platform = std::move(p);
      }
    }
    return Status::Ok();
  }

  Status descriptors(const json& doc, const char* key, bool with_platform,
                     std::vector<OciDescriptor>& out) const {
    auto it = doc.find(key);
    if (it == doc.end()) return error(key, "missing");
    if (auto s = array(*it, key, kMaxDescriptors); !s.ok()) return s;
    out.reserve(it->size());
    for (size_t i = 0; i < it->size(); ++i) {
      OciDescriptor d;
      const std::string path = std::string(key) + "[" + std::to_string(i) + "]";
      if (auto s = descriptor((*it)[i], path, with_platform, d); !s.ok()) return s;
      out.push_back(std::move(d));
    }
    return Status::Ok();
  }

  // The document's own mediaType, when it has one, must be `a` or `b`.
  Status own_media_type(const json& doc, std::string_view a, std::string_view b) const {
    std::string mt;
    if (auto s = optional_string(doc, "", "mediaType", mt); !s.ok()) return s;
    if (!mt.empty() && mt != a && mt != b) return error("mediaType", "unexpected \"" + mt + "\"");
    return Status::Ok();
  }

 private:
  const std::string& what_;
};

// Runs a parser, turning any exception (there should be none) into a Status.
template <class F>
auto no_throw(const std::string& what, F f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::exception& e) {
    return Status::InvalidArgument(what + ": " + e.what());
  } catch (...) {
    return Status::InvalidArgument(what + ": malformed");
  }
}

bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

// Docker's path components: [a-z0-9]+ joined by '.', '_', '__' or '-'+.
bool valid_path_component(std::string_view c) {
  if (c.empty()) return false;
  auto alnum = [](char ch) { return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'); };
  if (!alnum(c.front()) || !alnum(c.back())) return false;
  for (size_t i = 0; i < c.size(); ++i) {
    const char ch = c[i];
    if (alnum(ch) || ch == '-') continue;
    if (ch == '.' || ch == '_') {
      if (ch == '_' && i + 1 < c.size() && c[i + 1] == '_') ++i;  // "__"
      if (i + 1 < c.size() && !alnum(c[i + 1])) return false;
      continue;
    }
    return false;
  }
  return true;
}

// host[:port]: host of letters, digits, '.' and '-'; port of digits.
bool valid_domain(std::string_view d) {
  if (d.empty() || d.size() > 255) return false;
  std::string_view host = d;
  if (auto colon = d.find(':'); colon != std::string_view::npos) {
    host = d.substr(0, colon);
    std::string_view port = d.substr(colon + 1);
    if (port.empty() || port.size() > 5) return false;
    for (char ch : port)
      if (ch < '0' || ch > '9') return false;
  }
  if (host.empty() || host.front() == '.' || host.front() == '-') return false;
  for (char ch : host)
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
          ch == '.' || ch == '-'))
      return false;
  return true;
}

bool valid_tag(std::string_view t) {
  if (t.empty() || t.size() > 128) return false;
  for (size_t i = 0; i < t.size(); ++i) {
    const char ch = t[i];
    const bool word = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                      (ch >= '0' && ch <= '9') || ch == '_';
    if (!word && (i == 0 || (ch != '.' && ch != '-'))) return false;
  }
  return true;
}

}  // namespace

bool is_index_type(std::string_view mt) { return mt == kOciIndexType || mt == kDockerListType; }
bool is_manifest_type(std::string_view mt) {
  return mt == kOciManifestType || mt == kDockerManifestType;
}

Status check_digest(std::string_view digest) {
  constexpr std::string_view kPrefix = "sha256:";
  if (digest.substr(0, kPrefix.size()) != kPrefix || digest.size() != kPrefix.size() + 64)
    return Status::InvalidArgument("malformed digest \"" + short_digest(digest) +
                                   "\" (expected sha256:<64 hex digits>)");
  for (size_t i = kPrefix.size(); i < digest.size(); ++i)
    if (!is_hex(digest[i]))
      return Status::InvalidArgument("malformed digest \"" + short_digest(digest) +
                                     "\" (expected sha256:<64 hex digits>)");
  return Status::Ok();
}

Result<std::string> blob_path(std::string_view digest) {
  if (auto s = check_digest(digest); !s.ok()) return s;
  return "blobs/sha256/" + std::string(digest.substr(7));
}

std::string short_digest(std::string_view digest) {
  std::string out;
  const size_t keep = std::min<size_t>(digest.size(), 19);  // "sha256:" + 12 hex
  for (size_t i = 0; i < keep; ++i) {
    const auto c = static_cast<unsigned char>(digest[i]);
    out += (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? static_cast<char>(c) : '?';
  }
  if (digest.size() > keep) out += "…";
  return out;
}

Result<OciManifest> parse_manifest(std::string_view text, const std::string& what) {
  return no_throw(what, [&]() -> Result<OciManifest> {
    Parser p(what);
    auto doc = p.parse(text, kMaxJsonDocument);
    if (!doc.ok()) return doc.status();
    if (auto s = p.object(*doc, ""); !s.ok()) return s;
    if (auto s = p.own_media_type(*doc, kOciManifestType, kDockerManifestType); !s.ok()) return s;
    OciManifest m;
    auto cfg = doc->find("config");
    if (cfg == doc->end()) return p.error("config", "missing");
    if (auto s = p.descriptor(*cfg, "config", false, m.config); !s.ok()) return s;
    if (auto s = p.descriptors(*doc, "layers", false, m.layers); !s.ok()) return s;
    return m;
  });
}

Result<OciIndex> parse_index(std::string_view text, const std::string& what, bool with_platforms) {
  return no_throw(what, [&]() -> Result<OciIndex> {
    Parser p(what);
    auto doc = p.parse(text, kMaxJsonDocument);
    if (!doc.ok()) return doc.status();
    if (auto s = p.object(*doc, ""); !s.ok()) return s;
    if (auto s = p.own_media_type(*doc, kOciIndexType, kDockerListType); !s.ok()) return s;
    OciIndex idx;
    if (auto s = p.descriptors(*doc, "manifests", with_platforms, idx.manifests); !s.ok()) return s;
    return idx;
  });
}

Result<std::vector<LayoutEntry>> parse_layout_index(std::string_view text,
                                                    const std::string& what) {
  auto idx = parse_index(text, what, /*with_platforms=*/false);
  if (!idx.ok()) return idx.status();
  std::vector<LayoutEntry> out;
  for (size_t i = 0; i < idx->manifests.size(); ++i) {
    LayoutEntry e;
    e.descriptor = std::move(idx->manifests[i]);
    const auto& mt = e.descriptor.media_type;
    if (!is_index_type(mt) && !is_manifest_type(mt))
      return Status::InvalidArgument(what + ": manifests[" + std::to_string(i) +
                                     "].mediaType: unsupported \"" + mt + "\"");
    const auto& a = e.descriptor.annotations;
    if (auto it = a.find("io.containerd.image.name"); it != a.end()) {
      e.image_name = it->second;
    } else if (auto ref = a.find("org.opencontainers.image.ref.name"); ref != a.end()) {
      // A bare tag ("latest") names no image; a full reference does.
      if (ref->second.find('/') != std::string::npos || ref->second.find(':') != std::string::npos)
        e.image_name = ref->second;
    }
    out.push_back(std::move(e));
  }
  return out;
}

Result<std::vector<DockerArchiveImage>> parse_docker_manifest(std::string_view text,
                                                              const std::string& what) {
  return no_throw(what, [&]() -> Result<std::vector<DockerArchiveImage>> {
    Parser p(what);
    auto doc = p.parse(text, kMaxJsonDocument);
    if (!doc.ok()) return doc.status();
    if (auto s = p.array(*doc, "", kMaxDockerImages); !s.ok()) return s;
    std::vector<DockerArchiveImage> out;
    for (size_t i = 0; i < doc->size(); ++i) {
      const json& e = (*doc)[i];
      const std::string path = "[" + std::to_string(i) + "]";
      if (auto s = p.object(e, path); !s.ok()) return s;
      DockerArchiveImage img;
      if (auto s = p.required_string(e, path, "Config", img.config); !s.ok()) return s;
      if (auto tags = e.find("RepoTags"); tags != e.end() && !tags->is_null()) {
        if (auto s = p.array(*tags, path + ".RepoTags", kMaxAnnotations); !s.ok()) return s;
        for (size_t t = 0; t < tags->size(); ++t) {
          std::string tag;
          if (auto s = p.string((*tags)[t], path + ".RepoTags[" + std::to_string(t) + "]", tag);
              !s.ok())
            return s;
          img.repo_tags.push_back(std::move(tag));
        }
      }
      auto layers = e.find("Layers");
      if (layers == e.end()) return p.error(path + ".Layers", "missing");
      if (auto s = p.array(*layers, path + ".Layers", kMaxDescriptors); !s.ok()) return s;
      for (size_t l = 0; l < layers->size(); ++l) {
        std::string layer;
        if (auto s = p.string((*layers)[l], path + ".Layers[" + std::to_string(l) + "]", layer);
            !s.ok())
          return s;
        img.layers.push_back(std::move(layer));
      }
      out.push_back(std::move(img));
    }
    return out;
  });
}

std::string docker_manifest_json(const OciDescriptor& config,
                                 const std::vector<OciDescriptor>& layers) {
  auto desc = [](const OciDescriptor& d) {
    json j = json::object();
    j["mediaType"] = d.media_type;
    j["digest"] = d.digest;
    j["size"] = d.size;
    return j;
  };
  json m = json::object();
  m["schemaVersion"] = 2;
  m["mediaType"] = kDockerManifestType;
  m["config"] = desc(config);
  json ls = json::array();
  for (const auto& l : layers) ls.push_back(desc(l));
  m["layers"] = std::move(ls);
  return m.dump();
}

Result<std::string> normalize_docker_ref(std::string_view ref) {
  auto bad = [&](const std::string& why) {
    std::string shown;
    for (char c : ref.substr(0, 200))
      shown += (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f && c != '"') ? c : '?';
    return Status::InvalidArgument("image reference \"" + shown + "\": " + why);
  };
  if (ref.empty()) return bad("empty");
  if (ref.size() > 512) return bad("longer than 512 characters");
  std::string_view name = ref;
  std::string digest;
  if (auto at = name.find('@'); at != std::string_view::npos) {
    digest = std::string(name.substr(at + 1));
    name = name.substr(0, at);
    if (!check_digest(digest).ok()) return bad("malformed digest");
  }
  std::string tag;
  const auto slash = name.rfind('/');
  const auto colon = name.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    tag = std::string(name.substr(colon + 1));
    name = name.substr(0, colon);
    if (!valid_tag(tag)) return bad("malformed tag");
  }
  std::string domain = "docker.io";
  std::string_view path = name;
  if (auto first = name.find('/'); first != std::string_view::npos) {
    std::string_view head = name.substr(0, first);
    if (head.find('.') != std::string_view::npos || head.find(':') != std::string_view::npos ||
        head == "localhost") {
      domain = std::string(head);
      path = name.substr(first + 1);
      if (!valid_domain(domain)) return bad("malformed registry host");
    }
  }
  if (domain == "index.docker.io") domain = "docker.io";
  std::string full_path(path);
  if (domain == "docker.io" && full_path.find('/') == std::string::npos)
    full_path = "library/" + full_path;
  size_t i = 0;
  while (i <= full_path.size()) {
    size_t j = full_path.find('/', i);
    if (j == std::string::npos) j = full_path.size();
    if (!valid_path_component(std::string_view(full_path).substr(i, j - i)))
      return bad("malformed repository name (lower-case letters, digits and separators)");
    i = j + 1;
  }
  std::string out = domain + "/" + full_path;
  if (tag.empty() && digest.empty()) tag = "latest";
  if (!tag.empty()) out += ":" + tag;
  if (!digest.empty()) out += "@" + digest;
  // The bound holds for the result too, so a normalised reference
  // normalises to itself (found by oci_fuzz).
  if (out.size() > 512) return bad("longer than 512 characters once normalised");
  return out;
}

namespace {

std::string_view build_architecture() {
#if defined(__x86_64__)
  return "amd64";
#elif defined(__aarch64__)
  return "arm64";
#elif defined(__arm__)
  return "arm";
#elif defined(__i386__)
  return "386";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  return "ppc64le";
#elif defined(__s390x__)
  return "s390x";
#elif defined(__riscv) && __riscv_xlen == 64
  return "riscv64";
#else
  return "unknown";
#endif
}

std::string_view build_variant() {
#if defined(__aarch64__)
  return "v8";
#elif defined(__arm__) && defined(__ARM_ARCH) && __ARM_ARCH >= 8
  return "v8";
#elif defined(__arm__) && defined(__ARM_ARCH) && __ARM_ARCH == 7
  return "v7";
#elif defined(__arm__)
  return "v6";
#else
  return "";
#endif
}

std::string normalize_arch(std::string a) {
  if (a == "x86_64" || a == "x86-64") return "amd64";
  if (a == "aarch64") return "arm64";
  return a;
}

}  // namespace

Platform host_platform() {
  return Platform{"linux", std::string(build_architecture()), std::string(build_variant())};
}

int platform_match(const Platform& p, const Platform& host) {
  if (p.os != host.os) return 0;
  if (normalize_arch(p.architecture) != normalize_arch(host.architecture)) return 0;
  const std::string arch = normalize_arch(host.architecture);
  if (arch != "arm" && arch != "arm64") return 2;  // variants matter for arm only
  if (p.variant == host.variant) return 2;
  if (p.variant.empty()) return 1;
  if (arch == "arm64") return p.variant == "v8" ? 2 : 0;
  // arm: vN runs code for v5..vN.
  if (p.variant.size() == 2 && p.variant[0] == 'v' && host.variant.size() == 2 &&
      p.variant[1] >= '5' && p.variant[1] <= host.variant[1])
    return 1;
  return 0;
}

}  // namespace herd::containerd
