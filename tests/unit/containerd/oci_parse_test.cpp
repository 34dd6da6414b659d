// Unit tests of the pure OCI/docker parsers (lib/containerd/oci_parse.h):
// valid documents, and for each wrong type a clear error naming the
// document and the field path.
#include <catch2/catch.hpp>

#include "containerd/oci_parse.h"
#include "crafted_archives.h"

using namespace herd;
using namespace herd::containerd;
namespace crafted = herd::test::crafted;

namespace {

const std::string kD1 = "sha256:" + std::string(64, 'a');
const std::string kD2 = "sha256:" + std::string(64, 'b');

std::string desc(const std::string& mt, const std::string& d, const std::string& extra = "") {
  return R"({"mediaType":")" + mt + R"(","digest":")" + d + R"(","size":12)" +
         (extra.empty() ? "" : "," + extra) + "}";
}

std::string index_with(const std::string& entry) {
  return R"({"schemaVersion":2,"manifests":[)" + entry + "]}";
}

}  // namespace

TEST_CASE("oci: a manifest parses into config and layers") {
  const std::string text = R"({"schemaVersion":2,"mediaType":")" + std::string(kOciManifestType) +
                           R"(","config":)" +
                           desc("application/vnd.oci.image.config.v1+json", kD1) +
                           R"(,"layers":[)" + desc("l", kD2) + "," + desc("l", kD1) + "]}";
  auto m = parse_manifest(text, "manifest x");
  INFO(m.status().to_string());
  REQUIRE(m.ok());
  CHECK(m->config.digest == kD1);
  REQUIRE(m->layers.size() == 2);
  CHECK(m->layers[0].digest == kD2);
  CHECK(m->layers[1].size == 12);
}

TEST_CASE("oci: wrong types are errors naming the document and field path") {
  struct Case {
    std::string text;
    const char* says;
  };
  const std::string cfg = desc("c", kD1);
  for (const auto& c : {
           Case{"[]", "manifest sha256:x: expected an object"},
           Case{"{", "not valid JSON"},
           Case{R"({"layers":[]})", "config: missing"},
           Case{R"({"config":"x","layers":[]})", "config: expected an object"},
           Case{R"({"config":)" + cfg + "}", "layers: missing"},
           Case{R"({"config":)" + cfg + R"(,"layers":{}})", "layers: expected an array"},
           Case{R"({"config":)" + cfg + R"(,"layers":[1]})", "layers[0]: expected an object"},
           Case{R"({"config":{"mediaType":"c","digest":")" + kD1 + R"(","size":"12"},"layers":[]})",
                "config.size: expected an integer"},
           Case{R"({"config":{"mediaType":"c","digest":")" + kD1 + R"(","size":-1},"layers":[]})",
                "config.size: out of range"},
           Case{R"({"config":{"mediaType":"c","digest":")" + kD1 + R"(","size":1.5},"layers":[]})",
                "config.size: expected an integer"},
           Case{R"({"config":{"mediaType":"c","digest":"md5:00","size":1},"layers":[]})",
                "config.digest: malformed digest"},
           Case{R"({"config":{"mediaType":7,"digest":")" + kD1 + R"(","size":1},"layers":[]})",
                "config.mediaType: expected a string"},
           Case{R"({"config":)" + desc("c", kD1, R"("annotations":["a"])") + R"(,"layers":[]})",
                "config.annotations: expected an object"},
           Case{R"({"config":)" + desc("c", kD1, R"("annotations":{"a":1})") + R"(,"layers":[]})",
                "config.annotations.a: expected a string"},
           Case{R"({"mediaType":"text/plain","config":)" + cfg + R"(,"layers":[]})",
                "mediaType: unexpected"},
       }) {
    auto m = parse_manifest(c.text, "manifest sha256:x");
    INFO(c.text << " -> " << m.status().to_string());
    REQUIRE_FALSE(m.ok());
    CHECK(m.status().code() == Code::kInvalidArgument);
    CHECK_THAT(m.status().message(), Catch::StartsWith("manifest sha256:x"));
    CHECK_THAT(m.status().message(), Catch::Contains(c.says));
  }
}

