// The OCI spec builder's containment options (issue 13): cgroup limits,
// the init, capabilities, a read-only root, tmpfs mounts, oom_score_adj.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "containerd/oci_spec.h"

using herd::containerd::build_runtime_spec;
using herd::containerd::ImageConfig;
using herd::containerd::SpecOptions;
using herd::containerd::TmpfsMount;
using nlohmann::json;

namespace {

ImageConfig image() {
  ImageConfig i;
  i.entrypoint = {"/bin/httpd"};
  i.cmd = {"-f"};
  return i;
}

SpecOptions options() {
  SpecOptions o;
  o.container_id = "web";
  o.ns = "herd";
  o.host_network = false;
  return o;
}

json build_ok(const SpecOptions& o) {
  auto spec = build_runtime_spec(image(), o);
  INFO(spec.status().to_string());
  REQUIRE(spec.ok());
  return *spec;
}

std::string build_error(const SpecOptions& o) {
  auto spec = build_runtime_spec(image(), o);
  REQUIRE_FALSE(spec.ok());
  return spec.status().message();
}

const json* mount_at(const json& spec, const std::string& target) {
  for (const json& m : spec["mounts"])
    if (m["destination"] == target) return &m;
  return nullptr;
}

}  // namespace

TEST_CASE("spec: no containment options leave today's spec") {
  const json spec = build_ok(options());
  CHECK(spec["linux"]["resources"] ==
        json::parse(R"({"devices": [{"allow": false, "access": "rwm"}]})"));
  CHECK(spec["root"]["readonly"] == false);
  CHECK_FALSE(spec["process"].contains("oomScoreAdj"));
  CHECK(spec["process"]["args"] == json::array({"/bin/httpd", "-f"}));
  CHECK(spec["process"]["capabilities"]["bounding"].size() == 14);
}

TEST_CASE("spec: memory, cpus and pids become linux.resources") {
  SpecOptions o = options();
  o.resources.memory = 512ull << 20;
  o.resources.cpus = 1.5;
  o.resources.pids = 1000;
  const json res = build_ok(o)["linux"]["resources"];
  CHECK(res["memory"] == json::parse(R"({"limit": 536870912, "swap": 536870912})"));
  CHECK(res["cpu"] == json::parse(R"({"quota": 150000, "period": 100000})"));
  CHECK(res["pids"] == json::parse(R"({"limit": 1000})"));
  CHECK(res["devices"].size() == 1);  // the deny-all rule stays

  o.resources.cpus = 0.25;
  CHECK(build_ok(o)["linux"]["resources"]["cpu"]["quota"] == 25000);
  o.resources.cpus = 0.333;  // rounded to the microsecond
  CHECK(build_ok(o)["linux"]["resources"]["cpu"]["quota"] == 33300);

  SpecOptions bad = options();
  bad.resources.memory = 1 << 20;
  CHECK_THAT(build_error(bad), Catch::Contains("below 6 MiB"));
  bad = options();
  bad.resources.cpus = 0.0;
  CHECK_THAT(build_error(bad), Catch::Contains("cpus"));
  bad = options();
  bad.resources.pids = 0;
  CHECK_THAT(build_error(bad), Catch::Contains("pids"));
}

TEST_CASE("spec: the init is bind-mounted read-only and prepended") {
  SpecOptions o = options();
  o.init_path = "/usr/bin/tini-static";
  const json spec = build_ok(o);
  CHECK(spec["process"]["args"] == json::array({"/herd-init", "--", "/bin/httpd", "-f"}));
  const json* m = mount_at(spec, "/herd-init");
  REQUIRE(m);
  CHECK((*m)["source"] == "/usr/bin/tini-static");
  CHECK((*m)["options"] == json::array({"rbind", "ro"}));
  o.args = {"sh", "-c", "x"};
  CHECK(build_ok(o)["process"]["args"] == json::array({"/herd-init", "--", "sh", "-c", "x"}));
  o.init_path = "tini";
  CHECK_THAT(build_error(o), Catch::Contains("not an absolute path"));
}

TEST_CASE("spec: capabilities are dropped, then added, in every set") {
  SpecOptions o = options();
  o.cap_drop = {"CAP_NET_RAW", "CAP_MKNOD"};
  o.cap_add = {"CAP_NET_ADMIN"};
  json caps = build_ok(o)["process"]["capabilities"];
  for (const char* set : {"bounding", "effective", "permitted"}) {
    INFO(set);
    const json& s = caps[set];
    CHECK(s.size() == 13);
    CHECK(std::find(s.begin(), s.end(), "CAP_NET_RAW") == s.end());
    CHECK(std::find(s.begin(), s.end(), "CAP_MKNOD") == s.end());
    CHECK(std::find(s.begin(), s.end(), "CAP_NET_ADMIN") != s.end());
  }
  o.cap_drop = {"ALL"};
  o.cap_add = {"CAP_NET_BIND_SERVICE"};
  CHECK(build_ok(o)["process"]["capabilities"]["bounding"] ==
        json::array({"CAP_NET_BIND_SERVICE"}));
  o.cap_add = {"NET_ADMIN"};
  CHECK_THAT(build_error(o), Catch::Contains("capability \"NET_ADMIN\""));
}

TEST_CASE("spec: read-only root, tmpfs mounts and oom_score_adj") {
  SpecOptions o = options();
  o.read_only_rootfs = true;
  o.tmpfs = {TmpfsMount{"/tmp", 64ull << 20, 01777}, TmpfsMount{"/run/app", std::nullopt, 0700}};
  o.oom_score_adj = -500;
  const json spec = build_ok(o);
  CHECK(spec["root"]["readonly"] == true);
  CHECK(spec["process"]["oomScoreAdj"] == -500);
  const json* tmp = mount_at(spec, "/tmp");
  REQUIRE(tmp);
  CHECK((*tmp)["type"] == "tmpfs");
  CHECK((*tmp)["options"] == json::array({"nosuid", "nodev", "mode=1777", "size=67108864"}));
  const json* run = mount_at(spec, "/run/app");
  REQUIRE(run);
  CHECK((*run)["options"] == json::array({"nosuid", "nodev", "mode=0700"}));

  o.tmpfs = {TmpfsMount{"tmp", std::nullopt, 01777}};
  CHECK_THAT(build_error(o), Catch::Contains("tmpfs target \"tmp\""));
  o.tmpfs = {TmpfsMount{"/data", std::nullopt, 01777}};
  o.mounts = {{"/srv", "/data", false}};
  CHECK_THAT(build_error(o), Catch::Contains("given more than once"));
  o = options();
  o.oom_score_adj = 1001;
  CHECK_THAT(build_error(o), Catch::Contains("oom_score_adj"));
}
