// Puller against real parts gone wrong: the fixture's containerd, Debian's
// docker-registry on 127.0.0.1 and, in front of it, fault_proxy.py (429s,
// 503s, 404s, cut and corrupted bodies, an ignored Range, a hang, a Bearer
// challenge; every request recorded), plus a TLS registry with htpasswd
// auth, a registry whose blobs answer 307 to another port, and zstd layers.
// Every case also checks what the pull left: no lease, no ingest, and no
// image record when it failed. Images carry a layer of random bytes of
// their own, so no other namespace holds it and it is always fetched.
// Each case starts its own registry (not a static one): it is stopped
// before the process exits, even when exit goes wrong (an orphaned
// registry would hold CTest's stderr pipe open until the timeout).
#include "registry/puller.h"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "../integration/harness.h"
#include "../support/registry_fixture.h"
#include "common/sha256.h"
#include "containerd/stubs.h"

using namespace std::chrono_literals;
using herd::Code;
using herd::Result;
using herd::containerd::Canceller;
using herd::containerd::Client;
using herd::registry::Puller;
using herd::registry::PullRequest;
using herd::registry::PullResult;
using herd::test::env;
using herd::test::run_coro;
using herd::test::TestNamespace;
using herd::testing::ChildProcess;
using herd::testing::RegistryServer;
using herd::testing::run_shell;
using herd::testing::skopeo_copy;
using nlohmann::json;
namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

void write_file(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream f(p, std::ios::binary);
  f << bytes;
  REQUIRE(f.good());
}

// One HTTP/1.0 request to 127.0.0.1:port (the proxy's control endpoints);
// the response body. Blocking, loopback only.
std::string http_call(int port, const std::string& method, const std::string& path,
                      const std::string& body = "") {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  std::string req = method + " " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\n\r\n" + body;
  for (size_t off = 0; off < req.size();) {
    ssize_t n = ::write(fd, req.data() + off, req.size() - off);
    REQUIRE(n > 0);
    off += static_cast<size_t>(n);
  }
  std::string resp;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) resp.append(buf, static_cast<size_t>(n));
  ::close(fd);
  auto end = resp.find("\r\n\r\n");
  REQUIRE(end != std::string::npos);
  INFO(resp.substr(0, end));
  REQUIRE(resp.rfind("HTTP/1.", 0) == 0);
  REQUIRE(resp.substr(8, 5) == " 200 ");
  return resp.substr(end + 4);
}

// fault_proxy.py, stopped by its pid when the object goes.
struct Proxy {
  std::unique_ptr<ChildProcess> child;
  int port = 0;
  std::string host;

  explicit Proxy(const std::string& upstream_host = "") {
    std::vector<std::string> argv{"python3", HERD_FAULT_PROXY};
    if (!upstream_host.empty()) {
      argv.push_back("--upstream");
      argv.push_back("http://" + upstream_host);
    }
    child = std::make_unique<ChildProcess>(argv);
    port = std::stoi(child->read_port());
    host = "127.0.0.1:" + std::to_string(port);
  }
  void fault(const json& rule) { http_call(port, "POST", "/__fault", rule.dump()); }
  void config(const json& c) { http_call(port, "POST", "/__config", c.dump()); }
  json log() { return json::parse(http_call(port, "GET", "/__log")); }
  // The recorded requests whose path has `match` (and of `method`).
  std::vector<json> requests(const std::string& match, const std::string& method = "") {
    std::vector<json> out;
    for (const auto& r : log())
      if (r["path"].get<std::string>().find(match) != std::string::npos &&
          (method.empty() || r["method"] == method))
        out.push_back(r);
    return out;
  }
  std::vector<int> statuses(const std::string& match, const std::string& method = "") {
    std::vector<int> out;
    for (const auto& r : requests(match, method)) out.push_back(r["status"].get<int>());
    return out;
  }
};

// A rule answering `status` (with a Retry-After of 1 s for a 429).
json status_rule(const std::string& match, const std::string& method, int status, int count) {
  json r = {{"match", match},
            {"method", method},
            {"kind", "status"},
            {"status", status},
            {"count", count}};
  if (status == 429) r["headers"] = {{"Retry-After", "1"}};
  if (status == 404)
    r["body"] = R"({"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]})";
  return r;
}

struct Pushed {
  std::string manifest;  // the manifest digest skopeo pushed
  std::string layer;     // the digest of the image's own layer
  int64_t layer_size = 0;
};

