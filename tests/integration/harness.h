// Test harness for integration tests against the real containerd that the
// CTest fixture `containerd` starts (scripts/dev-containerd), with the
// images the fixture `images` builds (scripts/build-images).
//
// - env(): where they are (under HERD_TEST_DIR).
// - run_coro(): runs one coroutine on a fresh io_context to completion and
//   rethrows what it threw, so Catch2's REQUIRE works inside coroutines.
// - TestNamespace: a containerd namespace of the test's own; finish()
//   asserts the test left nothing behind (containers, tasks, leases, no
//   shim process of the namespace, and, once its images are deleted,
//   snapshots), then deletes the namespace, which containerd refuses while
//   anything is left in it.
#pragma once

#include <unistd.h>
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <grpc/grpc.h>

#include "common/asio.h"
#include "common/blocking_pool.h"
#include "containerd/client.h"

namespace herd::test {

inline const Status& status_of(const Status& s) { return s; }
template <class T>
const Status& status_of(const Result<T>& r) {
  return r.status();
}

// REQUIRE/CHECK that a Status or Result is OK, printing it when it is not.
// (The expression may contain co_await.)
#define HERD_REQUIRE_OK(expr)                            \
  do {                                                   \
    auto&& herd_st_ = (expr);                            \
    INFO(::herd::test::status_of(herd_st_).to_string()); \
    REQUIRE(::herd::test::status_of(herd_st_).ok());     \
  } while (0)
#define HERD_CHECK_OK(expr)                              \
  do {                                                   \
    auto&& herd_st_ = (expr);                            \
    INFO(::herd::test::status_of(herd_st_).to_string()); \
    CHECK(::herd::test::status_of(herd_st_).ok());       \
  } while (0)

struct TestEnv {
  std::filesystem::path containerd_dir;
  std::filesystem::path images_dir;
  std::string address() const { return (containerd_dir / "containerd.sock").string(); }
  std::filesystem::path image(const std::string& file) const { return images_dir / file; }
};

// gRPC stays initialised until the process ends. Otherwise the last
// Client going makes gRPC 1.51's grpc_shutdown clean up on a detached
// thread, which races exit()'s static destructors: now and then an
// "assertion failed: prior > 0" abort after every test passed.
[[maybe_unused]] inline const bool kGrpcUntilExit = (grpc_init(), true);

// Threads for the blocking work of imports, shared by a test binary.
inline BlockingPool& test_pool() {
  static BlockingPool pool(2);
  return pool;
}

// HERD_TEST_DIR (default: the build tree's test-env, compiled in) holds
// containerd/ (the fixture's containerd) and images/ (the built archives).
inline TestEnv env() {
  const char* dir = std::getenv("HERD_TEST_DIR");
  std::filesystem::path root = dir ? dir : HERD_TEST_DIR_DEFAULT;
  return TestEnv{root / "containerd", root / "images"};
}

// Runs `make()`'s coroutine to completion on a new io_context. A watchdog
// ends a hung test (not a timing assertion: it only turns a hang into a
// failure).
template <class MakeCoro>
void run_coro(MakeCoro make, std::chrono::seconds watchdog = std::chrono::seconds(180)) {
  asio::io_context io;
  std::exception_ptr error;
  bool done = false;
  asio::steady_timer dog(io, watchdog);
  asio::co_spawn(io, make(), [&](std::exception_ptr e) {
    error = e;
    done = true;
    dog.cancel();
  });
  dog.async_wait([&](boost::system::error_code ec) {
    if (!ec) io.stop();
  });
  // Runs until all work is done: calls still in flight in gRPC (e.g. an
  // events stream cancelled as a failed test unwinds) keep the io_context
  // busy until they have completed, so none completes into a dead one.
  io.run();
  if (error) std::rethrow_exception(error);
  REQUIRE(done);
}

// Awaits `d` on the current coroutine's executor.
inline asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

// Waits (asynchronously, checking every 5 ms) until pred() holds; false
// when `limit` passes first. A bound against hangs, not a timing check.
template <class Pred>
asio::awaitable<bool> eventually(Pred pred,
                                 std::chrono::milliseconds limit = std::chrono::seconds(30)) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > until) co_return false;
    co_await sleep_for(std::chrono::milliseconds(5));
  }
  co_return true;
}

