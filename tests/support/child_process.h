// ChildProcess: a helper process a test starts (a loopback HTTP fixture, a
// registry), whose first stdout line the test reads (e.g. "PORT 41234"),
// and which ends, by its pid only, when the object goes (SIGTERM, then
// SIGKILL after a grace, always reaped).
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

namespace herd::testing {

class ChildProcess {
 public:
  explicit ChildProcess(std::vector<std::string> argv) {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    // Built before fork: a test with other threads (gRPC's) may hold the
    // malloc lock at fork time, so the child calls only async-signal-safe
    // functions.
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      ::execvp(args[0], args.data());
      ::_exit(127);
    }
    ::close(out[1]);
    out_ = out[0];
  }
  ~ChildProcess() { stop(); }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }

  // The next line the child writes to stdout, without its newline; throws
  // when none comes within `timeout` or the child closed its stdout.
  std::string read_line(std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    std::string line;
    const auto until = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      if (left.count() <= 0) throw std::runtime_error("child: no line within the timeout");
      pollfd p{out_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char c;
      ssize_t n = ::read(out_, &c, 1);
      if (n <= 0) throw std::runtime_error("child: stdout closed before a line");
      if (c == '\n') return line;
      line.push_back(c);
    }
  }

  // For fixtures that announce where they listen with a first line
  // "PORT <n>": returns <n> as written; throws on any other first line.
  std::string read_port(std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    std::string line = read_line(timeout);
    if (line.rfind("PORT ", 0) != 0 || line.size() == 5)
      throw std::runtime_error("child: expected \"PORT <n>\", got \"" + line + "\"");
    return line.substr(5);
  }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 50; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = 0;
        break;
      }
      ::usleep(100 * 1000);
    }
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = 0;
    }
    if (out_ >= 0) ::close(out_);
    out_ = -1;
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
};

}  // namespace herd::testing
