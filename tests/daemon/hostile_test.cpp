// Process-level tests of hostile input (issue 9): each crafted archive,
// path or config is fed to a real herdd (and the real herdctl) on the
// fixture's containerd. After each one herdctl status answers within a
// second, herdd is still alive and serving its component, and nothing is
// left in containerd: no lease, no content ingest, no new snapshot.
#include <sys/stat.h>
#include <sys/wait.h>

#include <set>

#include <nlohmann/json.hpp>

#include "crafted_archives.h"
#include "daemon_harness.h"

using namespace herd;
using namespace herd::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

// The harness's sleeper, retried quickly when its image cannot be had.
json sleeper_with_backoff(const std::string& name) {
  json s = sleeper(name);
  s["restart"] = {{"base", "100ms"}, {"max", "1s"}};
  return s;
}

// Issue 9's table and what fuzzing found: (name, bytes, a piece of the
// error herdctl must print).
struct Case {
  std::string name;
  std::string bytes;
  std::string error;
};
std::vector<Case> hostile_archives() {
  namespace c = crafted;
  return {
      {"pax-negative-length", c::pax_negative_length(), "pax"},
      {"base256-size-wrap", c::base256_size_wrap(), "size"},
      {"self-naming-index", c::self_naming_index(), "sha256"},
      {"deeply-nested-index", c::deeply_nested_index(), "nest"},
      {"symlink-loop", c::symlink_loop(), "link"},
      {"dangling-hardlink", c::dangling_hardlink(), "link"},
      {"fifo-entry", c::fifo_entry(), "entry"},
      {"size-as-string", c::size_as_string_index(), "size"},
      {"annotations-array", c::annotations_array_index(), "annotations"},
      {"index-chain-too-deep", c::index_chain(9), "deep"},
  };
}

// What containerd holds that an import or an unpack could leak.
struct Leftovers {
  std::set<std::string> leases;
  std::set<std::string> snapshots;
  std::set<std::string> ingests;  // ref files of the content store's ingests (global)
  bool operator==(const Leftovers&) const = default;
};

std::string joined(const std::set<std::string>& s) {
  std::string out;
  for (const auto& x : s) out += (out.empty() ? "" : ", ") + x;
  return out;
}

Leftovers leftovers(TestNamespace& ns) {
  Leftovers l;
  run_coro([&]() -> asio::awaitable<void> {
    auto leases = co_await ns.client().leases_list();
    REQUIRE(leases.ok());
    for (const auto& x : *leases) l.leases.insert(x.id());
    auto snaps = co_await ns.client().snapshots_list(herd::containerd::kDefaultSnapshotter);
    REQUIRE(snaps.ok());
    for (const auto& x : *snaps) l.snapshots.insert(x.name());
  });
  // Ingests are not namespaced: the tests run one at a time (the
  // containerd resource lock), so any ingest is a leak of this test.
  const auto ingest = env().containerd_dir / "root" / "io.containerd.content.v1.content" / "ingest";
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(ingest, ec)) {
    std::ifstream ref(e.path() / "ref");
    std::string r;
    std::getline(ref, r);
    l.ingests.insert(r.empty() ? e.path().filename().string() : r);
  }
  return l;
}

// herdd is alive (not exited, not a zombie) and answers status within 1 s.
void check_serving(Herdd& herdd, const std::filesystem::path& sock) {
  int st = 0;
  CHECK(::waitpid(herdd.pid(), &st, WNOHANG) == 0);
  auto [code, out] = herdctl(sock, "--timeout 1 status");
  INFO(out);
  CHECK(code == 0);
  CHECK_THAT(out, Catch::Contains("keeper"));
}

}  // namespace

