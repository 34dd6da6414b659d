// The config keys of containment and restart semantics (issue 13):
// restart.on, restart.prevent_exit_codes, resources, init, capabilities,
// read_only_rootfs, tmpfs, oom_score_adj; each error at its JSON path.
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

TEST_CASE("config: containment keys default to today's behaviour") {
  const Component c = parse_one(kBase);
  CHECK_FALSE(c.resources.memory.has_value());
  CHECK_FALSE(c.resources.cpus.has_value());
  CHECK_FALSE(c.resources.pids.has_value());
  CHECK_FALSE(c.init);
  CHECK(c.capabilities.add.empty());
  CHECK(c.capabilities.drop.empty());
  CHECK_FALSE(c.read_only_rootfs);
  CHECK(c.tmpfs.empty());
  CHECK_FALSE(c.oom_score_adj.has_value());
}

TEST_CASE("config: resources are read with their units") {
  const Component c =
      parse_one(with_key("resources", R"({"memory": "512MiB", "cpus": 1.5, "pids": 1000})"));
  CHECK(c.resources.memory == 512ull << 20);
  CHECK(c.resources.cpus == 1.5);
  CHECK(c.resources.pids == 1000);
  CHECK(parse_one(with_key("resources", R"({"memory": "2GiB"})")).resources.memory == 2ull << 30);
  CHECK(parse_one(with_key("resources", R"({"memory": "8192KiB"})")).resources.memory == 8ull
                                                                                             << 20);
  CHECK(parse_one(with_key("resources", R"({"memory": "6291456B"})")).resources.memory ==
        6ull << 20);
  CHECK(parse_one(with_key("resources", R"({"cpus": 2})")).resources.cpus == 2.0);
}

TEST_CASE("config: resource errors name their path") {
  const std::string r = "/components/0/resources";
  auto res = [](const std::string& text) { return with_key("resources", text); };
  CHECK_ONE_ERROR(res(R"({"memory": "512M"})"), r + "/memory",
                  "must be a whole number with a unit B, KiB, MiB or GiB (e.g. \"512MiB\"), got "
                  "\"512M\"");
  CHECK_ONE_ERROR(res(R"({"memory": "1.5GiB"})"), r + "/memory", "whole number");
  CHECK_ONE_ERROR(res(R"({"memory": 536870912})"), r + "/memory",
                  "expected a size string such as \"512MiB\"");
  CHECK_ONE_ERROR(res(R"({"memory": "1MiB"})"), r + "/memory", "must be at least 6MiB");
  CHECK_ONE_ERROR(res(R"({"memory": "999999999999GiB"})"), r + "/memory", "at most");
  CHECK_ONE_ERROR(res(R"({"cpus": 0})"), r + "/cpus", "must be between 0.01 and 1024, got 0");
  CHECK_ONE_ERROR(res(R"({"cpus": 2000})"), r + "/cpus", "must be between 0.01 and 1024");
  CHECK_ONE_ERROR(res(R"({"cpus": "1"})"), r + "/cpus", "expected a number");
  CHECK_ONE_ERROR(res(R"({"pids": 0})"), r + "/pids", "must be between 1 and 4194304, got 0");
  CHECK_ONE_ERROR(res(R"({"pids": 1.5})"), r + "/pids", "expected an integer");
  CHECK_ONE_ERROR(res(R"({"cpu": 1})"), r + "/cpu", "did you mean \"cpus\"");
  CHECK_ONE_ERROR(res(R"(512)"), r, "expected an object");
}

TEST_CASE("config: init, read_only_rootfs, oom_score_adj") {
  CHECK(parse_one(with_key("init", "true")).init);
  CHECK(parse_one(with_key("read_only_rootfs", "true")).read_only_rootfs);
  CHECK(parse_one(with_key("oom_score_adj", "-1000")).oom_score_adj == -1000);
  CHECK(parse_one(with_key("oom_score_adj", "500")).oom_score_adj == 500);
  const std::string p = "/components/0/";
  CHECK_ONE_ERROR(with_key("init", R"("yes")"), p + "init", "expected a boolean");
  CHECK_ONE_ERROR(with_key("read_only_rootfs", "1"), p + "read_only_rootfs", "expected a boolean");
  CHECK_ONE_ERROR(with_key("oom_score_adj", "1001"), p + "oom_score_adj",
                  "must be between -1000 and 1000, got 1001");
  CHECK_ONE_ERROR(with_key("read_only_root", "true"), p + "read_only_root",
                  "did you mean \"read_only_rootfs\"");
}

TEST_CASE("config: capabilities are checked against the kernel's names") {
  const Component c = parse_one(
      with_key("capabilities", R"({"add": ["NET_ADMIN", "CAP_SYS_TIME"], "drop": ["ALL"]})"));
  CHECK(c.capabilities.add == std::vector<std::string>{"CAP_NET_ADMIN", "CAP_SYS_TIME"});
  CHECK(c.capabilities.drop == std::vector<std::string>{"ALL"});
  const std::string p = "/components/0/capabilities";
  auto caps = [](const std::string& text) { return with_key("capabilities", text); };
  CHECK_ONE_ERROR(caps(R"({"add": ["CAP_NET_ADMN"]})"), p + "/add/0",
                  "unknown capability \"CAP_NET_ADMN\" (did you mean \"NET_ADMIN\"?)");
  CHECK_ONE_ERROR(caps(R"({"add": ["ALL"]})"), p + "/add/0",
                  "\"ALL\" is only allowed in capabilities.drop");
  CHECK_ONE_ERROR(caps(R"({"drop": ["net_raw"]})"), p + "/drop/0", "unknown capability");
  CHECK_ONE_ERROR(caps(R"({"drop": ["NET_RAW", "CAP_NET_RAW"]})"), p + "/drop/1",
                  "duplicate capability \"CAP_NET_RAW\"");
  CHECK_ONE_ERROR(caps(R"({"add": ["NET_RAW"], "drop": ["NET_RAW"]})"), p + "/add",
                  "both added and dropped");
  CHECK_ONE_ERROR(caps(R"({"add": "NET_RAW"})"), p + "/add", "expected an array");
  CHECK_ONE_ERROR(caps(R"({"keep": []})"), p + "/keep", "unknown key");
}

