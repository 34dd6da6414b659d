// End-to-end tests of shared shims (`shim_group`, issue 15) on the real
// containerd of the CTest fixture: components of one group run under one
// containerd-shim-runc-v2 (the parent of every task's init process), a
// restart of one keeps that shim, and a SIGKILL of the shared shim ends
// every task of the group, which herd restores (into a new shared shim)
// while a component outside the group is left alone.
#include <signal.h>

#include <string>

#include "e2e_harness.h"

using namespace herd;
using namespace herd::supervise;
using namespace herd::e2e;
using namespace std::chrono_literals;

TEST_CASE("shim_group: a group shares one shim, a restart keeps it, a killed shim is recovered",
          "[e2e]") {
  Herd h("shims");
  const uint16_t port_a = free_port();
  const uint16_t port_b = free_port();
  const uint16_t port_solo = free_port();
  h.run([&]() -> asio::awaitable<void> {
    const std::string group = R"(, "shim_group": "seed")";
    h.start(httpd("a", port_a, group) + "," + httpd("b", port_b, group) + "," +
            httpd("solo", port_solo));
    auto all_ready = [&] {
      return h.state("a") == State::kReady && h.state("b") == State::kReady &&
             h.state("solo") == State::kReady;
    };
    REQUIRE(co_await eventually(all_ready));
    const uint32_t shim = parent_of(h.st("a").pid);
    INFO("shim " << shim << " " << comm_of(shim));
    REQUIRE(shim > 1);
    CHECK(comm_of(shim).rfind("containerd-shim", 0) == 0);
    CHECK(parent_of(h.st("b").pid) == shim);
    const uint32_t solo_pid = h.st("solo").pid;
    const uint32_t solo_shim = parent_of(solo_pid);
    CHECK(solo_shim != shim);

    // A restart of one member: a new task in the same shim.
    const uint32_t a_pid = h.st("a").pid;
    REQUIRE(::kill(static_cast<pid_t>(a_pid), SIGKILL) == 0);
    REQUIRE(co_await eventually(
        [&] { return h.state("a") == State::kReady && h.st("a").pid != a_pid; }));
    CHECK(parent_of(h.st("a").pid) == shim);
    CHECK(::kill(static_cast<pid_t>(shim), 0) == 0);

    // The shared shim dies: both members are seen gone and restored, in
    // one new shared shim; the component outside the group is untouched.
    const uint32_t a2 = h.st("a").pid;
    const uint32_t b1 = h.st("b").pid;
    const uint64_t b_restarts = h.st("b").restarts;
    REQUIRE(::kill(static_cast<pid_t>(shim), SIGKILL) == 0);
    REQUIRE(co_await eventually(
        [&] {
          return all_ready() && h.st("a").pid != a2 && h.st("b").pid != b1 &&
                 parent_of(h.st("a").pid) != shim;
        },
        60s));
    CHECK(port_answers(port_a));
    CHECK(port_answers(port_b));
    CHECK(h.st("b").restarts == b_restarts + 1);
    const uint32_t new_shim = parent_of(h.st("a").pid);
    CHECK(new_shim != shim);
    CHECK(parent_of(h.st("b").pid) == new_shim);
    CHECK(h.st("solo").pid == solo_pid);
    CHECK(parent_of(solo_pid) == solo_shim);
    // Their status says what happened: not the process's own exit.
    for (const char* name : {"a", "b"}) {
      INFO(name << ": " << h.st(name).last_error);
      CHECK(h.st(name).last_exit_reason == "containerd_lost");
      CHECK_THAT(h.st(name).last_error, Catch::Contains("shim died"));
    }
    // An ordinary restart earlier (a's SIGKILL) was "exited".
    CHECK(h.st("solo").last_exit_reason.empty());

    co_await h.stop();
    co_await h.ns.finish();
  });
}
