#include <catch2/catch.hpp>

#include <string>

#include "registry/reference.h"

using herd::registry::parse_reference;

namespace {
const std::string kHex = "7cc4b5aefd1d0cadf8d97d4350462ba51c694ebca145b08d7d41b41acc8db5aa";
}

TEST_CASE("reference: docker's normalisation examples") {
  struct Row {
    const char* in;
    const char* full;
    const char* domain;
    const char* host;
    const char* repo;
    const char* object;
  };
  const Row rows[] = {
      {"busybox", "docker.io/library/busybox:latest", "docker.io", "registry-1.docker.io",
       "library/busybox", "latest"},
      {"library/busybox:1.36", "docker.io/library/busybox:1.36", "docker.io",
       "registry-1.docker.io", "library/busybox", "1.36"},
      {"dmcgowan/myapp", "docker.io/dmcgowan/myapp:latest", "docker.io", "registry-1.docker.io",
       "dmcgowan/myapp", "latest"},
      {"docker.io/redis:7", "docker.io/library/redis:7", "docker.io", "registry-1.docker.io",
       "library/redis", "7"},
      {"index.docker.io/x/y", "docker.io/x/y:latest", "docker.io", "registry-1.docker.io", "x/y",
       "latest"},
      {"localhost/app", "localhost/app:latest", "localhost", "localhost", "app", "latest"},
      {"localhost:5000/a/b:t", "localhost:5000/a/b:t", "localhost:5000", "localhost:5000", "a/b",
       "t"},
      {"ghcr.io/o/x", "ghcr.io/o/x:latest", "ghcr.io", "ghcr.io", "o/x", "latest"},
      {"Example.COM:443/a_b/c__d/e-----f/g.h", "Example.COM:443/a_b/c__d/e-----f/g.h:latest",
       "Example.COM:443", "Example.COM:443", "a_b/c__d/e-----f/g.h", "latest"},
      {"foo:5000", "docker.io/library/foo:5000", "docker.io", "registry-1.docker.io", "library/foo",
       "5000"},
  };
  for (const auto& r : rows) {
    INFO(r.in);
    auto ref = parse_reference(r.in);
    REQUIRE(ref.ok());
    CHECK(ref->to_string() == r.full);
    CHECK(ref->domain() == r.domain);
    CHECK(ref->host() == r.host);
    CHECK(ref->repository() == r.repo);
    CHECK(ref->object() == r.object);
    // Normalised form is a fixed point.
    auto again = parse_reference(ref->to_string());
    REQUIRE(again.ok());
    CHECK(*again == *ref);
  }
}

TEST_CASE("reference: digests") {
  auto d = parse_reference("busybox@sha256:" + kHex);
  REQUIRE(d.ok());
  CHECK(d->tag().empty());
  CHECK(d->digest() == "sha256:" + kHex);
  CHECK(d->object() == "sha256:" + kHex);
  CHECK(d->to_string() == "docker.io/library/busybox@sha256:" + kHex);

  auto both = parse_reference("busybox:1.36@sha256:" + kHex);
  REQUIRE(both.ok());
  CHECK(both->tag() == "1.36");
  CHECK(both->object() == "sha256:" + kHex);  // the digest wins for fetching
  CHECK(both->to_string() == "docker.io/library/busybox:1.36@sha256:" + kHex);

  auto port = parse_reference("localhost:5000/x@sha256:" + kHex);
  REQUIRE(port.ok());
  CHECK(port->domain() == "localhost:5000");
}

TEST_CASE("reference: malformed ones are refused with a reason") {
  auto msg = [](const std::string& in) {
    auto r = parse_reference(in);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == herd::Code::kInvalidArgument);
    return r.status().message();
  };
  CHECK(msg("") == "image reference \"\": empty");
  CHECK_THAT(msg("Busybox"), Catch::Contains("must be lowercase"));
  CHECK_THAT(msg("ghcr.io/Org/x"), Catch::Contains("must be lowercase"));
  CHECK_THAT(msg("busybox:"), Catch::Contains("malformed tag"));
  CHECK_THAT(msg("busybox:-x"), Catch::Contains("malformed tag"));
  CHECK_THAT(msg("busybox:" + std::string(129, 'a')), Catch::Contains("tag longer than 128"));
  CHECK(parse_reference("busybox:" + std::string(128, 'a')).ok());
  CHECK_THAT(msg("busybox@sha256:" + kHex.substr(1)), Catch::Contains("64 lowercase hex"));
  CHECK_THAT(msg("busybox@sha256:" + std::string(64, 'A')), Catch::Contains("64 lowercase hex"));
  CHECK_THAT(msg("busybox@sha512:" + kHex + kHex), Catch::Contains("not sha256"));
  CHECK_THAT(msg("busybox@"), Catch::Contains("not sha256"));
  CHECK_THAT(msg(kHex), Catch::Contains("image id"));
  CHECK_THAT(msg("a//b"), Catch::Contains("malformed repository component"));
  CHECK_THAT(msg("a/b/"), Catch::Contains("malformed repository component"));
  CHECK_THAT(msg("a..b"), Catch::Contains("malformed repository component"));
  CHECK_THAT(msg("a___b"), Catch::Contains("malformed repository component"));
  CHECK_THAT(msg("-a"), Catch::Contains("malformed repository component"));
  CHECK_THAT(msg("ex-.com/a"), Catch::Contains("malformed registry host"));
  CHECK_THAT(msg("host:0/a"), Catch::Contains("malformed registry host"));
  CHECK_THAT(msg("host:65536/a"), Catch::Contains("malformed registry host"));
  CHECK_THAT(msg("[::1]:5000/a"), Catch::Contains("malformed registry host"));
  CHECK_THAT(msg("ghcr.io/"), Catch::Contains("no repository"));
  CHECK_THAT(msg("busy box"), Catch::Contains("space, control"));
  CHECK_THAT(msg(std::string("busy\0box", 8)), Catch::Contains("space, control"));
  CHECK_THAT(msg("bus\xc3\xbf"), Catch::Contains("non-ASCII"));
  CHECK_THAT(msg(std::string(513, 'a')), Catch::Contains("longer than 512"));
  // Quotes and controls never reach the message raw.
  CHECK(msg("a\"b\n").find('\n') == std::string::npos);
}

TEST_CASE("reference: the 255-character name limit counts the normalised name") {
  // docker.io/library/ + n: 18 + n characters.
  CHECK(parse_reference(std::string(237, 'a')).ok());
  auto r = parse_reference(std::string(238, 'a'));
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.status().message(), Catch::Contains("longer than 255"));
}

TEST_CASE("reference: is_docker_hub") {
  using herd::registry::is_docker_hub;
  CHECK(is_docker_hub("docker.io"));
  CHECK(is_docker_hub("Registry-1.Docker.IO"));
  CHECK(is_docker_hub("index.docker.io"));
  CHECK_FALSE(is_docker_hub("ghcr.io"));
  CHECK_FALSE(is_docker_hub("docker.io.evil"));
}
