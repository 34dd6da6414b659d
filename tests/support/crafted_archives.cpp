#include "crafted_archives.h"

#include <cstdio>
#include <cstring>

#include "common/sha256.h"

namespace herd::test::crafted {

namespace {

constexpr char kIndexType[] = "application/vnd.oci.image.index.v1+json";
constexpr char kManifestType[] = "application/vnd.oci.image.manifest.v1+json";
constexpr char kConfigType[] = "application/vnd.oci.image.config.v1+json";
constexpr char kLayerType[] = "application/vnd.oci.image.layer.v1.tar";

std::string oci_layout_file() { return R"({"imageLayoutVersion":"1.0.0"})"; }

std::string named(const std::string& image) {
  return R"("annotations":{"io.containerd.image.name":")" + image + R"("})";
}

}  // namespace

// ---------------------------------------------------------------- TarBuilder

void TarBuilder::header(const std::string& name, uint64_t size, char type,
                        const std::string& link) {
  char h[512] = {};
  std::snprintf(h, 100, "%s", name.c_str());
  std::snprintf(h + 100, 8, "%07o", 0644);
  std::snprintf(h + 108, 8, "%07o", 0);
  std::snprintf(h + 116, 8, "%07o", 0);
  std::snprintf(h + 124, 12, "%011llo", static_cast<unsigned long long>(size));
  std::snprintf(h + 136, 12, "%011o", 0);
  h[156] = type;
  std::snprintf(h + 157, 100, "%s", link.c_str());
  std::memcpy(h + 257, "ustar", 6);  // "ustar\0"
  std::memcpy(h + 263, "00", 2);
  const size_t at = out_.size();
  out_.append(h, sizeof h);
  fix_checksum(at);
}

void TarBuilder::fix_checksum(size_t offset) {
  char* h = out_.data() + offset;
  std::memset(h + 148, ' ', 8);
  unsigned sum = 0;
  for (size_t i = 0; i < 512; ++i) sum += static_cast<unsigned char>(h[i]);
  char buf[8];
  std::snprintf(buf, sizeof buf, "%06o", sum);
  std::memcpy(h + 148, buf, 7);  // six digits, NUL, then the space stays
}

void TarBuilder::data(const std::string& bytes) {
  out_ += bytes;
  out_.append((512 - bytes.size() % 512) % 512, '\0');
}

void TarBuilder::file(const std::string& name, const std::string& bytes) {
  header(name, bytes.size(), '0');
  data(bytes);
}

void TarBuilder::directory(const std::string& name) { header(name, 0, '5'); }

void TarBuilder::symlink(const std::string& name, const std::string& target) {
  header(name, 0, '2', target);
}

void TarBuilder::hardlink(const std::string& name, const std::string& target) {
  header(name, 0, '1', target);
}

void TarBuilder::gnu_long_name(const std::string& name, const std::string& bytes) {
  header("././@LongLink", name.size() + 1, 'L');
  data(name + '\0');
  file(name.substr(0, 99), bytes);
}

void TarBuilder::raw_pax(const std::string& records, const std::string& name,
                         const std::string& bytes) {
  header("PaxHeaders/" + name.substr(0, 80), records.size(), 'x');
  data(records);
  file(name.substr(0, 99), bytes);
}

std::string TarBuilder::pax_record(const std::string& key, const std::string& value) {
  const std::string body = " " + key + "=" + value + "\n";
  size_t len = body.size() + 1;
  while (std::to_string(len).size() + body.size() != len)
    len = std::to_string(len).size() + body.size();
  return std::to_string(len) + body;
}

std::string TarBuilder::finish() const { return out_ + std::string(1024, '\0'); }

// ------------------------------------------------------------- LayoutBuilder

std::string digest_of(const std::string& bytes) { return "sha256:" + herd::sha256_hex(bytes); }

std::string descriptor_json(const std::string& media_type, const std::string& bytes,
                            const std::string& extra) {
  return R"({"mediaType":")" + media_type + R"(","digest":")" + digest_of(bytes) + R"(","size":)" +
         std::to_string(bytes.size()) + (extra.empty() ? "" : "," + extra) + "}";
}

std::string LayoutBuilder::blob(const std::string& bytes) {
  std::string d = digest_of(bytes);
  blobs_.emplace_back(d, bytes);
  return d;
}

void LayoutBuilder::blob_as(const std::string& digest, const std::string& bytes) {
  blobs_.emplace_back(digest, bytes);
}

std::string LayoutBuilder::finish() const {
  TarBuilder t;
  t.file("oci-layout", oci_layout_file());
  t.file("index.json", index_);
  t.directory("blobs/");
  t.directory("blobs/sha256/");
  for (const auto& [digest, bytes] : blobs_) t.file("blobs/sha256/" + digest.substr(7), bytes);
  return t.finish();
}

TinyImage tiny_image(const std::string& architecture) {
  TinyImage img;
  TarBuilder layer;
  layer.file("hello", "hello from a crafted layer\n");
  img.layer = layer.finish();
  img.config =
      R"({"architecture":")" + architecture +
      R"(","os":"linux","config":{"Cmd":["/hello"]},"rootfs":{"type":"layers","diff_ids":[")" +
      digest_of(img.layer) + R"("]}})";
  img.manifest = R"({"schemaVersion":2,"mediaType":")" + std::string(kManifestType) +
                 R"(","config":)" + descriptor_json(kConfigType, img.config) + R"(,"layers":[)" +
                 descriptor_json(kLayerType, img.layer) + "]}";
  return img;
}

