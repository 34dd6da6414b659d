// The config keys of containment and restart semantics (issue 13):
// restart.on, restart.prevent_exit_codes; each error at its JSON path.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"

using herd::config::Component;
using herd::config::parse_config;
using herd::config::ParseResult;
using herd::config::RestartOn;

namespace {

using Json = nlohmann::ordered_json;

constexpr const char* kBase =
    R"({"components": [{"name": "a", "image": "herd.local/busybox:latest"}]})";

// kBase with component 0's `key` set to the JSON `text`.
std::string with_key(const std::string& key, const std::string& text) {
  Json doc = Json::parse(kBase);
  doc["components"][0][key] = Json::parse(text);
  return doc.dump();
}

Component parse_one(const std::string& json) {
  ParseResult r = parse_config(json);
  INFO(json);
  INFO(r.error_text());
  REQUIRE(r.ok());
  REQUIRE(r.config->components.size() == 1);
  return r.config->components[0];
}

void check_one_error(const std::string& json, const std::string& path,
                     const std::string& fragment) {
  ParseResult r = parse_config(json);
  INFO(json);
  INFO(r.error_text());
  CHECK_FALSE(r.ok());
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].path == path);
  CHECK_THAT(r.errors[0].message, Catch::Contains(fragment));
}

#define CHECK_ONE_ERROR(json, path, fragment)    \
  do {                                           \
    INFO("expected at test line " << __LINE__);  \
    check_one_error((json), (path), (fragment)); \
  } while (false)

}  // namespace

TEST_CASE("config: restart.on and prevent_exit_codes default to today's behaviour") {
  const Component c = parse_one(kBase);
  CHECK(c.restart.on == RestartOn::kAlways);
  CHECK(c.restart.prevent_exit_codes.empty());
  CHECK_FALSE(c.restart.is_job());
}

TEST_CASE("config: restart.on and prevent_exit_codes are read") {
  const Component a = parse_one(with_key("restart", R"({"on": "on-failure"})"));
  CHECK(a.restart.on == RestartOn::kOnFailure);
  CHECK(a.restart.is_job());
  const Component b = parse_one(with_key("restart", R"({"preset": "aggressive", "on": "never",
                                        "prevent_exit_codes": [78, 2, 255, 1]})"));
  CHECK(b.restart.on == RestartOn::kNever);
  CHECK(b.restart.base == std::chrono::milliseconds(500));  // the preset still applies
  CHECK(b.restart.prevent_exit_codes == std::vector<uint32_t>{78, 2, 255, 1});
  CHECK(herd::config::to_string(RestartOn::kOnFailure) == "on-failure");
  CHECK(herd::config::to_string(RestartOn::kNever) == "never");
  CHECK(herd::config::to_string(RestartOn::kAlways) == "always");
}

TEST_CASE("config: restart.on and prevent_exit_codes errors name their path") {
  const std::string r = "/components/0/restart";
  auto restart = [](const std::string& text) { return with_key("restart", text); };
  CHECK_ONE_ERROR(restart(R"({"on": "on_failure"})"), r + "/on",
                  "must be \"always\", \"on-failure\" or \"never\", got \"on_failure\" (did you "
                  "mean \"on-failure\"?)");
  CHECK_ONE_ERROR(restart(R"({"on": true})"), r + "/on", "expected a string");
  CHECK_ONE_ERROR(restart(R"({"prevent_exit_codes": 3})"), r + "/prevent_exit_codes",
                  "expected an array");
  CHECK_ONE_ERROR(restart(R"({"prevent_exit_codes": [3, 256]})"), r + "/prevent_exit_codes/1",
                  "must be between 1 and 255, got 256");
  CHECK_ONE_ERROR(restart(R"({"prevent_exit_codes": [-1]})"), r + "/prevent_exit_codes/0",
                  "must be between 1 and 255");
  CHECK_ONE_ERROR(restart(R"({"prevent_exit_codes": [0]})"), r + "/prevent_exit_codes/0",
                  "0 is a clean exit");
  CHECK_ONE_ERROR(restart(R"({"prevent_exit_codes": [3, "4"]})"), r + "/prevent_exit_codes/1",
                  "expected an integer");
  CHECK_ONE_ERROR(restart(R"({"prevent_exit_codes": [3, 4, 3]})"), r + "/prevent_exit_codes/2",
                  "duplicate exit code 3");
  CHECK_ONE_ERROR(restart(R"({"prevent_exit_code": [3]})"), r + "/prevent_exit_code",
                  "did you mean \"prevent_exit_codes\"");
}
