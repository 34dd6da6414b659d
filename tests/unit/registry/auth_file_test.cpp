#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "registry/auth_file.h"

using namespace herd::registry;

TEST_CASE("auth file: base64 decoding is strict") {
  CHECK(decode_base64("dXNlcjpwYXNz") == std::optional<std::string>("user:pass"));
  CHECK(decode_base64("YQ==") == std::optional<std::string>("a"));
  CHECK(decode_base64("YWI=") == std::optional<std::string>("ab"));
  CHECK(decode_base64("") == std::optional<std::string>(""));
  CHECK_FALSE(decode_base64("YQ"));        // no padding
  CHECK_FALSE(decode_base64("YR=="));      // non-zero trailing bits
  CHECK_FALSE(decode_base64("YW J="));     // space
  CHECK_FALSE(decode_base64("YQ==YQ=="));  // padding in the middle
  CHECK_FALSE(decode_base64("Y==="));
  CHECK_FALSE(decode_base64("YQ=a"));
  CHECK_FALSE(decode_base64("dXNl\ncjpw"));
  CHECK_FALSE(decode_base64("dXNlcjpwYXN-"));  // URL alphabet
}

TEST_CASE("auth file: docker's forms and host matching") {
  const std::string text = R"({
    "auths": {
      "https://index.docker.io/v1/": {"auth": "aHViOnNlY3JldA=="},
      "registry.example:5000": {"username": "u", "password": "p:w"},
      "https://ghcr.io/v2/": {"identitytoken": "refresh"},
      "quay.io": {},
      "Mixed.Example": {"auth": "bTp4Onk=", "username": "ignored"}
    },
    "credsStore": "desktop",
    "credHelpers": {"gcr.io": "gcloud"},
    "experimental": "enabled"
  })";
  auto f = parse_auth_file(text);
  REQUIRE(f.ok());
  CHECK(f->auths.size() == 5);
  CHECK(f->creds_store == "desktop");
  CHECK(f->cred_helpers.at("gcr.io") == "gcloud");
  CHECK(f->auths[0].host == "docker.io");
  CHECK(f->auths[2].host == "ghcr.io");

  auto creds = [&](std::string_view host) {
    auto r = find_credentials(*f, host);
    REQUIRE(r.ok());
    return *r;
  };
  for (auto hub : {"docker.io", "registry-1.docker.io", "index.docker.io"}) {
    INFO(hub);
    auto c = creds(hub);
    REQUIRE(c);
    CHECK(c->username == "hub");
    CHECK(c->password == "secret");
  }
  auto reg = creds("registry.example:5000");
  REQUIRE(reg);
  CHECK(reg->password == "p:w");
  CHECK_FALSE(creds("registry.example"));  // the port is part of the key
  auto gh = creds("ghcr.io");
  REQUIRE(gh);
  CHECK(gh->identity_token == "refresh");
  CHECK_FALSE(creds("quay.io"));  // an empty entry: no credentials
  CHECK_FALSE(creds("other.example"));
  auto mixed = creds("mixed.example");
  REQUIRE(mixed);
  CHECK(mixed->username == "m");  // `auth` wins; split at the first ':'
  CHECK(mixed->password == "x:y");
  CHECK_FALSE(find_credentials(*f, "").ok());
}

TEST_CASE("auth file: hostile files are refused without leaking secrets") {
  auto msg = [](const std::string& text) {
    auto r = parse_auth_file(text);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == herd::Code::kInvalidArgument);
    return r.status().message();
  };
  CHECK_THAT(msg("[]"), Catch::Contains("not a JSON object"));
  CHECK_THAT(msg("{"), Catch::Contains("not valid JSON"));
  CHECK_THAT(msg(R"({"auths": []})"), Catch::Contains("auths: expected an object"));
  CHECK_THAT(msg(R"({"auths": {"h": "x"}})"), Catch::Contains("auths[\"h\"]: expected an object"));
  CHECK_THAT(msg(R"({"auths": {"h": {"auth": "c2VjcmV0"}}})"),
             Catch::Contains("auths[\"h\"].auth: does not decode"));
  CHECK_THAT(msg(R"({"auths": {"h": {"auth": "!!!!"}}})"),
             Catch::Contains("auths[\"h\"].auth: not valid base64"));
  CHECK_THAT(msg(R"({"auths": {"h": {"username": 1}}})"),
             Catch::Contains("auths[\"h\"].username: expected a string"));
  CHECK_THAT(msg(R"({"auths": {"h": {"username": "a", "password": "b\u0000c"}}})"),
             Catch::Contains("NUL, CR or LF"));
  CHECK_THAT(msg(R"({"auths": {"h": {"auth": "YTpiDWM="}}})"), Catch::Contains("NUL, CR or LF"));
  CHECK_THAT(msg(R"({"auths": {"": {}}})"), Catch::Contains("empty key"));
  CHECK_THAT(msg(R"({"auths": {"https:///x": {}}})"), Catch::Contains("names no host"));
  CHECK_THAT(msg("{\"a\":" + std::string(50, '[') + std::string(50, ']') + "}"),
             Catch::Contains("deeper than 8"));
  CHECK_THAT(msg(std::string(kMaxAuthFile + 1, ' ')), Catch::Contains("more than the maximum"));
  const auto secret = msg(R"({"auths": {"h": {"username": "topsecret", "password": 5}}})");
  CHECK(secret.find("topsecret") == std::string::npos);
}

TEST_CASE("auth file: loading from disk") {
  char tmpl[] = "/tmp/herd-registry-auth-XXXXXX";
  REQUIRE(::mkdtemp(tmpl));
  const std::string dir = tmpl;
  const std::string file = dir + "/config.json";

  auto missing = load_auth_file(file);
  REQUIRE(missing.ok());
  CHECK(missing->auths.empty());

  std::ofstream(file) << R"({"auths":{"localhost:5000":{"auth":"dTpw"}}})";
  auto ok = load_auth_file(file);
  REQUIRE(ok.ok());
  auto c = find_credentials(*ok, "localhost:5000");
  REQUIRE(c.ok());
  REQUIRE(*c);
  CHECK((*c)->username == "u");

  auto as_dir = load_auth_file(dir);
  REQUIRE_FALSE(as_dir.ok());
  CHECK_THAT(as_dir.status().message(), Catch::Contains("a directory, not a regular file"));

  const std::string fifo = dir + "/fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  auto as_fifo = load_auth_file(fifo);  // must not block waiting for a writer
  REQUIRE_FALSE(as_fifo.ok());
  CHECK_THAT(as_fifo.status().message(), Catch::Contains("a FIFO"));

  const std::string big = dir + "/big.json";
  {
    std::ofstream out(big);
    out << std::string(kMaxAuthFile + 1, ' ');
  }
  auto too_big = load_auth_file(big);
  REQUIRE_FALSE(too_big.ok());
  CHECK_THAT(too_big.status().message(), Catch::Contains("more than the maximum"));

  std::ofstream(file) << "{bad";
  auto broken = load_auth_file(file);
  REQUIRE_FALSE(broken.ok());
  CHECK_THAT(broken.status().message(), Catch::Contains("config.json"));

  CHECK(auth_file_path("/etc/docker", "/root") == "/etc/docker/config.json");
  CHECK(auth_file_path("", "/root") == "/root/.docker/config.json");
  CHECK(auth_file_path("", "").empty());

  ::unlink(file.c_str());
  ::unlink(fifo.c_str());
  ::unlink(big.c_str());
  REQUIRE(::rmdir(dir.c_str()) == 0);
}
