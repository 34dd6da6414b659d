// Puller against real parts: the fixture's containerd (private root and
// socket), Debian's docker-registry on 127.0.0.1 (RegistryServer, stopped
// by its pid), images pushed with skopeo from the test env's OCI archives,
// and `ctr` as the oracle of what a pull must leave behind.
#include "registry/puller.h"

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "../integration/harness.h"
#include "../support/registry_fixture.h"
#include "common/sha256.h"
#include "containerd/stubs.h"

using namespace std::chrono_literals;
using herd::Code;
using herd::Result;
using herd::Status;
using herd::containerd::Canceller;
using herd::containerd::Client;
using herd::registry::BlobProgress;
using herd::registry::Puller;
using herd::registry::PullRequest;
using herd::registry::PullResult;
using herd::test::env;
using herd::test::run_coro;
using herd::test::TestNamespace;
using herd::testing::RegistryServer;
using herd::testing::skopeo_copy;
namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

// One registry per test case, stopped when the case ends
// (RegistryPerCase), never by a static destructor at exit: a registry still being
// stopped while exit() tears gRPC down races gRPC's callback threads
// ("assertion failed: prior > 0" in grpc_cq_internal_unref, then a hang).
std::unique_ptr<RegistryServer>& registry_slot() {
  static std::unique_ptr<RegistryServer> r;
  return r;
}
std::map<std::string, std::string>& pushed_digests() {
  static std::map<std::string, std::string> d;
  return d;
}
RegistryServer& registry() {
  auto& r = registry_slot();
  if (!r) r = std::make_unique<RegistryServer>();
  return *r;
}

// Held by every test case: its registry stops when the case ends.
struct RegistryPerCase {
  RegistryPerCase() = default;
  RegistryPerCase(const RegistryPerCase&) = delete;
  RegistryPerCase& operator=(const RegistryPerCase&) = delete;
  ~RegistryPerCase() {
    registry_slot().reset();
    pushed_digests().clear();
  }
};

std::string archive(const std::string& file) { return "oci-archive:" + env().image(file).string(); }

// Pushed once per binary: busybox as OCI and as Docker v2s2, etcd (OCI).
const std::string& pushed(const std::string& what) {
  auto& d = pushed_digests()[what];
  if (d.empty()) {
    auto& r = registry();
    if (what == "busybox")
      d = skopeo_copy(archive("busybox.tar"), r.host + "/busybox:1");
    else if (what == "busybox-v2s2")
      d = skopeo_copy(archive("busybox.tar"), r.host + "/busybox-docker:1", "--format v2s2");
    else if (what == "etcd")
      d = skopeo_copy(archive("etcd.tar"), r.host + "/etcd:3.4");
  }
  return d;
}

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

void write_file(const fs::path& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary);
  f << bytes;
}

// busybox's OCI layout under an index with two platforms: linux/amd64 (or
// this host's) is busybox's manifest, linux/s390x a copy of it with one
// annotation more (so another digest). Pushed with --all; returns the
// index digest.
const std::string& pushed_index() {
  std::string& digest = pushed_digests()["index"];
  if (!digest.empty()) return digest;
  fs::path dir = herd::testing::make_temp_dir("two-platform");
  herd::testing::run_shell("tar -xf " + env().image("busybox.tar").string() + " -C " +
                           dir.string());
  auto index = nlohmann::json::parse(read_file(dir / "index.json"));
  auto m = index["manifests"][0];
  const std::string hex = m["digest"].get<std::string>().substr(7);
  auto manifest = nlohmann::json::parse(read_file(dir / "blobs" / "sha256" / hex));
  manifest["annotations"] = {{"io.herd.test", "other platform"}};
  const std::string other = manifest.dump();
  write_file(dir / "blobs" / "sha256" / herd::sha256_hex(other), other);
  const auto host = herd::containerd::host_platform();
  nlohmann::json entries = nlohmann::json::array();
  entries.push_back({{"mediaType", m["mediaType"]},
                     {"digest", m["digest"]},
                     {"size", m["size"]},
                     {"platform", {{"os", "linux"}, {"architecture", host.architecture}}}});
  entries.push_back({{"mediaType", m["mediaType"]},
                     {"digest", "sha256:" + herd::sha256_hex(other)},
                     {"size", other.size()},
                     {"platform", {{"os", "linux"}, {"architecture", "s390x"}}}});
  nlohmann::json idx = {{"schemaVersion", 2},
                        {"mediaType", "application/vnd.oci.image.index.v1+json"},
                        {"manifests", entries}};
  const std::string idx_bytes = idx.dump();
  write_file(dir / "blobs" / "sha256" / herd::sha256_hex(idx_bytes), idx_bytes);
  nlohmann::json layout = {{"schemaVersion", 2},
                           {"manifests",
                            {{{"mediaType", "application/vnd.oci.image.index.v1+json"},
                              {"digest", "sha256:" + herd::sha256_hex(idx_bytes)},
                              {"size", idx_bytes.size()},
                              {"annotations", {{"org.opencontainers.image.ref.name", "multi"}}}}}}};
  write_file(dir / "index.json", layout.dump());
  skopeo_copy("oci:" + dir.string() + ":multi", registry().host + "/multi:1", "--all");
  digest = "sha256:" + herd::sha256_hex(idx_bytes);
  std::error_code ec;
  fs::remove_all(dir, ec);
  return digest;
}