TEST_CASE("config: tmpfs mounts") {
  const Component c =
      parse_one(with_key("tmpfs", R"([{"target": "/tmp", "size": "64MiB", "mode": "1777"},
                            {"target": "/run/app/"}])"));
  REQUIRE(c.tmpfs.size() == 2);
  CHECK(c.tmpfs[0].target == "/tmp");
  CHECK(c.tmpfs[0].size == 64ull << 20);
  CHECK(c.tmpfs[0].mode == 01777u);
  CHECK(c.tmpfs[1].target == "/run/app");  // normalised
  CHECK_FALSE(c.tmpfs[1].size.has_value());
  CHECK(c.tmpfs[1].mode == 01777u);
  const std::string p = "/components/0/tmpfs";
  auto tmpfs = [](const std::string& text) { return with_key("tmpfs", text); };
  CHECK_ONE_ERROR(tmpfs(R"([{"size": "1MiB"}])"), p + "/0/target", "required key is missing");
  CHECK_ONE_ERROR(tmpfs(R"([{"target": "tmp"}])"), p + "/0/target", "must be an absolute path");
  CHECK_ONE_ERROR(tmpfs(R"([{"target": "/proc/x"}])"), p + "/0/target", "must not be /proc");
  CHECK_ONE_ERROR(tmpfs(R"([{"target": "/tmp", "size": "64MB"}])"), p + "/0/size",
                  "unit B, KiB, MiB or GiB");
  CHECK_ONE_ERROR(tmpfs(R"([{"target": "/tmp", "mode": "1778"}])"), p + "/0/mode", "octal");
  CHECK_ONE_ERROR(tmpfs(R"([{"target": "/tmp"}, {"target": "/tmp/"}])"), p + "/1/target",
                  "duplicate tmpfs target \"/tmp\"");
  CHECK_ONE_ERROR(tmpfs(R"([{"target": "/tmp", "uid": 1}])"), p + "/0/uid", "unknown key");
  Json doc = Json::parse(tmpfs(R"([{"target": "/data"}])"));
  doc["components"][0]["mounts"] = Json::parse(R"([{"data": "d", "target": "/data"}])");
  CHECK_ONE_ERROR(doc.dump(), p + "/0/target", "is also a target of mounts");
}

TEST_CASE("config: init: true needs tini on the host, and the error names the package") {
  ParseResult r = parse_config(R"({"components": [
      {"name": "a", "image": "herd.local/busybox:latest"},
      {"name": "b", "image": "herd.local/busybox:latest", "init": true}]})");
  REQUIRE(r.ok());
  std::vector<std::string> asked;
  const auto errors = herd::config::check_host(*r.config, [&](const std::string& p) {
    asked.push_back(p);
    return false;
  });
  CHECK(asked == std::vector<std::string>{"/usr/bin/tini-static"});
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].path == "/components/1/init");
  CHECK(errors[0].message ==
        "init: true needs /usr/bin/tini-static, which is missing: install Debian's package tini "
        "(apt-get install tini)");
  CHECK(herd::config::check_host(*r.config, [](const std::string&) { return true; }).empty());
  // Without init nothing is asked.
  const Component none = parse_one(kBase);
  (void)none;
  ParseResult plain = parse_config(kBase);
  bool called = false;
  CHECK(herd::config::check_host(*plain.config, [&](const std::string&) {
          called = true;
          return false;
        }).empty());
  CHECK_FALSE(called);
}

TEST_CASE("config: shim_group comes from the component, else the top level, and \"\" opts out") {
  // Neither: a shim of its own.
  CHECK_FALSE(parse_one(kBase).shim_group.has_value());
  CHECK(parse_one(with_key("shim_group", R"("seed")")).shim_group == "seed");

  Json doc = Json::parse(kBase);
  doc["shim_group"] = "node";
  doc["components"].push_back(
      {{"name", "b"}, {"image", "herd.local/busybox:latest"}, {"shim_group", "other"}});
  doc["components"].push_back(
      {{"name", "c"}, {"image", "herd.local/busybox:latest"}, {"shim_group", ""}});
  ParseResult r = parse_config(doc.dump());
  INFO(r.error_text());
  REQUIRE(r.ok());
  CHECK(r.config->shim_group == "node");
  CHECK(r.config->components[0].shim_group == "node");          // inherited
  CHECK(r.config->components[1].shim_group == "other");         // its own
  CHECK_FALSE(r.config->components[2].shim_group.has_value());  // opted out

  CHECK_ONE_ERROR(with_key("shim_group", R"("a b")"), "/components/0/shim_group", "[A-Za-z0-9_.-]");
  CHECK_ONE_ERROR(with_key("shim_group", "7"), "/components/0/shim_group", "string");
  Json top = Json::parse(kBase);
  top["shim_group"] = std::string(65, 'x');
  CHECK_ONE_ERROR(top.dump(), "/shim_group", "1 to 64");
  top["shim_group"] = "";
  CHECK_ONE_ERROR(top.dump(), "/shim_group", "1 to 64");
}