// busybox's OCI layout with one more layer of its own (a file of random
// bytes, gzip: about 1.5 MB), pushed to host/repo_tag with skopeo. With
// `zstd`, every layer recompressed with zstd first (an oci: layout), then
// pushed with --preserve-digests.
Pushed push_unique(const std::string& host, const std::string& repo_tag, bool zstd = false,
                   const std::string& flags = "") {
  fs::path dir = herd::testing::make_temp_dir("fault-image");
  const fs::path layout = dir / "layout";
  fs::create_directories(layout);
  fs::create_directories(dir / "nonce");
  run_shell("tar -xf " + env().image("busybox.tar").string() + " -C " + layout.string());
  run_shell("head -c 1500000 /dev/urandom > " + (dir / "nonce" / "herd-nonce").string());
  run_shell("tar -C " + (dir / "nonce").string() + " -cf " + (dir / "layer.tar").string() +
            " herd-nonce && gzip -n -k " + (dir / "layer.tar").string());
  const std::string diff_id = "sha256:" + herd::sha256_hex(read_file(dir / "layer.tar"));
  const std::string gz = read_file(dir / "layer.tar.gz");
  Pushed out;
  out.layer = "sha256:" + herd::sha256_hex(gz);
  out.layer_size = static_cast<int64_t>(gz.size());
  auto blob = [&](const std::string& digest) {
    return layout / "blobs" / "sha256" / digest.substr(7);
  };
  write_file(blob(out.layer), gz);

  auto index = json::parse(read_file(layout / "index.json"));
  auto manifest = json::parse(read_file(blob(index["manifests"][0]["digest"])));
  auto config = json::parse(read_file(blob(manifest["config"]["digest"])));
  config["rootfs"]["diff_ids"].push_back(diff_id);
  if (config.contains("history")) config["history"].push_back({{"created_by", "herd fault test"}});
  const std::string config_bytes = config.dump();
  const std::string config_digest = "sha256:" + herd::sha256_hex(config_bytes);
  write_file(blob(config_digest), config_bytes);
  manifest["config"]["digest"] = config_digest;
  manifest["config"]["size"] = config_bytes.size();
  manifest["layers"].push_back({{"mediaType", "application/vnd.oci.image.layer.v1.tar+gzip"},
                                {"digest", out.layer},
                                {"size", out.layer_size}});
  const std::string manifest_bytes = manifest.dump();
  const std::string manifest_digest = "sha256:" + herd::sha256_hex(manifest_bytes);
  write_file(blob(manifest_digest), manifest_bytes);
  json entry = {{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                {"digest", manifest_digest},
                {"size", manifest_bytes.size()},
                {"annotations", {{"org.opencontainers.image.ref.name", "t"}}}};
  write_file(layout / "index.json", json({{"schemaVersion", 2}, {"manifests", {entry}}}).dump());

  std::string source = "oci:" + layout.string() + ":t";
  std::string push_flags = flags;
  if (zstd) {
    const fs::path z = dir / "zstd";
    run_shell("skopeo --insecure-policy copy -q --dest-compress-format zstd " + source +
              " oci:" + z.string() + ":t");
    auto zi = json::parse(read_file(z / "index.json"));
    auto zm = json::parse(read_file(z / "blobs" / "sha256" /
                                    zi["manifests"][0]["digest"].get<std::string>().substr(7)));
    out.layer = zm["layers"].back()["digest"];
    out.layer_size = zm["layers"].back()["size"];
    source = "oci:" + z.string() + ":t";
    push_flags += " --preserve-digests";
  }
  out.manifest = skopeo_copy(source, host + "/" + repo_tag, push_flags);
  std::error_code ec;
  fs::remove_all(dir, ec);
  return out;
}

Puller::Options options() {
  Puller::Options o;
  o.registry.hosts_dir = "/nonexistent-herd-certs.d";  // defaults: loopback is plain HTTP
  return o;
}

// Pulls `ref` on a fresh Puller; `took` is how long it took.
Result<PullResult> pull_once(Client& c, const std::string& ref, Puller::Options o = options(),
                             std::chrono::milliseconds* took = nullptr) {
  Result<PullResult> out;
  run_coro([&]() -> asio::awaitable<void> {
    Puller puller(co_await asio::this_coro::executor, c, o);
    const auto start = std::chrono::steady_clock::now();
    out = co_await puller.pull(ref, PullRequest());
    if (took)
      *took = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now() - start);
  });
  return out;
}

