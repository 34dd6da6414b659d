// RegistryServer: Debian's docker-registry (distribution 2.8) on
// 127.0.0.1, on an ephemeral port, with filesystem storage in a temp dir;
// started by the test and stopped by its pid (ChildProcess) when the
// object goes. Optional htpasswd Basic auth, TLS (cert and key files of the
// caller's) and extra YAML (a storage `redirect` middleware, say).
// skopeo_copy() pushes with Debian's skopeo. Header-only; needs
// docker-registry, apache2-utils (htpasswd) and skopeo installed
// (scripts/install-deps).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "child_process.h"

namespace herd::testing {

// A port free on 127.0.0.1 now (bind to 0, read back, close).
inline int free_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    throw std::runtime_error("bind 127.0.0.1:0 failed");
  }
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// Whether something accepts TCP connections on 127.0.0.1:port.
inline bool loopback_listening(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

inline std::filesystem::path make_temp_dir(const std::string& what) {
  std::string t = (std::filesystem::temp_directory_path() / ("herd-" + what + "-XXXXXX")).string();
  if (::mkdtemp(t.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  return t;
}

inline void run_shell(const std::string& cmd) {
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("command failed: " + cmd);
}

struct RegistryServer {
  struct Options {
    Options() {}
    bool auth = false;     // htpasswd Basic auth, user "user", password "pass"
    std::string tls_cert;  // PEM files: serve HTTPS
    std::string tls_key;
    std::string extra_yaml;  // appended to the config (top-level keys)
  };

  std::filesystem::path dir;
  int port = 0;
  std::string host;  // "127.0.0.1:<port>"
  std::unique_ptr<ChildProcess> child;

  explicit RegistryServer(Options o = Options()) {
    dir = make_temp_dir("registry");
    port = free_loopback_port();
    host = "127.0.0.1:" + std::to_string(port);
    std::string config =
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
        "    rootdirectory: " +
        (dir / "storage").string() + "\n  delete:\n    enabled: true\n" + "http:\n  addr: " + host +
        "\n";
    if (!o.tls_cert.empty())
      config += "  tls:\n    certificate: " + o.tls_cert + "\n    key: " + o.tls_key + "\n";
    if (o.auth) {
      run_shell("htpasswd -Bbc " + (dir / "htpasswd").string() + " user pass >/dev/null 2>&1");
      config +=
          "auth:\n  htpasswd:\n    realm: test\n    path: " + (dir / "htpasswd").string() + "\n";
    }
    config += o.extra_yaml;
    {
      std::ofstream f(dir / "config.yml");
      f << config;
    }
    child = std::make_unique<ChildProcess>(std::vector<std::string>{
        "/usr/bin/docker-registry", "serve", (dir / "config.yml").string()});
    for (int i = 0; i < 200; ++i) {
      if (loopback_listening(port)) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    throw std::runtime_error("docker-registry did not listen on " + host);
  }
  ~RegistryServer() {
    child.reset();  // stops it by its pid
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  RegistryServer(const RegistryServer&) = delete;
  RegistryServer& operator=(const RegistryServer&) = delete;

  // Stops the registry (by its pid); the storage stays until destruction.
  void stop() { child.reset(); }
};

// `skopeo copy` from `source` ("oci-archive:/x.tar", "docker-archive:...")
// to docker://<dest>; `flags` are extra skopeo flags ("--format v2s2",
// "--dest-creds user:pass", "--all"). Returns the digest skopeo pushed.
inline std::string skopeo_copy(const std::string& source, const std::string& dest,
                               const std::string& flags = "") {
  auto digest_file = make_temp_dir("skopeo") / "digest";
  run_shell("skopeo --insecure-policy copy -q --dest-tls-verify=false " + flags + " --digestfile " +
            digest_file.string() + " " + source + " docker://" + dest);
  std::ifstream f(digest_file);
  std::string d;
  std::getline(f, d);
  std::error_code ec;
  std::filesystem::remove_all(digest_file.parent_path(), ec);
  return d;
}

}  // namespace herd::testing