TEST_CASE("oci: an index's platform is read only when asked for, and type-checked") {
  const std::string text =
      index_with(desc(std::string(kOciManifestType), kD1, R"("platform":"linux/amd64")"));
  auto lenient = parse_index(text, "index sha256:ab12…", /*with_platforms=*/false);
  REQUIRE(lenient.ok());
  CHECK_FALSE(lenient->manifests[0].platform);
  auto strict = parse_index(text, "index sha256:ab12…", /*with_platforms=*/true);
  REQUIRE_FALSE(strict.ok());
  CHECK(strict.status().message() ==
        "index sha256:ab12…: manifests[0].platform: expected an object");

  auto ok = parse_index(
      index_with(
          desc("m", kD1, R"("platform":{"os":"linux","architecture":"arm64","variant":"v8"})")),
      "i", true);
  REQUIRE(ok.ok());
  REQUIRE(ok->manifests[0].platform);
  CHECK(ok->manifests[0].platform->architecture == "arm64");
  CHECK(ok->manifests[0].platform->variant == "v8");

  auto no_arch = parse_index(index_with(desc("m", kD1, R"("platform":{"os":"linux"})")), "i", true);
  REQUIRE_FALSE(no_arch.ok());
  CHECK_THAT(no_arch.status().message(),
             Catch::Contains("manifests[0].platform.architecture: missing"));
  auto bad_variant = parse_index(
      index_with(desc("m", kD1, R"("platform":{"os":"linux","architecture":"arm","variant":7})")),
      "i", true);
  REQUIRE_FALSE(bad_variant.ok());
  CHECK_THAT(bad_variant.status().message(),
             Catch::Contains("platform.variant: expected a string"));
}

TEST_CASE("oci: deep nesting is refused before parsing, without recursion") {
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  auto i = parse_index(R"({"manifests":[{"x":)" + deep + "}]}", "index.json", true);
  REQUIRE_FALSE(i.ok());
  CHECK_THAT(i.status().message(), Catch::Contains("nested deeper than 64 levels"));
  auto m = parse_manifest(deep, "manifest");
  REQUIRE_FALSE(m.ok());
  auto d = parse_docker_manifest(deep, "manifest.json");
  REQUIRE_FALSE(d.ok());
  // 60 levels are fine as far as nesting goes.
  auto shallow = parse_index(
      R"({"manifests":[],"x":)" + std::string(60, '[') + std::string(60, ']') + "}", "i", true);
  CHECK(shallow.ok());
}

TEST_CASE("oci: counts and sizes are bounded") {
  std::string many = R"({"manifests":[)";
  for (size_t i = 0; i <= kMaxDescriptors; ++i) many += (i ? "," : "") + desc("m", kD1);
  many += "]}";
  auto i = parse_index(many, "index", false);
  REQUIRE_FALSE(i.ok());
  CHECK_THAT(i.status().message(), Catch::Contains("manifests: 4097 entries (at most 4096)"));
  auto big = parse_index(std::string(kMaxJsonDocument + 1, ' '), "index", false);
  REQUIRE_FALSE(big.ok());
  CHECK_THAT(big.status().message(), Catch::Contains("at most"));
}

TEST_CASE("oci: index.json entries and their image names") {
  const std::string text = index_with(
      desc(
          std::string(kOciManifestType), kD1,
          R"("annotations":{"io.containerd.image.name":"herd.local/x:1","org.opencontainers.image.ref.name":"1"})") +
      "," +
      desc(std::string(kOciIndexType), kD2,
           R"("annotations":{"org.opencontainers.image.ref.name":"herd.local/y:2"})") +
      "," +
      desc(std::string(kOciManifestType), kD1,
           R"("annotations":{"org.opencontainers.image.ref.name":"latest"})"));
  auto e = parse_layout_index(text, "index.json");
  INFO(e.status().to_string());
  REQUIRE(e.ok());
  REQUIRE(e->size() == 3);
  CHECK((*e)[0].image_name == "herd.local/x:1");
  CHECK((*e)[1].image_name == "herd.local/y:2");
  CHECK((*e)[2].image_name.empty());
  auto other = parse_layout_index(index_with(desc("text/plain", kD1)), "index.json");
  REQUIRE_FALSE(other.ok());
  CHECK_THAT(other.status().message(), Catch::Contains("manifests[0].mediaType: unsupported"));
}

TEST_CASE("oci: docker-save manifest.json") {
  auto m = parse_docker_manifest(
      R"([{"Config":"blobs/sha256/aa","RepoTags":["busybox:latest","x/y:2"],"Layers":["a/layer.tar","b.tar"]},
          {"Config":"c.json","RepoTags":null,"Layers":[]}])",
      "manifest.json");
  INFO(m.status().to_string());
  REQUIRE(m.ok());
  REQUIRE(m->size() == 2);
  CHECK((*m)[0].repo_tags.size() == 2);
  CHECK((*m)[0].layers[1] == "b.tar");
  CHECK((*m)[1].repo_tags.empty());

  struct Case {
    std::string text;
    const char* says;
  };
  for (const auto& c :
       {Case{"{}", "manifest.json: expected an array"}, Case{"[1]", "[0]: expected an object"},
        Case{R"([{"Layers":[]}])", "[0].Config: missing"},
        Case{R"([{"Config":1,"Layers":[]}])", "[0].Config: expected a string"},
        Case{R"([{"Config":"c"}])", "[0].Layers: missing"},
        Case{R"([{"Config":"c","Layers":[2]}])", "[0].Layers[0]: expected a string"},
        Case{R"([{"Config":"c","Layers":[],"RepoTags":"a:b"}])",
             "[0].RepoTags: expected an array"}}) {
    auto r = parse_docker_manifest(c.text, "manifest.json");
    INFO(c.text << " -> " << r.status().to_string());
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.status().message(), Catch::Contains(c.says));
  }
}

