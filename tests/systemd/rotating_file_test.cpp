// RotatingFile (lib/systemd/rotating_file.h) and herd-logger's file-mode
// arguments, on a temporary directory: real files, no clock.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>

#include "systemd/container_logger.h"
#include "systemd/rotating_file.h"

using herd::systemd::RotatingFile;
namespace fs = std::filesystem;

namespace {

fs::path fresh_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("herd-rotate-" + std::to_string(::getpid()) + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::string read(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("rotating file: capped in size and count, whole lines only") {
  const fs::path dir = fresh_dir("a");
  const fs::path log = dir / "web.log";
  {
    RotatingFile f(log.string(), 4096, 3);
    const std::string line = std::string(99, 'x') + "\n";  // 100 bytes
    for (int i = 0; i < 200; ++i) REQUIRE(f.write(line));  // 20000 bytes in all
  }
  CHECK(fs::exists(log));
  CHECK(fs::exists(dir / "web.log.1"));
  CHECK(fs::exists(dir / "web.log.2"));
  CHECK_FALSE(fs::exists(dir / "web.log.3"));
  for (const fs::path& p : {log, dir / "web.log.1", dir / "web.log.2"}) {
    INFO(p);
    CHECK(fs::file_size(p) <= 4096);
    CHECK(fs::file_size(p) % 100 == 0);  // no line split
  }
  CHECK(fs::file_size(dir / "web.log.1") == 4000);
  fs::remove_all(dir);
}

TEST_CASE("rotating file: appends to an existing file and counts its size") {
  const fs::path dir = fresh_dir("b");
  const fs::path log = dir / "w.log";
  { std::ofstream(log) << std::string(4000, 'a') << "\n"; }
  {
    RotatingFile f(log.string(), 4096, 2);
    CHECK(f.size() == 0);  // not opened before the first write
    REQUIRE(f.write("short line\n"));
    REQUIRE(f.write(std::string(200, 'b') + "\n"));
  }
  CHECK(fs::file_size(dir / "w.log.1") == 4001 + 11);
  CHECK(read(log) == std::string(200, 'b') + "\n");
  fs::remove_all(dir);
}

TEST_CASE("rotating file: one file only is truncated") {
  const fs::path dir = fresh_dir("c");
  const fs::path log = dir / "one.log";
  {
    RotatingFile f(log.string(), 4096, 1);
    for (int i = 0; i < 100; ++i) REQUIRE(f.write(std::string(99, 'z') + "\n"));
  }
  CHECK(fs::file_size(log) <= 4096);
  CHECK_FALSE(fs::exists(dir / "one.log.1"));
  fs::remove_all(dir);
}

TEST_CASE("herd-logger file mode: arguments and the URI") {
  auto a = herd::systemd::parse_logger_args({"max_files", "3", "file",
                                             "/var/lib/herd/.herd-logs/web.log", "component", "web",
                                             "max_bytes", "8192"});
  CHECK(a.warnings.empty());
  CHECK(a.component == "web");
  CHECK(a.file == "/var/lib/herd/.herd-logs/web.log");
  CHECK(a.max_bytes == 8192);
  CHECK(a.max_files == 3);
  auto bad = herd::systemd::parse_logger_args({"max_bytes", "12", "max_files", "x"});
  CHECK(bad.warnings.size() == 2);
  CHECK(bad.max_bytes == 10u << 20);
  CHECK(bad.max_files == 5);
  CHECK(herd::systemd::container_file_logger_uri("/usr/libexec/herd/herd-logger", "web",
                                                 "/d/.herd-logs/web.log", 4096, 2) ==
        "binary:///usr/libexec/herd/herd-logger?component=web&file=%2Fd%2F.herd-logs%2Fweb.log"
        "&max_bytes=4096&max_files=2");
}
