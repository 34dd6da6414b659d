// Test access to the private journald that the CTest fixture `herd_journald`
// runs (tests/systemd/test-journald): sockets in <HERD_TEST_DIR>/journald/run,
// journal files in <HERD_TEST_DIR>/journald/logs.
//
// - enter_private_journal(): makes this process (and every child it starts
//   afterwards) send to that journald: in a new private mount namespace,
//   the fixture's run/ directory is bind-mounted on /run/systemd/journal,
//   where libsystemd sends. Needs root (CAP_SYS_ADMIN); nothing outside the
//   process changes. Call it before starting threads.
// - journal_query()/wait_for_entries(): `journalctl --directory=... -o json`
//   with the given matches, parsed; wait_for_entries polls until at least n
//   entries are there (journald stores asynchronously), with a deadline
//   that only turns a hang into a failure.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace herd::test {

namespace fs = std::filesystem;
using json = nlohmann::json;

inline fs::path journald_dir() {
  const char* dir = std::getenv("HERD_TEST_DIR");
  return fs::path(dir ? dir : HERD_TEST_DIR_DEFAULT) / "journald";
}

inline void enter_private_journal() {
  static bool entered = false;
  if (entered) return;
  fs::path run = journald_dir() / "run";
  INFO("the herd_journald fixture's journald should listen on " << (run / "socket").string());
  REQUIRE(fs::is_socket(run / "socket"));

  int r = ::unshare(CLONE_NEWNS);
  int err = errno;
  INFO("a private mount namespace needs root: " << std::strerror(err));
  REQUIRE(r == 0);
  REQUIRE(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0);
  // Hold the source open (opened inside the new namespace, so a bind
  // mount may take it): a tmpfs mounted below may hide its path.
  int source = ::open(run.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  REQUIRE(source >= 0);
  fs::path target = "/run/systemd/journal";
  if (!fs::is_directory(target)) {
    // Create the mount point on a private tmpfs, never on the real /run.
    fs::path base = target.parent_path();
    while (!fs::is_directory(base)) base = base.parent_path();
    REQUIRE(::mount("tmpfs", base.c_str(), "tmpfs", 0, "mode=0755") == 0);
    fs::create_directories(target);
  }
  std::string source_path = "/proc/self/fd/" + std::to_string(source);
  REQUIRE(::mount(source_path.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) == 0);
  ::close(source);
  entered = true;
}

// A name no other test (or test run) uses.
inline std::string unique_id(const std::string& prefix) {
  static int counter = 0;
  auto now = std::chrono::system_clock::now().time_since_epoch();
  return prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(++counter) + "-" +
         std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(now).count() %
                        1000000000);
}

// `journalctl --directory=<logs> --all -o json <args...>` (args are simple
// words: matches like FIELD=value, or -t NAME).
inline std::vector<json> journal_query(const std::vector<std::string>& args) {
  std::string cmd = "journalctl --no-pager --all --output=json --directory='" +
                    (journald_dir() / "logs").string() + "'";
  for (const auto& a : args) cmd += " '" + a + "'";
  cmd += " 2>/dev/null";
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  std::vector<json> entries;
  size_t start = 0;
  while (start < out.size()) {
    size_t end = out.find('\n', start);
    if (end == std::string::npos) end = out.size();
    if (end > start) entries.push_back(json::parse(out.substr(start, end - start)));
    start = end + 1;
  }
  return entries;
}

inline std::vector<json> wait_for_entries(
    const std::vector<std::string>& args, size_t n,
    std::chrono::seconds deadline = std::chrono::seconds(15)) {
  auto until = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    auto entries = journal_query(args);
    if (entries.size() >= n || std::chrono::steady_clock::now() > until) return entries;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// A field as bytes: journalctl prints text as a string, other bytes as an
// array of numbers; a missing field is "".
inline std::string field(const json& entry, const std::string& name) {
  auto it = entry.find(name);
  if (it == entry.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  std::string bytes;
  if (it->is_array())
    for (const auto& b : *it) bytes.push_back(static_cast<char>(b.get<int>()));
  return bytes;
}

inline bool has_field(const json& entry, const std::string& name) {
  return entry.find(name) != entry.end();
}

}  // namespace herd::test
