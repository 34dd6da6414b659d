// Command-line durations (config/cli_duration.h) and the `metrics` key.
#include <catch2/catch.hpp>

#include "config/cli_duration.h"
#include "config/config.h"

using herd::config::check_metrics_listen;
using herd::config::parse_cli_duration;
using herd::config::parse_config;

namespace {

std::string cli_error(std::string_view text) {
  auto d = parse_cli_duration(text);
  return d.ok() ? std::string() : d.status().message();
}

}  // namespace

TEST_CASE("parse_cli_duration: the config's syntax and bare seconds") {
  CHECK(parse_cli_duration("10s")->count() == 10'000);
  CHECK(parse_cli_duration("500ms")->count() == 500);
  CHECK(parse_cli_duration("1m30s")->count() == 90'000);
  CHECK(parse_cli_duration("30")->count() == 30'000);
  CHECK(parse_cli_duration("1.5")->count() == 1'500);
  CHECK(parse_cli_duration("0")->count() == 0);
}

TEST_CASE("parse_cli_duration: errors quote the text and say what is wrong") {
  CHECK_THAT(cli_error("10x"), Catch::Contains("\"10x\"") && Catch::Contains("unit"));
  CHECK_THAT(cli_error(""), Catch::Contains("duration"));
  CHECK_THAT(cli_error("-5"), Catch::Contains("\"-5\""));
  CHECK_THAT(cli_error("1.0001"), Catch::Contains("\"1.0001\""));
  CHECK_THAT(cli_error("99999999999999999999"), Catch::Contains("too long"));
  CHECK_THAT(cli_error(std::string(1000, '9')), Catch::Contains("too long"));
}

TEST_CASE("check_metrics_listen: addresses and unix socket paths") {
  CHECK(check_metrics_listen("127.0.0.1:9464").ok());
  CHECK(check_metrics_listen("0.0.0.0:1").ok());
  CHECK(check_metrics_listen("[::1]:9464").ok());
  CHECK(check_metrics_listen("/run/herd/metrics.sock").ok());
  CHECK_THAT(check_metrics_listen("localhost:9464").message(), Catch::Contains("IPv4"));
  CHECK_THAT(check_metrics_listen("127.0.0.1").message(), Catch::Contains("HOST:PORT"));
  CHECK_THAT(check_metrics_listen("127.0.0.1:0").message(), Catch::Contains("1..65535"));
  CHECK_THAT(check_metrics_listen("127.0.0.1:65536").message(), Catch::Contains("1..65535"));
  CHECK_THAT(check_metrics_listen("127.0.0.1:9x").message(), Catch::Contains("port"));
  CHECK_THAT(check_metrics_listen("[::g]:1").message(), Catch::Contains("IPv6"));
  CHECK_THAT(check_metrics_listen("/" + std::string(200, 'a')).message(),
             Catch::Contains("107 bytes"));
  CHECK_FALSE(check_metrics_listen("").ok());
}

TEST_CASE("config: metrics is off by default and read with its JSON path") {
  auto none = parse_config(R"({"components": []})");
  REQUIRE(none.ok());
  CHECK_FALSE(none.config->metrics.has_value());

  auto on = parse_config(R"({"metrics": {"listen": "127.0.0.1:9464"}, "components": []})");
  REQUIRE(on.ok());
  REQUIRE(on.config->metrics.has_value());
  CHECK(on.config->metrics->listen == "127.0.0.1:9464");

  auto bad = parse_config(R"({"metrics": {"listen": "host:1"}, "components": []})");
  REQUIRE_FALSE(bad.ok());
  REQUIRE(bad.errors.size() == 1);
  CHECK(bad.errors[0].path == "/metrics/listen");

  auto missing = parse_config(R"({"metrics": {}, "components": []})");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.errors[0].path == "/metrics/listen");

  auto unknown = parse_config(R"({"metrics": {"listen": "/m.sock", "port": 1}, "components": []})");
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.errors[0].path == "/metrics/port");
}
