#include "config/config.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

using herd::config::Component;
using herd::config::Config;
using herd::config::ConfigError;
using herd::config::Duration;
using herd::config::kRlimitUnlimited;
using herd::config::load_config;
using herd::config::Mount;
using herd::config::Network;
using herd::config::parse_config;
using herd::config::ParseResult;
using herd::config::ReadyProbe;
using herd::config::RestartPreset;

using namespace std::chrono_literals;

namespace {

using Json = nlohmann::ordered_json;

// The smallest valid config with one component, "a".
constexpr const char* kBase =
    R"({"components": [{"name": "a", "image": "herd.local/busybox:latest"}]})";
constexpr const char* kDelete = "<delete>";

// `base` with each (JSON pointer, JSON text) edit applied; kDelete removes
// the key instead.
std::string edit(std::vector<std::pair<std::string, std::string>> edits,
                 const std::string& base = kBase) {
  Json doc = Json::parse(base);
  for (const auto& [pointer, text] : edits) {
    const Json::json_pointer ptr(pointer);
    if (text == kDelete) {
      doc[ptr.parent_pointer()].erase(ptr.back());
    } else {
      doc[ptr] = Json::parse(text);
    }
  }
  return doc.dump();
}

// kBase with one key of component 0 set to `text`.
std::string with_component_key(const std::string& key, const std::string& text) {
  return edit({{"/components/0/" + key, text}});
}

// Parses `json`, requiring success.
Config parse_ok(const std::string& json) {
  ParseResult r = parse_config(json);
  INFO(json);
  INFO(r.error_text());
  REQUIRE(r.errors.empty());
  REQUIRE(r.ok());
  return *r.config;
}

const Component& only_component(const Config& c) {
  REQUIRE(c.components.size() == 1);
  return c.components[0];
}

// Parses `json`, requiring exactly one error, at `path`, whose message
// contains `fragment`.
void check_one_error(const std::string& json, const std::string& path,
                     const std::string& fragment) {
  ParseResult r = parse_config(json);
  INFO(json);
  INFO(r.error_text());
  CHECK_FALSE(r.ok());
  CHECK_FALSE(r.config.has_value());
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].path == path);
  CHECK_THAT(r.errors[0].message, Catch::Contains(fragment));
}

#define CHECK_ONE_ERROR(json, path, fragment)    \
  do {                                           \
    INFO("expected at test line " << __LINE__);  \
    check_one_error((json), (path), (fragment)); \
  } while (false)

// Whether `r` has an error at `path` whose message contains `fragment`.
bool has_error(const ParseResult& r, const std::string& path, const std::string& fragment) {
  for (const ConfigError& e : r.errors) {
    if (e.path == path && e.message.find(fragment) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

// --- top level -------------------------------------------------------------

TEST_CASE("config: a minimal file gets every top-level default") {
  Config c = parse_ok(R"({"components": []})");
  CHECK(c.containerd.address == "/run/containerd/containerd.sock");
  CHECK(c.containerd.namespace_name == "herd");
  CHECK(c.data_path == "/var/lib/herd");
  CHECK(c.control_socket == "/run/herd/control.sock");
  CHECK_FALSE(c.control_group.has_value());
  CHECK(c.stop_budget == 90s);
  CHECK(c.components.empty());
  CHECK(c.start_order().empty());
}

TEST_CASE("config: top-level keys are read") {
  Config c = parse_ok(R"({
    "containerd": {"address": "unix:///tmp/x/containerd.sock", "namespace": "herd-test.1"},
    "data_path": "/srv//herd/",
    "control_socket": "/tmp/herd.sock",
    "control_group": "herd",
    "stop_budget": "2m",
    "components": []})");
  CHECK(c.containerd.address == "/tmp/x/containerd.sock");  // unix:// removed
  CHECK(c.containerd.namespace_name == "herd-test.1");
  CHECK(c.data_path == "/srv/herd");  // normalised
  CHECK(c.control_socket == "/tmp/herd.sock");
  CHECK(c.control_group == "herd");
  CHECK(c.stop_budget == 120s);
  CHECK(parse_ok(R"({"control_group": "1000", "components": []})").control_group == "1000");
}

TEST_CASE("config: the document must be an object with components") {
  CHECK_ONE_ERROR("[]", "", "expected an object, got an array");
  CHECK_ONE_ERROR("{}", "/components", "required key is missing");
  CHECK_ONE_ERROR(R"({"components": {}})", "/components", "expected an array, got an object");
  CHECK_ONE_ERROR(R"({"components": [], "data_path": 5})", "/data_path",
                  "expected a string, got a number");
  CHECK_ONE_ERROR(R"({"components": [7]})", "/components/0", "expected an object, got a number");
}

TEST_CASE("config: JSON syntax errors give line and column") {
  CHECK_ONE_ERROR(R"({"components": [})", "", "invalid JSON at line 1, column 17");
  CHECK_ONE_ERROR("{\n  \"components\": [],\n}", "", "invalid JSON at line 3, column 1");
  CHECK_ONE_ERROR("", "", "unexpected end of input");
  CHECK_ONE_ERROR(R"({"components": [], "stop_budget": 1e999})", "",
                  "invalid JSON: number overflow parsing '1e999'");
  ParseResult r = parse_config("{\n  \"components\": [],\n}");
  REQUIRE(r.errors.size() == 1);
  CHECK_THAT(r.errors[0].message, Catch::Contains("expected string literal"));
  CHECK_THAT(r.errors[0].message, !Catch::Contains("json.exception"));
}

TEST_CASE("config: a key written twice in one object is an error") {
  CHECK_ONE_ERROR(R"({"components": [], "components": []})", "/components",
                  "duplicate key \"components\"");
  CHECK_ONE_ERROR(
      R"({"components": [{"name": "a", "image": "i"}, {"name": "b", "image": "i", "env": {"X": "1", "X": "2"}}]})",
      "/components/1/env/X", "duplicate key \"X\"");
  // The same key in different objects is fine.
  parse_ok(R"({"components": [{"name": "a", "image": "i"}, {"name": "b", "image": "i"}]})");
}

TEST_CASE("config: unknown keys are errors with a did-you-mean hint") {
  CHECK_ONE_ERROR(R"({"components": [], "componets": []})", "/componets",
                  "unknown key \"componets\" (did you mean \"components\"?)");
  CHECK_ONE_ERROR(with_component_key("stop_grce", R"("10s")"), "/components/0/stop_grce",
                  "unknown key \"stop_grce\" (did you mean \"stop_grace\"?)");
  // A swap of two neighbouring letters counts as one edit, so two swaps are
  // still within reach.
  CHECK_ONE_ERROR(with_component_key("tsop_grcae", R"("10s")"), "/components/0/tsop_grcae",
                  "(did you mean \"stop_grace\"?)");
  CHECK_ONE_ERROR(with_component_key("ready", R"({"tcp": {"prot": 80, "port": 80}})"),
                  "/components/0/ready/tcp/prot", "(did you mean \"port\"?)");
  // Two edits away still gets a hint; three do not.
  CHECK_ONE_ERROR(with_component_key("stopgrce", R"("10s")"), "/components/0/stopgrce",
                  "(did you mean \"stop_grace\"?)");
  ParseResult three = parse_config(with_component_key("stp_grc", R"("10s")"));
  REQUIRE(three.errors.size() == 1);
  CHECK(three.errors[0].message == "unknown key \"stp_grc\"");
  // Far from every known key: no hint.
  ParseResult r = parse_config(with_component_key("zzzzzz", "1"));
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].message == "unknown key \"zzzzzz\"");
}

TEST_CASE("config: keys are escaped in JSON pointers") {
  CHECK_ONE_ERROR(R"({"components": [], "a/b~c": 1})", "/a~1b~0c", "unknown key \"a/b~c\"");
  CHECK_ONE_ERROR(with_component_key("env", R"({"A/B": "x"})"), "/components/0/env/A~1B",
                  "invalid environment variable name \"A/B\"");
}

TEST_CASE("config: containerd address and namespace are checked") {
  CHECK_ONE_ERROR(R"({"components": [], "containerd": {"address": "containerd.sock"}})",
                  "/containerd/address", "must be an absolute path");
  CHECK_ONE_ERROR(R"({"components": [], "containerd": {"adress": "/x"}})", "/containerd/adress",
                  "did you mean \"address\"?");
  for (const char* bad : {"-herd", "herd-", "he..rd", "he rd", ""}) {
    INFO(bad);
    CHECK_ONE_ERROR(edit({{"/containerd", R"({"namespace": ")" + std::string(bad) + "\"}"}}),
                    "/containerd/namespace", bad[0] ? "containerd namespace rule" : "empty");
  }
  CHECK_ONE_ERROR(edit({{"/containerd", R"({"namespace": ")" + std::string(77, 'a') + "\"}"}}),
                  "/containerd/namespace", "at most 76 characters, got 77");
  CHECK(parse_ok(edit({{"/containerd", R"({"namespace": ")" + std::string(76, 'a') + "\"}"}}))
            .containerd.namespace_name.size() == 76);
  CHECK(
      parse_ok(edit({{"/containerd", R"({"namespace": "A.b_c-9"})"}})).containerd.namespace_name ==
      "A.b_c-9");
}

