#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "registry/hosts.h"

using namespace herd::registry;

namespace {

// A mkdtemp directory, removed with everything in it at the end.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/herd-registry-hosts-XXXXXX";
    if (::mkdtemp(tmpl)) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string make_dir(const std::string& rel) const {
    std::filesystem::create_directories(path_ + "/" + rel);
    return path_ + "/" + rel;
  }
  void write(const std::string& rel, const std::string& text) const {
    std::ofstream(path_ + "/" + rel) << text;
  }

 private:
  std::string path_;
};

HostsConfig parse(const std::string& text, const std::string& host = "registry.example") {
  auto r = parse_hosts_toml(text, "/etc/containerd/certs.d/" + host, host);
  INFO(r.status().to_string());
  REQUIRE(r.ok());
  return *r;
}

std::string parse_error(const std::string& text) {
  auto r = parse_hosts_toml(text, "/d", "registry.example");
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == herd::Code::kInvalidArgument);
  return r.status().message();
}

}  // namespace

TEST_CASE("hosts: default endpoints") {
  auto hub = default_endpoint("docker.io");
  REQUIRE(hub.ok());
  CHECK(hub->url("/library/x/manifests/latest") ==
        "https://registry-1.docker.io/v2/library/x/manifests/latest");
  auto local = default_endpoint("localhost:5000");
  REQUIRE(local.ok());
  CHECK(local->scheme == "http");
  CHECK(local->skip_verify == std::optional<bool>(true));
  for (auto h : {"127.0.0.1", "127.1.2.3:5000", "[::1]:5000", "LOCALHOST", "[::ffff:127.0.0.1]"}) {
    INFO(h);
    CHECK(is_loopback_host(h));
    auto e = default_endpoint(h);
    REQUIRE(e.ok());
    CHECK(e->scheme == "http");
  }
  for (auto h : {"128.0.0.1", "10.0.0.1:5000", "[::2]", "localhost.example", "ghcr.io"}) {
    INFO(h);
    CHECK_FALSE(is_loopback_host(h));
  }
  auto other = default_endpoint("ghcr.io");
  REQUIRE(other.ok());
  CHECK(other->url("") == "https://ghcr.io/v2");
  CHECK_FALSE(other->skip_verify);
  for (auto bad : {"", "a/b", "..", "_default", "h:0", "h:99999", "[zz]", "a b", "-a.com"}) {
    INFO(bad);
    CHECK_FALSE(default_endpoint(bad).ok());
  }
}

TEST_CASE("hosts: containerd's documented hosts.toml") {
  auto c = parse(R"(# mirrors first, then the registry
server = "https://registry.example"

[host."https://mirror.example:5000"]
  capabilities = ["pull", "resolve"]
  ca = "mirror-ca.pem"
  client = [["/abs/client.cert", "client.key"], "combined.pem"]
  skip_verify = false

[host."https://mirror.example:5000".header]
  x-custom-1 = "value1"
  x-custom-2 = ["value2a", 'value2b']

[host."http://10.0.0.1:8080/path/"]
  capabilities = ['PULL']
  override_path = true
  ca = ["a.pem", "/etc/b.pem"]
  client = "both.pem"

[host."plain.example"]
)");
  REQUIRE(c.endpoints.size() == 4);
  CHECK(c.warnings.empty());
  const auto& m = c.endpoints[0];
  CHECK(m.scheme == "https");
  CHECK(m.host == "mirror.example:5000");
  CHECK(m.path == "/v2");
  CHECK(m.capabilities == Capabilities{true, true, false});
  CHECK(m.ca_paths ==
        std::vector<std::string>{"/etc/containerd/certs.d/registry.example/mirror-ca.pem"});
  REQUIRE(m.client_certs.size() == 2);
  CHECK(m.client_certs[0] ==
        ClientCert{"/abs/client.cert", "/etc/containerd/certs.d/registry.example/client.key"});
  CHECK(m.client_certs[1] ==
        ClientCert{"/etc/containerd/certs.d/registry.example/combined.pem", ""});
  CHECK(m.skip_verify == std::optional<bool>(false));
  REQUIRE(m.headers.size() == 2);
  CHECK(m.headers[0].first == "x-custom-1");
  CHECK(m.headers[0].second == std::vector<std::string>{"value1"});
  CHECK(m.headers[1].second == std::vector<std::string>{"value2a", "value2b"});

  const auto& p = c.endpoints[1];
  CHECK(p.scheme == "http");
  CHECK(p.host == "10.0.0.1:8080");
  CHECK(p.path == "/path");  // override_path: no /v2
  CHECK(p.capabilities == Capabilities{true, false, false});
  CHECK(p.ca_paths.size() == 2);
  CHECK(p.ca_paths[1] == "/etc/b.pem");
  REQUIRE(p.client_certs.size() == 1);

  const auto& plain = c.endpoints[2];
  CHECK(plain.scheme == "https");
  CHECK(plain.host == "plain.example");
  CHECK(plain.capabilities == Capabilities{});

  const auto& s = c.endpoints[3];
  CHECK(s.url("") == "https://registry.example/v2");
  CHECK(is_mirror(m, "registry.example"));
  CHECK_FALSE(is_mirror(s, "registry.example"));
}