TEST_CASE("oci: a synthesised docker manifest parses back") {
  OciDescriptor cfg;
  cfg.media_type = std::string(kDockerConfigType);
  cfg.digest = kD1;
  cfg.size = 100;
  OciDescriptor layer;
  layer.media_type = std::string(kDockerLayerGzipType);
  layer.digest = kD2;
  layer.size = 1 << 20;
  const std::string text = docker_manifest_json(cfg, {layer});
  CHECK(text == docker_manifest_json(cfg, {layer}));  // deterministic
  auto m = parse_manifest(text, "synth");
  REQUIRE(m.ok());
  CHECK(m->config.digest == kD1);
  CHECK(m->layers.at(0).media_type == kDockerLayerGzipType);
  CHECK_THAT(text, Catch::Contains(
                       R"("mediaType":"application/vnd.docker.distribution.manifest.v2+json")"));
}

TEST_CASE("oci: docker reference normalisation") {
  CHECK(normalize_docker_ref("busybox").value() == "docker.io/library/busybox:latest");
  CHECK(normalize_docker_ref("busybox:latest").value() == "docker.io/library/busybox:latest");
  CHECK(normalize_docker_ref("user/app:1.0").value() == "docker.io/user/app:1.0");
  CHECK(normalize_docker_ref("docker.io/busybox:1").value() == "docker.io/library/busybox:1");
  CHECK(normalize_docker_ref("index.docker.io/x/y").value() == "docker.io/x/y:latest");
  CHECK(normalize_docker_ref("host:5000/x:t").value() == "host:5000/x:t");
  CHECK(normalize_docker_ref("localhost/a/b").value() == "localhost/a/b:latest");
  CHECK(normalize_docker_ref("herd.local/busybox:latest").value() == "herd.local/busybox:latest");
  CHECK(normalize_docker_ref("a@" + kD1).value() == "docker.io/library/a@" + kD1);
  for (const char* bad : {"", "UPPER:1", "a:", "a:-x", "a//b", "a@sha256:00", ":tag", "a b", "-a",
                          "a/", "x:5000:1/y"}) {
    INFO(bad);
    auto r = normalize_docker_ref(bad);
    CHECK_FALSE(r.ok());
    if (!r.ok()) CHECK_THAT(r.status().message(), Catch::StartsWith("image reference"));
  }
  // Found by oci_fuzz: 500 characters that normalise to more than 512.
  std::string long_ref;
  while (long_ref.size() < 500) long_ref += "ab/";
  long_ref += "c";
  auto too_long = normalize_docker_ref(long_ref);
  REQUIRE_FALSE(too_long.ok());
  CHECK_THAT(too_long.status().message(), Catch::Contains("once normalised"));
  auto ctl = normalize_docker_ref("a\nforged");
  REQUIRE_FALSE(ctl.ok());
  CHECK(ctl.status().message().find('\n') == std::string::npos);
}

TEST_CASE("oci: platform matching (os, architecture, arm variants)") {
  const Platform amd64{"linux", "amd64", ""};
  const Platform arm64{"linux", "arm64", "v8"};
  const Platform armv7{"linux", "arm", "v7"};
  CHECK(platform_match({"linux", "amd64", ""}, amd64) == 2);
  CHECK(platform_match({"linux", "x86_64", ""}, amd64) == 2);
  CHECK(platform_match({"windows", "amd64", ""}, amd64) == 0);
  CHECK(platform_match({"linux", "arm64", ""}, amd64) == 0);
  CHECK(platform_match({"linux", "arm64", "v8"}, arm64) == 2);
  CHECK(platform_match({"linux", "arm64", ""}, arm64) == 1);
  CHECK(platform_match({"linux", "aarch64", ""}, arm64) == 1);
  CHECK(platform_match({"linux", "arm", "v7"}, armv7) == 2);
  CHECK(platform_match({"linux", "arm", "v6"}, armv7) == 1);
  CHECK(platform_match({"linux", "arm", "v8"}, armv7) == 0);
  CHECK(platform_match({"linux", "arm", ""}, armv7) == 1);
  CHECK(host_platform().os == "linux");
  CHECK_FALSE(host_platform().architecture.empty());
}

TEST_CASE("oci: digests") {
  CHECK(check_digest(kD1).ok());
  CHECK_FALSE(check_digest("sha256:" + std::string(64, 'A')).ok());
  CHECK_FALSE(check_digest("sha512:" + std::string(64, 'a')).ok());
  CHECK_FALSE(check_digest("sha256:abc").ok());
  CHECK(blob_path(kD1).value() == "blobs/sha256/" + std::string(64, 'a'));
  CHECK(short_digest(kD1) == "sha256:aaaaaaaaaaaa…");
  CHECK(short_digest("x\n") == "x?");
}