// ------------------------------------------------------------ hostile cases

std::string pax_negative_length() {
  TarBuilder t;
  t.file("oci-layout", oci_layout_file());
  t.raw_pax("-6 path=index.json\n", "index.json", "{}");
  return t.finish();
}

std::string base256_size_wrap() {
  TarBuilder t;
  t.file("oci-layout", oci_layout_file());
  const size_t at = t.bytes().size();
  t.header("index.json", 0, '0');
  // Size 2^64 - 512 in GNU base-256: 0x80 marker, then big-endian bytes.
  // pos + 512 + that, rounded to 512, is pos again modulo 2^64.
  unsigned char size[12] = {0x80, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0x00};
  std::memcpy(t.bytes().data() + at + 124, size, sizeof size);
  t.fix_checksum(at);
  return t.finish();
}

std::string self_naming_index() {
  LayoutBuilder l;
  // The digest of some other bytes; the blob stored under it names it.
  const std::string self = digest_of("not the index");
  const std::string index = R"({"schemaVersion":2,"mediaType":")" + std::string(kIndexType) +
                            R"(","manifests":[{"mediaType":")" + kIndexType + R"(","digest":")" +
                            self + R"(","size":200}]})";
  l.blob_as(self, index);
  l.index_json(R"({"schemaVersion":2,"manifests":[{"mediaType":")" + std::string(kIndexType) +
               R"(","digest":")" + self + R"(","size":)" + std::to_string(index.size()) + "," +
               named("herd.local/crafted-self-index:latest") + "}]}");
  return l.finish();
}

std::string deeply_nested_index(std::size_t depth) {
  LayoutBuilder l;
  auto img = tiny_image("amd64");
  l.blob(img.layer);
  l.blob(img.config);
  l.blob(img.manifest);
  std::string nested = std::string(depth, '[') + std::string(depth, ']');
  l.index_json(R"({"schemaVersion":2,"manifests":[)" +
               descriptor_json(kManifestType, img.manifest,
                               named("herd.local/crafted-nested:latest") + R"(,"x":)" + nested) +
               "]}");
  return l.finish();
}

