#include "containerd/oci_spec.h"

#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <climits>
#include <string>
#include <vector>

using herd::Code;
using herd::containerd::BindMount;
using herd::containerd::build_runtime_spec;
using herd::containerd::ImageConfig;
using herd::containerd::parse_diff_ids;
using herd::containerd::parse_image_config;
using herd::containerd::Rlimit;
using herd::containerd::SpecOptions;
using nlohmann::json;

namespace {

const std::vector<std::string> kDefaultCaps = {
    "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
    "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
    "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
    "CAP_KILL",    "CAP_AUDIT_WRITE"};

const std::string kDefaultPath =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

ImageConfig etcd_image() {
  ImageConfig image;
  image.entrypoint = {"/usr/bin/etcd"};
  image.cmd = {"--name", "default"};
  image.env = {"PATH=/usr/bin:/bin", "ETCD_DATA_DIR=/data"};
  return image;
}

SpecOptions options_for(std::string id, bool host_network = false) {
  SpecOptions o;
  o.container_id = std::move(id);
  o.ns = "herd";
  o.host_network = host_network;
  return o;
}

json build_ok(const ImageConfig& image, const SpecOptions& options) {
  auto spec = build_runtime_spec(image, options);
  INFO(spec.status().to_string());
  REQUIRE(spec.ok());
  return *spec;
}

herd::Status build_error(const ImageConfig& image, const SpecOptions& options) {
  auto spec = build_runtime_spec(image, options);
  REQUIRE_FALSE(spec.ok());
  return spec.status();
}

std::vector<std::string> namespace_types(const json& spec) {
  std::vector<std::string> types;
  for (const json& ns : spec["linux"]["namespaces"]) types.push_back(ns["type"]);
  return types;
}

const json* find_mount(const json& spec, std::string_view destination) {
  for (const json& m : spec["mounts"]) {
    if (m["destination"] == destination) return &m;
  }
  return nullptr;
}

std::string host_name() {
  char buf[HOST_NAME_MAX + 1] = {};
  REQUIRE(gethostname(buf, sizeof buf - 1) == 0);
  return buf;
}

}  // namespace

// --- parse_image_config / parse_diff_ids ------------------------------------

TEST_CASE("parse_image_config reads the fields that decide how a container runs") {
  auto config = parse_image_config(R"({
    "architecture": "amd64", "os": "linux",
    "config": {"Entrypoint": ["/usr/bin/etcd"], "Cmd": ["--help"],
               "Env": ["PATH=/bin", "A=b=c"], "WorkingDir": "/data", "User": "1000:1000"},
    "rootfs": {"type": "layers", "diff_ids": []}})");
  REQUIRE(config.ok());
  CHECK(config->entrypoint == std::vector<std::string>{"/usr/bin/etcd"});
  CHECK(config->cmd == std::vector<std::string>{"--help"});
  CHECK(config->env == std::vector<std::string>{"PATH=/bin", "A=b=c"});
  CHECK(config->working_dir == "/data");
  CHECK(config->user == "1000:1000");
}

TEST_CASE("parse_image_config: missing or null config and fields are empty") {
  for (const char* text : {R"({})", R"({"config": null})",
                           R"({"config": {"Entrypoint": null, "Cmd": null, "Env": null}})"}) {
    auto config = parse_image_config(text);
    INFO(text);
    REQUIRE(config.ok());
    CHECK(config->entrypoint.empty());
    CHECK(config->cmd.empty());
    CHECK(config->env.empty());
    CHECK(config->working_dir.empty());
    CHECK(config->user.empty());
  }
}

TEST_CASE("parse_image_config rejects malformed input with the JSON path") {
  struct Case {
    const char* text;
    const char* needle;
  };
  for (const Case& c : std::vector<Case>{
           {"{not json", "not valid JSON"},
           {"[1, 2]", "not a JSON object"},
           {R"({"config": []})", "/config: expected an object"},
           {R"({"config": {"Cmd": "sh"}})", "/config/Cmd: expected an array"},
           {R"({"config": {"Env": ["A=1", 2]}})", "/config/Env/1: expected a string"},
           {R"({"config": {"WorkingDir": 7}})", "/config/WorkingDir: expected a string"},
           {R"({"config": {"User": false}})", "/config/User: expected a string"},
       }) {
    auto config = parse_image_config(c.text);
    INFO(c.text);
    REQUIRE_FALSE(config.ok());
    CHECK(config.status().code() == Code::kInvalidArgument);
    CHECK_THAT(config.status().message(), Catch::Contains(c.needle));
  }
}

