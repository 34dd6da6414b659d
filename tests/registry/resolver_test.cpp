// Resolver against a real registry: Debian's docker-registry (distribution
// 2.8) on 127.0.0.1, started here with filesystem storage in a temp dir
// and stopped by its pid; images pushed with skopeo from OCI layouts built
// here. A second registry wants htpasswd Basic auth. A small fake
// registry with its token server (token_server.py) covers the Bearer flow
// and a registry that lies about a manifest.
#include "registry/resolver.h"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "../support/child_process.h"
#include "common/sha256.h"
#include "crafted_archives.h"

using namespace std::chrono_literals;
using herd::Code;
using herd::Result;
using herd::Status;
using herd::registry::Cancellation;
using herd::registry::Descriptor;
using herd::registry::HttpClient;
using herd::registry::HttpRequest;
using herd::registry::HttpResponse;
using herd::registry::Reference;
using herd::registry::RegistryOptions;
using herd::registry::Resolved;
using herd::registry::Resolver;
namespace asio = boost::asio;
namespace fs = std::filesystem;
namespace crafted = herd::test::crafted;

namespace {

void write_file(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream f(p, std::ios::binary);
  f << bytes;
  REQUIRE(f.good());
}

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

void sh(const std::string& cmd) {
  INFO(cmd);
  REQUIRE(std::system(cmd.c_str()) == 0);
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

fs::path temp_dir(const std::string& what) {
  std::string t = (fs::temp_directory_path() / ("herd-resolver-" + what + "-XXXXXX")).string();
  REQUIRE(::mkdtemp(t.data()) != nullptr);
  return t;
}

// Runs `body` on a fresh io_context to completion.
template <class T>
T run(std::function<asio::awaitable<T>(HttpClient&)> body) {
  asio::io_context io;
  HttpClient client(io.get_executor());
  std::optional<T> out;
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { out = co_await body(client); },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  io.run();
  REQUIRE(out.has_value());
  return std::move(*out);
}

long get_status(const std::string& url) {
  std::function<asio::awaitable<long>(HttpClient&)> f =
      [&](HttpClient& c) -> asio::awaitable<long> {
    HttpRequest r;
    r.url = url;
    r.timeout = 2s;
    auto got = co_await c.fetch(std::move(r));
    co_return got.ok() ? got->status : 0;
  };
  return run(f);
}

// A docker-registry on an ephemeral port; with htpasswd auth when `auth`.
struct Registry {
  fs::path dir;
  int port = 0;
  std::string host;
  std::unique_ptr<herd::testing::ChildProcess> child;

  explicit Registry(bool auth) {
    dir = temp_dir(auth ? "auth" : "open");
    port = free_port();
    host = "127.0.0.1:" + std::to_string(port);
    std::string config =
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
        "    rootdirectory: " +
        (dir / "storage").string() + "\nhttp:\n  addr: " + host + "\n";
    if (auth) {
      sh("htpasswd -Bbc " + (dir / "htpasswd").string() + " user pass >/dev/null 2>&1");
      config +=
          "auth:\n  htpasswd:\n    realm: test\n    path: " + (dir / "htpasswd").string() + "\n";
    }
    write_file(dir / "config.yml", config);
    child = std::make_unique<herd::testing::ChildProcess>(std::vector<std::string>{
        "/usr/bin/docker-registry", "serve", (dir / "config.yml").string()});
    for (int i = 0; i < 200; ++i) {
      long s = get_status("http://" + host + "/v2/");
      if (s == 200 || s == 401) return;
      std::this_thread::sleep_for(100ms);
    }
    FAIL("docker-registry did not answer GET /v2/ on " << host);
  }
  ~Registry() {
    child.reset();  // stops it by its pid
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

Registry& open_registry() {
  static Registry r(false);
  return r;
}
Registry& auth_registry() {
  static Registry r(true);
  return r;
}

struct FakeRegistry {
  herd::testing::ChildProcess child{{"python3", HERD_TOKEN_SERVER}};
  std::string host;
  FakeRegistry() { host = "127.0.0.1:" + child.read_port(); }
};
FakeRegistry& fake_registry() {
  static FakeRegistry r;
  return r;
}

nlohmann::json fake_stats() {
  std::function<asio::awaitable<std::string>(HttpClient&)> f =
      [](HttpClient& c) -> asio::awaitable<std::string> {
    HttpRequest r;
    r.url = "http://" + fake_registry().host + "/stats";
    auto got = co_await c.fetch(std::move(r));
    co_return got.ok() ? got->body : std::string("{}");
  };
  return nlohmann::json::parse(run(f));
}

int hits(const std::string& repo) {
  auto j = fake_stats();
  return j["hits"].contains(repo) ? j["hits"][repo].get<int>() : 0;
}

// Writes an OCI layout at `dir` whose index.json names the manifest (or
// index) `top` of `media_type` with ref name "tag"; `blobs` are all the
// blobs, `top` included.
void write_layout(const fs::path& dir, const std::vector<std::string>& blobs,
                  const std::string& media_type, const std::string& top) {
  fs::remove_all(dir);
  write_file(dir / "oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
  for (const auto& b : blobs) write_file(dir / "blobs" / "sha256" / herd::sha256_hex(b), b);
  write_file(
      dir / "index.json",
      R"({"schemaVersion":2,"manifests":[)" +
          crafted::descriptor_json(media_type, top,
                                   R"("annotations":{"org.opencontainers.image.ref.name":"tag"})") +
          "]}");
}

// Pushes the layout to `dest` (a docker:// reference without scheme) and
// returns the manifest digest skopeo wrote.
std::string push(const fs::path& layout, const std::string& dest, const std::string& flags) {
  const fs::path digest = layout.string() + ".digest";
  sh("skopeo --insecure-policy copy -q --dest-tls-verify=false " + flags + " --digestfile " +
     digest.string() + " oci:" + layout.string() + ":tag docker://" + dest + " >/dev/null");
  std::string d = read_file(digest);
  while (!d.empty() && (d.back() == '\n' || d.back() == ' ')) d.pop_back();
  REQUIRE(d.rfind("sha256:", 0) == 0);
  return d;
}

struct Pushed {
  std::string oci_digest;    // herd/test:oci
  std::string v2s2_digest;   // herd/test:v2s2
  std::string index_digest;  // herd/multi:tag
};

// The images on the open registry, pushed once.
const Pushed& pushed() {
  static const Pushed p = [] {
    Pushed out;
    Registry& reg = open_registry();
    auto img = crafted::tiny_image("amd64");
    const fs::path one = reg.dir / "layout-one";
    write_layout(one, {img.layer, img.config, img.manifest},
                 "application/vnd.oci.image.manifest.v1+json", img.manifest);
    out.oci_digest = push(one, reg.host + "/herd/test:oci", "");
    out.v2s2_digest = push(one, reg.host + "/herd/test:v2s2", "--format v2s2");

    auto amd = crafted::tiny_image("amd64");
    auto arm = crafted::tiny_image("arm64");
    std::string index =
        R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)" +
        crafted::descriptor_json("application/vnd.oci.image.manifest.v1+json", amd.manifest,
                                 R"("platform":{"os":"linux","architecture":"amd64"})") +
        "," +
        crafted::descriptor_json(
            "application/vnd.oci.image.manifest.v1+json", arm.manifest,
            R"("platform":{"os":"linux","architecture":"arm64","variant":"v8"})") +
        "]}";
    const fs::path multi = reg.dir / "layout-multi";
    write_layout(multi, {amd.layer, amd.config, amd.manifest, arm.config, arm.manifest, index},
                 "application/vnd.oci.image.index.v1+json", index);
    out.index_digest = push(multi, reg.host + "/herd/multi:tag", "--all --preserve-digests");
    return out;
  }();
  return p;
}

Reference parse_ref(const std::string& text) {
  auto r = herd::registry::parse_reference(text);
  REQUIRE(r.ok());
  return *r;
}

Result<Resolved> resolve(const std::string& text, RegistryOptions opts = RegistryOptions()) {
  Reference reference = parse_ref(text);
  std::function<asio::awaitable<Result<Resolved>>(HttpClient&)> f =
      [&](HttpClient& c) -> asio::awaitable<Result<Resolved>> {
    Resolver resolver(c, opts);
    co_return co_await resolver.resolve(reference, nullptr);
  };
  return run(f);
}

Result<std::string> fetch(const std::string& text, const Descriptor& d,
                          RegistryOptions opts = RegistryOptions()) {
  Reference reference = parse_ref(text);
  std::function<asio::awaitable<Result<std::string>>(HttpClient&)> f =
      [&](HttpClient& c) -> asio::awaitable<Result<std::string>> {
    Resolver resolver(c, opts);
    co_return co_await resolver.fetch_manifest(reference, d, nullptr);
  };
  return run(f);
}

bool contains(const Status& s, const std::string& what) {
  return s.message().find(what) != std::string::npos;
}

}  // namespace

TEST_CASE("resolver: a tag resolves to the pushed digest (OCI and Docker schema 2)", "[resolver]") {
  const auto& p = pushed();
  const std::string host = open_registry().host;

  auto oci = resolve(host + "/herd/test:oci");
  REQUIRE(oci.ok());
  CHECK(oci->descriptor.digest == p.oci_digest);
  CHECK(oci->descriptor.media_type == "application/vnd.oci.image.manifest.v1+json");
  CHECK(oci->descriptor.size > 0);
  CHECK(oci->endpoint.host == host);

  auto v2 = resolve(host + "/herd/test:v2s2");
  REQUIRE(v2.ok());
  CHECK(v2->descriptor.digest == p.v2s2_digest);
  CHECK(v2->descriptor.media_type == "application/vnd.docker.distribution.manifest.v2+json");
  CHECK(p.v2s2_digest != p.oci_digest);
}

TEST_CASE("resolver: a digest reference resolves to itself", "[resolver]") {
  const auto& p = pushed();
  auto r = resolve(open_registry().host + "/herd/test@" + p.v2s2_digest);
  REQUIRE(r.ok());
  CHECK(r->descriptor.digest == p.v2s2_digest);
  CHECK(r->descriptor.media_type == "application/vnd.docker.distribution.manifest.v2+json");
}

TEST_CASE("resolver: fetch_manifest returns the bytes of the digest, and refuses others",
          "[resolver]") {
  const auto& p = pushed();
  const std::string name = open_registry().host + "/herd/test:oci";
  auto r = resolve(name);
  REQUIRE(r.ok());
  auto body = fetch(name, r->descriptor);
  REQUIRE(body.ok());
  CHECK("sha256:" + herd::sha256_hex(*body) == p.oci_digest);
  CHECK(static_cast<int64_t>(body->size()) == r->descriptor.size);
  CHECK(body->find("\"layers\"") != std::string::npos);

  SECTION("a digest the registry does not have is NotFound") {
    Descriptor wrong = r->descriptor;
    wrong.digest = "sha256:" + std::string(64, '0');
    auto w = fetch(name, wrong);
    REQUIRE_FALSE(w.ok());
    CHECK(w.status().code() == Code::kNotFound);
  }
  SECTION("a registry that sends other bytes than the digest names: digest mismatch") {
    Descriptor wrong = r->descriptor;
    wrong.digest = "sha256:" + std::string(64, 'b');
    RegistryOptions opts;
    const fs::path auth = temp_dir("lie");
    write_file(auth / "config.json",
               R"({"auths":{")" + fake_registry().host + R"(":{"auth":"dXNlcjpwYXNz"}}})");
    opts.auth_file = (auth / "config.json").string();
    auto w = fetch(fake_registry().host + "/lie:x", wrong, opts);
    fs::remove_all(auth);
    REQUIRE_FALSE(w.ok());
    INFO(w.status().to_string());
    CHECK(w.status().code() == Code::kDataLoss);
    CHECK(contains(w.status(), "digest mismatch for sha256:bbbb"));
  }
}

TEST_CASE("resolver: the node's manifest is selected from a two-platform index", "[resolver]") {
  const auto& p = pushed();
  const std::string name = open_registry().host + "/herd/multi:tag";
  auto r = resolve(name);
  REQUIRE(r.ok());
  CHECK(r->descriptor.digest == p.index_digest);
  CHECK(r->descriptor.media_type == "application/vnd.oci.image.index.v1+json");
  auto index = fetch(name, r->descriptor);
  REQUIRE(index.ok());

  auto amd = crafted::tiny_image("amd64");
  auto arm = crafted::tiny_image("arm64");
  std::function<asio::awaitable<int>(HttpClient&)> f = [&](HttpClient& c) -> asio::awaitable<int> {
    Resolver on_amd(c, RegistryOptions(), herd::containerd::Platform{"linux", "amd64", ""});
    auto a = on_amd.select_platform(*index);
    REQUIRE(a.ok());
    CHECK(a->digest == crafted::digest_of(amd.manifest));
    Resolver on_arm(c, RegistryOptions(), herd::containerd::Platform{"linux", "arm64", "v8"});
    auto b = on_arm.select_platform(*index);
    REQUIRE(b.ok());
    CHECK(b->digest == crafted::digest_of(arm.manifest));
    // The child manifest fetches and verifies too.
    Reference child_ref = parse_ref(name);
    auto child = co_await on_arm.fetch_manifest(child_ref, *b, nullptr);
    REQUIRE(child.ok());
    CHECK(*child == arm.manifest);
    Resolver on_riscv(c, RegistryOptions(), herd::containerd::Platform{"linux", "riscv64", ""});
    auto none = on_riscv.select_platform(*index);
    REQUIRE_FALSE(none.ok());
    CHECK(none.status().code() == Code::kNotFound);
    CHECK(contains(none.status(), "linux/riscv64"));
    CHECK(contains(none.status(), "linux/arm64/v8"));
    co_return 0;
  };
  run(f);
}

TEST_CASE("resolver: a missing tag is NotFound naming the reference and the host", "[resolver]") {
  pushed();
  const std::string host = open_registry().host;
  auto r = resolve(host + "/herd/test:missing");
  REQUIRE_FALSE(r.ok());
  INFO(r.status().to_string());
  CHECK(r.status().code() == Code::kNotFound);
  CHECK(contains(r.status(), host + "/herd/test:missing"));
  CHECK(contains(r.status(), "not found on " + host));

  auto repo = resolve(host + "/herd/nothing-here:tag");
  REQUIRE_FALSE(repo.ok());
  CHECK(repo.status().code() == Code::kNotFound);
}

TEST_CASE("resolver: htpasswd Basic auth with credentials from the auth file", "[resolver][auth]") {
  Registry& reg = auth_registry();
  auto img = crafted::tiny_image("amd64");
  const fs::path layout = reg.dir / "layout";
  write_layout(layout, {img.layer, img.config, img.manifest},
               "application/vnd.oci.image.manifest.v1+json", img.manifest);
  static const std::string digest =
      push(layout, reg.host + "/herd/private:tag", "--dest-creds user:pass");
  const std::string name = reg.host + "/herd/private:tag";

  SECTION("with credentials: resolves and fetches") {
    RegistryOptions opts;
    opts.auth_file = (reg.dir / "config.json").string();
    write_file(opts.auth_file,
               R"({"auths":{")" + reg.host + R"(":{"username":"user","password":"pass"}}})");
    auto r = resolve(name, opts);
    REQUIRE(r.ok());
    CHECK(r->descriptor.digest == digest);
    auto body = fetch(name, r->descriptor, opts);
    REQUIRE(body.ok());
    CHECK("sha256:" + herd::sha256_hex(*body) == digest);
  }
  SECTION("without credentials: unauthorized") {
    auto r = resolve(name);
    REQUIRE_FALSE(r.ok());
    INFO(r.status().to_string());
    CHECK(r.status().code() == Code::kUnauthenticated);
    CHECK(contains(r.status(), "unauthorized: " + reg.host));
  }
  SECTION("with a wrong password: unauthorized, and the password is not in the message") {
    RegistryOptions opts;
    opts.auth_file = (reg.dir / "wrong.json").string();
    write_file(opts.auth_file, R"({"auths":{")" + reg.host +
                                   R"(":{"username":"user","password":"s3cret-wrong"}}})");
    auto r = resolve(name, opts);
    REQUIRE_FALSE(r.ok());
    INFO(r.status().to_string());
    CHECK(r.status().code() == Code::kUnauthenticated);
    CHECK(contains(r.status(), "unauthorized: " + reg.host));
    CHECK_FALSE(contains(r.status(), "s3cret"));
  }
}