Puller::Options options() {
  Puller::Options o;
  o.registry.hosts_dir = "/nonexistent-herd-certs.d";  // defaults: loopback is plain HTTP
  return o;
}

// Pulls `ref` into the namespace's containerd on a fresh Puller.
Result<PullResult> pull_once(Client& c, const std::string& ref,
                             std::vector<BlobProgress>* progress = nullptr) {
  Result<PullResult> out;
  run_coro([&]() -> asio::awaitable<void> {
    Puller puller(co_await asio::this_coro::executor, c, options());
    PullRequest req;
    if (progress) req.progress = [progress](const BlobProgress& p) { progress->push_back(p); };
    out = co_await puller.pull(ref, std::move(req));
  });
  return out;
}

// Output lines of a command.
std::vector<std::string> lines_of(const std::string& cmd) {
  std::vector<std::string> out;
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  std::string cur;
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) cur.append(buf, n);
  REQUIRE(::pclose(p) == 0);
  std::istringstream s(cur);
  for (std::string l; std::getline(s, l);) out.push_back(l);
  return out;
}

std::string ctr(const std::string& ns, const std::string& args) {
  return "ctr --address " + env().address() + " -n " + ns + " " + args;
}

// Every digest the namespace's content store holds (ctr content ls -q).
std::set<std::string> content_digests(const std::string& ns) {
  auto l = lines_of(ctr(ns, "content ls -q"));
  return {l.begin(), l.end()};
}

std::map<std::string, std::string> labels_of(Client& c, const std::string& digest) {
  std::map<std::string, std::string> out;
  run_coro([&]() -> asio::awaitable<void> {
    auto info = co_await c.content_info(digest);
    REQUIRE(info.ok());
    for (const auto& [k, v] : info->labels()) out[k] = v;
  });
  return out;
}

// Ingests (Content.ListStatuses) of the namespace: none may be left.
size_t ingests(Client& c, const std::string& ns) {
  grpc::ClientContext ctx;
  ctx.AddMetadata("containerd-namespace", ns);
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  ::containerd::services::content::v1::ListStatusesRequest req;
  ::containerd::services::content::v1::ListStatusesResponse resp;
  auto st = c.stubs().content->ListStatuses(&ctx, req, &resp);
  REQUIRE(st.ok());
  return static_cast<size_t>(resp.statuses_size());
}

// herd's pull and ctr's, of the same reference into two namespaces, leave
// the same blobs with the same labels, and the same image record target.
void compare_with_ctr(const std::string& ref, const std::string& tag) {
  TestNamespace herd_ns("pull-" + tag);
  TestNamespace ctr_ns("ctrpull-" + tag);
  auto pulled = pull_once(herd_ns.client(), ref);
  INFO(pulled.status().to_string());
  REQUIRE(pulled.ok());
  (void)lines_of(ctr(ctr_ns.name(), "images pull --plain-http " + ref + " >/dev/null"));

  auto ours = content_digests(herd_ns.name());
  auto theirs = content_digests(ctr_ns.name());
  CHECK(ours == theirs);
  for (const auto& d : theirs) {
    INFO("blob " << d);
    CHECK(labels_of(herd_ns.client(), d) == labels_of(ctr_ns.client(), d));
  }
  // Same image record target.
  run_coro([&]() -> asio::awaitable<void> {
    auto a = co_await herd_ns.client().images_get(ref);
    auto b = co_await ctr_ns.client().images_get(ref);
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    CHECK(a->target().digest() == b->target().digest());
    CHECK(a->target().media_type() == b->target().media_type());
    CHECK(a->target().size() == b->target().size());
    // Nothing left: no lease, no ingest.
    auto leases = co_await herd_ns.client().leases_list();
    REQUIRE(leases.ok());
    CHECK(leases->empty());
  });
  CHECK(ingests(herd_ns.client(), herd_ns.name()) == 0);
  run_coro([&]() -> asio::awaitable<void> {
    co_await herd_ns.finish();
    co_await ctr_ns.finish();
  });
}

}  // namespace