TEST_CASE("parse_diff_ids returns rootfs.diff_ids in order") {
  const std::string a = "sha256:" + std::string(64, 'a');
  const std::string b = "sha256:" + std::string(64, '0');
  auto ids = parse_diff_ids(R"({"config": {}, "rootfs": {"type": "layers", "diff_ids": [")" + a +
                            R"(", ")" + b + R"("]}})");
  REQUIRE(ids.ok());
  CHECK(*ids == std::vector<std::string>{a, b});
}

TEST_CASE("parse_diff_ids rejects a missing rootfs, wrong type and bad digests") {
  struct Case {
    std::string text;
    const char* needle;
  };
  for (const Case& c : std::vector<Case>{
           {R"({"config": {}})", "/rootfs: expected an object"},
           {R"({"rootfs": {"type": "layers"}})", "/rootfs/diff_ids: expected an array"},
           {R"({"rootfs": {"type": "tar", "diff_ids": []}})", "/rootfs/type: expected \"layers\""},
           {R"({"rootfs": {"type": "layers", "diff_ids": ["sha256:abc"]}})", "/rootfs/diff_ids/0"},
           {R"({"rootfs": {"type": "layers", "diff_ids": ["md5:)" + std::string(32, 'a') +
                R"("]}})",
            "/rootfs/diff_ids/0"},
           {R"({"rootfs": {"type": "layers", "diff_ids": ["sha256:)" + std::string(64, 'A') +
                R"("]}})",
            "/rootfs/diff_ids/0"},
       }) {
    auto ids = parse_diff_ids(c.text);
    INFO(c.text);
    REQUIRE_FALSE(ids.ok());
    CHECK(ids.status().code() == Code::kInvalidArgument);
    CHECK_THAT(ids.status().message(), Catch::Contains(c.needle));
  }
}

// --- build_runtime_spec: process ---------------------------------------------

TEST_CASE("spec: top level follows containerd's default Linux spec") {
  json spec = build_ok(etcd_image(), options_for("etcd"));
  CHECK(spec["ociVersion"] == "1.0.2");
  CHECK(spec["root"] == json{{"path", "rootfs"}, {"readonly", false}});
  CHECK(spec["process"]["terminal"] == false);
  CHECK(spec["process"]["noNewPrivileges"] == true);
  CHECK(spec["process"]["cwd"] == "/");
  CHECK(spec["process"]["user"] == json{{"uid", 0}, {"gid", 0}});
  CHECK(spec["linux"]["cgroupsPath"] == "/herd/etcd");
  CHECK(spec["linux"]["resources"]["devices"] ==
        json::array({{{"allow", false}, {"access", "rwm"}}}));
}

TEST_CASE("spec: args come from Entrypoint+Cmd unless the options replace both") {
  ImageConfig image = etcd_image();
  SpecOptions options = options_for("etcd");
  CHECK(build_ok(image, options)["process"]["args"] == json{"/usr/bin/etcd", "--name", "default"});

  options.args = {"/bin/sh", "-c", "exit 3"};
  CHECK(build_ok(image, options)["process"]["args"] == json{"/bin/sh", "-c", "exit 3"});

  SECTION("only Cmd") {
    image.entrypoint.clear();
    options.args.clear();
    CHECK(build_ok(image, options)["process"]["args"] == json{"--name", "default"});
  }
  SECTION("only Entrypoint") {
    image.cmd.clear();
    options.args.clear();
    CHECK(build_ok(image, options)["process"]["args"] == json{"/usr/bin/etcd"});
  }
}

TEST_CASE("spec: no command at all is an error") {
  ImageConfig image;
  auto status = build_error(image, options_for("empty"));
  CHECK(status.code() == Code::kInvalidArgument);
  CHECK_THAT(status.message(), Catch::Contains("no command"));
  CHECK_THAT(status.message(), Catch::Contains("empty"));  // names the container

  SpecOptions options = options_for("blank");
  options.args = {"", "x"};
  CHECK(build_error(image, options).code() == Code::kInvalidArgument);
}

TEST_CASE("spec: env overrides replace the image's key in place and extend it") {
  SpecOptions options = options_for("etcd");
  options.env = {{"ETCD_DATA_DIR", "/etcd-data"}, {"GOMAXPROCS", "2"}, {"EMPTY", ""}};
  json spec = build_ok(etcd_image(), options);
  CHECK(spec["process"]["env"] ==
        json{"PATH=/usr/bin:/bin", "ETCD_DATA_DIR=/etcd-data", "GOMAXPROCS=2", "EMPTY="});
}