// Ingests (Content.ListStatuses) of the namespace.
size_t ingests(TestNamespace& ns) {
  grpc::ClientContext ctx;
  ctx.AddMetadata("containerd-namespace", ns.name());
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  ::containerd::services::content::v1::ListStatusesRequest req;
  ::containerd::services::content::v1::ListStatusesResponse resp;
  auto st = ns.client().stubs().content->ListStatuses(&ctx, req, &resp);
  REQUIRE(st.ok());
  return static_cast<size_t>(resp.statuses_size());
}

bool has_blob(TestNamespace& ns, const std::string& digest) {
  bool found = false;
  run_coro([&]() -> asio::awaitable<void> {
    auto info = co_await ns.client().content_info(digest);
    REQUIRE((info.ok() || info.status().is_not_found()));
    found = info.ok();
  });
  return found;
}

// What a pull leaves: no lease, no ingest; an image record only when it
// succeeded. Then the namespace is checked empty and deleted.
void check_left_and_finish(TestNamespace& ns, bool pulled) {
  CHECK(ingests(ns) == 0);
  run_coro([&]() -> asio::awaitable<void> {
    auto leases = co_await ns.client().leases_list();
    REQUIRE(leases.ok());
    CHECK(leases->empty());
    auto images = co_await ns.client().images_list();
    REQUIRE(images.ok());
    CHECK(images->size() == (pulled ? 1u : 0u));
    co_await ns.finish();
  });
}

#define REQUIRE_PULLED(r)           \
  do {                              \
    INFO((r).status().to_string()); \
    REQUIRE((r).ok());              \
  } while (0)

}  // namespace

TEST_CASE("429 with Retry-After on the manifest HEAD and on a blob is waited out",
          "[integration]") {
  RegistryServer reg;
  Proxy proxy(reg.host);
  auto img = push_unique(reg.host, "busy:1");
  proxy.fault(status_rule("/manifests/", "HEAD", 429, 1));
  proxy.fault(status_rule(img.layer, "GET", 429, 1));
  TestNamespace ns("fault-429");
  std::chrono::milliseconds took{0};
  auto r = pull_once(ns.client(), proxy.host + "/busy:1", options(), &took);
  REQUIRE_PULLED(r);
  CHECK(r->target.digest == img.manifest);
  CHECK(proxy.statuses("/manifests/1", "HEAD") == std::vector<int>{429, 200});
  CHECK(proxy.statuses(img.layer, "GET") == std::vector<int>{429, 200});
  CHECK(took >= 1900ms);  // both Retry-After waits, one after the other
  CHECK(has_blob(ns, img.layer));
  check_left_and_finish(ns, true);
}

TEST_CASE("a blob answered 503 twice is fetched by the third request", "[integration]") {
  RegistryServer reg;
  Proxy proxy(reg.host);
  auto img = push_unique(reg.host, "flaky:1");
  proxy.fault(status_rule(img.layer, "GET", 503, 2));
  TestNamespace ns("fault-503");
  auto r = pull_once(ns.client(), proxy.host + "/flaky:1");
  REQUIRE_PULLED(r);
  CHECK(proxy.statuses(img.layer, "GET") == std::vector<int>{503, 503, 200});
  check_left_and_finish(ns, true);
}

TEST_CASE("a blob answered 503 for ever fails naming the host and the status", "[integration]") {
  RegistryServer reg;
  Proxy proxy(reg.host);
  auto img = push_unique(reg.host, "down:1");
  proxy.fault(status_rule(img.layer, "GET", 503, -1));
  TestNamespace ns("fault-503-always");
  auto r = pull_once(ns.client(), proxy.host + "/down:1");
  REQUIRE_FALSE(r.ok());
  INFO(r.status().to_string());
  CHECK(r.status().code() == Code::kUnavailable);
  CHECK_THAT(r.status().message(), Catch::Contains(proxy.host));
  CHECK_THAT(r.status().message(), Catch::Contains("503"));
  CHECK_THAT(r.status().message(), Catch::Contains(img.layer));
  // The Resolver's attempts, once: not again for every resume.
  CHECK(proxy.requests(img.layer, "GET").size() == size_t(herd::registry::kMaxAttempts));
  CHECK_FALSE(has_blob(ns, img.layer));
  check_left_and_finish(ns, false);
}