TEST_CASE("an OCI image pulled by herd is stored as ctr pull stores it", "[integration]") {
  RegistryPerCase per_case;
  REQUIRE_FALSE(pushed("busybox").empty());
  compare_with_ctr(registry().host + "/busybox:1", "oci");
}

TEST_CASE("a Docker v2s2 image pulled by herd is stored as ctr pull stores it", "[integration]") {
  RegistryPerCase per_case;
  REQUIRE_FALSE(pushed("busybox-v2s2").empty());
  compare_with_ctr(registry().host + "/busybox-docker:1", "v2s2");
}

TEST_CASE("a two-platform index pulled by herd is stored as ctr pull stores it", "[integration]") {
  RegistryPerCase per_case;
  const std::string digest = pushed_index();
  REQUIRE_FALSE(digest.empty());
  compare_with_ctr(registry().host + "/multi:1", "index");
}

TEST_CASE("a pull reports progress, unpacks, and a second pull fetches nothing", "[integration]") {
  RegistryPerCase per_case;
  const std::string manifest = pushed("busybox");
  TestNamespace ns("pull-again");
  const std::string ref = registry().host + "/busybox:1";
  std::vector<BlobProgress> progress;
  auto first = pull_once(ns.client(), ref, &progress);
  INFO(first.status().to_string());
  REQUIRE(first.ok());
  CHECK(first->name == ref);
  CHECK(first->target.digest == manifest);
  CHECK(first->image.manifest.digest() == manifest);
  // manifest, config, layer; other tests' namespaces may hold some (the
  // content store is shared: those are adopted, not fetched).
  CHECK(first->blobs_fetched + first->blobs_present == 3);
  // Every blob reported finished with its size.
  std::set<std::string> finished;
  for (const auto& p : progress) {
    CHECK(p.done <= p.total);
    if (p.finished) {
      CHECK(p.done == p.total);
      finished.insert(p.digest);
    }
  }
  CHECK(finished.size() == 3);
  run_coro([&]() -> asio::awaitable<void> {
    auto snap = co_await ns.client().snapshots_stat(herd::containerd::kDefaultSnapshotter,
                                                    first->image.top_chain_id());
    CHECK(snap.ok());
  });

  auto second = pull_once(ns.client(), ref);
  REQUIRE(second.ok());
  CHECK(second->blobs_fetched == 0);
  CHECK(second->bytes_fetched == 0);
  CHECK(second->blobs_present == 3);
  run_coro([&]() -> asio::awaitable<void> { co_await ns.finish(); });
}

TEST_CASE("a blob another namespace holds is adopted without a transfer", "[integration]") {
  RegistryPerCase per_case;
  pushed("busybox");
  TestNamespace a("adopt-a");
  TestNamespace b("adopt-b");
  const std::string ref = registry().host + "/busybox:1";
  auto first = pull_once(a.client(), ref);
  REQUIRE(first.ok());
  auto second = pull_once(b.client(), ref);
  INFO(second.status().to_string());
  REQUIRE(second.ok());
  CHECK(second->bytes_fetched == 0);
  CHECK(second->blobs_fetched == 0);
  CHECK(content_digests(a.name()) == content_digests(b.name()));
  run_coro([&]() -> asio::awaitable<void> {
    co_await a.finish();
    co_await b.finish();
  });
}

TEST_CASE("a missing tag is NotFound naming the reference and leaves nothing", "[integration]") {
  RegistryPerCase per_case;
  pushed("busybox");
  TestNamespace ns("pull-missing");
  const std::string ref = registry().host + "/busybox:no-such-tag";
  auto r = pull_once(ns.client(), ref);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Code::kNotFound);
  CHECK_THAT(r.status().message(), Catch::Contains("busybox:no-such-tag"));
  CHECK(content_digests(ns.name()).empty());
  run_coro([&]() -> asio::awaitable<void> { co_await ns.finish(); });
}