TEST_CASE("hosts: server paths and the default entry") {
  CHECK(parse("server = \"registry.example/x/../v2/\"").endpoints[0].path == "/v2");
  CHECK(parse("server = \"https://r.example/\"").endpoints[0].path == "/v2");
  CHECK(parse("server = \"https://r.example/api\"").endpoints[0].path == "/api/v2");
  CHECK(parse("server = \"https://r.example\"\noverride_path = true").endpoints[0].path.empty());

  // No server: the registry's default endpoint, keeping top-level TLS.
  auto d =
      parse("ca = \"ca.crt\"\nskip_verify = true\ncapabilities = [\"pull\"]\n[header]\nx = \"1\"\n",
            "localhost:5000");
  REQUIRE(d.endpoints.size() == 1);
  CHECK(d.endpoints[0].url("") == "http://localhost:5000/v2");
  CHECK(d.endpoints[0].ca_paths.size() == 1);
  CHECK(d.endpoints[0].skip_verify == std::optional<bool>(true));
  CHECK(d.endpoints[0].capabilities == Capabilities{});  // as containerd: all
  CHECK(d.endpoints[0].headers.size() == 1);
  CHECK(parse("", "docker.io").endpoints[0].host == "registry-1.docker.io");
}

TEST_CASE("hosts: TOML syntax accepted") {
  auto c = parse(R"(
server = 'https://r.example'   # literal string
unknown_top = 1979-05-27T07:32:00Z
nested = { a = 1, b = [1, [2, 3]], c.d = "e" }
"host"."https://m.example".capabilities = [
  "pull",  # a comment in an array
  "resolve",
]
[host.'https://m.example'.header]
"X-Esc" = "tab\there \"q\" \\ \u00e9 \U0001F600"
)");
  REQUIRE(c.endpoints.size() == 2);
  CHECK(c.endpoints[0].host == "m.example");
  CHECK(c.endpoints[0].capabilities == Capabilities{true, true, false});
  REQUIRE(c.endpoints[0].headers.size() == 1);
  CHECK(c.endpoints[0].headers[0].second[0] == "tab\there \"q\" \\ \xc3\xa9 \xf0\x9f\x98\x80");
  REQUIRE(c.warnings.size() == 2);
  CHECK_THAT(c.warnings[0], Catch::Contains("line 3: unknown key unknown_top ignored"));
  CHECK_THAT(c.warnings[1], Catch::Contains("unknown key nested"));

  auto crlf =
      parse("server = \"https://r.example\"\r\n[host.\"https://m\"]\r\nskip_verify = true\r\n");
  CHECK(crlf.endpoints.size() == 2);
}