TEST_CASE("config: top-level paths, group and stop budget are checked") {
  CHECK_ONE_ERROR(edit({{"/data_path", R"("var/lib/herd")"}}), "/data_path",
                  "must be an absolute path, got \"var/lib/herd\"");
  CHECK_ONE_ERROR(edit({{"/data_path", R"("/var/lib/../herd")"}}), "/data_path",
                  "must not contain \".\" or \"..\" segments");
  CHECK_ONE_ERROR(edit({{"/control_socket", "\"/" + std::string(107, 's') + "\""}}),
                  "/control_socket", "at most 107 bytes");
  CHECK(parse_ok(edit({{"/control_socket", "\"/" + std::string(106, 's') + "\""}}))
            .control_socket.size() == 107);
  CHECK_ONE_ERROR(edit({{"/control_group", R"("bad group")"}}), "/control_group",
                  "must be a group name or numeric gid");
  CHECK_ONE_ERROR(edit({{"/control_group", "1000"}}), "/control_group",
                  "expected a string, got a number");
  CHECK_ONE_ERROR(edit({{"/stop_budget", R"("0")"}}), "/stop_budget", "must be greater than 0");
  CHECK_ONE_ERROR(edit({{"/stop_budget", "90"}}), "/stop_budget",
                  "expected a duration string such as \"30s\", got a number");
  CHECK_ONE_ERROR(edit({{"/stop_budget", R"("90")"}}), "/stop_budget",
                  "invalid duration \"90\": missing unit");
}

// --- component -----------------------------------------------------------------

TEST_CASE("config: a minimal component gets every default") {
  const Component c = only_component(parse_ok(kBase));
  CHECK(c.name == "a");
  CHECK(c.image == "herd.local/busybox:latest");
  CHECK_FALSE(c.image_archive.has_value());
  CHECK(c.args.empty());
  CHECK(c.env.empty());
  CHECK(c.mounts.empty());
  CHECK(c.network == Network::kHost);
  CHECK_FALSE(c.hostname.has_value());
  CHECK_FALSE(c.user.has_value());
  CHECK_FALSE(c.workdir.has_value());
  CHECK(c.rlimits.empty());
  CHECK_FALSE(c.ready.has_value());
  CHECK(c.restart.preset == RestartPreset::kDefault);
  CHECK(c.restart.base == 2s);
  CHECK(c.restart.max == 60s);
  CHECK(c.restart.reset_window == 5min);
  CHECK(c.restart.max_restarts == 0);
  CHECK(c.restart.jitter == 0.0);
  CHECK(c.depends_on.empty());
  CHECK(c.stop_grace == 30s);
  CHECK(c.stop_signal == SIGTERM);
  CHECK(c.labels.empty());
}

TEST_CASE("config: a component with every key set") {
  const Component c = only_component(parse_ok(R"({"components": [{
    "name": "etcd",
    "image": "herd.local/etcd:v3.5",
    "image_archive": "/var/lib/herd/images/etcd.tar",
    "args": ["/usr/bin/etcd", "--data-dir", "/etcd-data"],
    "env": {"ETCD_AUTO_COMPACTION_MODE": "periodic", "_X1": ""},
    "mounts": [{"data": "etcd", "target": "/etcd-data", "mode": "0700", "uid": 1000, "gid": 1001},
               {"bind": "/etc/ssl/certs", "target": "/etc/ssl/certs/", "readonly": true}],
    "network": "none",
    "hostname": "etcd-0.node",
    "user": "1000:1001",
    "workdir": "/etcd-data",
    "rlimits": {"nofile": 65536, "core": "unlimited", "nproc": {"soft": 1024, "hard": 4096}},
    "ready": {"tcp": {"port": 12379}, "interval": "100ms"},
    "restart": {"preset": "aggressive"},
    "stop_grace": "10s",
    "stop_signal": "SIGINT",
    "labels": {"example.com/team": "storage"}
  }]})"));
  CHECK(c.name == "etcd");
  CHECK(c.image == "herd.local/etcd:v3.5");
  CHECK(c.image_archive == "/var/lib/herd/images/etcd.tar");
  CHECK(c.args == std::vector<std::string>{"/usr/bin/etcd", "--data-dir", "/etcd-data"});
  CHECK(c.env.at("ETCD_AUTO_COMPACTION_MODE") == "periodic");
  CHECK(c.env.at("_X1").empty());
  REQUIRE(c.mounts.size() == 2);
  CHECK(c.mounts[0].kind == Mount::Kind::kData);
  CHECK(c.mounts[0].data == "etcd");
  CHECK(c.mounts[0].target == "/etcd-data");
  CHECK(c.mounts[0].mode == 0700);
  CHECK(c.mounts[0].uid == 1000u);
  CHECK(c.mounts[0].gid == 1001u);
  CHECK(c.mounts[1].kind == Mount::Kind::kBind);
  CHECK(c.mounts[1].bind == "/etc/ssl/certs");
  CHECK(c.mounts[1].target == "/etc/ssl/certs");  // trailing '/' removed
  CHECK(c.mounts[1].readonly);
  CHECK(c.network == Network::kNone);
  CHECK(c.hostname == "etcd-0.node");
  REQUIRE(c.user.has_value());
  CHECK(c.user->uid == 1000);
  CHECK(c.user->gid == 1001u);
  CHECK(c.workdir == "/etcd-data");
  REQUIRE(c.rlimits.size() == 3);  // in the order written
  CHECK(c.rlimits[0].type == "nofile");
  CHECK(c.rlimits[0].soft == 65536);
  CHECK(c.rlimits[0].hard == 65536);
  CHECK(c.rlimits[0].oci_type() == "RLIMIT_NOFILE");
  CHECK(c.rlimits[1].type == "core");
  CHECK(c.rlimits[1].soft == kRlimitUnlimited);
  CHECK(c.rlimits[1].hard == kRlimitUnlimited);
  CHECK(c.rlimits[2].type == "nproc");
  CHECK(c.rlimits[2].soft == 1024);
  CHECK(c.rlimits[2].hard == 4096);
  REQUIRE(c.ready.has_value());
  CHECK(c.ready->port == 12379);
  CHECK(c.ready->interval == 100ms);
  CHECK(c.restart.preset == RestartPreset::kAggressive);
  CHECK(c.stop_grace == 10s);
  CHECK(c.stop_signal == SIGINT);
  CHECK(c.labels.at("example.com/team") == "storage");
}

TEST_CASE("config: component names follow the container id rules") {
  for (const char* good : {"a", "etcd", "victoria-metrics", "v1.2_x", "0abc"}) {
    INFO(good);
    CHECK(only_component(parse_ok(with_component_key("name", "\"" + std::string(good) + "\"")))
              .name == good);
  }
  CHECK(
      parse_ok(with_component_key("name", "\"" + std::string(63, 'x') + "\"")).components.size() ==
      1);
  for (const char* bad : {"Etcd", "-a", "_a", "a b", "a/b", "é"}) {
    INFO(bad);
    CHECK_ONE_ERROR(with_component_key("name", "\"" + std::string(bad) + "\""),
                    "/components/0/name", "must match ^[a-z0-9][a-z0-9_.-]{0,62}$");
  }
  CHECK_ONE_ERROR(with_component_key("name", "\"" + std::string(64, 'x') + "\""),
                  "/components/0/name", "must match");
  CHECK_ONE_ERROR(with_component_key("name", R"("a--b")"), "/components/0/name",
                  "two of '.', '_', '-' in a row");
  CHECK_ONE_ERROR(with_component_key("name", R"("a-")"), "/components/0/name",
                  "one at the end (containerd id rule)");
  CHECK_ONE_ERROR(with_component_key("name", R"("")"), "/components/0/name", "must not be empty");
  CHECK_ONE_ERROR(with_component_key("name", "3"), "/components/0/name",
                  "expected a string, got a number");
  CHECK_ONE_ERROR(edit({{"/components/0/name", kDelete}}), "/components/0/name",
                  "required key is missing");
}

TEST_CASE("config: duplicate component names are reported at the second") {
  CHECK_ONE_ERROR(
      R"({"components": [{"name": "a", "image": "i"}, {"name": "b", "image": "i"},
                         {"name": "a", "image": "i"}]})",
      "/components/2/name", "duplicate component name \"a\" (first at /components/0)");
}

TEST_CASE("config: image and image_archive are checked") {
  CHECK_ONE_ERROR(edit({{"/components/0/image", kDelete}}), "/components/0/image",
                  "required key is missing");
  CHECK_ONE_ERROR(with_component_key("image", R"("")"), "/components/0/image", "must not be empty");
  CHECK_ONE_ERROR(with_component_key("image", R"("busybox latest")"), "/components/0/image",
                  "must not contain whitespace");
  CHECK_ONE_ERROR(with_component_key("image", "null"), "/components/0/image",
                  "expected a string, got null");
  CHECK_ONE_ERROR(with_component_key("image_archive", R"("images/busybox.tar")"),
                  "/components/0/image_archive", "must be an absolute path");
}

