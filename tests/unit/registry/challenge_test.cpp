#include <catch2/catch.hpp>

#include <string>

#include "registry/challenge.h"

using namespace herd::registry;

TEST_CASE("challenge: Docker Hub's Bearer challenge") {
  auto c = parse_challenges(
      "Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
      "scope=\"repository:library/busybox:pull\"");
  REQUIRE(c.ok());
  REQUIRE(c->size() == 1);
  CHECK((*c)[0].scheme == "bearer");
  CHECK((*c)[0].param("realm") == "https://auth.docker.io/token");
  CHECK((*c)[0].param("service") == "registry.docker.io");
  CHECK((*c)[0].param("scope") == "repository:library/busybox:pull");
  CHECK((*c)[0].param("missing").empty());
}

TEST_CASE("challenge: several challenges, case, spaces, tokens and escapes") {
  auto c = parse_challenges(
      "Basic realm=\"Registry Realm\" , BEARER  REALM = \"http://a/t\", Service=reg,"
      "error=\"insufficient_scope\",  Negotiate abc+/==, Digest nonce=\"a\\\"b\\\\c\"");
  REQUIRE(c.ok());
  REQUIRE(c->size() == 4);
  CHECK((*c)[0].scheme == "basic");
  CHECK((*c)[0].param("realm") == "Registry Realm");
  CHECK((*c)[1].scheme == "bearer");
  CHECK((*c)[1].param("realm") == "http://a/t");
  CHECK((*c)[1].param("service") == "reg");
  CHECK((*c)[1].param("error") == "insufficient_scope");
  CHECK((*c)[2].scheme == "negotiate");
  CHECK((*c)[2].token68 == "abc+/==");
  CHECK((*c)[3].scheme == "digest");
  CHECK((*c)[3].param("nonce") == "a\"b\\c");
  const Challenge* chosen = select_challenge(*c);
  REQUIRE(chosen);
  CHECK(chosen->scheme == "bearer");
}

TEST_CASE("challenge: select prefers Bearer, then Basic, else none") {
  auto basic = parse_challenges("Basic realm=\"x\"");
  REQUIRE(basic.ok());
  REQUIRE(select_challenge(*basic));
  CHECK(select_challenge(*basic)->scheme == "basic");
  auto other = parse_challenges("Digest realm=\"x\", Negotiate");
  REQUIRE(other.ok());
  CHECK(other->size() == 2);
  CHECK(select_challenge(*other) == nullptr);
  auto empty = parse_challenges("  ");
  REQUIRE(empty.ok());
  CHECK(empty->empty());
  CHECK(select_challenge(*empty) == nullptr);
}

TEST_CASE("challenge: hostile headers are refused with the position") {
  auto msg = [](const std::string& h) {
    auto r = parse_challenges(h);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == herd::Code::kInvalidArgument);
    return r.status().message();
  };
  CHECK_THAT(msg("Bearer realm=\"abc"), Catch::Contains("byte 13: unterminated quoted string"));
  CHECK_THAT(msg("Bearer realm=\"abc\\"), Catch::Contains("unterminated"));
  CHECK_THAT(msg(std::string("Bearer realm=\"a\0b\"", 18)), Catch::Contains("control byte 0x00"));
  CHECK_THAT(msg("Bearer realm=\"a\r\nX-Evil: 1\""), Catch::Contains("control byte 0x0d"));
  CHECK_THAT(msg("Bearer realm=\"x\",service="), Catch::Contains("has no value"));
  CHECK_THAT(msg("Bearer realm \"x\""), Catch::Contains("has no '='"));
  CHECK_THAT(msg("Bearer realm=\"a\", realm=\"b\""), Catch::Contains("given twice"));
  CHECK_THAT(msg("Bearer realm=\"a\" service=\"b\""), Catch::Contains("expected ','"));
  CHECK_THAT(msg("=x"), Catch::Contains("expected an authentication scheme"));
  CHECK_THAT(msg("Bearer\"x\""), Catch::Contains("expected a space"));
  std::string many = "Bearer ";
  for (int i = 0; i < 33; ++i) many += "k" + std::to_string(i) + "=v,";
  CHECK_THAT(msg(many), Catch::Contains("more than 32 parameters"));
  CHECK_THAT(msg("Bearer realm=\"" + std::string(9000, 'a') + "\""),
             Catch::Contains("more than the maximum of 8192"));
}

