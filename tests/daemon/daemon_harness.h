// Helpers of the process-level tests: temp paths, commands, the
// NOTIFY_SOCKET systemd would give herdd, and a herdd process the test
// starts and ends by pid.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "../integration/harness.h"

namespace herd::test {

using namespace std::chrono_literals;

inline std::filesystem::path temp_path(const std::string& name) {
  return std::filesystem::temp_directory_path() /
         ("herdd-test-" + std::to_string(::getpid()) + "-" + name);
}

inline void write_file(const std::filesystem::path& p, const std::string& text) {
  std::ofstream(p) << text;
}

// `n` distinct TCP ports on 127.0.0.1 that were free a moment ago: the
// kernel picks them (bind to port 0, read the port back), so tests never
// collide with each other or with whatever else runs on the machine. All
// are held until the last is picked, so they differ; then closed for the
// test's listener to bind.
inline std::vector<uint16_t> free_tcp_ports(size_t n) {
  std::vector<int> fds;
  std::vector<uint16_t> ports;
  for (size_t i = 0; i < n; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    fds.push_back(fd);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    ports.push_back(ntohs(a.sin_port));
  }
  for (int fd : fds) ::close(fd);
  return ports;
}

inline uint16_t free_tcp_port() { return free_tcp_ports(1)[0]; }

// Runs a command, returns (exit code, output with stderr).
inline std::pair<int, std::string> run(const std::string& cmd) {
  std::string out;
  FILE* f = ::popen((cmd + " 2>&1").c_str(), "r");
  REQUIRE(f);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  int st = ::pclose(f);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

// The NOTIFY_SOCKET systemd would give herdd. A thread reads it all the
// time, as systemd does: herdd's sends block when nobody reads.
class NotifySocket {
 public:
  NotifySocket() : path_(temp_path("notify.sock")) {
    std::filesystem::remove(path_);
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path_.c_str());
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    reader_ = std::thread([this] {
      while (!done_) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0) continue;
        char buf[4096];
        ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n <= 0) continue;
        std::lock_guard lock(mu_);
        messages_.emplace_back(buf, static_cast<size_t>(n));
      }
    });
  }
  ~NotifySocket() {
    done_ = true;
    reader_.join();
    ::close(fd_);
    std::filesystem::remove(path_);
  }
  const std::filesystem::path& path() const { return path_; }

  // The first message after the previous match that contains `needle`
  // (empty when none arrives within the limit).
  std::string wait_for(const std::string& needle, std::chrono::seconds limit = 60s) {
    auto until = std::chrono::steady_clock::now() + limit;
    for (;;) {
      {
        std::lock_guard lock(mu_);
        for (; cursor_ < messages_.size(); ++cursor_) {
          if (messages_[cursor_].find(needle) != std::string::npos) return messages_[cursor_++];
        }
      }
      if (std::chrono::steady_clock::now() >= until) return {};
      ::usleep(20000);
    }
  }
  // Every message so far, one per line.
  std::string seen() {
    std::lock_guard lock(mu_);
    std::string all;
    for (const auto& m : messages_) all += m + "\n";
    return all;
  }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  std::mutex mu_;
  std::vector<std::string> messages_;
  size_t cursor_ = 0;
  std::atomic<bool> done_{false};
  std::thread reader_;
};

