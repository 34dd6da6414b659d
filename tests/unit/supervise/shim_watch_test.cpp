// Unit tests of supervise/shim_watch.h: /proc/<pid>/stat parsing, and the
// identity of a real process of this test (a child it forks and reaps).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "supervise/shim_watch.h"

using herd::supervise::parse_proc_stat;
using herd::supervise::shim_gone;
using herd::supervise::shim_of;

namespace {

// A stat line with `name` as the command and the given fields.
std::string stat_line(const std::string& name, char state, int ppid, uint64_t start) {
  std::string s = "4242 (" + name + ") " + state + " " + std::to_string(ppid);
  for (int field = 5; field <= 21; ++field) s += " " + std::to_string(field);
  return s + " " + std::to_string(start) + " 23 24 25\n";
}

}  // namespace

TEST_CASE("parse_proc_stat reads state, ppid and start time after the last parenthesis") {
  auto plain = parse_proc_stat(stat_line("containerd-shim", 'S', 17, 987654321));
  REQUIRE(plain);
  CHECK(plain->state == 'S');
  CHECK(plain->ppid == 17);
  CHECK(plain->start_ticks == 987654321u);
  // A command name may hold spaces and parentheses: only the last ')' counts.
  auto odd = parse_proc_stat(stat_line("a) Z 99 (b", 'Z', 3, 5));
  REQUIRE(odd);
  CHECK(odd->state == 'Z');
  CHECK(odd->ppid == 3);
  CHECK(odd->start_ticks == 5u);
}

TEST_CASE("parse_proc_stat refuses malformed lines") {
  CHECK_FALSE(parse_proc_stat(""));
  CHECK_FALSE(parse_proc_stat("4242 (sh S 1 2 3"));
  CHECK_FALSE(parse_proc_stat("4242 (sh) S 1 2 3"));  // too short for field 22
  CHECK_FALSE(parse_proc_stat("4242 (sh) S x 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22"));
  std::string bad_start = stat_line("sh", 'S', 1, 1);
  bad_start.replace(bad_start.rfind(" 1 23"), 5, " -1 23");
  CHECK_FALSE(parse_proc_stat(bad_start));
}

TEST_CASE("shim_of names a live parent, and shim_gone sees it end") {
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  // parent (the "shim") forks a grandchild (the "task") and waits.
  const pid_t parent = ::fork();
  REQUIRE(parent >= 0);
  if (parent == 0) {
    const pid_t task = ::fork();
    if (task == 0) {
      ::pause();
      ::_exit(0);
    }
    (void)!::write(ready[1], &task, sizeof task);
    ::pause();
    ::_exit(0);
  }
  pid_t task = 0;
  REQUIRE(::read(ready[0], &task, sizeof task) == sizeof task);
  ::close(ready[0]);
  ::close(ready[1]);

  auto shim = shim_of(task);
  REQUIRE(shim);
  CHECK(shim->pid == parent);
  CHECK_FALSE(shim_gone(*shim));
  // Another start time under the same pid is another process.
  auto other = *shim;
  other.start_ticks += 1;
  CHECK(shim_gone(other));

  ::kill(parent, SIGKILL);
  // Dead but not reaped (WNOWAIT): a zombie is gone all the same.
  siginfo_t info{};
  REQUIRE(::waitid(P_PID, static_cast<id_t>(parent), &info, WEXITED | WNOWAIT) == 0);
  CHECK(shim_gone(*shim));
  ::waitpid(parent, nullptr, 0);
  CHECK(shim_gone(*shim));
  ::kill(task, SIGKILL);  // reparented; its new parent reaps it
  CHECK_FALSE(shim_of(0));
}
