// Pure parts of lib/systemd: line splitting, herd-logger's arguments and
// URI, level and target mapping.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "systemd/container_logger.h"
#include "systemd/journal_sink.h"
#include "systemd/line_splitter.h"

using herd::systemd::LineSplitter;

namespace {

struct Collect {
  std::vector<std::string>* out;
  void operator()(std::string_view s) const { out->emplace_back(s); }
};

std::vector<std::string> split(std::vector<std::string> feeds, size_t max, bool flush = true) {
  LineSplitter splitter(max);
  std::vector<std::string> out;
  for (const auto& f : feeds) splitter.feed(f, Collect{&out});
  if (flush) splitter.flush(Collect{&out});
  return out;
}

using V = std::vector<std::string>;

}  // namespace

TEST_CASE("LineSplitter emits one record per line") {
  CHECK(split({"a\nbc\n"}, 10) == V{"a", "bc"});
  CHECK(split({"\n\nx\n"}, 10) == V{"", "", "x"});
  CHECK(split({"keeps\r\n"}, 10) == V{"keeps\r"});
  CHECK(split({std::string("nul\0inside\n", 11)}, 20) == V{std::string("nul\0inside", 10)});
}

TEST_CASE("LineSplitter joins a line split across reads") {
  CHECK(split({"ab", "c", "d\nef", "\n"}, 10) == V{"abcd", "ef"});
  LineSplitter s(10);
  std::vector<std::string> out;
  s.feed("par", Collect{&out});
  s.feed("tial", Collect{&out});
  CHECK(out.empty());
  CHECK(s.pending() == 7);
  s.flush(Collect{&out});
  CHECK(out == V{"partial"});
  CHECK(s.pending() == 0);
  s.flush(Collect{&out});  // nothing left: nothing more
  CHECK(out.size() == 1);
}

TEST_CASE("LineSplitter cuts lines longer than the limit") {
  CHECK(split({"abcd\n"}, 4) == V{"abcd"});        // exactly the limit
  CHECK(split({"abcde\n"}, 4) == V{"abcd", "e"});  // one more
  CHECK(split({"abcdefghij\n"}, 4) == V{"abcd", "efgh", "ij"});
  CHECK(split({"ab", "cd", "\n"}, 4) == V{"abcd"});  // the limit across reads
  CHECK(split({"ab", "cd", "e\n"}, 4) == V{"abcd", "e"});
  CHECK(split({"abcd", "efgh"}, 4) == V{"abcd", "efgh"});  // flushed at EOF
  CHECK(split({"abcdefgh"}, 4, false) == V{"abcd"});       // the rest waits
}

TEST_CASE("parse_logger_args takes the shim's key and value words") {
  auto a = herd::systemd::parse_logger_args({"component", "etcd"});
  CHECK(a.component == "etcd");
  CHECK(a.warnings.empty());
  // Map order is random in the shim: other keys may come first.
  a = herd::systemd::parse_logger_args({"other", "1", "component", "vm"});
  CHECK(a.component == "vm");
  REQUIRE(a.warnings.size() == 1);
  CHECK(a.warnings[0].find("'other'") != std::string::npos);
  CHECK(herd::systemd::parse_logger_args({"--component", "x"}).component == "x");
  CHECK(herd::systemd::parse_logger_args({"--component=y"}).component == "y");
  CHECK(herd::systemd::parse_logger_args({"component=z=1"}).component == "z=1");
  CHECK(herd::systemd::parse_logger_args({"component", ""}).component.empty());
  a = herd::systemd::parse_logger_args({"component"});
  CHECK(a.component.empty());
  CHECK(a.warnings.size() == 1);
  CHECK(herd::systemd::parse_logger_args({}).component.empty());
}

TEST_CASE("container_logger_uri builds the binary URI for Tasks.Create") {
  CHECK(herd::systemd::container_logger_uri("/usr/libexec/herd/herd-logger", "etcd") ==
        "binary:///usr/libexec/herd/herd-logger?component=etcd");
  CHECK(herd::systemd::container_logger_uri("/opt/my dir/herd-logger", "a b&c=d/e") ==
        "binary:///opt/my%20dir/herd-logger?component=a%20b%26c%3Dd%2Fe");
  CHECK(herd::systemd::default_container_logger_path().ends_with("/herd/herd-logger"));
  CHECK(herd::systemd::default_container_logger_path().starts_with("/"));
}

TEST_CASE("Streams and levels map to syslog priorities") {
  using herd::systemd::Stream;
  CHECK(herd::systemd::priority_of(Stream::kStdout) == 6);
  CHECK(herd::systemd::priority_of(Stream::kStderr) == 4);
  CHECK(herd::systemd::to_string(Stream::kStdout) == "stdout");
  CHECK(herd::systemd::to_string(Stream::kStderr) == "stderr");
  CHECK(herd::systemd::journal_priority(spdlog::level::trace) == 7);
  CHECK(herd::systemd::journal_priority(spdlog::level::debug) == 7);
  CHECK(herd::systemd::journal_priority(spdlog::level::info) == 6);
  CHECK(herd::systemd::journal_priority(spdlog::level::warn) == 4);
  CHECK(herd::systemd::journal_priority(spdlog::level::err) == 3);
  CHECK(herd::systemd::journal_priority(spdlog::level::critical) == 2);
}

TEST_CASE("parse_log_target accepts the --log-target values") {
  using herd::systemd::LogTarget;
  CHECK(herd::systemd::parse_log_target("auto") == LogTarget::kAuto);
  CHECK(herd::systemd::parse_log_target("journald") == LogTarget::kJournald);
  CHECK(herd::systemd::parse_log_target("stderr") == LogTarget::kStderr);
  CHECK_FALSE(herd::systemd::parse_log_target("syslog"));
  CHECK_FALSE(herd::systemd::parse_log_target(""));
  CHECK(herd::systemd::to_string(LogTarget::kJournald) == "journald");
}