TEST_CASE("challenge: bearer_token_url") {
  auto u = bearer_token_url("https://auth.docker.io/token", "registry.docker.io",
                            {pull_scope("library/busybox")});
  REQUIRE(u.ok());
  CHECK(*u ==
        "https://auth.docker.io/token?service=registry.docker.io&"
        "scope=repository%3Alibrary%2Fbusybox%3Apull");
  auto q = bearer_token_url("http://127.0.0.1:5000/auth?x=1", "", {"a b", "", "c&d=e"});
  REQUIRE(q.ok());
  CHECK(*q == "http://127.0.0.1:5000/auth?x=1&scope=a+b&scope=c%26d%3De");
  auto none = bearer_token_url("https://h/t?", "s", {});
  REQUIRE(none.ok());
  CHECK(*none == "https://h/t?service=s");

  for (const char* bad : {"", "ftp://h/t", "https:///t", "https://u:p@h/t", "https://h/t#f",
                          "https://h/ t", "/token", "https://h/\x01"}) {
    INFO(bad);
    auto r = bearer_token_url(bad, "s", {});
    CHECK_FALSE(r.ok());
  }
  CHECK_FALSE(bearer_token_url("https://h/" + std::string(3000, 'a'), "s", {}).ok());
}

TEST_CASE("challenge: token responses") {
  auto a = parse_token_response(
      R"({"token":"abc.def","expires_in":300,"issued_at":"2024-01-01T00:00:00Z"})");
  REQUIRE(a.ok());
  CHECK(a->token == "abc.def");
  CHECK(a->expires_in == std::chrono::seconds(300));
  CHECK(a->issued_at == std::optional<std::string>("2024-01-01T00:00:00Z"));

  auto b = parse_token_response(R"({"access_token":"xyz"})");
  REQUIRE(b.ok());
  CHECK(b->token == "xyz");
  CHECK(b->expires_in == kDefaultTokenLifetime);
  CHECK_FALSE(b->issued_at);

  auto both = parse_token_response(R"({"token":"t","access_token":"a","expires_in":5})");
  REQUIRE(both.ok());
  CHECK(both->token == "t");
  CHECK(both->expires_in == kMinTokenLifetime);  // raised to the minimum

  auto empty_token = parse_token_response(R"({"token":"","access_token":"a"})");
  REQUIRE(empty_token.ok());
  CHECK(empty_token->token == "a");

  auto huge = parse_token_response(R"({"token":"t","expires_in":99999999999})");
  REQUIRE(huge.ok());
  CHECK(huge->expires_in == std::chrono::seconds(365 * 24 * 3600));

  auto msg = [](const std::string& body) {
    auto r = parse_token_response(body);
    REQUIRE_FALSE(r.ok());
    return r.status().message();
  };
  CHECK_THAT(msg("{}"), Catch::Contains("no token"));
  CHECK_THAT(msg("[]"), Catch::Contains("not a JSON object"));
  CHECK_THAT(msg("{\"token\":"), Catch::Contains("not valid JSON"));
  CHECK_THAT(msg(R"({"token":5})"), Catch::Contains("token: expected a string"));
  CHECK_THAT(msg(R"({"token":"a b"})"), Catch::Contains("outside visible ASCII"));
  CHECK_THAT(msg(R"({"token":"a\r\nX: y"})"), Catch::Contains("outside visible ASCII"));
  CHECK_THAT(msg(R"({"token":"a\u0000"})"), Catch::Contains("outside visible ASCII"));
  CHECK_THAT(msg(R"({"token":"t","expires_in":-1})"), Catch::Contains("negative"));
  CHECK_THAT(msg(R"({"token":"t","expires_in":1.5})"), Catch::Contains("whole number"));
  CHECK_THAT(msg(R"({"token":"t","expires_in":"60"})"), Catch::Contains("whole number"));
  CHECK_THAT(msg(R"({"token":"t","x":)" + std::string(100, '[') + std::string(100, ']') + "}"),
             Catch::Contains("deeper than 8"));
  CHECK_THAT(msg(std::string(kMaxTokenResponse + 1, ' ')),
             Catch::Contains("more than the maximum"));
  CHECK_THAT(msg("{\"token\":\"" + std::string(kMaxTokenLength + 1, 'a') + "\"}"),
             Catch::Contains("longer than"));
}