// A herdd process started by the test.
class Herdd {
 public:
  Herdd(const std::filesystem::path& config, const NotifySocket& notify,
        std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {HERDD_BINARY, "--config", config.string(), "--log-target",
                                     "stderr"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    // Everything the child needs is made before fork(): the test process
    // has threads (the notify reader), and a malloc (setenv, a string)
    // between fork and exec can deadlock on a lock one of them held, the
    // child then hanging before herdd ever runs (seen once under ASan: no
    // READY, an empty log). The child only opens, dup2s and execs.
    // WATCHDOG_PID is the child's own pid, as systemd sets it, so it is
    // made in the child from digits alone.
    std::vector<std::string> env_strings = {"NOTIFY_SOCKET=" + notify.path().string(),
                                            // A 200 ms watchdog, as WatchdogSec= would set it.
                                            "WATCHDOG_USEC=200000"};
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string_view v(*e);
      if (v.rfind("NOTIFY_SOCKET=", 0) == 0 || v.rfind("WATCHDOG_", 0) == 0) continue;
      env_strings.emplace_back(v);
    }
    char watchdog_pid[32] = "WATCHDOG_PID=";
    std::vector<char*> envp;
    for (auto& e : env_strings) envp.push_back(e.data());
    envp.push_back(watchdog_pid);
    envp.push_back(nullptr);
    const std::string log_path = temp_path("herdd.log").string();
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      // getpid() in decimal after "WATCHDOG_PID=" (13 bytes), no malloc.
      char digits[16];
      int n = 0;
      for (pid_t p = ::getpid(); p > 0 && n < 15; p /= 10) digits[n++] = char('0' + p % 10);
      for (int i = 0; i < n; ++i) watchdog_pid[13 + i] = digits[n - 1 - i];
      watchdog_pid[13 + n] = '\0';
      int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(log, 2);
      ::execve(HERDD_BINARY, argv.data(), envp.data());
      ::_exit(127);
    }
  }
  // A test that ends by a failed REQUIRE (an exception unwinding) prints
  // the end of herdd's log: on a CI machine it is the only trace left.
  ~Herdd() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (std::uncaught_exceptions() > 0) print_log_tail();
  }
  // The last `lines` lines of herdd's log (every herdd of this test
  // process appends to the same file), on stderr.
  static void print_log_tail(size_t lines = 80) {
    std::ifstream in(temp_path("herdd.log"));
    std::vector<std::string> all;
    for (std::string l; std::getline(in, l);) all.push_back(std::move(l));
    const size_t from = all.size() > lines ? all.size() - lines : 0;
    std::fprintf(stderr, "---- herdd log, last %zu lines ----\n", all.size() - from);
    for (size_t i = from; i < all.size(); ++i) std::fprintf(stderr, "%s\n", all[i].c_str());
    std::fprintf(stderr, "---- end of herdd log ----\n");
  }
  void signal(int sig) { REQUIRE(::kill(pid_, sig) == 0); }
  pid_t pid() const { return pid_; }
  // Exit code, or -1 when it did not exit within the limit.
  int wait(std::chrono::seconds limit = 120s) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        exited_ = true;
        const int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (code != 0) print_log_tail();
        return code;
      }
      ::usleep(10000);
    }
    return -1;
  }

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
};

// The control socket the tests' configs give a herdd whose data_path is
// `data`.
inline std::filesystem::path socket_of(const std::filesystem::path& data) {
  return data.string() + ".sock";
}

// herdctl against `socket`: (exit code, output with stderr).
inline std::pair<int, std::string> herdctl(const std::filesystem::path& socket,
                                           const std::string& args) {
  return run(std::string(HERDCTL_BINARY) + " --socket " + socket.string() + " " + args);
}

// `herdctl status --json`: one object per component, by name; empty when
// herdctl fails.
inline std::map<std::string, nlohmann::json> status_json(const std::filesystem::path& socket) {
  std::map<std::string, nlohmann::json> out;
  auto [code, text] = herdctl(socket, "status --json");
  if (code != 0) return out;
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_object() && j.contains("components")) j = j["components"];
  if (!j.is_array()) return out;
  for (auto& c : j) out[c.value("name", "")] = c;
  return out;
}

// A busybox component that only sleeps (exits 0 on SIGTERM).
inline nlohmann::json sleeper(const std::string& name) {
  return {{"name", name},
          {"image", "herd.local/busybox:latest"},
          {"image_archive", env().image("busybox.tar").string()},
          {"network", "none"},
          {"args", {"sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"}},
          {"stop_grace", "5s"}};
}

// A config on the fixture's containerd, in `ns`, with data under `data`
// and its own control socket; no components yet.
inline nlohmann::json base_config(const TestNamespace& ns, const std::filesystem::path& data) {
  return {{"containerd", {{"address", env().address()}, {"namespace", ns.name()}}},
          {"data_path", data.string()},
          {"control_socket", socket_of(data).string()},
          {"stop_budget", "30s"},
          {"components", nlohmann::json::array()}};
}

// The state of `name` in a status_json() answer ("" when absent).
inline std::string state_of(const std::map<std::string, nlohmann::json>& st,
                            const std::string& name) {
  auto it = st.find(name);
  return it == st.end() ? "" : it->second.value("state", "");
}

// Polls `pred` over herdctl's status until it holds or `limit` passes.
template <typename Pred>
bool status_until(const std::filesystem::path& socket, Pred pred,
                  std::chrono::seconds limit = 90s) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    auto st = status_json(socket);
    if (!st.empty() && pred(st)) return true;
    ::usleep(100000);
  }
  return false;
}

}  // namespace herd::test