TEST_CASE("a blob answered 404 is not retried and the error names it", "[integration]") {
  RegistryServer reg;
  Proxy proxy(reg.host);
  auto img = push_unique(reg.host, "gone:1");
  proxy.fault(status_rule(img.layer, "GET", 404, -1));
  TestNamespace ns("fault-404");
  auto r = pull_once(ns.client(), proxy.host + "/gone:1");
  REQUIRE_FALSE(r.ok());
  INFO(r.status().to_string());
  CHECK(r.status().code() == Code::kNotFound);
  CHECK_THAT(r.status().message(), Catch::Contains(img.layer));
  CHECK(proxy.requests(img.layer, "GET").size() == 1);
  check_left_and_finish(ns, false);
}

TEST_CASE("a layer cut midway resumes with a Range from the cut", "[integration]") {
  RegistryServer reg;
  Proxy proxy(reg.host);
  auto img = push_unique(reg.host, "cut:1");
  // Past the first chunk the sink gets (HttpClient::kChunkBytes), so the
  // cut lands in bytes still buffered.
  const int64_t cut = 1200000;
  REQUIRE(img.layer_size > cut);
  proxy.fault({{"match", img.layer}, {"method", "GET"}, {"kind", "cut"}, {"bytes", cut}});
  TestNamespace ns("fault-cut");
  auto r = pull_once(ns.client(), proxy.host + "/cut:1");
  REQUIRE_PULLED(r);
  auto gets = proxy.requests(img.layer, "GET");
  REQUIRE(gets.size() == 2);
  CHECK(gets[0]["range"] == "");
  CHECK(gets[1]["range"] == "bytes=" + std::to_string(cut) + "-");
  CHECK(gets[1]["status"] == 206);
  CHECK(has_blob(ns, img.layer));
  check_left_and_finish(ns, true);
}

TEST_CASE("a registry ignoring the Range of a resume still gives a good pull", "[integration]") {
  RegistryServer reg;
  Proxy proxy(reg.host);
  auto img = push_unique(reg.host, "norange:1");
  const int64_t cut = 300000;
  proxy.fault({{"match", img.layer}, {"method", "GET"}, {"kind", "cut"}, {"bytes", cut}});
  proxy.fault({{"match", img.layer}, {"method", "GET"}, {"kind", "ignore_range"}});
  TestNamespace ns("fault-norange");
  auto r = pull_once(ns.client(), proxy.host + "/norange:1");
  REQUIRE_PULLED(r);
  auto gets = proxy.requests(img.layer, "GET");
  REQUIRE(gets.size() == 2);
  CHECK(gets[1]["range"] == "bytes=" + std::to_string(cut) + "-");
  CHECK(gets[1]["fault"] == "ignore_range");
  CHECK(gets[1]["status"] == 200);  // the whole body: the first `cut` bytes skipped
  CHECK(has_blob(ns, img.layer));
  check_left_and_finish(ns, true);
}

TEST_CASE("a flipped byte in a layer fails the pull with a digest mismatch and stores none of it",
          "[integration]") {
  RegistryServer reg;
  Proxy proxy(reg.host);
  auto img = push_unique(reg.host, "flipped:1");
  proxy.fault({{"match", img.layer}, {"method", "GET"}, {"kind", "flip"}});
  TestNamespace ns("fault-flip");
  auto r = pull_once(ns.client(), proxy.host + "/flipped:1");
  REQUIRE_FALSE(r.ok());
  INFO(r.status().to_string());
  CHECK(r.status().code() == Code::kDataLoss);
  CHECK_THAT(r.status().message(), Catch::Contains("digest mismatch for " + img.layer));
  CHECK(proxy.requests(img.layer, "GET").size() == 1);
  CHECK_FALSE(has_blob(ns, img.layer));
  check_left_and_finish(ns, false);
}