TEST_CASE("config: args and env are checked") {
  CHECK_ONE_ERROR(with_component_key("args", R"("sleep 10")"), "/components/0/args",
                  "expected an array, got a string");
  CHECK_ONE_ERROR(with_component_key("args", R"(["sleep", 10])"), "/components/0/args/1",
                  "expected a string, got a number");
  CHECK_ONE_ERROR(with_component_key("args", R"(["a\u0000b"])"), "/components/0/args/0", "NUL");
  CHECK(only_component(parse_ok(with_component_key("args", "[]"))).args.empty());

  CHECK_ONE_ERROR(with_component_key("env", R"(["A=1"])"), "/components/0/env",
                  "expected an object, got an array");
  CHECK_ONE_ERROR(with_component_key("env", R"({"1X": "v"})"), "/components/0/env/1X",
                  "invalid environment variable name \"1X\"");
  CHECK_ONE_ERROR(with_component_key("env", R"({"A=B": "v"})"), "/components/0/env/A=B",
                  "invalid environment variable name");
  CHECK_ONE_ERROR(with_component_key("env", R"({"": "v"})"), "/components/0/env/",
                  "invalid environment variable name \"\"");
  CHECK_ONE_ERROR(with_component_key("env", R"({"PORT": 80})"), "/components/0/env/PORT",
                  "expected a string, got a number");
}

TEST_CASE("config: data and bind mounts") {
  const Component c = only_component(parse_ok(with_component_key(
      "mounts", R"([{"data": "d", "target": "/d"}, {"bind": "/host", "target": "/h"}])")));
  REQUIRE(c.mounts.size() == 2);
  CHECK(c.mounts[0].mode == 0755);  // default
  CHECK_FALSE(c.mounts[0].uid.has_value());
  CHECK_FALSE(c.mounts[0].gid.has_value());
  CHECK_FALSE(c.mounts[1].readonly);  // default
  Config config = parse_ok(kBase);
  CHECK(config.data_dir("etcd", "wal") == "/var/lib/herd/etcd/wal");

  CHECK(only_component(parse_ok(with_component_key(
                           "mounts", R"([{"data": "d", "target": "/d", "mode": "7777"}])")))
            .mounts[0]
            .mode == 07777);
  CHECK(only_component(parse_ok(with_component_key(
                           "mounts", R"([{"data": "d", "target": "/d", "mode": "750"}])")))
            .mounts[0]
            .mode == 0750);
}

TEST_CASE("config: a mount has exactly one of data or bind, and only its own keys") {
  const std::string m = "/components/0/mounts/0";
  CHECK_ONE_ERROR(with_component_key("mounts", R"([{"target": "/d"}])"), m,
                  "must have exactly one of \"data\" (a data directory) or \"bind\"");
  CHECK_ONE_ERROR(with_component_key("mounts", R"([{"data": "d", "bind": "/h", "target": "/d"}])"),
                  m, "got both");
  CHECK_ONE_ERROR(
      with_component_key("mounts", R"([{"data": "d", "target": "/d", "readonly": true}])"),
      m + "/readonly", "only allowed in a bind mount");
  CHECK_ONE_ERROR(
      with_component_key("mounts", R"([{"bind": "/h", "target": "/d", "mode": "0700"}])"),
      m + "/mode", "only allowed in a data mount");
  CHECK_ONE_ERROR(with_component_key("mounts", R"([{"bind": "/h", "target": "/d", "uid": 1}])"),
                  m + "/uid", "only allowed in a data mount");
  CHECK_ONE_ERROR(with_component_key("mounts", R"([{"data": "d"}])"), m + "/target",
                  "required key is missing");
  CHECK_ONE_ERROR(
      with_component_key("mounts", R"([{"data": "d", "target": "/d", "mdoe": "0700"}])"),
      m + "/mdoe", "did you mean \"mode\"?");
  CHECK_ONE_ERROR(with_component_key("mounts", R"({"data": "d"})"), "/components/0/mounts",
                  "expected an array, got an object");
}

TEST_CASE("config: mount modes, owners, names and sources are checked") {
  const std::string m = "/components/0/mounts/0";
  auto data_mount = [](const std::string& extra) {
    return with_component_key("mounts", R"([{"data": "d", "target": "/d", )" + extra + "}]");
  };
  for (const char* bad : {"999", "07777", "75", "0x1f", "", "rwx"}) {
    INFO(bad);
    CHECK_ONE_ERROR(data_mount(R"("mode": ")" + std::string(bad) + "\""), m + "/mode",
                    "must be an octal mode of 3 or 4 digits");
  }
  CHECK_ONE_ERROR(data_mount(R"("mode": 755)"), m + "/mode",
                  "expected an octal mode string such as \"0755\", got a number");
  CHECK_ONE_ERROR(data_mount(R"("uid": -1)"), m + "/uid",
                  "must be between 0 and 4294967294, got -1");
  CHECK_ONE_ERROR(data_mount(R"("gid": 4294967295)"), m + "/gid",
                  "must be between 0 and 4294967294, got 4294967295");
  CHECK_ONE_ERROR(data_mount(R"("gid": "0")"), m + "/gid", "expected an integer, got a string");
  CHECK(only_component(parse_ok(data_mount(R"("uid": 0, "gid": 4294967294)"))).mounts[0].gid ==
        4294967294u);

  for (const char* bad : {"a/b", ".", "..", "", "a b"}) {
    INFO(bad);
    CHECK_ONE_ERROR(with_component_key(
                        "mounts", R"([{"data": ")" + std::string(bad) + R"(", "target": "/d"}])"),
                    m + "/data", "must be a simple directory name");
  }
  CHECK_ONE_ERROR(with_component_key("mounts", R"([{"bind": "host", "target": "/d"}])"),
                  m + "/bind", "must be an absolute path");
  CHECK_ONE_ERROR(with_component_key("mounts", R"([{"bind": "/a/../etc", "target": "/d"}])"),
                  m + "/bind", "\"..\" segments");
  CHECK_ONE_ERROR(
      with_component_key("mounts", R"([{"bind": "/h", "target": "/d", "readonly": "yes"}])"),
      m + "/readonly", "expected a boolean");
}

TEST_CASE("config: unsafe mount targets are rejected") {
  const std::string path = "/components/0/mounts/0/target";
  struct Case {
    const char* target;
    const char* fragment;
  };
  const Case cases[] = {
      {"data", "must be an absolute path"},
      {"", "must not be empty"},
      {"/", "must not be \"/\""},
      {"//", "must not be \"/\""},
      {"/proc", "must not be /proc or below it"},
      {"/proc/sys", "must not be /proc or below it"},
      {"/sys", "must not be /sys or below it"},
      {"/sys/fs/cgroup", "must not be /sys or below it"},
      {"/dev", "must not be /dev or below it"},
      {"//dev//shm", "must not be /dev or below it"},
      {"/data/../etc", "must not contain \".\" or \"..\" segments"},
      {"/a/./b", "must not contain \".\" or \"..\" segments"},
      {"/..", "must not contain \".\" or \"..\" segments"},
  };
  for (const Case& c : cases) {
    INFO(c.target);
    CHECK_ONE_ERROR(with_component_key(
                        "mounts", R"([{"data": "d", "target": ")" + std::string(c.target) + "\"}]"),
                    path, c.fragment);
  }
  // Names that merely start like a kernel file system are fine.
  for (const char* ok : {"/procfs", "/system", "/devices/x", "/data/proc"}) {
    INFO(ok);
    parse_ok(
        with_component_key("mounts", R"([{"data": "d", "target": ")" + std::string(ok) + "\"}]"));
  }
}

TEST_CASE("config: duplicate targets and conflicting data directories") {
  CHECK_ONE_ERROR(with_component_key("mounts", R"([{"data": "a", "target": "/d"},
                                                   {"bind": "/h", "target": "/d/"}])"),
                  "/components/0/mounts/1/target",
                  "duplicate mount target \"/d\" (also at /components/0/mounts/0)");
  // The same data directory twice is fine when it is created the same way...
  parse_ok(with_component_key("mounts", R"([{"data": "a", "target": "/x", "mode": "0700"},
                                            {"data": "a", "target": "/y", "mode": "0700"}])"));
  // ...and an error when not.
  CHECK_ONE_ERROR(with_component_key("mounts", R"([{"data": "a", "target": "/x", "mode": "0700"},
                                                   {"data": "a", "target": "/y"}])"),
                  "/components/0/mounts/1/data",
                  "also mounted at /components/0/mounts/0 with a different mode, uid or gid");
  // Two components may use the same target each.
  parse_ok(R"({"components": [
      {"name": "a", "image": "i", "mounts": [{"data": "d", "target": "/d"}]},
      {"name": "b", "image": "i", "mounts": [{"data": "d", "target": "/d"}]}]})");
}