TEST_CASE("spec: an image without env gets the default PATH") {
  ImageConfig image = etcd_image();
  image.env.clear();
  SpecOptions options = options_for("etcd");
  CHECK(build_ok(image, options)["process"]["env"] == json{kDefaultPath});

  options.env = {{"PATH", "/opt/bin"}, {"A", "1"}};
  CHECK(build_ok(image, options)["process"]["env"] == json{"PATH=/opt/bin", "A=1"});
}

TEST_CASE("spec: env keys must be non-empty and without '='") {
  for (const char* key : {"", "A=B"}) {
    SpecOptions options = options_for("etcd");
    options.env = {{key, "x"}};
    auto status = build_error(etcd_image(), options);
    CHECK(status.code() == Code::kInvalidArgument);
    CHECK_THAT(status.message(), Catch::Contains("env key"));
  }
}

TEST_CASE("spec: user parsing") {
  struct Case {
    std::optional<std::string> option;
    std::string image_user;
    int uid;
    int gid;
  };
  for (const Case& c : std::vector<Case>{
           {std::nullopt, "", 0, 0},
           {std::nullopt, "root", 0, 0},
           {std::nullopt, "1000", 1000, 0},
           {std::nullopt, "1000:2000", 1000, 2000},
           {std::nullopt, "root:root", 0, 0},
           {"65534:65534", "1000", 65534, 65534},  // the option wins over the image
           {"", "1000", 0, 0},                     // an explicit empty user means root
           {"4294967294", "", -2, 0},              // the largest valid id
       }) {
    ImageConfig image = etcd_image();
    image.user = c.image_user;
    SpecOptions options = options_for("etcd");
    options.user = c.option;
    INFO("option=" << c.option.value_or("(none)") << " image=" << c.image_user);
    json user = build_ok(image, options)["process"]["user"];
    CHECK(user["uid"].get<uint32_t>() == static_cast<uint32_t>(c.uid));
    CHECK(user["gid"].get<uint32_t>() == static_cast<uint32_t>(c.gid));
  }
}

TEST_CASE("spec: user names other than root are rejected, naming the user") {
  for (const char* user : {"nobody", "1000:users", "1000:", ":1000", "-1", "4294967295",
                           "99999999999", "1000:1000:1000"}) {
    SpecOptions options = options_for("etcd");
    options.user = user;
    auto status = build_error(etcd_image(), options);
    INFO(user);
    CHECK(status.code() == Code::kInvalidArgument);
    CHECK_THAT(status.message(), Catch::Contains(std::string("\"") + user + "\""));
  }
}

TEST_CASE("spec: working directory from options, image, or / and must be absolute") {
  ImageConfig image = etcd_image();
  SpecOptions options = options_for("etcd");
  image.working_dir = "/var/lib/etcd";
  CHECK(build_ok(image, options)["process"]["cwd"] == "/var/lib/etcd");
  options.working_dir = "/data";
  CHECK(build_ok(image, options)["process"]["cwd"] == "/data");
  options.working_dir = "data";
  CHECK(build_error(image, options).code() == Code::kInvalidArgument);
}

TEST_CASE("spec: capabilities are containerd's default set in all three sets") {
  json caps = build_ok(etcd_image(), options_for("etcd"))["process"]["capabilities"];
  CHECK(caps["bounding"] == json(kDefaultCaps));
  CHECK(caps["effective"] == json(kDefaultCaps));
  CHECK(caps["permitted"] == json(kDefaultCaps));
  CHECK_FALSE(caps.contains("inheritable"));
  CHECK_FALSE(caps.contains("ambient"));
}

TEST_CASE("spec: rlimits default to NOFILE 1024 and are overridden by type") {
  SpecOptions options = options_for("etcd");
  CHECK(build_ok(etcd_image(), options)["process"]["rlimits"] ==
        json::array({{{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 1024}}}));

  options.rlimits = {Rlimit{"nofile", 65536, 65536}, Rlimit{"NPROC", 100, 200},
                     Rlimit{"RLIMIT_CORE", 0, 0}};
  json rlimits = build_ok(etcd_image(), options)["process"]["rlimits"];
  CHECK(rlimits == json::array({{{"type", "RLIMIT_NOFILE"}, {"hard", 65536}, {"soft", 65536}},
                                {{"type", "RLIMIT_NPROC"}, {"hard", 200}, {"soft", 100}},
                                {{"type", "RLIMIT_CORE"}, {"hard", 0}, {"soft", 0}}}));
}

