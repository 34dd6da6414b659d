// herd-logger started the way containerd's shim starts a binary:// logger
// (pkg/process.NewBinaryIO in containerd 1.6): argv = the URI's query as
// key/value words, env = only CONTAINER_ID and CONTAINER_NAMESPACE, fd 3 =
// stdout pipe, fd 4 = stderr pipe, fd 5 = the pipe the shim waits on for
// one byte. Read back from the fixture's journald with journalctl.
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>

#include "journal_env.h"

using herd::test::field;

namespace {

struct LoggerProcess {
  pid_t pid = -1;
  int stdout_w = -1;  // the container's stdout
  int stderr_w = -1;
  int ready_r = -1;  // what the shim reads
  int diag_r = -1;   // herd-logger's own stderr (/dev/null under the shim)

  // no_journal: run it in a mount namespace of its own where
  // /run/systemd/journal is empty, i.e. journald is away. no_ready_fd:
  // fd 5 is left closed, as when a person starts the logger by hand.
  static LoggerProcess spawn(const std::vector<std::string>& args, const std::string& container_id,
                             bool no_journal = false, bool no_ready_fd = false) {
    int out[2], err[2], ready[2], diag[2];
    REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(err, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(ready, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(diag, O_CLOEXEC) == 0);
    std::vector<std::string> argv_s = {HERD_LOGGER_BINARY};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<std::string> env_s = {"CONTAINER_ID=" + container_id,
                                      "CONTAINER_NAMESPACE=herd-test"};
    std::vector<char*> argv, envp;
    for (auto& s : argv_s) argv.push_back(s.data());
    argv.push_back(nullptr);
    for (auto& s : env_s) envp.push_back(s.data());
    envp.push_back(nullptr);

    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      if (no_journal) {
        if (::unshare(CLONE_NEWNS) != 0 ||
            ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
            ::mount("tmpfs", "/run/systemd/journal", "tmpfs", 0, "mode=0755") != 0)
          ::_exit(126);
      }
      // Move the ends out of the way of 3..5 first, then into place
      // (dup2 clears close-on-exec on the copies).
      int fds[4] = {::fcntl(out[0], F_DUPFD_CLOEXEC, 20), ::fcntl(err[0], F_DUPFD_CLOEXEC, 20),
                    ::fcntl(ready[1], F_DUPFD_CLOEXEC, 20), ::fcntl(diag[1], F_DUPFD_CLOEXEC, 20)};
      int devnull = ::open("/dev/null", O_RDWR);
      ::dup2(devnull, 0);
      ::dup2(devnull, 1);
      ::dup2(fds[3], 2);
      ::dup2(fds[0], 3);
      ::dup2(fds[1], 4);
      if (no_ready_fd) {
        ::close(5);
      } else {
        ::dup2(fds[2], 5);
      }
      ::execve(argv[0], argv.data(), envp.data());
      ::_exit(127);
    }
    ::close(out[0]);
    ::close(err[0]);
    ::close(ready[1]);
    ::close(diag[1]);
    LoggerProcess p;
    p.pid = pid;
    p.stdout_w = out[1];
    p.stderr_w = err[1];
    p.ready_r = ready[0];
    p.diag_r = diag[0];
    return p;
  }

  ~LoggerProcess() {
    close_streams();
    if (pid > 0) {  // a test failed half-way: end our child, by pid
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    if (ready_r >= 0) ::close(ready_r);
    if (diag_r >= 0) ::close(diag_r);
  }

  // The shim's wait: one byte, then EOF (herd-logger closed fd 5).
  void expect_ready() {
    pollfd pfd{ready_r, POLLIN, 0};
    REQUIRE(::poll(&pfd, 1, 10000) == 1);
    char b[2];
    REQUIRE(::read(ready_r, b, sizeof b) == 1);
    REQUIRE(::poll(&pfd, 1, 10000) == 1);
    REQUIRE(::read(ready_r, b, sizeof b) == 0);
  }

  static void write_all(int fd, const std::string& data) {
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = ::write(fd, data.data() + done, data.size() - done);
      if (n < 0 && errno == EINTR) continue;
      REQUIRE(n > 0);
      done += static_cast<size_t>(n);
    }
  }
  void out(const std::string& data) { write_all(stdout_w, data); }
  void err(const std::string& data) { write_all(stderr_w, data); }

