// Docker reference parsing: the grammar of reference/docker/reference.go,
// written as small scanners instead of regular expressions.
#include "registry/reference.h"

#include "containerd/oci_parse.h"

namespace herd::registry {

namespace {

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool is_alnum(char c) { return is_lower_alnum(c) || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// domain-component := [A-Za-z0-9] | [A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]
bool valid_domain_component(std::string_view c) {
  if (c.empty() || !is_alnum(c.front()) || !is_alnum(c.back())) return false;
  for (char ch : c)
    if (!is_alnum(ch) && ch != '-') return false;
  return true;
}

// domain := domain-component ('.' domain-component)* [':' port]
bool valid_domain(std::string_view d) {
  std::string_view name = d;
  if (auto colon = d.find(':'); colon != std::string_view::npos) {
    std::string_view port = d.substr(colon + 1);
    name = d.substr(0, colon);
    if (port.empty() || port.size() > 5) return false;
    unsigned value = 0;
    for (char c : port) {
      if (!is_digit(c)) return false;
      value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value == 0 || value > 65535) return false;
  }
  std::size_t i = 0;
  while (true) {
    std::size_t j = name.find('.', i);
    if (j == std::string_view::npos) j = name.size();
    if (!valid_domain_component(name.substr(i, j - i))) return false;
    if (j == name.size()) return true;
    i = j + 1;
  }
}

// path-component := alpha-numeric (separator alpha-numeric)*
// separator := [._] | "__" | "-"+
bool valid_path_component(std::string_view c) {
  std::size_t i = 0;
  auto alnum_run = [&] {
    const std::size_t start = i;
    while (i < c.size() && is_lower_alnum(c[i])) ++i;
    return i > start;
  };
  if (!alnum_run()) return false;
  while (i < c.size()) {
    if (c[i] == '.') {
      ++i;
    } else if (c[i] == '_') {
      ++i;
      if (i < c.size() && c[i] == '_') ++i;
    } else if (c[i] == '-') {
      while (i < c.size() && c[i] == '-') ++i;
    } else {
      return false;
    }
    if (!alnum_run()) return false;
  }
  return true;
}

// tag := [\w][\w.-]{0,127}
bool valid_tag(std::string_view t) {
  if (t.empty() || t.size() > kMaxTagLength) return false;
  auto word = [](char c) { return is_alnum(c) || c == '_'; };
  if (!word(t.front())) return false;
  for (char c : t)
    if (!word(c) && c != '.' && c != '-') return false;
  return true;
}

bool all_lower_hex(std::string_view s) {
  for (char c : s)
    if (!is_digit(c) && !(c >= 'a' && c <= 'f')) return false;
  return true;
}

}  // namespace

std::string printable(std::string_view text, std::size_t max) {
  std::string out;
  const bool cut = text.size() > max;
  for (char c : text.substr(0, max)) {
    const auto u = static_cast<unsigned char>(c);
    out += (u >= 0x20 && u < 0x7f && c != '"' && c != '\\') ? c : '?';
  }
  if (cut) out += "...";
  return out;
}

bool is_docker_hub(std::string_view host) {
  std::string h;
  for (char c : host) h += ascii_lower(c);
  if (auto colon = h.find(':'); colon != std::string::npos) h.resize(colon);
  return h == "docker.io" || h == "index.docker.io" || h == "registry-1.docker.io";
}

std::string Reference::to_string() const {
  std::string out = name();
  if (!tag_.empty()) out += ":" + tag_;
  if (!digest_.empty()) out += "@" + digest_;
  return out;
}

Result<Reference> parse_reference(std::string_view text) {
  auto bad = [&](const std::string& why) -> Status {
    return Status::InvalidArgument("image reference \"" + printable(text) + "\": " + why);
  };
  if (text.empty()) return bad("empty");
  if (text.size() > kMaxReferenceLength)
    return bad("longer than " + std::to_string(kMaxReferenceLength) + " bytes");
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return bad("contains a space, control or non-ASCII byte");
  }
  if (text.size() == 64 && all_lower_hex(text))
    return bad("a 64-character hexadecimal string is an image id, not a reference");

  // splitDockerDomain: over the whole text, before tag and digest.
  Reference ref;
  std::string_view rest = text;
  if (auto slash = text.find('/'); slash != std::string_view::npos) {
    std::string_view head = text.substr(0, slash);
    if (head.find_first_of(".:") != std::string_view::npos || head == "localhost") {
      if (head.find('@') != std::string_view::npos || !valid_domain(head))
        return bad("malformed registry host \"" + printable(head) + "\"");
      ref.domain_ = std::string(head);
      rest = text.substr(slash + 1);
    }
  }
  if (ref.domain_.empty()) ref.domain_ = std::string(kDockerHubDomain);
  if (ref.domain_ == "index.docker.io") ref.domain_ = std::string(kDockerHubDomain);

  // Digest after the first '@', tag after the first ':' before it.
  if (auto at = rest.find('@'); at != std::string_view::npos) {
    std::string_view digest = rest.substr(at + 1);
    rest = rest.substr(0, at);
    if (digest.find(':') == std::string_view::npos || !digest.starts_with("sha256:"))
      return bad("digest \"" + printable(digest, 80) +
                 "\" is not sha256:<hex> (the only digest herd verifies)");
    if (!containerd::check_digest(digest).ok())
      return bad("digest \"" + printable(digest, 80) + "\" is not sha256: and 64 lowercase hex");
    ref.digest_ = std::string(digest);
  }
  std::string_view path = rest;
  if (auto colon = rest.find(':'); colon != std::string_view::npos) {
    std::string_view tag = rest.substr(colon + 1);
    path = rest.substr(0, colon);
    if (tag.size() > kMaxTagLength)
      return bad("tag longer than " + std::to_string(kMaxTagLength) + " characters");
    if (!valid_tag(tag))
      return bad("malformed tag \"" + printable(tag, 80) +
                 "\" (letters, digits, '_', '.', '-'; not starting with '.' or '-')");
    ref.tag_ = std::string(tag);
  }
  if (path.empty()) return bad("no repository name");
  for (char c : path)
    if (c >= 'A' && c <= 'Z') return bad("repository name must be lowercase");

  std::string repository(path);
  if (ref.domain_ == kDockerHubDomain && repository.find('/') == std::string::npos)
    repository = "library/" + repository;
  std::size_t i = 0;
  while (true) {
    std::size_t j = repository.find('/', i);
    if (j == std::string::npos) j = repository.size();
    std::string_view component = std::string_view(repository).substr(i, j - i);
    if (!valid_path_component(component))
      return bad("malformed repository component \"" + printable(component, 80) +
                 "\" (lowercase letters and digits joined by '.', '_', '__' or '-')");
    if (j == repository.size()) break;
    i = j + 1;
  }
  ref.repository_ = std::move(repository);
  if (ref.domain_.size() + 1 + ref.repository_.size() > kMaxNameLength)
    return bad("name \"" + printable(ref.name(), 60) + "\" longer than " +
               std::to_string(kMaxNameLength) + " characters");
  if (ref.tag_.empty() && ref.digest_.empty()) ref.tag_ = "latest";
  ref.host_ = ref.domain_ == kDockerHubDomain ? std::string(kDockerHubHost) : ref.domain_;
  return ref;
}

}  // namespace herd::registry
