// The hostile archives of issue 9 (tests/support/crafted_archives.h) fed to
// the archive reader and parsers: each is a clear error, found at once,
// without a hang or a crash; the platform-string index imports (its
// digests are valid) and fails when resolved.
#include <catch2/catch.hpp>

#include "containerd/byte_source.h"
#include "containerd/oci_archive.h"
#include "containerd/oci_parse.h"
#include "crafted_archives.h"

using namespace herd;
using namespace herd::containerd;
namespace crafted = herd::test::crafted;

namespace {

Result<OciArchive> open_bytes(const std::string& bytes, const std::string& name) {
  return OciArchive::open(std::make_shared<const MemorySource>(bytes, name));
}

// What import does before it talks to containerd: scan, index.json, then
// every blob verified before it is parsed, indexes to a bounded depth.
Status walk(const OciArchive& a, const OciDescriptor& d, size_t depth) {
  if (is_index_type(d.media_type) && depth >= kMaxIndexDepth)
    return Status::InvalidArgument("indexes nested deeper than 8 levels");
  auto text = a.read_verified_blob(d.digest, d.size, kMaxJsonDocument);
  if (!text.ok()) return text.status();
  if (is_index_type(d.media_type)) {
    auto idx = parse_index(*text, "index " + short_digest(d.digest), false);
    if (!idx.ok()) return idx.status();
    for (const auto& m : idx->manifests)
      if (auto s = walk(a, m, depth + 1); !s.ok()) return s;
    return Status::Ok();
  }
  return parse_manifest(*text, "manifest " + short_digest(d.digest)).status();
}

Status import_checks(const std::string& bytes) {
  auto a = open_bytes(bytes, "crafted.tar");
  if (!a.ok()) return a.status();
  auto idx = a->index();
  if (!idx.ok()) return idx.status();
  for (const auto& e : *idx)
    if (auto s = walk(*a, e.descriptor, 0); !s.ok()) return s;
  return Status::Ok();
}

}  // namespace

TEST_CASE("crafted: the archives are small") {
  for (const auto& bytes :
       {crafted::pax_negative_length(), crafted::base256_size_wrap(), crafted::self_naming_index(),
        crafted::deeply_nested_index(), crafted::platform_string_index(), crafted::symlink_loop(),
        crafted::dangling_hardlink(), crafted::fifo_entry(), crafted::size_as_string_index(),
        crafted::annotations_array_index(), crafted::index_chain(9)}) {
    CHECK(bytes.size() < 500 * 1024);
    CHECK(bytes.size() % 512 == 0);
  }
}

TEST_CASE("crafted: a pax record length of -6 is an error naming the header") {
  auto s = import_checks(crafted::pax_negative_length());
  REQUIRE_FALSE(s.ok());
  CHECK(s.code() == Code::kDataLoss);
  CHECK_THAT(s.message(),
             Catch::Contains("archive crafted.tar: tar header at offset 1024: pax header"));
  CHECK_THAT(s.message(), Catch::Contains("'-6 path=' is not a positive decimal"));
}

TEST_CASE("crafted: a base-256 size wrapping the next header is an error") {
  auto s = import_checks(crafted::base256_size_wrap());
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("offset 1024"));
  CHECK_THAT(s.message(), Catch::Contains("runs past the end of the archive"));
}

TEST_CASE("crafted: an index naming its own digest fails verification") {
  auto s = import_checks(crafted::self_naming_index());
  REQUIRE_FALSE(s.ok());
  CHECK(s.code() == Code::kDataLoss);
  CHECK_THAT(s.message(), Catch::Contains("do not match the digest"));
}

TEST_CASE("crafted: 200 000 nested arrays in index.json are refused before parsing") {
  auto s = import_checks(crafted::deeply_nested_index());
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("index.json: JSON nested deeper than 64 levels"));
}