  void close_streams() {
    if (stdout_w >= 0) ::close(stdout_w);
    if (stderr_w >= 0) ::close(stderr_w);
    stdout_w = stderr_w = -1;
  }

  // Waits for the exit (deadline only against a hang); returns the status.
  int wait_exit() {
    for (int i = 0; i < 1500; ++i) {
      int status = 0;
      pid_t r = ::waitpid(pid, &status, WNOHANG);
      REQUIRE(r >= 0);
      if (r == pid) {
        pid = -1;
        return status;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    FAIL("herd-logger did not exit within 15 s");
    return -1;
  }

  std::string diagnostics() {
    std::string text;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(diag_r, buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
    return text;
  }
};

bool exited_ok(int status) { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

}  // namespace

TEST_CASE("herd-logger forwards stdout and stderr lines with their fields") {
  herd::test::enter_private_journal();
  std::string id = herd::test::unique_id("container");
  std::string component = herd::test::unique_id("comp");
  // Keys arrive in random order from the shim; an unknown one is harmless.
  auto logger = LoggerProcess::spawn({"future-option", "x", "component", component}, id);
  logger.expect_ready();
  logger.out("first line\nsecond line\n");
  logger.err("something failed\n");
  logger.out("\nafter an empty line\n");
  logger.close_streams();
  CHECK(exited_ok(logger.wait_exit()));
  INFO(logger.diagnostics());

  auto all = herd::test::wait_for_entries({"CONTAINER_ID=" + id}, 6);
  REQUIRE(all.size() == 6);  // 5 lines + the note about the unknown argument
  std::vector<herd::test::json> out, err, notes;
  for (const auto& e : all) {
    INFO(e.dump());
    CHECK(field(e, "SYSLOG_IDENTIFIER") == component);
    CHECK(field(e, "HERD_COMPONENT") == component);
    CHECK(field(e, "CONTAINER_NAMESPACE") == "herd-test");
    std::string stream = field(e, "HERD_STREAM");
    (stream == "stdout" ? out : stream == "stderr" ? err : notes).push_back(e);
  }
  REQUIRE(out.size() == 4);
  CHECK(field(out[0], "MESSAGE") == "first line");
  CHECK(field(out[1], "MESSAGE") == "second line");
  CHECK(field(out[2], "MESSAGE") == "");
  CHECK(field(out[3], "MESSAGE") == "after an empty line");
  for (const auto& e : out) CHECK(field(e, "PRIORITY") == "6");
  REQUIRE(err.size() == 1);
  CHECK(field(err[0], "MESSAGE") == "something failed");
  CHECK(field(err[0], "PRIORITY") == "4");
  REQUIRE(notes.size() == 1);
  CHECK(field(notes[0], "HERD_STREAM") == "logger");
  CHECK(field(notes[0], "MESSAGE").find("future-option") != std::string::npos);

  // `journalctl -t <component>` is the operator's view.
  CHECK(herd::test::journal_query({"-t", component}).size() == 6);
}

TEST_CASE("herd-logger names the component after CONTAINER_ID by default") {
  herd::test::enter_private_journal();
  std::string id = herd::test::unique_id("container");
  auto logger = LoggerProcess::spawn({}, id);
  logger.expect_ready();
  logger.out("hello\n");
  logger.close_streams();
  CHECK(exited_ok(logger.wait_exit()));

  auto entries = herd::test::wait_for_entries({"CONTAINER_ID=" + id}, 1);
  REQUIRE(entries.size() == 1);
  CHECK(field(entries[0], "MESSAGE") == "hello");
  CHECK(field(entries[0], "SYSLOG_IDENTIFIER") == id);
  CHECK(field(entries[0], "HERD_COMPONENT") == id);
}

TEST_CASE("herd-logger splits long lines and flushes an unterminated last line at EOF") {
  herd::test::enter_private_journal();
  std::string id = herd::test::unique_id("container");
  auto logger = LoggerProcess::spawn({"component", id}, id);
  logger.expect_ready();
  std::string long_line;
  for (int i = 0; long_line.size() < 150000; ++i) long_line += std::to_string(i) + " ";
  long_line.resize(150000);
  logger.out(long_line + "\n");
  logger.out(std::string(65536, 'x') + "\n");  // exactly the limit: one record
  logger.err("no newline at the end");
  logger.close_streams();
  CHECK(exited_ok(logger.wait_exit()));

  auto entries = herd::test::wait_for_entries({"CONTAINER_ID=" + id}, 5);
  REQUIRE(entries.size() == 5);
  std::string joined;
  for (int i = 0; i < 3; ++i) {
    CHECK(field(entries[i], "HERD_STREAM") == "stdout");
    joined += field(entries[i], "MESSAGE");
  }
  CHECK(field(entries[0], "MESSAGE").size() == 65536);
  CHECK(field(entries[1], "MESSAGE").size() == 65536);
  CHECK(field(entries[2], "MESSAGE").size() == 150000 - 2 * 65536);
  CHECK(joined == long_line);
  CHECK(field(entries[3], "MESSAGE") == std::string(65536, 'x'));
  CHECK(field(entries[4], "MESSAGE") == "no newline at the end");
  CHECK(field(entries[4], "HERD_STREAM") == "stderr");
}

TEST_CASE("herd-logger forwards what the pipes hold when the shim stops it") {
  herd::test::enter_private_journal();
  std::string id = herd::test::unique_id("container");
  auto logger = LoggerProcess::spawn({"component", id}, id);
  logger.expect_ready();
  logger.out("one\ntwo\nhalf a line");
  logger.err("three\n");
  // The pipes stay open (a writer is still there): SIGTERM alone ends it.
  REQUIRE(::kill(logger.pid, SIGTERM) == 0);
  CHECK(exited_ok(logger.wait_exit()));

  auto entries = herd::test::wait_for_entries({"CONTAINER_ID=" + id}, 4);
  REQUIRE(entries.size() == 4);
  std::vector<std::string> messages;
  for (const auto& e : entries) messages.push_back(field(e, "MESSAGE"));
  std::sort(messages.begin(), messages.end());
  CHECK(messages == std::vector<std::string>{"half a line", "one", "three", "two"});
}

TEST_CASE("herd-logger without a readiness fd still forwards and stops on SIGTERM") {
  // Without fd 5 the signalfd used to be given fd 5, which the readiness
  // step then closed: SIGTERM stayed blocked forever and the loop spun on
  // POLLNVAL.
  herd::test::enter_private_journal();
  std::string id = herd::test::unique_id("container");
  auto logger = LoggerProcess::spawn({"component", id}, id, false, /*no_ready_fd=*/true);
  logger.out("by hand\n");
  REQUIRE(herd::test::wait_for_entries({"CONTAINER_ID=" + id}, 1).size() == 1);
  REQUIRE(::kill(logger.pid, SIGTERM) == 0);
  CHECK(exited_ok(logger.wait_exit()));
}

TEST_CASE("herd-logger keeps reading and counts drops while journald is away") {
  herd::test::enter_private_journal();
  std::string id = herd::test::unique_id("container");
  auto logger = LoggerProcess::spawn({"component", id}, id, /*no_journal=*/true);
  logger.expect_ready();
  // 2 MiB, 32 times a pipe's capacity: the writes only finish if
  // herd-logger keeps reading although every line is dropped.
  std::string line(99, 'y');
  line += '\n';
  std::string chunk;
  for (int i = 0; i < 1000; ++i) chunk += line;
  for (int i = 0; i < 21; ++i) logger.out(chunk);
  logger.close_streams();
  CHECK(exited_ok(logger.wait_exit()));
  std::string diag = logger.diagnostics();
  INFO(diag);
  CHECK(diag.find(id + ": 21000 lines, 0 sent, 21000 dropped") != std::string::npos);
  // Nothing reached the fixture's journald either.
  CHECK(herd::test::journal_query({"CONTAINER_ID=" + id}).empty());
}