TEST_CASE("a registry that accepts and never answers fails the pull within the stall timeout",
          "[integration]") {
  RegistryServer reg;
  Proxy proxy(reg.host);
  proxy.fault({{"match", "/manifests/"}, {"kind", "stall"}, {"count", -1}});
  TestNamespace ns("fault-stall");
  auto o = options();
  o.registry.stall_timeout = 1s;
  std::chrono::milliseconds took{0};
  auto r = pull_once(ns.client(), proxy.host + "/hang:1", o, &took);
  REQUIRE_FALSE(r.ok());
  INFO(r.status().to_string());
  CHECK(r.status().code() == Code::kDeadlineExceeded);
  CHECK_THAT(r.status().message(), Catch::Contains(proxy.host));
  CHECK(took < 10s);  // the default stall guard is 30 s
  CHECK(proxy.requests("/manifests/").size() == 1);
  check_left_and_finish(ns, false);
}

TEST_CASE("a cancel while the registry hangs ends the pull promptly with Cancelled",
          "[integration]") {
  RegistryServer reg;
  Proxy proxy(reg.host);
  proxy.fault({{"match", "/manifests/"}, {"kind", "stall"}, {"count", -1}});
  TestNamespace ns("fault-stall-cancel");
  Result<PullResult> r;
  std::chrono::milliseconds after_cancel{0};
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    Puller puller(ex, ns.client(), options());
    auto cancel = std::make_shared<Canceller>();
    bool done = false;
    auto pull = [&]() -> asio::awaitable<void> {
      PullRequest req;
      req.cancel = cancel;
      r = co_await puller.pull(proxy.host + "/hang:1", std::move(req));
      done = true;
    };
    asio::co_spawn(ex, pull, asio::detached);
    REQUIRE(co_await herd::test::eventually([&] { return !proxy.requests("/manifests/").empty(); },
                                            20s));
    co_await herd::test::sleep_for(200ms);
    REQUIRE_FALSE(done);
    const auto at = std::chrono::steady_clock::now();
    cancel->cancel();
    REQUIRE(co_await herd::test::eventually([&] { return done; }, 20s));
    after_cancel = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - at);
    REQUIRE(co_await herd::test::eventually([&] { return puller.pulls_in_flight() == 0; }, 20s));
  });
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Code::kCancelled);
  CHECK(after_cancel < 2s);
  check_left_and_finish(ns, false);
}