// Keeps a Client until the process ends (containerd_catch_main.cpp's
// _Exit): the last reference to a gRPC 1.51 channel dropped while a call of
// it is still winding down on gRPC's callback thread aborts the process now
// and then ("prior > 0" in grpc_cq_internal_unref, or an ASan double free
// on that thread; grpc/grpc#32584). So no test destroys a Client.
inline containerd::Client& client_until_exit(std::unique_ptr<containerd::Client> client) {
  static auto* kept = new std::vector<std::unique_ptr<containerd::Client>>();
  kept->push_back(std::move(client));
  return *kept->back();
}

// Pids of the containerd-shim processes started for namespace `ns` (their
// command line is `containerd-shim-runc-v2 -namespace NS -id ID ...`).
inline std::vector<pid_t> shims_of(const std::string& ns) {
  std::vector<pid_t> pids;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "cmdline", std::ios::binary);
    std::vector<std::string> args;
    for (std::string a; std::getline(in, a, '\0');) args.push_back(a);
    for (size_t i = 0; i + 1 < args.size(); ++i) {
      if (args[i] == "-namespace" && args[i + 1] == ns &&
          args[0].find("containerd-shim") != std::string::npos) {
        pids.push_back(static_cast<pid_t>(std::stol(name)));
        break;
      }
    }
  }
  return pids;
}

class TestNamespace {
 public:
  explicit TestNamespace(const std::string& tag)
      : name_("herd-it-" + tag + "-" + std::to_string(::getpid())) {
    containerd::Client::Options o;
    o.address = env().address();
    o.ns = name_;
    client_ = std::make_unique<containerd::Client>(o);
  }
  // The client is never destroyed (client_until_exit).
  ~TestNamespace() { client_until_exit(std::move(client_)); }
  TestNamespace(const TestNamespace&) = delete;
  TestNamespace& operator=(const TestNamespace&) = delete;

  const std::string& name() const { return name_; }
  containerd::Client& client() { return *client_; }

  // Asserts that nothing is left, deleting the namespace's images first.
  asio::awaitable<void> finish() {
    auto& c = *client_;
    auto containers = co_await c.containers_list();
    REQUIRE(containers.ok());
    CHECK(containers->empty());
    auto tasks = co_await c.tasks_list();
    REQUIRE(tasks.ok());
    CHECK(tasks->empty());
    auto leases = co_await c.leases_list();
    REQUIRE(leases.ok());
    CHECK(leases->empty());
    // A shim exits on its own once containerd has deleted its last task and
    // told it to shut down: wait for that (a bound, not a timing check).
    const bool no_shim =
        co_await eventually([&] { return shims_of(name_).empty(); }, std::chrono::seconds(10));
    for (pid_t pid : shims_of(name_)) UNSCOPED_INFO("left shim pid " << pid);
    CHECK(no_shim);
    auto images = co_await c.images_list();
    REQUIRE(images.ok());
    for (const auto& img : *images) {
      auto s = co_await c.images_delete(img.name(), /*sync=*/true);
      CHECK(s.ok());
    }
    auto snaps = co_await c.snapshots_list(containerd::kDefaultSnapshotter);
    REQUIRE(snaps.ok());
    for (const auto& s : *snaps) UNSCOPED_INFO("left snapshot " << s.name());
    CHECK(snaps->empty());
    auto del = co_await c.namespaces_delete(name_);
    INFO(del.to_string());
    CHECK((del.ok() || del.is_not_found()));  // not found: nothing was ever created
  }

 private:
  std::string name_;
  std::unique_ptr<containerd::Client> client_;
};

}  // namespace herd::test