TEST_CASE("resolver: Bearer tokens from a token server, cached per host and scope",
          "[resolver][auth]") {
  const std::string host = fake_registry().host;
  const fs::path dir = temp_dir("bearer");
  RegistryOptions opts;
  opts.auth_file = (dir / "config.json").string();
  write_file(opts.auth_file, R"({"auths":{")" + host + R"(":{"auth":"dXNlcjpwYXNz"}}})");

  auto tokens = [&]() -> int {
    std::function<asio::awaitable<int>(HttpClient&)> f =
        [&](HttpClient& c) -> asio::awaitable<int> {
      HttpRequest r;
      r.url = "http://" + host + "/stats";
      auto got = co_await c.fetch(std::move(r));
      co_return got.ok() ? std::stoi(got->body.substr(got->body.find(':') + 1)) : -1;
    };
    return run(f);
  };
  const int before = tokens();

  std::function<asio::awaitable<Status>(HttpClient&)> f =
      [&](HttpClient& c) -> asio::awaitable<Status> {
    Resolver resolver(c, opts);
    Reference reference = parse_ref(host + "/app:latest");
    auto r = co_await resolver.resolve(reference, nullptr);
    if (!r.ok()) co_return r.status();
    auto body = co_await resolver.fetch_manifest(reference, r->descriptor, nullptr);
    if (!body.ok()) co_return body.status();
    co_return Status::Ok();
  };
  Status s = run(f);
  INFO(s.to_string());
  CHECK(s.ok());
  CHECK(tokens() == before + 1);  // HEAD and GET share one token

  SECTION("without credentials the token server refuses: unauthorized") {
    std::function<asio::awaitable<Status>(HttpClient&)> anon =
        [&](HttpClient& c) -> asio::awaitable<Status> {
      Resolver resolver(c, RegistryOptions());
      Reference app = parse_ref(host + "/app:latest");
      auto r = co_await resolver.resolve(app, nullptr);
      co_return r.ok() ? Status::Ok() : r.status();
    };
    Status a = run(anon);
    INFO(a.to_string());
    CHECK(a.code() == Code::kUnauthenticated);
    CHECK(contains(a, "unauthorized: " + host));
  }
  fs::remove_all(dir);
}