std::string platform_string_index() {
  LayoutBuilder l;
  // The host's architecture does not matter: the string fails first.
  auto img = tiny_image("amd64");
  l.blob(img.layer);
  l.blob(img.config);
  l.blob(img.manifest);
  const std::string index =
      R"({"schemaVersion":2,"mediaType":")" + std::string(kIndexType) + R"(","manifests":[)" +
      descriptor_json(kManifestType, img.manifest, R"("platform":"linux/amd64")") + "]}";
  l.blob(index);
  l.index_json(R"({"schemaVersion":2,"manifests":[)" +
               descriptor_json(kIndexType, index, named(kPlatformStringImage)) + "]}");
  return l.finish();
}

std::string symlink_loop() {
  TarBuilder t;
  t.file("oci-layout", oci_layout_file());
  t.symlink("index.json", "a");
  t.symlink("a", "b");
  t.symlink("b", "index.json");
  return t.finish();
}

std::string dangling_hardlink() {
  TarBuilder t;
  t.file("oci-layout", oci_layout_file());
  t.hardlink("index.json", "nowhere.json");
  return t.finish();
}

std::string fifo_entry() {
  TarBuilder t;
  t.file("oci-layout", oci_layout_file());
  t.header("index.json", 0, '6');
  return t.finish();
}

std::string size_as_string_index() {
  LayoutBuilder l;
  auto img = tiny_image("amd64");
  l.blob(img.manifest);
  l.index_json(R"({"schemaVersion":2,"manifests":[{"mediaType":")" + std::string(kManifestType) +
               R"(","digest":")" + digest_of(img.manifest) + R"(","size":")" +
               std::to_string(img.manifest.size()) + R"(",)" +
               named("herd.local/crafted-size-string:latest") + "}]}");
  return l.finish();
}

std::string annotations_array_index() {
  LayoutBuilder l;
  auto img = tiny_image("amd64");
  l.blob(img.manifest);
  l.index_json(R"({"schemaVersion":2,"manifests":[)" +
               descriptor_json(kManifestType, img.manifest,
                               R"("annotations":["io.containerd.image.name"])") +
               "]}");
  return l.finish();
}

std::string index_chain(std::size_t levels) {
  LayoutBuilder l;
  auto img = tiny_image("amd64");
  l.blob(img.layer);
  l.blob(img.config);
  l.blob(img.manifest);
  std::string child_type = kManifestType;
  std::string child = img.manifest;
  for (std::size_t i = 0; i < levels; ++i) {
    std::string index = R"({"schemaVersion":2,"mediaType":")" + std::string(kIndexType) +
                        R"(","manifests":[)" + descriptor_json(child_type, child) + "]}";
    l.blob(index);
    child_type = kIndexType;
    child = std::move(index);
  }
  l.index_json(R"({"schemaVersion":2,"manifests":[)" +
               descriptor_json(child_type, child, named(kDeepIndexImage)) + "]}");
  return l.finish();
}

namespace {

std::string docker_archive(const std::string& tag, const std::string& layer_path,
                           const std::string& layer, const std::string& config) {
  TarBuilder t;
  t.file("config.json", config);
  t.file("abc/layer.tar", layer);
  t.file("manifest.json", R"([{"Config":"config.json","RepoTags":[")" + tag + R"("],"Layers":[")" +
                              layer_path + R"("]}])");
  return t.finish();
}

}  // namespace

std::string docker_long_repo_tag() {
  auto img = tiny_image("amd64");
  std::string tag;
  while (tag.size() < 500) tag += "ab/";
  tag += "c";
  return docker_archive(tag, "abc/layer.tar", img.layer, img.config);
}

std::string docker_layer_not_diff_id() {
  auto img = tiny_image("amd64");
  TarBuilder other;
  other.file("evil", "not the layer the config names\n");
  return docker_archive("herd.local/crafted-diff-id:1", "abc/layer.tar", other.finish(),
                        img.config);
}

std::string docker_layer_outside() {
  auto img = tiny_image("amd64");
  return docker_archive("herd.local/crafted-outside:1", "../../etc/shadow", img.layer, img.config);
}

}  // namespace herd::test::crafted
