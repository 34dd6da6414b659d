// Integration tests of image import against the real containerd: docker-
// save archives written by Debian's skopeo (from the test env's OCI
// busybox), a docker archive with a gzip layer, the hostile archives of
// issue 9 (clear errors, nothing left behind), and the cleanup of a failed
// content write and a cancelled import.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <sstream>

#include "containerd/images.h"
#include "containerd/oci_archive.h"
#include "containerd/oci_parse.h"
#include "containerd/stubs.h"
#include "crafted_archives.h"
#include "harness.h"

using namespace herd;
using namespace herd::containerd;
using namespace std::chrono_literals;
using herd::test::env;
using herd::test::run_coro;
using herd::test::test_pool;
using herd::test::TestNamespace;
namespace crafted = herd::test::crafted;

namespace {

std::filesystem::path temp_path(const std::string& name) {
  return std::filesystem::temp_directory_path() /
         ("herd-it-archive-" + std::to_string(::getpid()) + "-" + name);
}

void write_file(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs argv (a process this test starts) and waits for it by pid.
int run(const std::vector<std::string>& argv) {
  pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Runs containerd's garbage collector now (a synchronous lease delete
// does), so content left unreferenced by a failed import is gone.
asio::awaitable<void> collect(Client& c) {
  auto dummy = co_await c.leases_create("", std::chrono::hours(1));
  HERD_REQUIRE_OK(dummy);
  HERD_REQUIRE_OK(co_await c.leases_delete(dummy->id(), /*sync=*/true));
}

std::set<std::string> names_of(const std::vector<Image>& images) {
  std::set<std::string> out;
  for (const auto& i : images) out.insert(i.name());
  return out;
}

}  // namespace

TEST_CASE("a docker-archive written by skopeo imports, as ctr does, and unpacks", "[integration]") {
  const auto out = temp_path("skopeo-docker.tar");
  std::filesystem::remove(out);
  // skopeo converts the OCI archive itself: our OCI layout must be one it reads.
  REQUIRE(run({"skopeo", "--insecure-policy", "copy", "--quiet",
               "oci-archive:" + env().image("busybox.tar").string(),
               "docker-archive:" + out.string() + ":herd.local/busybox-docker:latest",
               "--additional-tag", "busybox:1"}) == 0);
  TestNamespace ns("skopeo");
  run_coro([&]() -> asio::awaitable<void> {
    auto& c = ns.client();
    auto imported = co_await import_archive(c, test_pool(), out);
    INFO(imported.status().to_string());
    REQUIRE(imported.ok());
    const std::set<std::string> want{"herd.local/busybox-docker:latest",
                                     "docker.io/library/busybox:1"};
    CHECK(names_of(*imported) == want);
    const auto& target = (*imported)[0].target();
    CHECK(target.media_type() == kDockerManifestType);

    // The synthesised manifest names config and layer for the collector.
    auto info = co_await c.content_info(target.digest());
    HERD_REQUIRE_OK(info);
    CHECK(info->labels().count("containerd.io/gc.ref.content.config") == 1);
    CHECK(info->labels().count("containerd.io/gc.ref.content.l.0") == 1);

    auto img = co_await unpack_image(c, "herd.local/busybox-docker:latest");
    INFO(img.status().to_string());
    REQUIRE(img.ok());
    CHECK(img->layers.at(0).media_type() == kDockerLayerType);  // skopeo wrote it uncompressed
    auto top = co_await c.snapshots_stat(kDefaultSnapshotter, img->top_chain_id());
    HERD_REQUIRE_OK(top);
    CHECK(top->kind() == ::containerd::services::snapshots::v1::COMMITTED);

    // The same rootfs as the OCI original: the same diff ids.
    auto oci = OciArchive::open(env().image("busybox.tar"));
    REQUIRE(oci.ok());
    auto layout = oci->index();
    REQUIRE(layout.ok());
    auto manifest = oci->read_verified_blob(layout->at(0).descriptor.digest,
                                            layout->at(0).descriptor.size, kMaxJsonDocument);
    REQUIRE(manifest.ok());
    auto m = parse_manifest(*manifest, "busybox");
    REQUIRE(m.ok());
    auto cfg = oci->read_verified_blob(m->config.digest, m->config.size, kMaxConfigDocument);
    REQUIRE(cfg.ok());
    auto diff_ids = parse_diff_ids(*cfg);
    REQUIRE(diff_ids.ok());
    CHECK(img->diff_ids == *diff_ids);

    // Importing again changes nothing.
    auto again = co_await import_archive(c, test_pool(), out);
    HERD_REQUIRE_OK(again);
    auto listed = co_await c.images_list();
    HERD_REQUIRE_OK(listed);
    CHECK(listed->size() == 2);
    co_await ns.finish();
  });
  std::filesystem::remove(out);
}

TEST_CASE("a docker archive with a gzip layer imports and unpacks", "[integration]") {
  auto img = crafted::tiny_image(std::string(host_architecture()));
  const auto layer_path = temp_path("layer.tar");
  write_file(layer_path, img.layer);
  REQUIRE(run({"gzip", "-n", "-f", layer_path.string()}) == 0);
  const std::string gz = read_file(layer_path.string() + ".gz");
  std::filesystem::remove(layer_path.string() + ".gz");
  REQUIRE(gz.size() > 2);
  crafted::TarBuilder t;
  t.file("config.json", img.config);
  t.file("abc/layer.tar", gz);
  t.symlink("def/layer.tar", "../abc/layer.tar");
  t.file("manifest.json",
         R"([{"Config":"config.json","RepoTags":["herd-gzip:1"],"Layers":["def/layer.tar"]}])");
  t.file("repositories", R"({"herd-gzip":{"1":"abc"}})");
  const auto archive = temp_path("gzip-docker.tar");
  write_file(archive, t.finish());

  TestNamespace ns("dockergz");
  run_coro([&]() -> asio::awaitable<void> {
    auto& c = ns.client();
    auto imported = co_await import_archive(c, test_pool(), archive);
    INFO(imported.status().to_string());
    REQUIRE(imported.ok());
    REQUIRE(imported->size() == 1);
    CHECK((*imported)[0].name() == "docker.io/library/herd-gzip:1");
    auto u = co_await unpack_image(c, "docker.io/library/herd-gzip:1");
    INFO(u.status().to_string());
    REQUIRE(u.ok());
    CHECK(u->layers.at(0).media_type() == kDockerLayerGzipType);
    CHECK(u->layers.at(0).digest() == crafted::digest_of(gz));
    HERD_CHECK_OK(co_await c.snapshots_stat(kDefaultSnapshotter, u->top_chain_id()));
    co_await ns.finish();
  });
  std::filesystem::remove(archive);
}

TEST_CASE("hostile archives fail at once with clear errors and leave nothing behind",
          "[integration]") {
  struct Case {
    const char* name;
    std::string bytes;
    const char* says;
  };
  const std::vector<Case> cases{
      {"pax-minus-6", crafted::pax_negative_length(), "is not a positive decimal"},
      {"base256-wrap", crafted::base256_size_wrap(), "runs past the end of the archive"},
      {"self-index", crafted::self_naming_index(), "do not match the digest"},
      {"nested-200000", crafted::deeply_nested_index(), "nested deeper than 64"},
      {"symlink-loop", crafted::symlink_loop(), "symlink hops"},
      {"fifo-entry", crafted::fifo_entry(), "FIFOs are not allowed"},
      {"size-string", crafted::size_as_string_index(), "size: expected an integer"},
      {"annotations-array", crafted::annotations_array_index(), "annotations: expected an object"},
      {"index-9-deep", crafted::index_chain(9), "deeper than 8"},
      {"docker-long-tag", crafted::docker_long_repo_tag(), "once normalised"},
      {"docker-diff-id", crafted::docker_layer_not_diff_id(), "is not the config's diff id"},
      {"docker-outside", crafted::docker_layer_outside(), "climbs above the archive root"},
  };
  TestNamespace ns("hostile");
  run_coro([&]() -> asio::awaitable<void> {
    auto& c = ns.client();
    for (const auto& k : cases) {
      const auto p = temp_path(k.name);
      write_file(p, k.bytes);
      auto imported = co_await import_archive(c, test_pool(), p);
      INFO(k.name << ": " << imported.status().to_string());
      CHECK_FALSE(imported.ok());
      CHECK_THAT(imported.status().message(), Catch::Contains(p.string()));
      CHECK_THAT(imported.status().message(), Catch::Contains(k.says));
      std::filesystem::remove(p);
    }
    auto images = co_await c.images_list();
    HERD_REQUIRE_OK(images);
    CHECK(images->empty());
    co_await collect(c);
    co_await ns.finish();
  });
}

TEST_CASE("a string platform imports, then resolving and unpacking fail cleanly", "[integration]") {
  const auto p = temp_path("platform-string.tar");
  write_file(p, crafted::platform_string_index());
  TestNamespace ns("platstr");
  run_coro([&]() -> asio::awaitable<void> {
    auto& c = ns.client();
    auto imported = co_await import_archive(c, test_pool(), p);
    HERD_REQUIRE_OK(imported);
    auto r = co_await resolve_image(c, crafted::kPlatformStringImage);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Code::kInvalidArgument);
    CHECK_THAT(r.status().message(), Catch::Contains("manifests[0].platform: expected an object"));
    auto u = co_await unpack_image(c, crafted::kPlatformStringImage);
    REQUIRE_FALSE(u.ok());
    CHECK_THAT(u.status().message(), Catch::Contains("platform: expected an object"));
    co_await ns.finish();
  });
  std::filesystem::remove(p);
}

TEST_CASE("a FIFO is refused at once, never opened for blocking reads", "[integration]") {
  const auto p = temp_path("fifo");
  std::filesystem::remove(p);
  REQUIRE(::mkfifo(p.c_str(), 0600) == 0);
  TestNamespace ns("fifo");
  run_coro([&]() -> asio::awaitable<void> {
    auto imported = co_await import_archive(ns.client(), test_pool(), p);
    REQUIRE_FALSE(imported.ok());
    CHECK(imported.status().code() == Code::kInvalidArgument);
    CHECK_THAT(imported.status().message(), Catch::Contains("a FIFO, not a regular file"));
    co_await ns.finish();
  });
  std::filesystem::remove(p);
}

TEST_CASE("a failed content write aborts its ingest", "[integration]") {
  TestNamespace ns("abort");
  const std::string ref = "herd-it-abort-" + std::to_string(::getpid());
  run_coro([&]() -> asio::awaitable<void> {
    auto& c = ns.client();
    // One chunk, then the source fails: containerd holds a 1 MiB ingest.
    Client::ChunkSource source = [](int64_t offset, Client::ChunkDone done) {
      if (offset == 0) {
        done(Status::Ok(), std::string(1 << 20, 'x'));
      } else {
        done(Status::DataLoss("source broke"), std::string());
      }
    };
    Labels none;
    const std::string expected = crafted::digest_of(std::string(3 << 20, 'x'));
    Status s = co_await c.content_write(ref, 3 << 20, expected, std::move(none), std::move(source));
    REQUIRE_FALSE(s.ok());
    CHECK_THAT(s.message(), Catch::Contains("source broke"));
    // containerd no longer knows the ingest (a blocking call is fine in a test).
    grpc::ClientContext ctx;
    ctx.AddMetadata("containerd-namespace", ns.name());
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    ::containerd::services::content::v1::StatusRequest req;
    req.set_ref(ref);
    ::containerd::services::content::v1::StatusResponse resp;
    auto st = c.stubs().content->Status(&ctx, req, &resp);
    INFO(st.error_message() << " offset " << resp.status().offset());
    CHECK(st.error_code() == grpc::StatusCode::NOT_FOUND);
    co_await ns.finish();
  });
}

TEST_CASE("an import cancelled midway leaves no lease behind", "[integration]") {
  TestNamespace ns("cancel");
  run_coro([&]() -> asio::awaitable<void> {
    auto& c = ns.client();
    CallOptions o;
    o.canceller = std::make_shared<Canceller>();
    // Cancel as soon as the import has started talking to containerd.
    auto ex = co_await asio::this_coro::executor;
    asio::steady_timer t(ex, 100ms);
    t.async_wait([cx = o.canceller](boost::system::error_code) { cx->cancel(); });
    auto imported = co_await import_archive(c, test_pool(), env().image("etcd.tar"), o);
    INFO(imported.status().to_string());
    if (imported.ok()) {
      WARN("the import finished before the cancel; nothing to check");
      for (const auto& i : *imported) (void)co_await c.images_delete(i.name(), true);
    } else {
      CHECK(imported.status().code() == Code::kCancelled);
    }
    auto leases = co_await c.leases_list();
    HERD_REQUIRE_OK(leases);
    CHECK(leases->empty());
    co_await collect(c);
    co_await ns.finish();  // no lease left, namespace deletable
  });
}

TEST_CASE("the event loop keeps running while an archive is imported", "[integration]") {
  TestNamespace ns("loop");
  run_coro([&]() -> asio::awaitable<void> {
    auto& c = ns.client();
    auto ex = co_await asio::this_coro::executor;
    // A 1 ms ticker on the importing coroutine's own io_context: its
    // largest gap is how long the loop was kept from running.
    bool done = false;
    bool stopped = false;
    auto max_gap = std::chrono::steady_clock::duration::zero();
    int ticks = 0;
    std::function<asio::awaitable<void>()> ticker = [&]() -> asio::awaitable<void> {
      asio::steady_timer t(co_await asio::this_coro::executor);
      auto last = std::chrono::steady_clock::now();
      while (!done) {
        t.expires_after(1ms);
        co_await t.async_wait(asio::use_awaitable);
        auto now = std::chrono::steady_clock::now();
        max_gap = std::max(max_gap, now - last);
        last = now;
        ++ticks;
      }
      stopped = true;
    };
    asio::co_spawn(ex, ticker(), asio::detached);
    const auto t0 = std::chrono::steady_clock::now();
    auto imported = co_await import_archive(c, test_pool(), env().image("etcd.tar"));
    const auto took = std::chrono::steady_clock::now() - t0;
    done = true;
    REQUIRE(co_await herd::test::eventually([&] { return stopped; }));
    HERD_REQUIRE_OK(imported);
    const auto gap_ms = std::chrono::duration_cast<std::chrono::milliseconds>(max_gap).count();
    const auto took_ms = std::chrono::duration_cast<std::chrono::milliseconds>(took).count();
    WARN("etcd.tar import: " << took_ms << " ms, " << ticks << " ticks, largest loop gap " << gap_ms
                             << " ms");
    // The scan and the hashing of 15 MB on the loop would stall it for
    // about the whole import.
    CHECK(gap_ms < 100);
    co_await ns.finish();
  });
}
