// herdctl's image verbs against the real herdd and the fixture's
// containerd: ls, rm refused for an image a component uses, prune keeping
// the used one (images imported from the fixture's archives); and pull
// from a real registry (Debian's docker-registry on 127.0.0.1, plain HTTP
// as containerd allows for loopback) with progress (plain and --json), a
// missing tag, and prune taking the pulled images.
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "../support/registry_fixture.h"
#include "daemon_harness.h"

using namespace herd;
using namespace herd::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

bool image_exists(TestNamespace& ns, const std::string& name) {
  bool exists = false;
  run_coro([&]() -> asio::awaitable<void> {
    auto img = co_await ns.client().images_get(name);
    exists = img.ok();
  });
  return exists;
}

// `herdctl image ls --json`: name -> image object (empty when it fails).
std::map<std::string, json> images_json(const std::filesystem::path& sock) {
  std::map<std::string, json> out;
  auto [code, text] = herdctl(sock, "image ls --json");
  if (code != 0) return out;
  json j = json::parse(text, nullptr, false);
  if (!j.is_object() || !j.contains("images")) return out;
  for (auto& i : j["images"]) out[i.value("name", "")] = i;
  return out;
}

}  // namespace

TEST_CASE("herdctl image ls rm and prune keep what a component uses", "[e2e][image]") {
  TestNamespace ns("ctl-image-ls");
  auto data = temp_path("data-image-ls");
  auto cfg = temp_path("image-ls.json");
  auto sock = socket_of(data);
  json c = base_config(ns, data);
  c["components"].push_back(sleeper("user"));  // herd.local/busybox:latest from its archive
  write_file(cfg, c.dump(2));
  NotifySocket notify;
  Herdd herdd(cfg, notify);
  REQUIRE_FALSE(notify.wait_for("READY=1").empty());
  auto [imp_code, imp] = herdctl(sock, "image import " + env().image("etcd.tar").string());
  INFO(imp);
  REQUIRE(imp_code == 0);
  const std::string etcd = "herd.local/etcd:3.4";
  const std::string busybox = "herd.local/busybox:latest";

  auto [ls_code, table] = herdctl(sock, "image ls");
  INFO(table);
  CHECK(ls_code == 0);
  CHECK_THAT(table, Catch::StartsWith("NAME"));
  CHECK_THAT(table, Catch::Contains("USED BY"));
  CHECK_THAT(table, Catch::Contains(busybox));
  CHECK_THAT(table, Catch::Contains(etcd));
  auto listed = images_json(sock);
  REQUIRE(listed.count(busybox) == 1);
  REQUIRE(listed.count(etcd) == 1);
  CHECK(listed[busybox]["used_by"] == json::array({"user"}));
  CHECK(listed[etcd]["used_by"] == json::array());
  CHECK(listed[busybox]["digest"] ==
        "sha256:d77cf90bf164a23ca1a09f3c1b1be187a8e8d86532093dbbe07a75c9f3300e71");
  CHECK(listed[busybox]["size"].get<uint64_t>() > 100000);  // busybox-static is ~1 MiB
  CHECK(listed[etcd]["size"].get<uint64_t>() > listed[busybox]["size"].get<uint64_t>());

  // rm of the image the component uses is refused, naming it; a missing
  // one is named too.
  auto [rm_used_code, rm_used] = herdctl(sock, "image rm " + busybox);
  INFO(rm_used);
  CHECK(rm_used_code == 1);
  CHECK_THAT(rm_used, Catch::Contains("is used by component user"));
  CHECK(image_exists(ns, busybox));
  auto [rm_none_code, rm_none] = herdctl(sock, "image rm herd.local/nosuch:1");
  INFO(rm_none);
  CHECK(rm_none_code == 1);
  CHECK_THAT(rm_none, Catch::Contains("no image named 'herd.local/nosuch:1'"));

  // prune: etcd goes, busybox stays, the component runs on.
  auto [prune_code, prune_out] = herdctl(sock, "image prune");
  INFO(prune_out);
  CHECK(prune_code == 0);
  CHECK_THAT(prune_out, Catch::Contains("removed " + etcd));
  CHECK_THAT(prune_out, Catch::Contains("pruned 1 image(s)"));
  CHECK_FALSE(image_exists(ns, etcd));
  CHECK(image_exists(ns, busybox));
  auto [again_code, again] = herdctl(sock, "image prune");
  INFO(again);
  CHECK(again_code == 0);
  CHECK_THAT(again, Catch::Contains("no unused images"));
  CHECK(state_of(status_json(sock), "user") == "ready");

  herdd.signal(SIGTERM);
  CHECK(herdd.wait() == 0);
  run_coro([&]() -> asio::awaitable<void> { co_await ns.finish(); });
  std::filesystem::remove_all(data);
}

