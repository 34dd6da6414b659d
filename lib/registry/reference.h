// herd::registry::Reference: an image reference ("busybox", "ghcr.io/o/x:1",
// "localhost:5000/app@sha256:...") parsed and normalised exactly as docker
// does (reference/docker/reference.go, ParseDockerRef), plus what the pull
// logic needs to build URLs.
//
// Normalisation:
//   - The first path part is a registry ("domain") only if it contains a
//     '.' or a ':' or is "localhost"; otherwise the domain is "docker.io".
//     "index.docker.io" is "docker.io".
//   - docker.io names of one part get "library/": "busybox" ->
//     "docker.io/library/busybox".
//   - No tag and no digest: the tag is "latest". A digest alone keeps no tag
//     (docker adds none). Tag and digest: both are kept; object() (what is
//     fetched) is the digest.
//   - host() is the API host: "registry-1.docker.io" for docker.io, else
//     the domain as written (with its port).
//
// Rules (each failure is kInvalidArgument naming the reference and what is
// wrong, e.g. `image reference "Foo/Bar": repository name must be lowercase`):
//   - input at most kMaxReferenceLength (512) bytes; the normalised name
//     (domain + "/" + repository) at most 255 characters, docker's
//     NameTotalLengthMax;
//   - domain components [A-Za-z0-9] with inner '-', joined by '.', optional
//     ":port" (1..65535); bracketed IPv6 literals are refused (docker's
//     grammar of containerd 1.6 has none);
//   - repository components: [a-z0-9]+ joined by ".", "_", "__" or runs
//     of "-" (lowercase only);
//   - tag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127};
//   - digest: "sha256:" + 64 lowercase hex (the only algorithm herd
//     verifies), via containerd::check_digest;
//   - a bare 64-hex string is refused as docker does (it is an image id).
//
// Pure; any thread. A Reference is a plain value.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/status.h"

namespace herd::registry {

inline constexpr std::size_t kMaxReferenceLength = 512;
inline constexpr std::size_t kMaxNameLength = 255;  // domain + "/" + repository
inline constexpr std::size_t kMaxTagLength = 128;

inline constexpr std::string_view kDockerHubDomain = "docker.io";
inline constexpr std::string_view kDockerHubHost = "registry-1.docker.io";

class Reference {
 public:
  Reference() = default;

  // "docker.io", "ghcr.io", "localhost:5000": the registry as named; the
  // key for hosts.toml directories, credentials and the mirror `ns`.
  const std::string& domain() const { return domain_; }
  // The host to talk to: "registry-1.docker.io" for docker.io, else domain().
  const std::string& host() const { return host_; }
  // "library/busybox": the path in /v2/<repository>/manifests/...
  const std::string& repository() const { return repository_; }
  // "latest" when the reference named neither tag nor digest; empty when
  // it named a digest only.
  const std::string& tag() const { return tag_; }
  // "sha256:<hex>" or empty.
  const std::string& digest() const { return digest_; }
  // What to resolve: the digest when there is one, else the tag.
  const std::string& object() const { return digest_.empty() ? tag_ : digest_; }
  // "docker.io/library/busybox": domain + "/" + repository.
  std::string name() const { return domain_ + "/" + repository_; }
  // The normalised full reference: name, ":" tag if any, "@" digest if any
  // ("docker.io/library/busybox:latest"). Parsing it gives the same Reference.
  std::string to_string() const;

  friend bool operator==(const Reference&, const Reference&) = default;

 private:
  friend Result<Reference> parse_reference(std::string_view text);
  std::string domain_;
  std::string host_;
  std::string repository_;
  std::string tag_;
  std::string digest_;
};

// Parses and normalises `text` (see the rules above). Never throws.
Result<Reference> parse_reference(std::string_view text);

// Whether `host` (a reference domain or an endpoint host, with or without
// port) is Docker Hub: "docker.io", "index.docker.io" or
// "registry-1.docker.io" (ASCII case-insensitive).
bool is_docker_hub(std::string_view host);

// `text` made safe to quote in a message: at most `max` bytes, control
// characters, '"', '\\' and bytes >= 0x7f shown as '?'.
std::string printable(std::string_view text, std::size_t max = 200);

}  // namespace herd::registry