TEST_CASE("a registry that is not there is unreachable, with its host", "[integration]") {
  RegistryPerCase per_case;
  TestNamespace ns("pull-unreachable");
  const std::string host = "127.0.0.1:" + std::to_string(herd::testing::free_loopback_port());
  auto r = pull_once(ns.client(), host + "/busybox:1");
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Code::kUnavailable);
  CHECK_THAT(r.status().message(), Catch::Contains("registry unreachable: " + host));
  run_coro([&]() -> asio::awaitable<void> { co_await ns.finish(); });
}

TEST_CASE("two pulls of one reference share one run", "[integration]") {
  RegistryPerCase per_case;
  pushed("etcd");
  TestNamespace ns("pull-shared");
  const std::string ref = registry().host + "/etcd:3.4";
  Result<PullResult> a, b;
  size_t in_flight = 0;
  int b_events = 0;
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    Puller puller(ex, ns.client(), options());
    int done = 0;
    asio::co_spawn(
        ex,
        [&]() -> asio::awaitable<void> {
          a = co_await puller.pull(ref, PullRequest());
          ++done;
        },
        asio::detached);
    asio::co_spawn(
        ex,
        [&]() -> asio::awaitable<void> {
          PullRequest req;
          req.progress = [&](const BlobProgress&) { ++b_events; };
          b = co_await puller.pull(ref, std::move(req));
          ++done;
        },
        asio::detached);
    co_await herd::test::sleep_for(1ms);
    in_flight = puller.pulls_in_flight();
    REQUIRE(co_await herd::test::eventually([&] { return done == 2; }, 120s));
  });
  INFO(a.status().to_string() << " / " << b.status().to_string());
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(in_flight == 1);
  CHECK(a->bytes_fetched == b->bytes_fetched);  // one run's result, twice
  CHECK(a->target.digest == b->target.digest);
  CHECK(b_events > 0);
  run_coro([&]() -> asio::awaitable<void> { co_await ns.finish(); });
}

TEST_CASE("a cancelled pull ends promptly and leaves no lease or ingest", "[integration]") {
  RegistryPerCase per_case;
  pushed("etcd");
  TestNamespace ns("pull-cancel");
  const std::string ref = registry().host + "/etcd:3.4";
  Result<PullResult> r;
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    Puller puller(ex, ns.client(), options());
    auto cancel = std::make_shared<Canceller>();
    PullRequest req;
    req.cancel = cancel;
    // Cancel once the first layer bytes are in.
    req.progress = [cancel](const BlobProgress& p) {
      if (p.kind == "layer" && p.done > 0 && !p.finished) cancel->cancel();
    };
    r = co_await puller.pull(ref, std::move(req));
    // The run itself winds down (its lease deleted) before the Puller goes.
    REQUIRE(co_await herd::test::eventually([&] { return puller.pulls_in_flight() == 0; }, 30s));
  });
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Code::kCancelled);
  run_coro([&]() -> asio::awaitable<void> {
    auto leases = co_await ns.client().leases_list();
    REQUIRE(leases.ok());
    CHECK(leases->empty());
    auto images = co_await ns.client().images_list();
    REQUIRE(images.ok());
    CHECK(images->empty());
  });
  CHECK(ingests(ns.client(), ns.name()) == 0);
  run_coro([&]() -> asio::awaitable<void> { co_await ns.finish(); });
}

TEST_CASE("distribution source labels merge as ctr merges them", "[unit]") {
  RegistryPerCase per_case;
  using herd::registry::merge_distribution_source;
  CHECK(merge_distribution_source("", "library/busybox") == "library/busybox");
  CHECK(merge_distribution_source("b/x", "a/y") == "a/y,b/x");
  CHECK(merge_distribution_source("a/y,b/x", "b/x") == "a/y,b/x");
  CHECK(herd::registry::distribution_source_key("127.0.0.1:5000") ==
        "containerd.io/distribution.source.127.0.0.1");
  CHECK(herd::registry::distribution_source_key("docker.io") ==
        "containerd.io/distribution.source.docker.io");
}
