// herd-logger: containerd's shim runs it as the `binary://` logger of a
// herd component and it forwards the component's stdout/stderr to
// journald, line by line (lib/systemd/container_logger.h has the contract:
// arguments, fds, fields, what happens when journald is slow or away).
//
//   herd-logger [component NAME]     fd 3 = stdout, fd 4 = stderr,
//                                    fd 5 = readiness pipe
//   herd-logger component NAME file PATH max_bytes N max_files K
//                                    file mode: lines go to PATH, rotated
//                                    (systemd/rotating_file.h), not journald
//   env: CONTAINER_ID, CONTAINER_NAMESPACE (set by the shim)
//
// It writes one byte to fd 5 and closes it once it is ready to read, exits
// 0 when both streams reach EOF, and on SIGTERM/SIGINT (the shim's stop)
// forwards what the pipes still hold and exits 0. It never exits early on
// bad arguments: a dead logger would make the container's writes fail.
// At exit it prints one summary line to stderr (/dev/null under the shim).
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "systemd/container_logger.h"
#include "systemd/rotating_file.h"

namespace {

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

}  // namespace

int main(int argc, char** argv) {
  using namespace herd::systemd;

  // One malloc arena: the sender thread would otherwise get its own, whose
  // first pages cost ~150 kB per logger, and a node runs one logger per
  // component (herd-logger is linked statically for the same reason,
  // lib/systemd/CMakeLists.txt). The two threads rarely allocate at once.
  ::mallopt(M_ARENA_MAX, 1);
  ::signal(SIGPIPE, SIG_IGN);
  ::signal(SIGHUP, SIG_IGN);
  // SIGTERM/SIGINT arrive through a signalfd the forwarder polls; blocked
  // before any thread starts, so no thread takes them (one that arrives
  // before the signalfd exists stays pending and is read from it).
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  ::sigprocmask(SIG_BLOCK, &stop_signals, nullptr);

  LoggerArgs args = parse_logger_args(std::vector<std::string>(argv + 1, argv + argc));
  ForwarderConfig config;
  config.container_id = env_or_empty("CONTAINER_ID");
  config.container_namespace = env_or_empty("CONTAINER_NAMESPACE");
  config.component = !args.component.empty()        ? args.component
                     : !config.container_id.empty() ? config.container_id
                                                    : std::string("herd-logger");

  RecordSender sender = args.file.empty() ? make_journald_sender(config)
                                          : make_file_sender(std::make_shared<RotatingFile>(
                                                args.file, args.max_bytes, args.max_files));
  for (const auto& warning : args.warnings) {
    std::string note = "herd-logger: " + warning;
    sender(LogRecord{Stream::kLogger, note});
    std::fprintf(stderr, "%s\n", note.c_str());
  }

  // Ready: the shim waits for this before it starts the container.
  constexpr int kReadyFd = 5;
  if (::fcntl(kReadyFd, F_GETFD) != -1) {
    const char byte = 'R';
    ssize_t n;
    do {
      n = ::write(kReadyFd, &byte, 1);
    } while (n < 0 && errno == EINTR);
    ::close(kReadyFd);
  }
  // Only now: opened before fd 5 was dealt with, the signalfd could be
  // given fd 5 itself when the caller passed none (a logger started by
  // hand), and the readiness byte would then close it.
  int stop_fd = ::signalfd(-1, &stop_signals, SFD_CLOEXEC | SFD_NONBLOCK);

  ForwarderStats stats = forward_container_output(config, 3, 4, stop_fd, sender);
  std::fprintf(stderr, "herd-logger: %s: %llu lines, %llu sent, %llu dropped%s\n",
               config.component.c_str(), static_cast<unsigned long long>(stats.lines),
               static_cast<unsigned long long>(stats.sent),
               static_cast<unsigned long long>(stats.dropped),
               stats.drained ? "" : " (journald did not take the rest in time)");
  std::fflush(stderr);
  // Not exit(): a sender thread left stuck in a send must not meet static
  // destructors.
  ::_exit(0);
}