TEST_CASE("config: network, hostname, user, workdir") {
  CHECK_ONE_ERROR(with_component_key("network", R"("hots")"), "/components/0/network",
                  "must be \"host\" or \"none\", got \"hots\" (did you mean \"host\"?)");
  CHECK_ONE_ERROR(with_component_key("network", R"("bridge")"), "/components/0/network",
                  "must be \"host\" or \"none\", got \"bridge\"");
  CHECK(herd::config::to_string(Network::kNone) == "none");

  CHECK(only_component(parse_ok(with_component_key("hostname", R"("node-1")"))).hostname ==
        "node-1");
  for (const char* bad : {"", "-a", "a-", "a..b", "a_b", "a b"}) {
    INFO(bad);
    CHECK_ONE_ERROR(with_component_key("hostname", "\"" + std::string(bad) + "\""),
                    "/components/0/hostname", "must be a host name");
  }
  CHECK_ONE_ERROR(with_component_key("hostname", "\"" + std::string(65, 'h') + "\""),
                  "/components/0/hostname", "at most 64 characters");

  auto user_of = [](const char* text) {
    return only_component(parse_ok(with_component_key("user", "\"" + std::string(text) + "\"")))
        .user.value();
  };
  CHECK(user_of("root").uid == 0);
  CHECK(user_of("root").gid == 0u);
  CHECK(user_of("1000").uid == 1000);
  CHECK_FALSE(user_of("1000").gid.has_value());
  CHECK(user_of("65534:65534").gid == 65534u);
  for (const char* bad : {"nobody", "1000:", ":1000", "1000:x", "4294967295", "-1", "", "1:2:3"}) {
    INFO(bad);
    CHECK_ONE_ERROR(with_component_key("user", "\"" + std::string(bad) + "\""),
                    "/components/0/user", "must be \"root\", \"<uid>\" or \"<uid>:<gid>\"");
  }
  CHECK_ONE_ERROR(with_component_key("user", "1000"), "/components/0/user",
                  "expected a string, got a number");

  CHECK_ONE_ERROR(with_component_key("workdir", R"("app")"), "/components/0/workdir",
                  "must be an absolute path");
}