TEST_CASE("hosts: hostile and malformed hosts.toml") {
  CHECK_THAT(parse_error("server = \"a"), Catch::Contains("line 1: unterminated string"));
  CHECK_THAT(parse_error("server = \"\"\"x\"\"\""), Catch::Contains("multi-line strings"));
  CHECK_THAT(parse_error("server = \"\\q\""), Catch::Contains("invalid escape"));
  CHECK_THAT(parse_error("server = \"\\uD800\""), Catch::Contains("no Unicode scalar"));
  CHECK_THAT(parse_error("server = \"\\u12\""), Catch::Contains("bad hex digit"));
  CHECK_THAT(parse_error(std::string("server = \"a\0b\"", 14)), Catch::Contains("control byte"));
  CHECK_THAT(parse_error("server = \"https://a\\u0000b\""), Catch::Contains("control"));
  CHECK_THAT(parse_error("server = x"), Catch::Contains("needs quotes"));
  CHECK_THAT(parse_error("server = \"a\"\nserver = \"b\""),
             Catch::Contains("line 2: key server is defined twice"));
  CHECK_THAT(parse_error("[host.\"a\"]\n[host.\"a\"]"), Catch::Contains("defined twice"));
  CHECK_THAT(parse_error("[[host]]"), Catch::Contains("arrays of tables"));
  CHECK_THAT(parse_error("server = \"a\" junk"), Catch::Contains("unexpected text"));
  CHECK_THAT(parse_error("a = [1, 2"), Catch::Contains("unterminated array"));
  CHECK_THAT(parse_error("a = [[[[[1]]]]]"), Catch::Contains("nested deeper than 4"));
  CHECK_THAT(parse_error("a = {b = 1"), Catch::Contains("inline table"));
  CHECK_THAT(parse_error("a = {b = 1}\n[a]"), Catch::Contains("redefines"));
  CHECK_THAT(parse_error("server = 5"), Catch::Contains("server: expected a string"));
  CHECK_THAT(parse_error("host = 5"), Catch::Contains("host: expected a table"));
  CHECK_THAT(parse_error("[host.\"https://m\"]\ncapabilities = [\"fetch\"]"),
             Catch::Contains("unknown capability \"fetch\""));
  CHECK_THAT(parse_error("[host.\"https://m\"]\ncapabilities = \"pull\""),
             Catch::Contains("expected an array"));
  CHECK_THAT(parse_error("[host.\"https://m\"]\nskip_verify = \"yes\""),
             Catch::Contains("skip_verify: expected a boolean"));
  CHECK_THAT(parse_error("[host.\"https://m\"]\nca = 5"), Catch::Contains("ca: expected a string"));
  CHECK_THAT(parse_error("[host.\"https://m\"]\nclient = [[\"a\"]]"),
             Catch::Contains("a pair must be"));
  CHECK_THAT(parse_error("[host.\"https://m\"]\nclient = [true]"),
             Catch::Contains("expected a path"));
  CHECK_THAT(parse_error("[host.\"https://m\".header]\n\"bad name\" = \"v\""),
             Catch::Contains("not an HTTP header name"));
  CHECK_THAT(parse_error("[host.\"https://m\".header]\nx = \"a\\r\\nInjected: 1\""),
             Catch::Contains("control byte in the value"));
  CHECK_THAT(parse_error("[host.\"httpx://m\"]"), Catch::Contains("neither http:// nor https://"));
  CHECK_THAT(parse_error("[host.\"ftp://m\"]"),
             Catch::Contains("malformed host"));  // https://ftp://m
  CHECK_THAT(parse_error("[host.\"https://u:p@m\"]"), Catch::Contains("user information"));
  CHECK_THAT(parse_error("[host.\"https://m/?q=1\"]"), Catch::Contains("query or fragment"));
  CHECK_THAT(parse_error("[host.\"https://m:99999\"]"), Catch::Contains("malformed host"));
  CHECK_THAT(parse_error("[host.\"\"]"), Catch::Contains("empty"));
  std::string many;
  for (int i = 0; i < 17; ++i) many += "[host.\"https://m" + std::to_string(i) + "\"]\n";
  CHECK_THAT(parse_error(many), Catch::Contains("more than 16 [host] tables"));
  CHECK_THAT(parse_error("a = \"" + std::string(5000, 'x') + "\""),
             Catch::Contains("line 1: longer than 4096"));
  CHECK_THAT(parse_error(std::string(70000, '\n')),
             Catch::Contains("more than the maximum of 65536"));
  std::string values = "a = [";
  for (int i = 0; i < 5000; ++i) values += "1,\n";
  values += "]";
  CHECK_THAT(parse_error(values), Catch::Contains("more than 4096 values"));
  CHECK_FALSE(parse_hosts_toml("", "/d", "bad/host").ok());
}

TEST_CASE("hosts: mirrors get ?ns=") {
  HostEndpoint mirror;
  mirror.host = "mirror.example";
  HostEndpoint hub;
  hub.host = "registry-1.docker.io";
  CHECK(with_namespace(mirror, "/v2/library/x/manifests/latest", "docker.io") ==
        "/v2/library/x/manifests/latest?ns=docker.io");
  CHECK(with_namespace(mirror, "/v2/x/blobs/sha256:ab?a=1", "localhost:5000") ==
        "/v2/x/blobs/sha256:ab?a=1&ns=localhost%3A5000");
  CHECK(with_namespace(hub, "/v2/x", "docker.io") == "/v2/x");
  CHECK_FALSE(is_mirror(hub, "docker.io"));
  CHECK(is_mirror(hub, "ghcr.io"));
}