TEST_CASE("a TLS registry with htpasswd auth pulls with its CA and credentials and not without",
          "[integration]") {
  const fs::path dir = herd::testing::make_temp_dir("fault-tls");
  const std::string d = dir.string();
  run_shell("cd " + d +
            " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
            " -keyout ca.key -out ca.pem -days 2 -subj '/CN=herd test CA' 2>/dev/null"
            " && openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
            " -keyout server.key -out server.csr -subj '/CN=127.0.0.1' 2>/dev/null"
            " && printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n' > ext.cnf"
            " && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial"
            " -out server.pem -days 2 -extfile ext.cnf 2>/dev/null");
  RegistryServer::Options ro;
  ro.auth = true;
  ro.tls_cert = d + "/server.pem";
  ro.tls_key = d + "/server.key";
  RegistryServer reg(ro);
  const std::string url = "https://" + reg.host;
  skopeo_copy("oci-archive:" + env().image("busybox.tar").string(), reg.host + "/busybox:1",
              "--dest-creds user:pass");
  // A hosts dir with the CA, one without it, and docker's config.json.
  write_file(dir / "hosts" / reg.host / "hosts.toml",
             "server = \"" + url + "\"\n[host.\"" + url + "\"]\n  ca = \"ca.pem\"\n");
  fs::copy_file(dir / "ca.pem", dir / "hosts" / reg.host / "ca.pem");
  write_file(dir / "no-ca" / reg.host / "hosts.toml", "server = \"" + url + "\"\n");
  write_file(dir / "auth.json",
             json({{"auths", {{reg.host, {{"auth", "dXNlcjpwYXNz"}}}}}}).dump());  // user:pass
  const std::string ref = reg.host + "/busybox:1";

  {
    TestNamespace ns("fault-tls");
    auto o = options();
    o.registry.hosts_dir = d + "/hosts";
    o.registry.auth_file = d + "/auth.json";
    auto r = pull_once(ns.client(), ref, o);
    REQUIRE_PULLED(r);
    check_left_and_finish(ns, true);
  }
  {
    TestNamespace ns("fault-tls-noauth");
    auto o = options();
    o.registry.hosts_dir = d + "/hosts";
    auto r = pull_once(ns.client(), ref, o);
    REQUIRE_FALSE(r.ok());
    INFO(r.status().to_string());
    CHECK(r.status().code() == Code::kUnauthenticated);
    CHECK_THAT(r.status().message(), Catch::Contains("unauthorized"));
    check_left_and_finish(ns, false);
  }
  {
    TestNamespace ns("fault-tls-noca");
    auto o = options();
    o.registry.hosts_dir = d + "/no-ca";
    o.registry.auth_file = d + "/auth.json";
    auto r = pull_once(ns.client(), ref, o);
    REQUIRE_FALSE(r.ok());
    INFO(r.status().to_string());
    CHECK(r.status().code() == Code::kUnavailable);
    CHECK_THAT(r.status().message(), Catch::Contains("certificate"));
    CHECK_THAT(r.status().message(), Catch::Contains(reg.host));
    check_left_and_finish(ns, false);
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
}

TEST_CASE("blobs a registry redirects to another port are followed", "[integration]") {
  // The registry's redirect middleware answers a blob GET with a 307 to
  // <baseurl><storage path>; the proxy serves the registry's storage there.
  Proxy store;
  RegistryServer::Options ro;
  ro.extra_yaml =
      "middleware:\n  storage:\n    - name: redirect\n      options:\n"
      "        baseurl: http://" +
      store.host + "/\n";
  RegistryServer reg(ro);
  store.config({{"static", (reg.dir / "storage").string()}});
  auto img = push_unique(reg.host, "redirected:1");
  TestNamespace ns("fault-redirect");
  auto r = pull_once(ns.client(), reg.host + "/redirected:1");
  REQUIRE_PULLED(r);
  auto served = store.requests(img.layer.substr(7), "GET");
  REQUIRE(served.size() == 1);
  CHECK(served[0]["status"] == 200);
  CHECK(served[0]["path"].get<std::string>().rfind("/docker/registry/v2/blobs/", 0) == 0);
  CHECK(has_blob(ns, img.layer));
  check_left_and_finish(ns, true);
}

TEST_CASE("zstd layers pull and unpack", "[integration]") {
  RegistryServer reg;
  auto img = push_unique(reg.host, "zstd:1", /*zstd=*/true);
  TestNamespace ns("fault-zstd");
  auto r = pull_once(ns.client(), reg.host + "/zstd:1");
  REQUIRE_PULLED(r);
  CHECK(r->target.digest == img.manifest);
  REQUIRE(r->image.layers.size() == 2);
  for (const auto& l : r->image.layers)
    CHECK(l.media_type() == "application/vnd.oci.image.layer.v1.tar+zstd");
  CHECK(r->image.layers.back().digest() == img.layer);
  run_coro([&]() -> asio::awaitable<void> {
    auto snap = co_await ns.client().snapshots_stat(herd::containerd::kDefaultSnapshotter,
                                                    r->image.top_chain_id());
    HERD_CHECK_OK(snap);
  });
  check_left_and_finish(ns, true);
}

TEST_CASE("a registry behind a Bearer token server pulls with credentials and not without",
          "[integration]") {
  RegistryServer reg;
  Proxy proxy(reg.host);
  proxy.config({{"bearer", "user:pass"}});
  auto img = push_unique(reg.host, "bearer:1");
  const fs::path dir = herd::testing::make_temp_dir("fault-bearer");
  write_file(dir / "auth.json",
             json({{"auths", {{proxy.host, {{"auth", "dXNlcjpwYXNz"}}}}}}).dump());  // user:pass
  const std::string ref = proxy.host + "/bearer:1";
  {
    TestNamespace ns("fault-bearer");
    auto o = options();
    o.registry.auth_file = (dir / "auth.json").string();
    auto r = pull_once(ns.client(), ref, o);
    REQUIRE_PULLED(r);
    CHECK(proxy.statuses("/token") == std::vector<int>{200});  // cached for the whole pull
    auto gets = proxy.requests(img.layer, "GET");
    REQUIRE(gets.size() == 1);
    CHECK(gets[0]["auth"] == "Bearer");
    CHECK(gets[0]["status"] == 200);
    check_left_and_finish(ns, true);
  }
  {
    TestNamespace ns("fault-bearer-anon");
    auto r = pull_once(ns.client(), ref);
    REQUIRE_FALSE(r.ok());
    INFO(r.status().to_string());
    CHECK(r.status().code() == Code::kUnauthenticated);
    CHECK_THAT(r.status().message(), Catch::Contains("unauthorized"));
    check_left_and_finish(ns, false);
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
}