TEST_CASE("resolver: a cancelled resolve ends with Cancelled", "[resolver]") {
  std::function<asio::awaitable<Status>(HttpClient&)> f =
      [&](HttpClient& c) -> asio::awaitable<Status> {
    Resolver resolver(c, RegistryOptions());
    auto cancel = std::make_shared<Cancellation>();
    cancel->cancel();
    Reference test = parse_ref(open_registry().host + "/herd/test:oci");
    auto r = co_await resolver.resolve(test, cancel);
    co_return r.ok() ? Status::Ok() : r.status();
  };
  Status s = run(f);
  CHECK(s.code() == Code::kCancelled);
}

TEST_CASE("resolver: 503 and 429 are retried, Retry-After honoured; a 500 gives up after 4",
          "[resolver][retry]") {
  const std::string host = fake_registry().host;
  SECTION("503 twice, then the manifest") {
    auto r = resolve(host + "/flaky:latest");
    INFO(r.status().to_string());
    REQUIRE(r.ok());
    CHECK(hits("flaky") == 3);
  }
  SECTION("429 with Retry-After: 1") {
    const auto start = std::chrono::steady_clock::now();
    auto r = resolve(host + "/busy:latest");
    INFO(r.status().to_string());
    REQUIRE(r.ok());
    CHECK(std::chrono::steady_clock::now() - start >= 1s);
    CHECK(hits("busy") == 2);
  }
  SECTION("500 always: four attempts, then Unavailable") {
    auto r = resolve(host + "/broken:latest");
    REQUIRE_FALSE(r.ok());
    INFO(r.status().to_string());
    CHECK(r.status().code() == Code::kUnavailable);
    CHECK(hits("broken") == herd::registry::kMaxAttempts);
  }
}