TEST_CASE("hosts: the certs.d directory lookup") {
  TempDir tmp;
  REQUIRE_FALSE(tmp.path().empty());
  const std::string& root = tmp.path();

  CHECK(host_directory_candidates(root, "r.example:5000") ==
        std::vector<std::string>{root + "/r.example_5000_", root + "/r.example:5000",
                                 root + "/_default"});
  CHECK(host_directory_candidates(root, "r.example") ==
        std::vector<std::string>{root + "/r.example", root + "/_default"});

  // Nothing there: the default endpoint.
  auto none = load_hosts(root, "r.example:5000");
  REQUIRE(none.ok());
  CHECK(none->directory.empty());
  REQUIRE(none->endpoints.size() == 1);
  CHECK(none->endpoints[0].url("") == "https://r.example:5000/v2");
  auto no_root = load_hosts("", "localhost:5000");
  REQUIRE(no_root.ok());
  CHECK(no_root->endpoints[0].scheme == "http");

  // A directory with certificates only.
  const std::string certs = tmp.make_dir("r.example:5000");
  tmp.write("r.example:5000/ca.crt", "x");
  tmp.write("r.example:5000/b.crt", "x");
  tmp.write("r.example:5000/client.cert", "x");
  tmp.write("r.example:5000/client.key", "x");
  tmp.write("r.example:5000/lone.cert", "x");
  tmp.write("r.example:5000/notes.txt", "x");
  tmp.make_dir("r.example:5000/dir.crt");
  auto c = load_hosts(root, "r.example:5000");
  REQUIRE(c.ok());
  CHECK(c->directory == certs);
  REQUIRE(c->endpoints.size() == 1);
  CHECK(c->endpoints[0].ca_paths == std::vector<std::string>{certs + "/b.crt", certs + "/ca.crt"});
  CHECK(c->endpoints[0].client_certs ==
        std::vector<ClientCert>{{certs + "/client.cert", certs + "/client.key"},
                                {certs + "/lone.cert", ""}});

  // An empty hosts.toml is as none.
  tmp.write("r.example:5000/hosts.toml", "");
  auto empty = load_hosts(root, "r.example:5000");
  REQUIRE(empty.ok());
  CHECK(empty->endpoints[0].ca_paths.size() == 2);

  // The h_port_ spelling comes first.
  const std::string alt = tmp.make_dir("r.example_5000_");
  tmp.write("r.example_5000_/hosts.toml",
            "[host.\"https://m.example\"]\nca = \"m.pem\"\nunknown = true\n");
  auto h = load_hosts(root, "r.example:5000");
  REQUIRE(h.ok());
  CHECK(h->directory == alt);
  REQUIRE(h->endpoints.size() == 2);
  CHECK(h->endpoints[0].ca_paths == std::vector<std::string>{alt + "/m.pem"});
  CHECK(h->endpoints[1].url("") == "https://r.example:5000/v2");
  REQUIRE(h->warnings.size() == 1);
  CHECK_THAT(h->warnings[0],
             Catch::Contains("line 3: unknown key host.\"https://m.example\".unknown"));

  // _default for everything else.
  tmp.make_dir("_default");
  tmp.write("_default/hosts.toml", "server = \"https://fallback.example\"\n");
  auto d = load_hosts(root, "other.example");
  REQUIRE(d.ok());
  CHECK(d->endpoints[0].host == "fallback.example");

  // A broken file is an error naming it; so is a file where a directory goes.
  tmp.write("_default/hosts.toml", "server = \n");
  auto broken = load_hosts(root, "other.example");
  REQUIRE_FALSE(broken.ok());
  CHECK_THAT(broken.status().message(), Catch::Contains("_default/hosts.toml\" line 1"));
  tmp.write("file.example", "x");
  auto not_dir = load_hosts(root, "file.example");
  REQUIRE_FALSE(not_dir.ok());
  CHECK_THAT(not_dir.status().message(), Catch::Contains("not a directory"));
  const std::string fifo_dir = tmp.make_dir("fifo.example");
  REQUIRE(::mkfifo((fifo_dir + "/hosts.toml").c_str(), 0600) == 0);
  auto fifo = load_hosts(root, "fifo.example");
  REQUIRE_FALSE(fifo.ok());
  CHECK_THAT(fifo.status().message(), Catch::Contains("a FIFO"));
  CHECK_FALSE(load_hosts(root, "../etc").ok());
}