TEST_CASE("herdctl image pull from a real registry shows progress and its errors", "[e2e][image]") {
  herd::testing::RegistryServer registry;
  const std::string archive = "oci-archive:" + env().image("busybox.tar").string();
  const std::string one = registry.host + "/busybox:1";
  const std::string two = registry.host + "/busybox:2";
  herd::testing::skopeo_copy(archive, one);
  herd::testing::skopeo_copy(archive, two);

  TestNamespace ns("ctl-images");
  auto data = temp_path("data-images");
  auto cfg = temp_path("images.json");
  auto sock = socket_of(data);
  json c = base_config(ns, data);
  c["components"].push_back(sleeper("user"));  // herd.local/busybox:latest from its archive
  write_file(cfg, c.dump(2));
  NotifySocket notify;
  Herdd herdd(cfg, notify);
  REQUIRE_FALSE(notify.wait_for("READY=1").empty());
  // libcurl is loaded by the first pull, not at herdd's start
  // (lib/registry/curl_api.h): a node that never pulls never maps it.
  auto maps_curl = [&] {
    std::ifstream in("/proc/" + std::to_string(herdd.pid()) + "/maps");
    const std::string maps((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    REQUIRE_FALSE(maps.empty());
    return maps.find("libcurl") != std::string::npos;
  };
  CHECK_FALSE(maps_curl());

  // A plain pull: lines per blob (not a terminal), then the summary.
  auto [pull_code, pull_out] = herdctl(sock, "image pull " + one);
  INFO(pull_out);
  CHECK(pull_code == 0);
  CHECK(maps_curl());
  CHECK_THAT(pull_out, Catch::Contains("pulled " + one + " (sha256:"));
  CHECK_THAT(pull_out, Catch::Contains("layer "));
  CHECK(image_exists(ns, one));
  auto listed = images_json(sock);
  REQUIRE(listed.count(one) == 1);
  CHECK(listed[one]["used_by"] == json::array());
  CHECK(listed[one]["digest"].get<std::string>().rfind("sha256:", 0) == 0);
  CHECK(listed[one]["size"].get<uint64_t>() > 100000);  // busybox-static is ~1 MiB
  REQUIRE(listed.count("herd.local/busybox:latest") == 1);
  CHECK(listed["herd.local/busybox:latest"]["used_by"] == json::array({"user"}));

  // --json: every line an object, the last the result.
  {
    auto [code, out] = herdctl(sock, "image pull --json " + two);  // stderr: nothing on success
    INFO(out);
    CHECK(code == 0);
    std::vector<json> events;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) {
      if (line.empty()) continue;
      json j = json::parse(line, nullptr, false);
      REQUIRE_FALSE(j.is_discarded());
      events.push_back(j);
    }
    REQUIRE(events.size() >= 2);
    for (size_t i = 0; i + 1 < events.size(); ++i) CHECK(events[i]["event"] == "progress");
    CHECK(events.back()["event"] == "result");
    CHECK(events.back()["name"] == two);
    // Same blobs as busybox:1: all already there.
    CHECK(events.back()["blobs_present"].get<int>() >= 1);
    CHECK(image_exists(ns, two));
  }

  // A missing tag: exit 1, the reference named.
  auto [missing_code, missing] = herdctl(sock, "image pull " + registry.host + "/busybox:nosuch");
  INFO(missing);
  CHECK(missing_code == 1);
  CHECK_THAT(missing, Catch::Contains(registry.host + "/busybox:nosuch"));
  CHECK_FALSE(image_exists(ns, registry.host + "/busybox:nosuch"));

  // rm of the image a component uses is refused, naming it.
  auto [rm_used_code, rm_used] = herdctl(sock, "image rm herd.local/busybox:latest");
  INFO(rm_used);
  CHECK(rm_used_code == 1);
  CHECK_THAT(rm_used, Catch::Contains("component user"));
  CHECK(image_exists(ns, "herd.local/busybox:latest"));
  auto [rm_none_code, rm_none] = herdctl(sock, "image rm " + registry.host + "/nosuch:1");
  INFO(rm_none);
  CHECK(rm_none_code == 1);
  CHECK_THAT(rm_none, Catch::Contains("no image named '" + registry.host + "/nosuch:1'"));

  // rm of an unused one; prune takes the other and keeps the used one.
  auto [rm_code, rm_out] = herdctl(sock, "image rm " + two);
  INFO(rm_out);
  CHECK(rm_code == 0);
  CHECK_THAT(rm_out, Catch::Contains("removed " + two));
  CHECK_FALSE(image_exists(ns, two));
  auto [prune_code, prune_out] = herdctl(sock, "image prune");
  INFO(prune_out);
  CHECK(prune_code == 0);
  CHECK_THAT(prune_out, Catch::Contains("removed " + one));
  CHECK_THAT(prune_out, !Catch::Contains("herd.local/busybox:latest"));
  CHECK_FALSE(image_exists(ns, one));
  CHECK(image_exists(ns, "herd.local/busybox:latest"));
  CHECK(state_of(status_json(sock), "user") == "ready");

  herdd.signal(SIGTERM);
  CHECK(herdd.wait() == 0);
  run_coro([&]() -> asio::awaitable<void> { co_await ns.finish(); });
  std::filesystem::remove_all(data);
}