TEST_CASE(
    "hostile archives through herdctl image import: a clear error, herdd serving, "
    "nothing left behind",
    "[e2e][hostile]") {
  TestNamespace ns("hostile-import");
  auto data = temp_path("data-hostile");
  auto cfg = temp_path("hostile.json");
  auto sock = socket_of(data);
  json c = base_config(ns, data);
  c["components"].push_back(sleeper_with_backoff("keeper"));
  write_file(cfg, c.dump(2));

  NotifySocket notify;
  Herdd herdd(cfg, notify);
  REQUIRE_FALSE(notify.wait_for("READY=1").empty());
  REQUIRE(status_until(sock, [](auto& st) { return state_of(st, "keeper") == "ready"; }));
  const Leftovers before = leftovers(ns);

  // One herdd for every case (a section would start a new one each).
  const auto cases = hostile_archives();
  REQUIRE(cases.size() >= 4);
  for (const auto& kase : cases) {
    auto file = temp_path("crafted-" + kase.name + ".tar");
    write_file(file, kase.bytes);
    auto [code, out] = herdctl(sock, "--timeout 60 image import " + file.string());
    INFO(kase.name << ": " << out);
    CHECK(code == 1);
    CHECK_THAT(out, Catch::Contains(kase.error));
    check_serving(herdd, sock);
    const Leftovers after = leftovers(ns);
    INFO("leases: " << joined(after.leases) << "; snapshots: " << joined(after.snapshots)
                    << "; ingests: " << joined(after.ingests));
    CHECK(after == before);
    std::filesystem::remove(file);
  }

  // Not a regular file: refused by herdctl at once, herdd never sees it.
  auto fifo = temp_path("import.fifo");
  std::filesystem::remove(fifo);
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  for (const std::string& path : {fifo.string(), std::string("/dev/zero")}) {
    auto [code, out] = herdctl(sock, "--timeout 10 image import " + path);
    INFO(path << ": " << out);
    CHECK(code == 1);
    CHECK_THAT(out, Catch::Contains("not a regular file"));
  }
  std::filesystem::remove(fifo);
  check_serving(herdd, sock);

  herdd.signal(SIGTERM);
  CHECK(herdd.wait() == 0);
  std::filesystem::remove_all(data);
  run_coro([&]() -> asio::awaitable<void> { co_await ns.finish(); });
}

TEST_CASE("an image whose index is wrong inside fails its component cleanly, and a stop completes",
          "[e2e][hostile]") {
  TestNamespace ns("hostile-platform");
  auto data = temp_path("data-platform");
  auto cfg = temp_path("platform.json");
  auto sock = socket_of(data);

  // The archive imports (its digests are right), but its index says
  // "platform": "linux/amd64" (a string, not an object).
  auto archive = temp_path("platform-string.tar");
  write_file(archive, crafted::platform_string_index());

  json c = base_config(ns, data);
  c["components"].push_back(sleeper_with_backoff("keeper"));
  json odd = sleeper_with_backoff("odd");
  odd["image"] = crafted::kPlatformStringImage;
  odd["image_archive"] = archive.string();
  c["components"].push_back(odd);
  // An image_archive that is a FIFO: refused, never opened blocking.
  auto fifo = temp_path("archive.fifo");
  std::filesystem::remove(fifo);
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  json piped = sleeper_with_backoff("piped");
  piped["image"] = "herd.local/piped:latest";
  piped["image_archive"] = fifo.string();
  c["components"].push_back(piped);
  write_file(cfg, c.dump(2));

  NotifySocket notify;
  Herdd herdd(cfg, notify);
  REQUIRE(status_until(sock, [](auto& st) { return state_of(st, "keeper") == "ready"; }));
  auto error_of = [&](const std::string& name) {
    auto st = status_json(sock);
    auto it = st.find(name);
    return it == st.end() ? std::string() : it->second.value("last_error", "");
  };
  REQUIRE(status_until(sock, [&](auto&) { return !error_of("odd").empty(); }));
  CHECK_THAT(error_of("odd"), Catch::Contains("platform"));
  CHECK(error_of("odd").find("internal error") == std::string::npos);
  REQUIRE(status_until(sock, [&](auto&) { return !error_of("piped").empty(); }));
  CHECK_THAT(error_of("piped"), Catch::Contains("not a regular file"));
  check_serving(herdd, sock);

  // Operator stops of both complete.
  for (const std::string name : {"odd", "piped"}) {
    auto [code, out] = herdctl(sock, "stop " + name);
    INFO(out);
    CHECK(code == 0);
    CHECK(status_until(
        sock, [&](auto& st) { return state_of(st, name) == "stopped"; }, 30s));
  }

  herdd.signal(SIGTERM);
  CHECK(herdd.wait() == 0);
  std::filesystem::remove(fifo);
  std::filesystem::remove(archive);
  std::filesystem::remove_all(data);
  run_coro([&]() -> asio::awaitable<void> { co_await ns.finish(); });
}