TEST_CASE("resolver: a 405 to HEAD is asked again as a GET and hashed", "[resolver]") {
  auto r = resolve(fake_registry().host + "/nohead:latest");
  INFO(r.status().to_string());
  REQUIRE(r.ok());
  CHECK(r->descriptor.media_type == "application/vnd.oci.image.manifest.v1+json");
  CHECK(r->descriptor.digest.rfind("sha256:", 0) == 0);
  CHECK(hits("nohead") == 2);
}

TEST_CASE("resolver: a schema 1 manifest is refused with a clear message", "[resolver]") {
  auto r = resolve(fake_registry().host + "/old:latest");
  REQUIRE_FALSE(r.ok());
  INFO(r.status().to_string());
  CHECK(r.status().code() == Code::kFailedPrecondition);
  CHECK(contains(r.status(), "schema 1 manifest"));
  CHECK(contains(r.status(), "re-push it as Docker v2 schema 2 or OCI"));
}

TEST_CASE("resolver: hosts.toml mirrors are tried first, with ?ns=", "[resolver][hosts]") {
  const auto& p = pushed();
  Registry& reg = open_registry();
  const fs::path hosts = temp_dir("hosts");
  write_file(hosts / reg.host / "hosts.toml", "server = \"http://" + reg.host +
                                                  "\"\n[host.\"http://" + fake_registry().host +
                                                  "\"]\ncapabilities = [\"pull\", \"resolve\"]\n");
  RegistryOptions opts;
  opts.hosts_dir = hosts.string();
  auto r = resolve(reg.host + "/herd/test:oci", opts);
  fs::remove_all(hosts);
  INFO(r.status().to_string());
  REQUIRE(r.ok());
  CHECK(r->descriptor.digest == p.oci_digest);
  CHECK(r->endpoint.host == reg.host);
  CHECK(fake_stats()["ns"] == reg.host);
}

TEST_CASE("resolver: a cancel ends a Retry-After wait at once", "[resolver][retry]") {
  const std::string host = fake_registry().host;
  const auto start = std::chrono::steady_clock::now();
  std::function<asio::awaitable<Status>(HttpClient&)> f =
      [&](HttpClient& c) -> asio::awaitable<Status> {
    Resolver resolver(c, RegistryOptions());
    auto cancel = std::make_shared<Cancellation>();
    asio::steady_timer t(co_await asio::this_coro::executor, 300ms);
    t.async_wait([cancel](boost::system::error_code) { cancel->cancel(); });
    Reference throttled = parse_ref(host + "/throttled:latest");
    auto r = co_await resolver.resolve(throttled, cancel);
    co_return r.ok() ? Status::Ok() : r.status();
  };
  Status s = run(f);
  INFO(s.to_string());
  CHECK(s.code() == Code::kCancelled);
  CHECK(std::chrono::steady_clock::now() - start < 5s);
  CHECK(hits("throttled") == 1);
}
