// herd::test::crafted: the bytes of hostile image archives (issue 9's
// table, plus what fuzzing found), for unit tests of the reader and
// parsers and for tests that feed them to a real herdd. Each is small
// (< 500 KB) and deterministic. Also a little tar/OCI-layout builder the
// cases are made with, usable for well-formed archives too.
//
// Proto-free; pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace herd::test::crafted {

// Writes ustar entries. Every header gets a valid checksum unless the
// caller patches bytes afterwards.
class TarBuilder {
 public:
  // A raw 512-byte header: name, size (octal), type, link name.
  void header(const std::string& name, uint64_t size, char type, const std::string& link = "");
  // Data padded to 512 bytes.
  void data(const std::string& bytes);
  void file(const std::string& name, const std::string& bytes);
  void directory(const std::string& name);
  void symlink(const std::string& name, const std::string& target);
  void hardlink(const std::string& name, const std::string& target);
  void gnu_long_name(const std::string& name, const std::string& bytes);
  // A pax 'x' header with `records` as they are (no length computed),
  // then a regular file.
  void raw_pax(const std::string& records, const std::string& name, const std::string& bytes);
  // A well-formed pax record "<len> key=value\n".
  static std::string pax_record(const std::string& key, const std::string& value);
  // Recomputes the checksum of the header starting at `offset`.
  void fix_checksum(size_t offset);
  // The bytes so far (no end marker); patch them through this.
  std::string& bytes() { return out_; }
  // The archive with its end-of-archive marker.
  std::string finish() const;

 private:
  std::string out_;
};

// An OCI image layout builder: blobs by content, one index.json.
class LayoutBuilder {
 public:
  // Adds a blob; returns its digest "sha256:<hex>".
  std::string blob(const std::string& bytes);
  // Adds a blob under the name of `digest` whatever its bytes are.
  void blob_as(const std::string& digest, const std::string& bytes);
  // index.json: given as text.
  void index_json(const std::string& text) { index_ = text; }
  std::string finish() const;

 private:
  std::vector<std::pair<std::string, std::string>> blobs_;  // digest, bytes
  std::string index_;
};

// "sha256:<hex>" of bytes.
std::string digest_of(const std::string& bytes);
// A descriptor JSON object.
std::string descriptor_json(const std::string& media_type, const std::string& bytes,
                            const std::string& extra = "");

// A valid, tiny single-layer image (a layer holding /hello), as JSON texts.
struct TinyImage {
  std::string layer;     // an uncompressed tar
  std::string config;    // OCI image config for linux/<arch>
  std::string manifest;  // OCI manifest naming both
};
TinyImage tiny_image(const std::string& architecture);

// --- the hostile archives (each an OCI layout or a bare tar) ---

// A pax header whose record length is "-6".
std::string pax_negative_length();
// A tar entry whose GNU base-256 size (2^64 - 512) would wrap the
// next-header offset back onto the same header.
std::string base256_size_wrap();
// An OCI layout whose index blob names its own digest (so its bytes
// cannot match that digest).
std::string self_naming_index();
// An OCI layout whose index.json entry holds `depth` nested JSON arrays.
std::string deeply_nested_index(std::size_t depth = 200000);
// An OCI layout, valid digests throughout, whose image index says
// "platform": "linux/amd64" (a string). Imports; resolving it must fail.
// Image name: kPlatformStringImage.
inline constexpr char kPlatformStringImage[] = "herd.local/crafted-platform-string:latest";
std::string platform_string_index();
// Found while fuzzing / reviewing: a symlink loop; a hard link to nothing;
// a FIFO entry; an index whose descriptor size is a string; annotations
// given as an array; index nested deeper than the depth limit (9 levels,
// valid digests).
std::string symlink_loop();
std::string dangling_hardlink();
std::string fifo_entry();
std::string size_as_string_index();
std::string annotations_array_index();
inline constexpr char kDeepIndexImage[] = "herd.local/crafted-deep-index:latest";
std::string index_chain(std::size_t levels);
// docker-save archives: a RepoTag of 500 characters that normalises past
// the 512 bound (oci_fuzz found the parser case); an uncompressed layer
// whose sha256 is not the config's diff id; a layer path climbing out of
// the archive.
std::string docker_long_repo_tag();
std::string docker_layer_not_diff_id();
std::string docker_layer_outside();

}  // namespace herd::test::crafted