TEST_CASE("crafted: a string platform imports, and resolving it is a clear error") {
  const std::string bytes = crafted::platform_string_index();
  auto s = import_checks(bytes);
  INFO(s.to_string());
  CHECK(s.ok());
  auto a = open_bytes(bytes, "crafted.tar");
  REQUIRE(a.ok());
  auto idx = a->index();
  REQUIRE(idx.ok());
  REQUIRE(idx->size() == 1);
  CHECK((*idx)[0].image_name == crafted::kPlatformStringImage);
  const auto& d = (*idx)[0].descriptor;
  auto text = a->read_verified_blob(d.digest, d.size, kMaxJsonDocument);
  REQUIRE(text.ok());
  auto strict = parse_index(*text, "index " + short_digest(d.digest), true);
  REQUIRE_FALSE(strict.ok());
  CHECK_THAT(strict.status().message(),
             Catch::EndsWith("manifests[0].platform: expected an object"));
}

TEST_CASE("crafted: links, FIFOs and wrong types found by review and fuzzing") {
  auto loop = import_checks(crafted::symlink_loop());
  REQUIRE_FALSE(loop.ok());
  CHECK_THAT(loop.message(), Catch::Contains("symlink hops"));
  auto hard = import_checks(crafted::dangling_hardlink());
  REQUIRE_FALSE(hard.ok());
  CHECK_THAT(hard.message(), Catch::Contains("no earlier regular file"));
  auto fifo = import_checks(crafted::fifo_entry());
  REQUIRE_FALSE(fifo.ok());
  CHECK_THAT(fifo.message(), Catch::Contains("'index.json' at offset 1024: FIFOs are not allowed"));
  auto size = import_checks(crafted::size_as_string_index());
  REQUIRE_FALSE(size.ok());
  CHECK_THAT(size.message(), Catch::Contains("index.json: manifests[0].size: expected an integer"));
  auto ann = import_checks(crafted::annotations_array_index());
  REQUIRE_FALSE(ann.ok());
  CHECK_THAT(ann.message(), Catch::Contains("manifests[0].annotations: expected an object"));
}

TEST_CASE("crafted: index nesting stops at 8 levels") {
  CHECK(import_checks(crafted::index_chain(8)).ok());
  auto deep = import_checks(crafted::index_chain(9));
  REQUIRE_FALSE(deep.ok());
  CHECK_THAT(deep.message(), Catch::Contains("deeper than 8"));
}

TEST_CASE("crafted: the tiny image is a valid layout") {
  crafted::LayoutBuilder l;
  auto img = crafted::tiny_image("amd64");
  l.blob(img.layer);
  l.blob(img.config);
  l.blob(img.manifest);
  l.index_json(
      R"({"schemaVersion":2,"manifests":[)" +
      crafted::descriptor_json("application/vnd.oci.image.manifest.v1+json", img.manifest,
                               R"("annotations":{"io.containerd.image.name":"herd.local/t:1"})") +
      "]}");
  CHECK(import_checks(l.finish()).ok());
}

TEST_CASE("crafted: docker-save archives with a bad tag, layer or path") {
  auto long_tag = open_bytes(crafted::docker_long_repo_tag(), "crafted.tar");
  REQUIRE(long_tag.ok());
  auto m = long_tag->docker_manifest();
  REQUIRE(m.ok());
  auto n = normalize_docker_ref(m->at(0).repo_tags.at(0));
  REQUIRE_FALSE(n.ok());
  CHECK_THAT(n.status().message(), Catch::Contains("once normalised"));

  auto diff = open_bytes(crafted::docker_layer_not_diff_id(), "crafted.tar");
  REQUIRE(diff.ok());
  auto h = diff->hash_file("abc/layer.tar");
  REQUIRE(h.ok());
  CHECK_FALSE(h->gzip);
  auto dm = diff->docker_manifest();
  REQUIRE(dm.ok());
  auto cfg = diff->read_file("config.json");
  REQUIRE(cfg.ok());
  CHECK(cfg->find(h->digest) == std::string::npos);  // the config names another layer

  auto out = open_bytes(crafted::docker_layer_outside(), "crafted.tar");
  REQUIRE(out.ok());
  auto om = out->docker_manifest();
  REQUIRE(om.ok());
  CHECK_FALSE(normalize_tar_path(om->at(0).layers.at(0)).ok());
}
