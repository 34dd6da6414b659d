// Unit tests of herdd's exit history (daemon/exit_history.h) and metrics
// rendering (daemon/metrics.h, lib/metrics/exposition.h): statuses built
// by hand, no containerd, no clock.
#include <catch2/catch.hpp>

#include "daemon/exit_history.h"
#include "daemon/metrics.h"
#include "metrics/exposition.h"

using herd::daemon::ExitHistory;
using herd::daemon::HerdMetrics;
using herd::supervise::ComponentStatus;
using herd::supervise::State;
using Clock = std::chrono::system_clock;

namespace {

const Clock::time_point kT0 = Clock::time_point(std::chrono::seconds(1'800'000'000));

ComponentStatus status(State st, int at_s = 0) {
  ComponentStatus s;
  s.name = "web";
  s.state = st;
  s.changed_at = kT0 + std::chrono::seconds(at_s);
  return s;
}

ComponentStatus with_exit(ComponentStatus s, uint32_t code, int exit_s) {
  s.last_exit_code = code;
  s.last_exit_at = kT0 + std::chrono::seconds(exit_s);
  s.last_exit_reason = "exited";
  return s;
}

}  // namespace

TEST_CASE("exit history: each new exit once, with its reason") {
  ExitHistory h;
  CHECK_FALSE(h.observe(status(State::kReady, 1)));
  CHECK(h.observe(with_exit(status(State::kBackingOff, 2), 1, 2)));
  CHECK_FALSE(h.observe(with_exit(status(State::kStarting, 3), 1, 2)));  // same exit
  auto ready = with_exit(status(State::kWaitingReady, 4), 1, 2);
  ready.last_error = "readiness: not ready within 1000ms";
  h.observe(ready);
  h.observe(with_exit(ready, 137, 5));
  auto stopping = with_exit(status(State::kStopping, 6), 143, 6);
  h.observe(status(State::kStopping, 6));
  h.observe(stopping);
  const auto& e = h.exits("web");
  REQUIRE(e.size() == 3);
  CHECK(e[0].exit_code == 1);
  CHECK(e[0].reason == "exited");
  CHECK(e[0].at == kT0 + std::chrono::seconds(2));
  CHECK(e[1].reason == "readiness_timeout");
  CHECK(e[2].reason == "operator_stop");
  CHECK(h.exits("other").empty());
}

TEST_CASE("exit history: OOM kills, liveness, and an OOM report after the exit") {
  ExitHistory h;
  h.observe(status(State::kReady, 1));
  auto oom = with_exit(status(State::kBackingOff, 2), 137, 2);
  oom.last_exit_reason = "oom_killed";
  h.observe(oom);
  REQUIRE(h.exits("web").size() == 1);
  CHECK(h.exits("web")[0].reason == "oom_killed");

  // A liveness probe's failure (last_error set while ready), then the kill.
  ExitHistory h2;
  auto live = status(State::kReady, 4);
  live.last_error = "liveness: 3 failures";
  h2.observe(live);
  auto killed = with_exit(status(State::kBackingOff, 5), 137, 5);
  killed.last_error = live.last_error;
  h2.observe(killed);
  REQUIRE(h2.exits("web").size() == 1);
  CHECK(h2.exits("web")[0].reason == "liveness");

  // The exit first, then the OOM event: the newest record becomes oom_killed.
  ExitHistory h3;
  h3.observe(status(State::kReady, 1));
  auto exit = with_exit(status(State::kBackingOff, 2), 137, 2);
  h3.observe(exit);
  exit.last_exit_reason = "oom_killed";
  exit.oom_kills = 1;
  h3.observe(exit);
  REQUIRE(h3.exits("web").size() == 1);
  CHECK(h3.exits("web")[0].reason == "oom_killed");
}

TEST_CASE("exit history: a status without an exit in between does not repeat one") {
  ExitHistory h;
  auto exit = with_exit(status(State::kBackingOff, 2), 137, 2);
  h.observe(exit);
  h.observe(status(State::kPending, 3));  // e.g. a new actor's first status
  h.observe(exit);
  exit.last_exit_at = *exit.last_exit_at + std::chrono::microseconds(7);  // to_wall's jitter
  h.observe(exit);
  auto stopping = exit;
  stopping.state = State::kStopping;
  h.observe(stopping);
  REQUIRE(h.exits("web").size() == 1);
  CHECK(h.exits("web")[0].reason == "exited");
}

TEST_CASE("exit history: at most 20 exits, the oldest dropped") {
  ExitHistory h;
  for (int i = 1; i <= 25; ++i) h.observe(with_exit(status(State::kBackingOff, i), i, i));
  const auto& e = h.exits("web");
  REQUIRE(e.size() == ExitHistory::kKeep);
  CHECK(e.front().exit_code == 6);
  CHECK(e.back().exit_code == 25);
}

TEST_CASE("exposition: label escaping, values and histogram buckets") {
  using herd::metrics::Histogram;
  using herd::metrics::TextWriter;
  CHECK(herd::metrics::escape_label_value("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
  CHECK(herd::metrics::format_value(3) == "3");
  CHECK(herd::metrics::format_value(0.005) == "0.005");
  CHECK(herd::metrics::format_value(1.0 / 0.0) == "+Inf");
  TextWriter w;
  w.family("x_seconds", "help with \\ and\nnewline", "histogram");
  Histogram hist({0.1, 1});
  hist.observe(0.0625);
  hist.observe(0.5);
  hist.observe(7);
  hist.write(w, "x_seconds", {{"component", "a\"b"}});
  CHECK(w.text() ==
        "# HELP x_seconds help with \\\\ and\\nnewline\n"
        "# TYPE x_seconds histogram\n"
        "x_seconds_bucket{component=\"a\\\"b\",le=\"0.1\"} 1\n"
        "x_seconds_bucket{component=\"a\\\"b\",le=\"1\"} 2\n"
        "x_seconds_bucket{component=\"a\\\"b\",le=\"+Inf\"} 3\n"
        "x_seconds_sum{component=\"a\\\"b\"} 7.5625\n"
        "x_seconds_count{component=\"a\\\"b\"} 3\n");
}

TEST_CASE("herd metrics: restarts only grow, restore time from exit to ready") {
  HerdMetrics m("1.2.3");
  auto s = status(State::kReady, 0);
  s.restarts = 0;
  m.observe(s);
  auto down = with_exit(status(State::kBackingOff, 10), 1, 10);
  down.restarts = 1;
  m.observe(down);
  auto up = down;
  up.state = State::kReady;
  up.changed_at = kT0 + std::chrono::seconds(12);
  m.observe(up);
  // A reload's new actor starts counting from 0 again: no decrease.
  auto fresh = status(State::kReady, 20);
  m.observe(fresh);
  m.probe_attempt("web", "readiness", std::chrono::milliseconds(3));
  const std::string text = m.render({up}, 2);
  CHECK_THAT(text, Catch::Contains("herd_component_restarts_total{component=\"web\"} 1\n"));
  CHECK_THAT(text, Catch::Contains("herd_component_state{component=\"web\",state=\"ready\"} 1\n"));
  CHECK_THAT(text, Catch::Contains("herd_component_state{component=\"web\",state=\"failed\"} 0\n"));
  CHECK_THAT(text, Catch::Contains("herd_component_ready{component=\"web\"} 1\n"));
  CHECK_THAT(text, Catch::Contains("herd_component_last_exit_code{component=\"web\"} 1\n"));
  CHECK_THAT(text, Catch::Contains("herd_component_oom_kills_total{component=\"web\"} 0\n"));
  CHECK_THAT(text, Catch::Contains("herd_restore_seconds_count{component=\"web\"} 1\n"));
  CHECK_THAT(text, Catch::Contains("herd_restore_seconds_sum{component=\"web\"} 2\n"));
  CHECK_THAT(text,
             Catch::Contains(
                 "herd_probe_duration_seconds_count{component=\"web\",probe=\"readiness\"} 1\n"));
  CHECK_THAT(text, Catch::Contains("herd_events_stream_gaps_total 2\n"));
  CHECK_THAT(text, Catch::Contains("herd_build_info{version=\"1.2.3\"} 1\n"));
  CHECK_THAT(text, Catch::Contains("process_resident_memory_bytes "));
  CHECK_THAT(text, Catch::Contains("# TYPE herd_containerd_call_errors_total counter\n"));
}

TEST_CASE("exit history: an exit containerd lost is recorded as containerd_lost") {
  ExitHistory h;
  h.observe(status(State::kReady, 1));
  auto lost = with_exit(status(State::kBackingOff, 2), 137, 2);
  lost.last_exit_reason = "containerd_lost";
  CHECK(h.observe(lost));
  h.observe(status(State::kReady, 3));
  CHECK(h.observe(with_exit(status(State::kBackingOff, 4), 137, 4)));
  const auto& e = h.exits("web");
  REQUIRE(e.size() == 2);
  CHECK(e[0].reason == "containerd_lost");
  CHECK(e[1].reason == "exited");
}
