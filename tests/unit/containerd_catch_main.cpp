// The Catch2 main of the binaries that talk to the fixture's containerd
// (herd_containerd_test in tests/CMakeLists.txt). It ends the process with
// _Exit once the tests ran, skipping static destructors: gRPC 1.51's
// callback-queue threads race exit()'s teardown of gRPC now and then
// ("assertion failed: prior > 0" in grpc_cq_internal_unref, an abort after
// every assertion passed; grpc/grpc#32584 looks like it). Everything these
// tests start is stopped by the test that started it, never by a static
// destructor, so nothing is skipped that matters. Under LeakSanitizer the
// leak check that exit() would run is run first. HERD_TEST_LOG=debug (any
// spdlog level name) shows herd's own log while a test runs.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>

#include <spdlog/spdlog.h>

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

int main(int argc, char** argv) {
  if (const char* level = std::getenv("HERD_TEST_LOG"))
    spdlog::set_level(spdlog::level::from_str(level));
  const int result = Catch::Session().run(argc, argv);
  std::fflush(nullptr);
#ifdef __SANITIZE_ADDRESS__
  __lsan_do_leak_check();  // reports and exits non-zero on a leak
#endif
  std::_Exit(result);
}
