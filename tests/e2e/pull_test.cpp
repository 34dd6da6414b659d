// End-to-end: components whose images come from a registry. The
// Supervisor with a registry::Puller on the fixture's containerd, a real
// docker-registry on 127.0.0.1 (stopped by its pid), images pushed with
// skopeo. Each test uses its own namespace and proves it left nothing.
#include "../support/registry_fixture.h"
#include "e2e_harness.h"
#include "registry/puller.h"

using namespace herd;
using namespace herd::e2e;
using herd::testing::RegistryServer;
using herd::testing::skopeo_copy;

namespace {

std::string oci(const std::string& file) { return "oci-archive:" + image_archive(file); }

// A busybox httpd on `port` from `image`, pulled (no image_archive).
std::string pulled_httpd(const std::string& name, const std::string& image, uint16_t port,
                         const std::string& pull = "if_not_present") {
  return R"({"name": ")" + name + R"(", "image": ")" + image + R"(", "pull": ")" + pull +
         R"(", "args": ["httpd", "-f", "-p", "127.0.0.1:)" + std::to_string(port) +
         R"(", "-h", "/var/www"], "ready": {"tcp": {"port": )" + std::to_string(port) +
         R"(}, "interval": "100ms"}, "restart": {"base": "100ms", "max": "1s"},
         "stop_grace": "2s"})";
}

// Supervisor options with a Puller of the test's: plain HTTP to loopback
// (no hosts.toml), anonymous.
struct PullerFor {
  std::unique_ptr<registry::Puller> puller;
  explicit PullerFor(Herd& h) {
    registry::Puller::Options o;
    o.registry.hosts_dir = (h.data / "no-certs.d").string();
    puller = std::make_unique<registry::Puller>(h.io.get_executor(), h.ns.client(), o);
  }
  Supervisor::Options options() const {
    Supervisor::Options so;
    so.puller = puller.get();
    return so;
  }
};

std::string target_of(Herd& h, const std::string& image) {
  std::string out;
  bool done = false;
  asio::co_spawn(
      h.io,
      [&]() -> asio::awaitable<void> {
        auto img = co_await h.ns.client().images_get(image);
        if (img.ok()) out = img->target().digest();
        done = true;
      },
      asio::detached);
  h.run_until([&] { return done; }, 20s);
  return out;
}

bool error_seen(const Herd& h, const std::string& name, const std::string& text) {
  for (const auto& c : h.changes)
    if (c.name == name && c.last_error.find(text) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("a component whose image is only in a registry is pulled and becomes ready", "[e2e]") {
  RegistryServer reg;
  const std::string image = reg.host + "/busybox:1";
  const std::string manifest = skopeo_copy(oci("busybox.tar"), image);
  Herd h("pull-run");
  PullerFor p(h);
  const uint16_t port = free_port();
  h.run([&]() -> asio::awaitable<void> {
    h.start(pulled_httpd("web", image, port), p.options());
    REQUIRE(co_await eventually([&] { return h.state("web") == State::kReady; }, 120s));
    CHECK(port_answers(port));
    co_await h.stop();
  });
  CHECK(target_of(h, image) == manifest);
  h.run([&]() -> asio::awaitable<void> { co_await h.ns.finish(); });
}

TEST_CASE("a failed pull is the start's error: the component backs off and says what failed",
          "[e2e]") {
  RegistryServer reg;
  skopeo_copy(oci("busybox.tar"), reg.host + "/busybox:1");
  Herd h("pull-fail");
  PullerFor p(h);
  const std::string missing = reg.host + "/busybox:no-such-tag";
  const std::string never = reg.host + "/busybox:1";
  h.run([&]() -> asio::awaitable<void> {
    h.start(pulled_httpd("missing", missing, free_port()) + "," +
                pulled_httpd("never", never, free_port(), "never"),
            p.options());
    REQUIRE(co_await eventually(
        [&] {
          return error_seen(h, "missing", "busybox:no-such-tag") &&
                 error_seen(h, "never", "pull: never");
        },
        60s));
    CHECK(error_seen(h, "missing", "not found"));
    CHECK(error_seen(h, "missing", "pull " + missing));
    CHECK(h.first("missing", State::kBackingOff) >= 0);
    CHECK(h.first("never", State::kBackingOff) >= 0);
    CHECK(h.first("missing", State::kReady) < 0);
    // Stopping while it backs off (or pulls) ends promptly.
    co_await h.stop();
    CHECK(h.state("missing") == State::kStopped);
    co_await h.ns.finish();
  });
}

TEST_CASE(
    "pull always fetches a changed digest at start, and offline every component runs from "
    "local content",
    "[e2e]") {
  RegistryServer reg;
  const std::string image = reg.host + "/web:stable";
  const std::string first = skopeo_copy(oci("busybox.tar"), image);
  Herd h("pull-always");
  PullerFor p(h);
  const uint16_t port = free_port();
  auto run_once = [&](const std::string& pull) {
    h.run([&]() -> asio::awaitable<void> {
      h.start(pulled_httpd("web", image, port, pull), p.options());
      REQUIRE(co_await eventually([&] { return h.state("web") == State::kReady; }, 120s));
      CHECK(port_answers(port));
      co_await h.stop();
    });
  };
  run_once("always");
  CHECK(target_of(h, image) == first);

  // The tag now names another manifest (the same image as Docker v2s2):
  // a new start with `pull: always` fetches it.
  const std::string second = skopeo_copy(oci("busybox.tar"), image, "--format v2s2");
  REQUIRE(second != first);
  run_once("always");
  CHECK(target_of(h, image) == second);

  // The registry is gone: `always` keeps the local image (a warning), and
  // `if_not_present` never asks.
  reg.stop();
  run_once("always");
  run_once("if_not_present");
  CHECK(target_of(h, image) == second);
  h.run([&]() -> asio::awaitable<void> { co_await h.ns.finish(); });
}