TEST_CASE("spec: rlimit errors") {
  struct Case {
    std::vector<Rlimit> rlimits;
    const char* needle;
  };
  for (const Case& c : std::vector<Case>{
           {{Rlimit{"files", 1, 1}}, "unknown type"},
           {{Rlimit{"", 1, 1}}, "unknown type"},
           {{Rlimit{"nofile", 2, 1}}, "soft limit 2 above hard limit 1"},
           {{Rlimit{"nofile", 1, 1}, Rlimit{"RLIMIT_NOFILE", 2, 2}}, "more than once"},
       }) {
    SpecOptions options = options_for("etcd");
    options.rlimits = c.rlimits;
    auto status = build_error(etcd_image(), options);
    CHECK(status.code() == Code::kInvalidArgument);
    CHECK_THAT(status.message(), Catch::Contains(c.needle));
  }
}

// --- build_runtime_spec: linux, mounts, hostname ---------------------------------

TEST_CASE("spec: masked and read-only paths are containerd's defaults") {
  json linux = build_ok(etcd_image(), options_for("etcd"))["linux"];
  CHECK(linux["maskedPaths"] == json{"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                                     "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                                     "/proc/sched_debug", "/sys/firmware", "/proc/scsi"});
  CHECK(linux["readonlyPaths"] ==
        json{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"});
}

TEST_CASE("spec: private network gets a network namespace and the id as hostname") {
  json spec = build_ok(etcd_image(), options_for("etcd", /*host_network=*/false));
  CHECK(namespace_types(spec) == std::vector<std::string>{"pid", "ipc", "uts", "mount", "network"});
  CHECK(spec["hostname"] == "etcd");
  CHECK(find_mount(spec, "/etc/hosts") == nullptr);
  CHECK(find_mount(spec, "/etc/resolv.conf") == nullptr);
}

TEST_CASE("spec: host network shares the netns, binds hosts/resolv.conf, uses the host's name") {
  json spec = build_ok(etcd_image(), options_for("etcd", /*host_network=*/true));
  CHECK(namespace_types(spec) == std::vector<std::string>{"pid", "ipc", "uts", "mount"});
  CHECK(spec["hostname"] == host_name());
  for (const char* file : {"/etc/hosts", "/etc/resolv.conf"}) {
    const json* m = find_mount(spec, file);
    REQUIRE(m != nullptr);
    CHECK(*m == json{{"destination", file},
                     {"type", "bind"},
                     {"source", file},
                     {"options", {"rbind", "ro"}}});
  }
}

TEST_CASE("spec: an explicit hostname wins in both network modes") {
  for (bool host : {false, true}) {
    SpecOptions options = options_for("etcd", host);
    options.hostname = "node-1";
    CHECK(build_ok(etcd_image(), options)["hostname"] == "node-1");
  }
}

TEST_CASE("spec: default mounts match containerd's") {
  json spec = build_ok(etcd_image(), options_for("etcd"));
  REQUIRE(spec["mounts"].size() == 7);
  std::vector<std::string> destinations;
  for (const json& m : spec["mounts"]) destinations.push_back(m["destination"]);
  CHECK(destinations == std::vector<std::string>{"/proc", "/dev", "/dev/pts", "/dev/shm",
                                                 "/dev/mqueue", "/sys", "/run"});
  CHECK(*find_mount(spec, "/dev") ==
        json{{"destination", "/dev"},
             {"type", "tmpfs"},
             {"source", "tmpfs"},
             {"options", {"nosuid", "strictatime", "mode=755", "size=65536k"}}});
  CHECK(*find_mount(spec, "/sys") == json{{"destination", "/sys"},
                                          {"type", "sysfs"},
                                          {"source", "sysfs"},
                                          {"options", {"nosuid", "noexec", "nodev", "ro"}}});
  CHECK((*find_mount(spec, "/proc"))["type"] == "proc");
  CHECK((*find_mount(spec, "/dev/pts"))["type"] == "devpts");
  CHECK((*find_mount(spec, "/dev/shm"))["source"] == "shm");
  CHECK((*find_mount(spec, "/dev/mqueue"))["type"] == "mqueue");
  CHECK((*find_mount(spec, "/run"))["type"] == "tmpfs");
}

TEST_CASE("spec: bind mounts follow the defaults in order, ro or rw") {
  SpecOptions options = options_for("etcd");
  options.mounts = {BindMount{"/var/lib/herd/etcd", "/etcd-data", false},
                    BindMount{"/etc/herd/ca.pem", "/etc/ssl/ca.pem", true}};
  json mounts = build_ok(etcd_image(), options)["mounts"];
  REQUIRE(mounts.size() == 9);
  CHECK(mounts[7] == json{{"destination", "/etcd-data"},
                          {"type", "bind"},
                          {"source", "/var/lib/herd/etcd"},
                          {"options", {"rbind", "rw"}}});
  CHECK(mounts[8] == json{{"destination", "/etc/ssl/ca.pem"},
                          {"type", "bind"},
                          {"source", "/etc/herd/ca.pem"},
                          {"options", {"rbind", "ro"}}});
}

TEST_CASE("spec: a bind mount on /etc/hosts replaces the host-network default") {
  SpecOptions options = options_for("etcd", /*host_network=*/true);
  options.mounts = {BindMount{"/srv/hosts", "/etc/hosts", false}};
  json spec = build_ok(etcd_image(), options);
  auto hosts = std::count_if(spec["mounts"].begin(), spec["mounts"].end(),
                             [](const json& m) { return m["destination"] == "/etc/hosts"; });
  CHECK(hosts == 1);
  CHECK((*find_mount(spec, "/etc/hosts"))["source"] == "/srv/hosts");
  CHECK(find_mount(spec, "/etc/resolv.conf") != nullptr);
}

TEST_CASE("spec: bind mount errors") {
  struct Case {
    std::vector<BindMount> mounts;
    const char* needle;
  };
  for (const Case& c : std::vector<Case>{
           {{BindMount{"relative", "/data", false}}, "absolute"},
           {{BindMount{"/srv", "data", false}}, "absolute"},
           {{BindMount{"", "/data", false}}, "absolute"},
           {{BindMount{"/a", "/data", false}, BindMount{"/b", "/data", true}}, "more than once"},
       }) {
    SpecOptions options = options_for("etcd");
    options.mounts = c.mounts;
    auto status = build_error(etcd_image(), options);
    CHECK(status.code() == Code::kInvalidArgument);
    CHECK_THAT(status.message(), Catch::Contains(c.needle));
  }
}

TEST_CASE("spec: cgroupsPath is /<namespace>/<id>") {
  SpecOptions options = options_for("victoria-metrics");
  options.ns = "herd.test";
  CHECK(build_ok(etcd_image(), options)["linux"]["cgroupsPath"] == "/herd.test/victoria-metrics");
}

TEST_CASE("spec: a shim group becomes containerd's runc group annotation, absent by default") {
  SpecOptions options = options_for("etcd");
  CHECK_FALSE(build_ok(etcd_image(), options).contains("annotations"));
  options.shim_group = "seed";
  json spec = build_ok(etcd_image(), options);
  CHECK(spec["annotations"] == json{{"io.containerd.runc.v2.group", "seed"}});
  options.shim_group = "";
  CHECK(build_error(etcd_image(), options).code() == Code::kInvalidArgument);
}

TEST_CASE("spec: container id and namespace must be containerd identifiers") {
  for (const char* bad :
       {"", "a/b", "-etcd", "etcd-", "a..b", "a b", "..",
        "x23456789012345678901234567890123456789012345678901234567890123456789012345678"}) {
    INFO(bad);
    SpecOptions options = options_for(bad);
    CHECK(build_error(etcd_image(), options).code() == Code::kInvalidArgument);
    options = options_for("etcd");
    options.ns = bad;
    CHECK(build_error(etcd_image(), options).code() == Code::kInvalidArgument);
  }
  for (const char* good : {"etcd", "victoria-metrics", "a.b_c-d", "E2"}) {
    INFO(good);
    CHECK(build_runtime_spec(etcd_image(), options_for(good)).ok());
  }
}

TEST_CASE("spec: the image config blob round-trips into a spec") {
  auto image = parse_image_config(R"({"config": {"Entrypoint": ["/bin/busybox"], "Cmd": ["sh"],
      "Env": ["PATH=/bin"], "WorkingDir": "/tmp", "User": "65534:65534"}})");
  REQUIRE(image.ok());
  json process = build_ok(*image, options_for("shell"))["process"];
  CHECK(process["args"] == json{"/bin/busybox", "sh"});
  CHECK(process["env"] == json{"PATH=/bin"});
  CHECK(process["cwd"] == "/tmp");
  CHECK(process["user"] == json{{"uid", 65534}, {"gid", 65534}});
}