TEST_CASE("config: rlimits") {
  const std::string r = "/components/0/rlimits";
  CHECK_ONE_ERROR(with_component_key("rlimits", R"({"nofiles": 1024})"), r + "/nofiles",
                  "unknown rlimit \"nofiles\" (did you mean \"nofile\"?)");
  CHECK_ONE_ERROR(with_component_key("rlimits", R"({"nofile": -1})"), r + "/nofile",
                  "must not be negative, got -1");
  CHECK_ONE_ERROR(with_component_key("rlimits", R"({"nofile": "lots"})"), r + "/nofile",
                  "expected a non-negative integer or \"unlimited\", got \"lots\"");
  CHECK_ONE_ERROR(with_component_key("rlimits", R"({"nofile": 1.5})"), r + "/nofile", "got 1.5");
  CHECK_ONE_ERROR(with_component_key("rlimits", R"({"nofile": {"soft": 2048, "hard": 1024}})"),
                  r + "/nofile/soft", "must not exceed hard (1024), got 2048");
  CHECK_ONE_ERROR(with_component_key("rlimits", R"({"nofile": {"soft": "unlimited", "hard": 1}})"),
                  r + "/nofile/soft", "must not exceed hard (1), got unlimited");
  CHECK_ONE_ERROR(with_component_key("rlimits", R"({"nofile": {"soft": 1}})"), r + "/nofile/hard",
                  "required key is missing");
  CHECK_ONE_ERROR(with_component_key("rlimits", R"({"nofile": {"soft": 1, "hard": 2, "max": 3}})"),
                  r + "/nofile/max", "unknown key \"max\"");
  CHECK_ONE_ERROR(with_component_key("rlimits", "[]"), r, "expected an object, got an array");

  const Component c = only_component(parse_ok(
      with_component_key("rlimits", R"({"memlock": {"soft": 1024, "hard": "unlimited"}, "rttime": 0,
                    "stack": 18446744073709551615})")));
  REQUIRE(c.rlimits.size() == 3);
  CHECK(c.rlimits[0].type == "memlock");
  CHECK(c.rlimits[0].soft == 1024);
  CHECK(c.rlimits[0].hard == kRlimitUnlimited);
  CHECK(c.rlimits[1].soft == 0);
  CHECK(c.rlimits[2].hard == kRlimitUnlimited);
  CHECK(c.rlimits[2].oci_type() == "RLIMIT_STACK");
  // Every documented type is accepted.
  std::string all = "{";
  for (const char* t : {"nofile", "nproc", "core", "memlock", "stack", "as", "fsize", "cpu", "data",
                        "locks", "msgqueue", "nice", "rtprio", "sigpending", "rss", "rttime"}) {
    if (all.size() > 1) all += ", ";
    all += "\"" + std::string(t) + "\": 1";
  }
  all += "}";
  CHECK(only_component(parse_ok(with_component_key("rlimits", all))).rlimits.size() == 16);
}

TEST_CASE("config: ready probes") {
  const Component tcp =
      only_component(parse_ok(with_component_key("ready", R"({"tcp": {"port": 80}})")));
  REQUIRE(tcp.ready.has_value());
  CHECK(tcp.ready->kind == ReadyProbe::Kind::kTcp);
  CHECK(tcp.ready->host == "127.0.0.1");
  CHECK(tcp.ready->port == 80);
  CHECK(tcp.ready->interval == 1s);
  CHECK(tcp.ready->timeout == 1s);
  CHECK(tcp.ready->max_wait == 60s);
  CHECK(tcp.ready->success_threshold == 1);
  CHECK(tcp.ready->failure_threshold == 3);

  const Component http = only_component(parse_ok(
      with_component_key("ready", R"({"http": {"host": "10.0.0.1", "port": 9428, "path": "/health"},
                   "interval": "250ms", "timeout": "2s", "max_wait": "0",
                   "success_threshold": 2, "failure_threshold": 5})")));
  REQUIRE(http.ready.has_value());
  CHECK(http.ready->kind == ReadyProbe::Kind::kHttp);
  CHECK(http.ready->host == "10.0.0.1");
  CHECK(http.ready->port == 9428);
  CHECK(http.ready->path == "/health");
  CHECK(http.ready->interval == 250ms);
  CHECK(http.ready->timeout == 2s);
  CHECK(http.ready->max_wait == 0ms);  // forever
  CHECK(http.ready->success_threshold == 2);
  CHECK(http.ready->failure_threshold == 5);
  CHECK(only_component(parse_ok(with_component_key("ready", R"({"http": {"port": 1}})")))
            .ready->path == "/");
}

TEST_CASE("config: ready probe errors") {
  const std::string r = "/components/0/ready";
  auto ready = [](const std::string& text) { return with_component_key("ready", text); };
  CHECK_ONE_ERROR(ready(R"({"tcp": {"port": 70000}})"), r + "/tcp/port",
                  "must be between 1 and 65535, got 70000");
  CHECK_ONE_ERROR(ready(R"({"tcp": {"port": 0}})"), r + "/tcp/port",
                  "must be between 1 and 65535, got 0");
  CHECK_ONE_ERROR(ready(R"({"tcp": {"port": "80"}})"), r + "/tcp/port",
                  "expected an integer, got a string");
  CHECK_ONE_ERROR(ready(R"({"tcp": {"port": 80.5}})"), r + "/tcp/port",
                  "expected an integer, got 80.5");
  CHECK_ONE_ERROR(ready(R"({"tcp": {}})"), r + "/tcp/port", "required key is missing");
  CHECK_ONE_ERROR(ready(R"({"tcp": {"port": 1, "path": "/"}})"), r + "/tcp/path",
                  "unknown key \"path\"");
  CHECK_ONE_ERROR(ready(R"({"tcp": {"port": 1, "host": ""}})"), r + "/tcp/host",
                  "must not be empty");
  CHECK_ONE_ERROR(ready(R"({"tcp": {"port": 1, "host": "http://x"}})"), r + "/tcp/host",
                  "must be a host name or IP address");
  CHECK_ONE_ERROR(ready(R"({"http": {"port": 1, "path": "health"}})"), r + "/http/path",
                  "must start with '/', got \"health\"");
  CHECK_ONE_ERROR(ready(R"({"tcp": {"port": 1}, "http": {"port": 1}})"), r,
                  "exactly one of \"tcp\", \"http\", \"exec\" or \"grpc\", got 2");
  CHECK_ONE_ERROR(ready(R"({"interval": "1s"})"), r,
                  "must have exactly one of \"tcp\", \"http\", \"exec\" or \"grpc\"");
  CHECK_ONE_ERROR(ready(R"({"tcp": {"port": 1}, "initial_delay": "1s"})"), r + "/initial_delay",
                  "unknown key");
  CHECK_ONE_ERROR(ready(R"({"http": {"port": 1, "status": [300, 200]}})"), r + "/http/status",
                  "min 300 is above max 200");
  CHECK_ONE_ERROR(ready(R"({"http": {"port": 1, "status": [200]}})"), r + "/http/status",
                  "must be [min, max], got 1 entries");
  CHECK_ONE_ERROR(ready(R"({"http": {"port": 1, "status": [200, 600]}})"), r + "/http/status/1",
                  "must be an HTTP status code 100-599, got 600");
  CHECK_ONE_ERROR(ready(R"({"exec": {"command": []}})"), r + "/exec/command",
                  "must have 1-256 strings, got 0");
  CHECK_ONE_ERROR(ready(R"({"exec": {}})"), r + "/exec/command", "required key is missing");
  CHECK_ONE_ERROR(ready(R"({"exec": {"command": ["", "x"]}})"), r + "/exec/command/0",
                  "must not be empty");
  CHECK_ONE_ERROR(ready(R"({"exec": {"command": ["sh", 3]}})"), r + "/exec/command/1",
                  "expected a string");
  CHECK_ONE_ERROR(ready(R"({"tcp": 80})"), r + "/tcp", "expected an object, got a number");
  CHECK_ONE_ERROR(ready(R"({"tcp": {"port": 1}, "interval": "0"})"), r + "/interval",
                  "must be greater than 0, got \"0\"");
  CHECK_ONE_ERROR(ready(R"({"tcp": {"port": 1}, "timeout": "0s"})"), r + "/timeout",
                  "must be greater than 0");
  CHECK_ONE_ERROR(ready(R"({"tcp": {"port": 1}, "max_wait": "forever"})"), r + "/max_wait",
                  "invalid duration \"forever\"");
  CHECK_ONE_ERROR(ready(R"({"tcp": {"port": 1}, "success_threshold": 0})"),
                  r + "/success_threshold", "must be between 1 and 2147483647, got 0");
  CHECK_ONE_ERROR(ready(R"({"tcp": {"port": 1}, "failure_threshold": -3})"),
                  r + "/failure_threshold", "got -3");
  CHECK_ONE_ERROR(ready("true"), r, "expected an object, got a boolean");
}

TEST_CASE("config: liveness probes and reconcile_interval") {
  const Component c = only_component(parse_ok(with_component_key(
      "liveness", R"({"http": {"port": 8080, "path": "/health", "status": [200, 204]},
                      "interval": "10s", "timeout": "2s", "failure_threshold": 5,
                      "initial_delay": "30s"})")));
  REQUIRE(c.liveness.has_value());
  CHECK_FALSE(c.ready.has_value());
  CHECK(c.liveness->kind == ReadyProbe::Kind::kHttp);
  CHECK(c.liveness->port == 8080);
  CHECK(c.liveness->status_min == 200);
  CHECK(c.liveness->status_max == 204);
  CHECK(c.liveness->interval == 10s);
  CHECK(c.liveness->timeout == 2s);
  CHECK(c.liveness->failure_threshold == 5);
  CHECK(c.liveness->initial_delay == 30s);

  const Component e = only_component(parse_ok(with_component_key(
      "liveness", R"({"exec": {"command": ["etcdctl", "endpoint", "health"]}})")));
  REQUIRE(e.liveness.has_value());
  CHECK(e.liveness->kind == ReadyProbe::Kind::kExec);
  CHECK(e.liveness->command == std::vector<std::string>{"etcdctl", "endpoint", "health"});
  CHECK(e.liveness->interval == 1s);
  CHECK(e.liveness->failure_threshold == 3);
  CHECK(e.liveness->initial_delay == 0s);
  const Component g = only_component(parse_ok(with_component_key(
      "ready", R"({"grpc": {"port": 50051, "service": "etcd"}, "interval": "100ms"})")));
  CHECK(g.ready->kind == ReadyProbe::Kind::kGrpc);
  CHECK(g.ready->port == 50051);
  CHECK(g.ready->service == "etcd");
  CHECK(g.ready->host == "127.0.0.1");
  CHECK_ONE_ERROR(with_component_key("ready", R"({"grpc": {"port": 1, "path": "/"}})"),
                  "/components/0/ready/grpc/path", "unknown key");
  const Component tls = only_component(parse_ok(with_component_key(
      "liveness", R"({"http": {"port": 8443, "scheme": "https", "tls_verify": true}})")));
  CHECK(tls.liveness->https);
  CHECK(tls.liveness->tls_verify);
  CHECK_ONE_ERROR(with_component_key("ready", R"({"http": {"port": 1, "scheme": "ftp"}})"),
                  "/components/0/ready/http/scheme", "ftp");
  // Defaults of http's status range.
  const Component h =
      only_component(parse_ok(with_component_key("ready", R"({"http": {"port": 1}})")));
  CHECK(h.ready->status_min == 200);
  CHECK(h.ready->status_max == 399);
  CHECK_FALSE(h.ready->https);
  CHECK_FALSE(h.ready->tls_verify);

  const std::string l = "/components/0/liveness";
  CHECK_ONE_ERROR(with_component_key("liveness", R"({"tcp": {"port": 1}, "max_wait": "1s"})"),
                  l + "/max_wait", "unknown key");
  CHECK_ONE_ERROR(with_component_key("liveness", R"({"tcp": {"port": 1}, "success_threshold": 1})"),
                  l + "/success_threshold", "unknown key");
  CHECK_ONE_ERROR(with_component_key("liveness", R"({"interval": "1s"})"), l,
                  "must have exactly one of");
  CHECK_ONE_ERROR(
      with_component_key("liveness", R"({"tcp": {"port": 1}, "initial_delay": "soon"})"),
      l + "/initial_delay", "invalid duration");
  // A network none component may have tcp/http probes (they run in its netns).
  const Component none =
      only_component(parse_ok(edit({{"/components/0/network", R"("none")"},
                                    {"/components/0/ready", R"({"tcp": {"port": 1}})"}})));
  CHECK(none.network == herd::config::Network::kNone);
  CHECK_ONE_ERROR(
      edit({{"/components/0/network", R"("none")"},
            {"/components/0/liveness", R"({"http": {"host": "web.local", "port": 1}})"}}),
      "/components/0/liveness/http/host", "must be an IP address with");

  CHECK(parse_ok(R"({"components": []})").reconcile_interval == 60s);
  CHECK(parse_ok(R"({"reconcile_interval": "5s", "components": []})").reconcile_interval == 5s);
  CHECK_ONE_ERROR(R"({"reconcile_interval": "500ms", "components": []})", "/reconcile_interval",
                  "");
}

TEST_CASE("config: priority and max_concurrent_starts") {
  CHECK(only_component(parse_ok(with_component_key("priority", "100"))).priority == 100);
  CHECK(only_component(parse_ok(with_component_key("priority", "-5"))).priority == -5);
  CHECK(only_component(parse_ok(edit({}))).priority == 0);
  CHECK_ONE_ERROR(with_component_key("priority", "1001"), "/components/0/priority", "");
  CHECK_ONE_ERROR(with_component_key("priority", R"("high")"), "/components/0/priority", "");
  CHECK_ONE_ERROR(with_component_key("priority", "1.5"), "/components/0/priority", "");

  const Config def = parse_ok(R"({"components": []})");
  CHECK(def.max_concurrent_starts == 0);
  CHECK(def.effective_max_concurrent_starts() >= 2);
  const Config three = parse_ok(R"({"max_concurrent_starts": 3, "components": []})");
  CHECK(three.effective_max_concurrent_starts() == 3);
  CHECK_ONE_ERROR(R"({"max_concurrent_starts": 0, "components": []})", "/max_concurrent_starts",
                  "");
  CHECK_ONE_ERROR(R"({"max_concurrent_starts": 5000, "components": []})", "/max_concurrent_starts",
                  "");
}

TEST_CASE("config: restart presets and overrides") {
  auto restart = [](const std::string& text) {
    return only_component(parse_ok(with_component_key("restart", text))).restart;
  };
  const auto def = restart(R"({"preset": "default"})");
  CHECK(def.preset == RestartPreset::kDefault);
  CHECK(def.base == 2s);
  CHECK(def.max == 60s);
  CHECK(def.reset_window == 5min);
  CHECK(def.max_restarts == 0);

  const auto aggressive = restart(R"({"preset": "aggressive"})");
  CHECK(aggressive.preset == RestartPreset::kAggressive);
  CHECK(aggressive.base == 500ms);
  CHECK(aggressive.max == 10s);
  CHECK(aggressive.reset_window == 2min);
  CHECK(aggressive.max_restarts == 0);
  CHECK(aggressive.jitter == 0.0);

  // Overrides replace single fields, the rest stays from the preset.
  const auto mixed = restart(R"({"preset": "aggressive", "max": "30s", "max_restarts": 5,
                                 "jitter": 0.2})");
  CHECK(mixed.base == 500ms);
  CHECK(mixed.max == 30s);
  CHECK(mixed.reset_window == 2min);
  CHECK(mixed.max_restarts == 5);
  CHECK(mixed.jitter == 0.2);
  const auto no_preset = restart(R"({"reset_window": "1m"})");
  CHECK(no_preset.preset == RestartPreset::kDefault);
  CHECK(no_preset.base == 2s);
  CHECK(no_preset.reset_window == 1min);
  // Zero delay (benchmarks).
  const auto zero = restart(R"({"base": "0", "max": "0"})");
  CHECK(zero.base == 0ms);
  CHECK(zero.max == 0ms);
  CHECK(restart(R"({"jitter": 1})").jitter == 1.0);

  const auto from_preset = herd::config::RestartPolicy::from_preset(RestartPreset::kAggressive);
  CHECK(from_preset.base == 500ms);
  CHECK(herd::config::to_string(RestartPreset::kAggressive) == "aggressive");
}

TEST_CASE("config: the restart presets (the one place they are defined)") {
  using herd::config::RestartPolicy;
  // The seed's values: default unlimited, 2s doubling to 60s, reset after
  // 5m ready; aggressive (etcd) 500ms to 10s, reset after 2m.
  const RestartPolicy d = RestartPolicy::from_preset(RestartPreset::kDefault);
  CHECK(d.preset == RestartPreset::kDefault);
  CHECK(d.base == 2s);
  CHECK(d.max == 60s);
  CHECK(d.reset_window == 5min);
  CHECK(d.max_restarts == 0);
  CHECK(d.jitter == 0.0);
  // A RestartPolicy{} (no `restart` key) is the default preset.
  CHECK(RestartPolicy{} == d);

  const RestartPolicy a = RestartPolicy::from_preset(RestartPreset::kAggressive);
  CHECK(a.preset == RestartPreset::kAggressive);
  CHECK(a.base == 500ms);
  CHECK(a.max == 10s);
  CHECK(a.reset_window == 2min);
  CHECK(a.max_restarts == 0);
  CHECK(a.jitter == 0.0);
}

TEST_CASE("config: restart errors") {
  const std::string r = "/components/0/restart";
  auto restart = [](const std::string& text) { return with_component_key("restart", text); };
  CHECK_ONE_ERROR(restart(R"({"preset": "agressive"})"), r + "/preset",
                  "must be \"default\" or \"aggressive\", got \"agressive\" (did you mean "
                  "\"aggressive\"?)");
  // A bad preset is the one error: base is not compared with a guessed max.
  CHECK_ONE_ERROR(restart(R"({"preset": "fast", "base": "1h"})"), r + "/preset", "got \"fast\"");
  CHECK_ONE_ERROR(restart(R"({"base": "20s", "preset": "aggressive"})"), r + "/base",
                  "must not exceed max (10s), got 20s");
  CHECK_ONE_ERROR(restart(R"({"max": "1s"})"), r + "/max",
                  "must not be less than base (2s), got 1s");
  CHECK_ONE_ERROR(restart(R"({"base": "5s", "max": "1s"})"), r + "/base",
                  "must not exceed max (1s), got 5s");
  CHECK_ONE_ERROR(restart(R"({"max_restarts": -1})"), r + "/max_restarts",
                  "must be between 0 and 4294967295, got -1");
  CHECK_ONE_ERROR(restart(R"({"jitter": 1.5})"), r + "/jitter",
                  "must be between 0.0 and 1.0, got 1.5");
  CHECK_ONE_ERROR(restart(R"({"jitter": -0.1})"), r + "/jitter", "must be between 0.0 and 1.0");
  CHECK_ONE_ERROR(restart(R"({"jitter": "0.1"})"), r + "/jitter",
                  "expected a number, got a string");
  CHECK_ONE_ERROR(restart(R"({"base": "-1s"})"), r + "/base", "must not be negative");
  CHECK_ONE_ERROR(restart(R"({"maximum": "1s"})"), r + "/maximum", "unknown key \"maximum\"");
  CHECK_ONE_ERROR(restart(R"("aggressive")"), r, "expected an object, got a string");
}

TEST_CASE("config: stop grace and stop signal") {
  CHECK(only_component(parse_ok(with_component_key("stop_grace", R"("0")"))).stop_grace == 0ms);
  CHECK(only_component(parse_ok(with_component_key("stop_grace", R"("1m30s")"))).stop_grace == 90s);
  CHECK_ONE_ERROR(with_component_key("stop_grace", R"("30")"), "/components/0/stop_grace",
                  "missing unit");
  for (auto [name, number] : std::vector<std::pair<const char*, int>>{{"SIGTERM", SIGTERM},
                                                                      {"SIGINT", SIGINT},
                                                                      {"SIGQUIT", SIGQUIT},
                                                                      {"SIGHUP", SIGHUP},
                                                                      {"SIGUSR1", SIGUSR1},
                                                                      {"SIGUSR2", SIGUSR2},
                                                                      {"SIGKILL", SIGKILL}}) {
    INFO(name);
    CHECK(
        only_component(parse_ok(with_component_key("stop_signal", "\"" + std::string(name) + "\"")))
            .stop_signal == number);
    CHECK(herd::config::signal_name(number) == name);
    CHECK(herd::config::parse_signal(name) == number);
  }
  CHECK_ONE_ERROR(with_component_key("stop_signal", R"("TERM")"), "/components/0/stop_signal",
                  "unknown signal \"TERM\" (did you mean \"SIGTERM\"?)");
  CHECK_ONE_ERROR(with_component_key("stop_signal", R"("SIGTREM")"), "/components/0/stop_signal",
                  "(did you mean \"SIGTERM\"?)");
  CHECK_ONE_ERROR(with_component_key("stop_signal", R"("SIGSTOP")"), "/components/0/stop_signal",
                  "accepted: SIGTERM, SIGINT");
  CHECK_ONE_ERROR(with_component_key("stop_signal", "15"), "/components/0/stop_signal",
                  "expected a string, got a number");
  CHECK(herd::config::signal_name(SIGSTOP).empty());
}

TEST_CASE("config: labels") {
  CHECK(only_component(parse_ok(with_component_key("labels", R"({"team": "db"})")))
            .labels.at("team") == "db");
  CHECK_ONE_ERROR(with_component_key("labels", R"({"io.herd.spec-hash": "x"})"),
                  "/components/0/labels/io.herd.spec-hash", "reserved for herd");
  CHECK_ONE_ERROR(with_component_key("labels", R"({"": "x"})"), "/components/0/labels/",
                  "must not be empty");
  CHECK_ONE_ERROR(with_component_key("labels", R"({"team": 1})"), "/components/0/labels/team",
                  "expected a string, got a number");
  CHECK_ONE_ERROR(with_component_key("labels", R"({"big": ")" + std::string(4094, 'v') + "\"}"),
                  "/components/0/labels/big", "at most 4096 bytes, got 4097");
  parse_ok(with_component_key("labels", R"({"big": ")" + std::string(4093, 'v') + "\"}"));
  // "io.herd" alone, without the dot, is someone else's prefix.
  parse_ok(with_component_key("labels", R"({"io.herdsman": "x"})"));
}

// --- depends_on -------------------------------------------------------------------

namespace {

// A config of components named by `names`, with depends_on JSON arrays.
std::string graph(const std::vector<std::pair<std::string, std::string>>& components) {
  std::string out = R"({"components": [)";
  for (size_t i = 0; i < components.size(); ++i) {
    if (i > 0) out += ", ";
    out += R"({"name": ")" + components[i].first + R"(", "image": "i")";
    if (!components[i].second.empty()) out += R"(, "depends_on": )" + components[i].second;
    out += "}";
  }
  return out + "]}";
}

}  // namespace

TEST_CASE("config: depends_on entries are checked") {
  CHECK_ONE_ERROR(graph({{"etcd", ""}, {"vm", R"(["etdc"])"}}), "/components/1/depends_on/0",
                  "unknown component \"etdc\" (did you mean \"etcd\"?)");
  CHECK_ONE_ERROR(graph({{"a", ""}, {"b", R"(["a", "b"])"}}), "/components/1/depends_on/1",
                  "cannot depend on itself");
  CHECK_ONE_ERROR(graph({{"a", ""}, {"b", R"(["a", "a"])"}}), "/components/1/depends_on/1",
                  "duplicate dependency \"a\"");
  CHECK_ONE_ERROR(graph({{"a", ""}, {"b", R"(["a", 1])"}}), "/components/1/depends_on/1",
                  "expected a string, got a number");
  CHECK_ONE_ERROR(graph({{"a", ""}, {"b", R"("a")"}}), "/components/1/depends_on",
                  "expected an array, got a string");
  const Config c = parse_ok(graph({{"a", ""}, {"b", R"(["a"])"}}));
  CHECK(c.find("b")->depends_on == std::vector<std::string>{"a"});
  CHECK(c.find("zz") == nullptr);
}

TEST_CASE("config: dependency cycles are named") {
  CHECK_ONE_ERROR(graph({{"a", R"(["b"])"}, {"b", R"(["a"])"}}), "/components/0/depends_on",
                  "dependency cycle: a -> b -> a");
  // Reported at the cycle's first component in the config, shortest cycle.
  CHECK_ONE_ERROR(graph({{"x", ""}, {"c", R"(["a"])"}, {"a", R"(["b", "x"])"}, {"b", R"(["c"])"}}),
                  "/components/1/depends_on", "dependency cycle: c -> a -> b -> c");
  // Two separate cycles: two errors.
  ParseResult r = parse_config(graph({{"a", R"(["b"])"},
                                      {"b", R"(["a"])"},
                                      {"c", R"(["d"])"},
                                      {"d", R"(["c"])"},
                                      {"e", R"(["a"])"}}));
  CHECK(r.errors.size() == 2);
  CHECK(has_error(r, "/components/0/depends_on", "a -> b -> a"));
  CHECK(has_error(r, "/components/2/depends_on", "c -> d -> c"));
}

TEST_CASE("config: start order puts dependencies first, ties in config order") {
  // vm and vl depend on etcd, which is listed last.
  Config c = parse_ok(graph({{"vm", R"(["etcd"])"}, {"vl", R"(["etcd"])"}, {"etcd", ""}}));
  CHECK(c.start_order() == std::vector<std::string>{"etcd", "vm", "vl"});

  // Independent components keep config order.
  c = parse_ok(graph({{"c", ""}, {"a", ""}, {"b", ""}}));
  CHECK(c.start_order() == std::vector<std::string>{"c", "a", "b"});

  // Ready components go in config order: "c" (no deps) before "a".
  c = parse_ok(graph({{"b", R"(["a"])"}, {"c", ""}, {"a", ""}}));
  CHECK(c.start_order() == std::vector<std::string>{"c", "a", "b"});

  // Once "a" is placed, "b" is ready and comes before "c", written later.
  c = parse_ok(graph({{"b", R"(["a"])"}, {"a", ""}, {"c", ""}}));
  CHECK(c.start_order() == std::vector<std::string>{"a", "b", "c"});

  // Diamond.
  c = parse_ok(graph({{"top", R"(["left", "right"])"},
                      {"right", R"(["base"])"},
                      {"left", R"(["base"])"},
                      {"base", ""}}));
  CHECK(c.start_order() == std::vector<std::string>{"base", "right", "left", "top"});

  // A hand-built config with a cycle still lists every component.
  Config cyclic;
  cyclic.components.resize(3);
  cyclic.components[0].name = "a";
  cyclic.components[0].depends_on = {"b"};
  cyclic.components[1].name = "b";
  cyclic.components[1].depends_on = {"a"};
  cyclic.components[2].name = "c";
  cyclic.components[2].depends_on = {"missing"};
  CHECK(cyclic.start_order() == std::vector<std::string>{"c", "a", "b"});
}

// --- all errors at once -------------------------------------------------------------

TEST_CASE("config: every error is reported, not just the first") {
  ParseResult r = parse_config(R"({
    "data_path": "relative",
    "stop_budget": "soon",
    "containerd": {"namespace": "bad namespace"},
    "components": [
      {"name": "a", "image": "i", "ready": {"tcp": {"port": 70000}}, "stop_grce": "1s"},
      {"name": "Bad", "image": "", "depends_on": ["nobody"]},
      {"name": "a", "image": "i", "restart": {"jitter": 2},
       "mounts": [{"data": "d", "target": "/proc"}]}
    ]})");
  INFO(r.error_text());
  CHECK_FALSE(r.ok());
  CHECK_FALSE(r.config.has_value());
  CHECK(has_error(r, "/data_path", "absolute path"));
  CHECK(has_error(r, "/stop_budget", "invalid duration \"soon\""));
  CHECK(has_error(r, "/containerd/namespace", "containerd namespace rule"));
  CHECK(has_error(r, "/components/0/ready/tcp/port", "must be between 1 and 65535, got 70000"));
  CHECK(has_error(r, "/components/0/stop_grce", "did you mean \"stop_grace\"?"));
  CHECK(has_error(r, "/components/1/name", "must match"));
  CHECK(has_error(r, "/components/1/image", "must not be empty"));
  CHECK(has_error(r, "/components/1/depends_on/0", "unknown component \"nobody\""));
  CHECK(has_error(r, "/components/2/name", "duplicate component name \"a\""));
  CHECK(has_error(r, "/components/2/restart/jitter", "between 0.0 and 1.0"));
  CHECK(has_error(r, "/components/2/mounts/0/target", "/proc"));
  CHECK(r.errors.size() == 11);
}

