// JournalSink and make_log_sink against a real journald (fixture
// herd_journald), read back with journalctl.
#include "systemd/journal_sink.h"

#include <spdlog/logger.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "journal_env.h"

using herd::systemd::JournalSink;
using herd::systemd::LogTarget;
using herd::test::field;
using herd::test::has_field;

TEST_CASE("JournalSink sends every level with its syslog priority") {
  herd::test::enter_private_journal();
  std::string id = herd::test::unique_id("herd-sink");
  auto sink = std::make_shared<JournalSink>(id);
  spdlog::logger log(id, sink);
  log.set_level(spdlog::level::trace);
  log.trace("a trace");
  log.debug("a debug");
  log.info("an info {}", 42);
  log.warn("a warning");
  log.error("an error");
  log.critical("a critical");

  auto entries = herd::test::wait_for_entries({"SYSLOG_IDENTIFIER=" + id}, 6);
  REQUIRE(entries.size() == 6);
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"a trace", "7"},   {"a debug", "7"},  {"an info 42", "6"},
      {"a warning", "4"}, {"an error", "3"}, {"a critical", "2"}};
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO(entries[i].dump());
    CHECK(field(entries[i], "MESSAGE") == expected[i].first);
    CHECK(field(entries[i], "PRIORITY") == expected[i].second);
    CHECK(field(entries[i], "_TRANSPORT") == "journal");
    // The logger named like the identifier is herdd's own: no component.
    CHECK_FALSE(has_field(entries[i], "HERD_COMPONENT"));
    CHECK_FALSE(field(entries[i], "TID").empty());
  }
  CHECK(sink->failed() == 0);
}

TEST_CASE("JournalSink names the component of each logger that shares it") {
  herd::test::enter_private_journal();
  std::string id = herd::test::unique_id("herd-sink");
  std::string component = herd::test::unique_id("etcd");
  auto sink = std::make_shared<JournalSink>(id);
  spdlog::logger main_log(id, sink);
  spdlog::logger unnamed("", sink);
  spdlog::logger etcd_log(component, sink);

  main_log.info("supervisor up");
  unnamed.info("no name");
  etcd_log.warn("restarting in {}ms", 500);
  SPDLOG_LOGGER_INFO(&etcd_log, "with a location");
  etcd_log.error("two\nlines");

  auto entries = herd::test::wait_for_entries({"SYSLOG_IDENTIFIER=" + id}, 5);
  REQUIRE(entries.size() == 5);
  CHECK(field(entries[0], "MESSAGE") == "supervisor up");
  CHECK_FALSE(has_field(entries[0], "HERD_COMPONENT"));
  CHECK(field(entries[1], "MESSAGE") == "no name");
  CHECK_FALSE(has_field(entries[1], "HERD_COMPONENT"));

  CHECK(field(entries[2], "MESSAGE") == "restarting in 500ms");
  CHECK(field(entries[2], "HERD_COMPONENT") == component);
  CHECK(field(entries[2], "PRIORITY") == "4");
  CHECK_FALSE(has_field(entries[2], "CODE_FILE"));

  CHECK(field(entries[3], "MESSAGE") == "with a location");
  CHECK(field(entries[3], "HERD_COMPONENT") == component);
  CHECK(field(entries[3], "CODE_FILE").ends_with("journal_sink_test.cpp"));
  CHECK_FALSE(field(entries[3], "CODE_LINE").empty());
  CHECK_FALSE(field(entries[3], "CODE_FUNC").empty());

  CHECK(field(entries[4], "MESSAGE") == "two\nlines");
  CHECK(field(entries[4], "PRIORITY") == "3");

  // What an operator types: everything herdd said about this component.
  auto about = herd::test::journal_query({"-t", id, "HERD_COMPONENT=" + component});
  CHECK(about.size() == 3);
}

TEST_CASE("make_log_sink picks journald when its socket is there") {
  herd::test::enter_private_journal();
  CHECK(herd::systemd::journald_available());
  CHECK_FALSE(herd::systemd::journald_available("/nonexistent/socket"));
  // A file that is not a socket does not count.
  CHECK_FALSE(herd::systemd::journald_available("/proc/self/exe"));
  // Nor does a socket file whose journald is gone.
  const std::string stale = "/tmp/herd-stale-journal-" + std::to_string(::getpid()) + ".sock";
  ::unlink(stale.c_str());
  int fd = ::socket(AF_UNIX, SOCK_DGRAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", stale.c_str());
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  CHECK(herd::systemd::journald_available(stale));  // something receives
  ::close(fd);
  CHECK_FALSE(herd::systemd::journald_available(stale));  // the file is left
  ::unlink(stale.c_str());

  auto is_journal = [](const std::shared_ptr<spdlog::sinks::sink>& s) {
    return std::dynamic_pointer_cast<JournalSink>(s) != nullptr;
  };
  CHECK(is_journal(herd::systemd::make_log_sink(LogTarget::kAuto, "herdd")));
  CHECK(is_journal(herd::systemd::make_log_sink(LogTarget::kJournald, "herdd")));
  CHECK_FALSE(is_journal(herd::systemd::make_log_sink(LogTarget::kStderr, "herdd")));
  auto sink = std::dynamic_pointer_cast<JournalSink>(
      herd::systemd::make_log_sink(LogTarget::kAuto, "herdd"));
  REQUIRE(sink);
  CHECK(sink->identifier() == "herdd");
}

TEST_CASE("The stderr sink prints time and level and component and message") {
  auto sink = herd::systemd::make_log_sink(LogTarget::kStderr, "herdd");
  spdlog::logger main_log("herdd", sink);
  spdlog::logger etcd_log("etcd", sink);

  // Capture fd 2 in a file for the two records.
  std::string path = "/tmp/herd-stderr-sink-" + std::to_string(::getpid());
  std::fflush(stderr);
  int saved = ::dup(2);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  REQUIRE(fd >= 0);
  ::dup2(fd, 2);
  ::close(fd);
  main_log.info("herdd up");
  etcd_log.warn("restarting in {}ms", 500);
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);

  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::filesystem::remove(path);
  std::string out = text.str();
  INFO(out);
  const std::string stamp = R"(\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] )";
  CHECK(std::regex_match(out, std::regex(stamp + R"(\[info\] herdd up\n)" + stamp +
                                         R"(\[warning\] \[etcd\] restarting in 500ms\n)")));
  CHECK(out.find('\x1b') == std::string::npos);  // no colours
}