// --- errors, files, example ------------------------------------------------------

TEST_CASE("config: error text") {
  CHECK(ConfigError{"/components/2/ready/tcp/port", "must be between 1 and 65535, got 70000"}
            .to_string() == "/components/2/ready/tcp/port: must be between 1 and 65535, got 70000");
  CHECK(ConfigError{"", "cannot read \"x\""}.to_string() == "cannot read \"x\"");
  ParseResult r = parse_config(R"({"components": [], "a": 1, "b": 2})");
  CHECK(r.error_text() == "/a: unknown key \"a\"\n/b: unknown key \"b\"");
  CHECK(parse_config(kBase).error_text().empty());
}

TEST_CASE("config: load_config reads a file and reports unreadable ones") {
  const auto dir =
      std::filesystem::temp_directory_path() / ("herd-config-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto file = dir / "herd.json";
  {
    std::ofstream out(file);
    out << kBase;
  }
  ParseResult ok = load_config(file);
  INFO(ok.error_text());
  REQUIRE(ok.ok());
  CHECK(ok.config->components.at(0).name == "a");

  ParseResult missing = load_config(dir / "missing.json");
  REQUIRE(missing.errors.size() == 1);
  CHECK(missing.errors[0].path.empty());
  CHECK_THAT(missing.errors[0].message, Catch::Contains("missing.json"));
  CHECK_THAT(missing.errors[0].message, Catch::Contains("No such file or directory"));
  CHECK_FALSE(missing.config.has_value());

  ParseResult directory = load_config(dir);
  REQUIRE(directory.errors.size() == 1);
  CHECK(directory.errors[0].path.empty());
  CHECK_THAT(directory.errors[0].message, Catch::Contains("cannot read"));

  // A regular file whose size says 0 while it has content (procfs): the
  // buffer is sized by the file and grows, so the whole text is read. Cut
  // after its first byte, "PID (comm) ..." would be a valid number.
  ParseResult proc = load_config("/proc/self/stat");
  REQUIRE(proc.errors.size() == 1);
  CHECK_THAT(proc.errors[0].message, Catch::Contains(std::to_string(::getpid()) + " ("));
  CHECK_THAT(proc.errors[0].message, Catch::Contains("expected end of input"));

  {
    std::ofstream out(file);
    out << "{\"components\": [";
  }
  ParseResult broken = load_config(file);
  REQUIRE(broken.errors.size() == 1);
  CHECK_THAT(broken.errors[0].message, Catch::Contains("invalid JSON at line 1"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("config: config/example.json is valid") {
  ParseResult r = load_config(std::filesystem::path(HERD_SOURCE_DIR) / "config" / "example.json");
  INFO(r.error_text());
  REQUIRE(r.ok());
  const Config& c = *r.config;
  REQUIRE_FALSE(c.components.empty());
  for (const Component& comp : c.components) {
    INFO(comp.name);
    CHECK(comp.image == "herd.local/busybox:latest");
  }
  // Dependencies come first.
  const std::vector<std::string> order = c.start_order();
  CHECK(order.size() == c.components.size());
  for (const Component& comp : c.components) {
    const auto self = std::find(order.begin(), order.end(), comp.name);
    for (const std::string& dep : comp.depends_on) {
      CHECK(std::find(order.begin(), order.end(), dep) < self);
    }
  }
}

TEST_CASE("config: the example in docs/configuration.md is config/example.json") {
  auto read = [](const std::filesystem::path& p) {
    std::ifstream in(p);
    REQUIRE(in.good());
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  };
  const std::filesystem::path root(HERD_SOURCE_DIR);
  const std::string doc = read(root / "docs" / "configuration.md");
  const size_t section = doc.find("## Example");
  REQUIRE(section != std::string::npos);
  const size_t start = doc.find("```json\n", section);
  REQUIRE(start != std::string::npos);
  const size_t end = doc.find("```", start + 8);
  REQUIRE(end != std::string::npos);
  const Json documented = Json::parse(doc.substr(start + 8, end - start - 8));
  const Json example = Json::parse(read(root / "config" / "example.json"));
  CHECK(documented == example);
}

// --- limits (hostile input) ----------------------------------------------------

TEST_CASE("config: durations longer than 10 years are errors at their path") {
  const std::string json = edit({{"/components/0/stop_grace", R"("87601h")"}});
  CHECK_ONE_ERROR(json, "/components/0/stop_grace",
                  "invalid duration \"87601h\": too large: longer than the maximum of 87600h "
                  "(10 years)");
  CHECK(only_component(parse_ok(with_component_key("stop_grace", R"("87600h")"))).stop_grace ==
        herd::config::kMaxDuration);
  CHECK_ONE_ERROR(edit({{"/stop_budget", R"("9999999999999999999999h")"}}), "/stop_budget",
                  "longer than the maximum of 87600h");
  const std::string r = "/components/0/restart";
  CHECK_ONE_ERROR(with_component_key("restart", R"({"reset_window": "100000h"})"),
                  r + "/reset_window", "longer than the maximum");
  // max: too long is its own error; base is not compared with it.
  CHECK_ONE_ERROR(with_component_key("restart", R"({"base": "1s", "max": "1000000h"})"), r + "/max",
                  "longer than the maximum");
  CHECK_ONE_ERROR(with_component_key("ready", R"({"tcp": {"port": 1}, "max_wait": "87601h"})"),
                  "/components/0/ready/max_wait", "longer than the maximum");
  CHECK_ONE_ERROR(with_component_key("ready", R"({"tcp": {"port": 1}, "interval": "1e400s"})"),
                  "/components/0/ready/interval", "unknown unit \"e\"");
  // A number is not a duration, however large.
  CHECK_ONE_ERROR(with_component_key("stop_grace", "1e300"), "/components/0/stop_grace",
                  "expected a duration string");
  CHECK_ONE_ERROR(with_component_key("stop_grace", R"("-5s")"), "/components/0/stop_grace",
                  "must not be negative");
}

TEST_CASE("config: absurd counts, ports and multipliers are errors at their path") {
  const std::string r = "/components/0/restart";
  auto restart = [](const std::string& text) { return with_component_key("restart", text); };
  for (const char* n : {"4294967296", "18446744073709551615", "18446744073709551616",
                        "-9223372036854775809", "1e30", "-1e30", "3.5", "1.0"}) {
    INFO(n);
    ParseResult mr = parse_config(restart(std::string(R"({"max_restarts": )") + n + "}"));
    REQUIRE(mr.errors.size() == 1);
    CHECK(mr.errors[0].path == r + "/max_restarts");
    ParseResult port =
        parse_config(with_component_key("ready", std::string(R"({"tcp": {"port": )") + n + "}}"));
    REQUIRE(port.errors.size() == 1);
    CHECK(port.errors[0].path == "/components/0/ready/tcp/port");
    ParseResult threshold = parse_config(with_component_key(
        "ready", std::string(R"({"tcp": {"port": 1}, "failure_threshold": )") + n + "}"));
    REQUIRE(threshold.errors.size() == 1);
    CHECK(threshold.errors[0].path == "/components/0/ready/failure_threshold");
  }
  CHECK_ONE_ERROR(restart(R"({"max_restarts": 4294967296})"), r + "/max_restarts",
                  "must be between 0 and 4294967295, got 4294967296");
  CHECK_ONE_ERROR(restart(R"({"max_restarts": 1e30})"), r + "/max_restarts",
                  "expected an integer, got 1e+30");
  CHECK_ONE_ERROR(restart(R"({"jitter": 1e308})"), r + "/jitter", "must be between 0.0 and 1.0");
  CHECK_ONE_ERROR(restart(R"({"jitter": -1e-300})"), r + "/jitter", "must be between 0.0 and 1.0");
  // Beyond a double: the JSON itself is refused, as one error.
  CHECK_ONE_ERROR(R"({"components": [{"name": "a", "image": "i", "restart": {"jitter": 1e400}}]})",
                  "", "invalid JSON: number overflow");
  CHECK_ONE_ERROR(with_component_key("ready", R"({"tcp": {"port": 65536}})"),
                  "/components/0/ready/tcp/port", "must be between 1 and 65535, got 65536");
  CHECK_ONE_ERROR(with_component_key("ready", R"({"tcp": {"port": 1}, "success_threshold": 0})"),
                  "/components/0/ready/success_threshold", "must be between 1 and 2147483647");
}

TEST_CASE("config: a text over 4 MiB is refused before parsing") {
  std::string big = R"({"components": [], "data_path": ")" + std::string(4u << 20, 'a') + "\"}";
  ParseResult r = parse_config(big);
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].path.empty());
  CHECK_THAT(r.errors[0].message,
             Catch::Contains("bytes, more than the maximum of 4194304 (4 MiB)"));
  // Just under the limit is parsed (and here fails for its own reason).
  std::string under = R"({"components": [], "data_path": ")" +
                      std::string(herd::config::kMaxConfigBytes - 40, 'a') + "\"}";
  REQUIRE(under.size() <= herd::config::kMaxConfigBytes);
  ParseResult u = parse_config(under);
  REQUIRE(u.errors.size() == 1);
  CHECK(u.errors[0].path == "/data_path");
}

TEST_CASE("config: nesting deeper than 64 is refused before parsing, with its place") {
  // 200 000 nested arrays: no tree is built (a deep one overflows the stack
  // when copied or destroyed).
  std::string deep = "{\"components\": []," + std::string("\n\"x\": ") + std::string(200'000, '[') +
                     std::string(200'000, ']') + "}";
  CHECK_ONE_ERROR(deep, "",
                  "invalid JSON at line 2, column 69: arrays and objects nested deeper than the "
                  "maximum of 64");
  // Brackets inside strings do not count.
  CHECK(parse_config(edit({{"/components/0/args", "[\"" + std::string(100, '[') + "\"]"}})).ok());
  // 64 levels are fine (here an unknown key at depth 2 holding the rest).
  std::string ok64 =
      "{\"components\": [], \"x\": " + std::string(63, '[') + std::string(63, ']') + "}";
  CHECK_ONE_ERROR(ok64, "/x", "unknown key \"x\"");
  std::string deep65 =
      "{\"components\": [], \"x\": " + std::string(64, '[') + std::string(64, ']') + "}";
  CHECK_ONE_ERROR(deep65, "", "nested deeper than the maximum of 64");
}

TEST_CASE("config: keys per object and key length are bounded") {
  Json env = Json::object();
  for (size_t i = 0; i < herd::config::kMaxObjectKeys; ++i) env["V" + std::to_string(i)] = "x";
  CHECK(only_component(parse_ok(edit({{"/components/0/env", env.dump()}}))).env.size() ==
        herd::config::kMaxObjectKeys);
  env["ONE_MORE"] = "x";
  env["AND_ANOTHER"] = "x";
  CHECK_ONE_ERROR(edit({{"/components/0/env", env.dump()}}), "/components/0/env",
                  "more than the maximum of 256 keys in one object");

  const std::string long_key(herd::config::kMaxKeyBytes + 1, 'K');
  CHECK_ONE_ERROR(edit({{"/components/0/env/" + long_key, "\"x\""}}), "/components/0/env",
                  "a key of 4097 bytes is longer than the maximum of 4096 (\"KKKK");
  const std::string max_key(herd::config::kMaxKeyBytes, 'K');
  CHECK(only_component(parse_ok(edit({{"/components/0/env/" + max_key, "\"x\""}}))).env.size() ==
        1);
}

TEST_CASE("config: components and depends_on entries are bounded") {
  Json doc = Json::parse(R"({"components": []})");
  for (size_t i = 0; i < herd::config::kMaxComponents; ++i) {
    doc["components"].push_back({{"name", "c" + std::to_string(i)}, {"image", "i"}});
  }
  CHECK(parse_ok(doc.dump()).components.size() == herd::config::kMaxComponents);
  doc["components"].push_back({{"name", "one-more"}, {"image", "i"}});
  CHECK_ONE_ERROR(doc.dump(), "/components", "has 1001 entries, more than the maximum of 1000");

  Json deps = Json::array();
  for (size_t i = 0; i <= herd::config::kMaxDependsOn; ++i) deps.push_back("d" + std::to_string(i));
  CHECK_ONE_ERROR(edit({{"/components/0/depends_on", deps.dump()}}), "/components/0/depends_on",
                  "has 65 entries, more than the maximum of 64");
}

TEST_CASE("config: at most 100 errors are listed, then how many more") {
  Json doc = Json::parse(R"({"components": []})");
  for (int i = 0; i < 150; ++i) doc["unknown" + std::to_string(i)] = 1;
  ParseResult r = parse_config(doc.dump());
  REQUIRE(r.errors.size() == herd::config::kMaxErrors + 1);
  CHECK(r.errors[0].path == "/unknown0");
  CHECK(r.errors[99].path == "/unknown99");
  CHECK(r.errors[100].path.empty());
  CHECK(r.errors[100].message == "... and 50 more errors (only the first 100 are listed)");
}

TEST_CASE("config: load_config refuses what is not a regular file, without blocking") {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("herd-config-fifo-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  // A FIFO with no writer: a blocking open would wait forever.
  const auto fifo = dir / "herd.json";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  ParseResult r = load_config(fifo);
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].path.empty());
  CHECK_THAT(r.errors[0].message, Catch::Contains("herd.json"));
  CHECK_THAT(r.errors[0].message, Catch::Contains("not a regular file (a FIFO)"));

  ParseResult dev = load_config("/dev/zero");
  REQUIRE(dev.errors.size() == 1);
  CHECK_THAT(dev.errors[0].message, Catch::Contains("not a regular file (a character device)"));

  ParseResult directory = load_config(dir);
  REQUIRE(directory.errors.size() == 1);
  CHECK_THAT(directory.errors[0].message, Catch::Contains("not a regular file (a directory)"));

  // Over the size limit: refused from fstat, before reading.
  const auto big = dir / "big.json";
  {
    std::ofstream out(big);
    out << std::string(herd::config::kMaxConfigBytes + 1, ' ');
  }
  ParseResult b = load_config(big);
  REQUIRE(b.errors.size() == 1);
  CHECK_THAT(b.errors[0].message,
             Catch::Contains("4194305 bytes, more than the maximum of 4194304"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("config: a 4 MiB array of objects is read in linear time") {
  // nlohmann's callback parser scans the whole enclosing array at every
  // object's end (quadratic: this took minutes); the key checks are a SAX
  // pass of their own.
  std::string text = R"({"components": [], "x": [)";
  while (text.size() < herd::config::kMaxConfigBytes - 16) text += "{},";
  text += "{}]}";
  CHECK_ONE_ERROR(text, "/x", "unknown key \"x\"");
  // The same with a duplicate key in every object: counted, 100 listed.
  std::string dups = R"({"components": [], "x": [)";
  while (dups.size() < herd::config::kMaxConfigBytes - 32) dups += R"({"a":1,"a":1},)";
  dups += "{}]}";
  ParseResult r = parse_config(dups);
  REQUIRE(r.errors.size() == herd::config::kMaxErrors + 1);
  CHECK(r.errors[0].to_string() == "/x/0/a: duplicate key \"a\" in one object");
  CHECK_THAT(r.errors.back().message,
             Catch::Contains("more errors (only the first 100 are listed)"));
}

TEST_CASE("config: restore is in_place or standby") {
  using herd::config::Restore;
  CHECK(only_component(parse_ok(edit({}))).restore == Restore::kInPlace);
  CHECK(only_component(parse_ok(with_component_key("restore", R"("standby")"))).restore ==
        Restore::kStandby);
  CHECK(only_component(parse_ok(with_component_key("restore", R"("in_place")"))).restore ==
        Restore::kInPlace);
  CHECK_ONE_ERROR(with_component_key("restore", R"("spare")"), "/components/0/restore", "in_place");
  CHECK_ONE_ERROR(with_component_key("restore", "true"), "/components/0/restore", "");
  CHECK(herd::config::to_string(Restore::kStandby) == "standby");
  CHECK(herd::config::to_string(Restore::kInPlace) == "in_place");
}
