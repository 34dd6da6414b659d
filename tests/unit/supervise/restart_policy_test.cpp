#include "supervise/restart_policy.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <limits>
#include <vector>

using herd::config::RestartPolicy;
using herd::config::RestartPreset;
using herd::supervise::backoff_delay;
using herd::supervise::FailureCause;
using herd::supervise::RestartTracker;
using std::chrono::milliseconds;
using std::chrono::seconds;
using TimePoint = std::chrono::steady_clock::time_point;

namespace {

std::vector<milliseconds> seconds_list(std::initializer_list<int64_t> s) {
  std::vector<milliseconds> out;
  for (int64_t v : s) out.push_back(seconds(v));
  return out;
}

// A random source that returns the given values in turn (then repeats the
// last) and counts its calls.
struct FakeRandom {
  std::vector<double> values;
  int* calls;
  double operator()() {
    size_t i = static_cast<size_t>(*calls);
    ++*calls;
    return values.at(i < values.size() ? i : values.size() - 1);
  }
};

RestartPolicy default_preset() { return RestartPolicy::from_preset(RestartPreset::kDefault); }
RestartPolicy aggressive_preset() { return RestartPolicy::from_preset(RestartPreset::kAggressive); }

constexpr FailureCause kExit = FailureCause::kExit;
constexpr FailureCause kRefused = FailureCause::kRefused;

}  // namespace

TEST_CASE("backoff_delay: default sequence is 2, 4, 8, 16, 32, 60, 60 s") {
  RestartPolicy p = default_preset();
  std::vector<milliseconds> got;
  for (uint32_t n = 1; n <= 7; ++n) got.push_back(backoff_delay(p, n, 0.5));
  CHECK(got == seconds_list({2, 4, 8, 16, 32, 60, 60}));
}

TEST_CASE("backoff_delay: aggressive sequence is 0.5, 1, 2, 4, 8, 10, 10 s") {
  RestartPolicy p = aggressive_preset();
  std::vector<milliseconds> got;
  for (uint32_t n = 1; n <= 7; ++n) got.push_back(backoff_delay(p, n, 0.5));
  CHECK(got == std::vector<milliseconds>{milliseconds(500), seconds(1), seconds(2), seconds(4),
                                         seconds(8), seconds(10), seconds(10)});
}

TEST_CASE("backoff_delay: the exponent is clamped, never overflows, never 0, never above max") {
  struct Row {
    uint32_t n;
    milliseconds expect_default;
  };
  const std::vector<Row> rows = {
      {1, seconds(2)},     {2, seconds(4)},
      {6, seconds(60)},    {7, seconds(60)},
      {34, seconds(60)},   {64, seconds(60)},
      {1000, seconds(60)}, {std::numeric_limits<uint32_t>::max(), seconds(60)},
  };
  for (const Row& r : rows) {
    INFO("n = " << r.n);
    CHECK(backoff_delay(default_preset(), r.n, 0.5) == r.expect_default);
  }

  // With a max so large that only the clamp stands between the shift and
  // an overflow (the seed's bug: negative, then zero after ~34 restarts).
  RestartPolicy huge = default_preset();
  huge.max = milliseconds::max();
  milliseconds previous{0};
  for (const Row& r : rows) {
    INFO("n = " << r.n);
    milliseconds d = backoff_delay(huge, r.n, 0.5);
    CHECK(d > milliseconds(0));
    CHECK(d <= huge.max);
    CHECK(d >= previous);  // never shrinks as n grows
    previous = d;
  }
  CHECK(backoff_delay(huge, 34, 0.5) == milliseconds(2000LL << 33));
  CHECK(backoff_delay(huge, 64, 0.5) == huge.max);
  CHECK(backoff_delay(huge, std::numeric_limits<uint32_t>::max(), 0.5) == huge.max);

  // Every n up to a few hundred, for a odd-sized base and max.
  RestartPolicy odd;
  odd.base = milliseconds(3);
  odd.max = milliseconds(1001);
  for (uint32_t n = 1; n < 300; ++n) {
    INFO("n = " << n);
    milliseconds d = backoff_delay(odd, n, 0.5);
    REQUIRE(d > milliseconds(0));
    REQUIRE(d <= odd.max);
  }
}

TEST_CASE("backoff_delay: a zero base is 0, a base above max is max, n = 0 counts as 1") {
  RestartPolicy p = default_preset();
  p.base = milliseconds(0);
  CHECK(backoff_delay(p, 1, 0.5) == milliseconds(0));
  CHECK(backoff_delay(p, 1000, 0.5) == milliseconds(0));

  p.base = seconds(90);
  CHECK(backoff_delay(p, 1, 0.5) == seconds(60));

  CHECK(backoff_delay(default_preset(), 0, 0.5) == seconds(2));
}

TEST_CASE("backoff_delay: jitter scales by a factor in [1-j, 1+j], never above max") {
  RestartPolicy p = default_preset();
  p.jitter = 0.5;
  struct Row {
    uint32_t n;
    double random;
    milliseconds expect;
  };
  const std::vector<Row> rows = {
      {1, 0.0, milliseconds(1000)},    // factor 0.5
      {1, 0.5, milliseconds(2000)},    // factor 1.0
      {1, 0.999, milliseconds(2998)},  // factor 1.499
      {3, 0.0, milliseconds(4000)},
      {3, 0.999, milliseconds(11992)},
      {6, 0.0, milliseconds(30000)},  // capped 60 s, then scaled down
      {6, 0.5, milliseconds(60000)},
      {6, 0.999, milliseconds(60000)},  // would be 89.94 s: held at max
      {1000, 0.999, milliseconds(60000)},
  };
  for (const Row& r : rows) {
    INFO("n = " << r.n << ", random = " << r.random);
    CHECK(backoff_delay(p, r.n, r.random) == r.expect);
  }
  // Never above max for any random value, at any n.
  for (uint32_t n : {1u, 5u, 6u, 40u}) {
    for (double u : {0.0, 0.25, 0.5, 0.75, 0.999, 1.0}) {
      milliseconds d = backoff_delay(p, n, u);
      CHECK(d <= p.max);
      CHECK(d > milliseconds(0));
    }
  }
}

TEST_CASE("backoff_delay: out-of-range jitter and random values are clamped") {
  RestartPolicy p = default_preset();
  p.jitter = 1.0;
  // Factor 0 would be a zero delay: a tight restart loop. Held at 1 ms.
  CHECK(backoff_delay(p, 1, 0.0) == milliseconds(1));
  p.jitter = 7.0;  // treated as 1.0
  CHECK(backoff_delay(p, 1, 0.0) == milliseconds(1));
  CHECK(backoff_delay(p, 1, 0.75) == milliseconds(3000));
  p.jitter = 0.5;
  CHECK(backoff_delay(p, 1, -3.0) == milliseconds(1000));
  CHECK(backoff_delay(p, 1, 42.0) == milliseconds(3000));
  CHECK(backoff_delay(p, 1, std::numeric_limits<double>::quiet_NaN()) == milliseconds(2000));
  p.jitter = -0.5;  // no jitter
  CHECK(backoff_delay(p, 1, 0.0) == milliseconds(2000));
}

TEST_CASE("RestartTracker: restart 1 is immediate, restart n waits delay(n - 1), counts") {
  // Never ready: the first failure restarts at once, the second waits base,
  // then doubling up to max.
  RestartTracker t(default_preset());
  TimePoint now{};
  std::vector<milliseconds> delays;
  for (uint32_t i = 1; i <= 8; ++i) {
    RestartTracker::Decision d = t.on_failure(now, kExit);
    CHECK_FALSE(d.give_up);
    CHECK(d.restart_number == i);
    delays.push_back(d.delay);
    // Widely spaced failures still count: the reset window is measured
    // from readiness, not from the last restart attempt (which would let a
    // component crashing once an hour restart at once forever).
    now += std::chrono::hours(1);
  }
  CHECK(delays == seconds_list({0, 2, 4, 8, 16, 32, 60, 60}));
  CHECK(t.consecutive() == 8);
  CHECK(t.total() == 8);
}

TEST_CASE("RestartTracker: the random source is used only with jitter, from restart 2 on") {
  int calls = 0;
  RestartPolicy p = default_preset();
  RestartTracker plain(p, FakeRandom{{0.0}, &calls});
  CHECK(plain.on_failure(TimePoint{}, kExit).delay == milliseconds(0));
  CHECK(plain.on_failure(TimePoint{}, kExit).delay == seconds(2));
  CHECK(calls == 0);

  p.jitter = 0.5;
  RestartTracker jittered(p, FakeRandom{{0.0, 0.5, 0.999}, &calls});
  // Restart 1 is immediate: nothing to jitter, no draw.
  CHECK(jittered.on_failure(TimePoint{}, kExit).delay == milliseconds(0));
  CHECK(calls == 0);
  CHECK(jittered.on_failure(TimePoint{}, kExit).delay == milliseconds(1000));   // 2 s * 0.5
  CHECK(jittered.on_failure(TimePoint{}, kExit).delay == milliseconds(4000));   // 4 s * 1.0
  CHECK(jittered.on_failure(TimePoint{}, kExit).delay == milliseconds(11992));  // 8 s * 1.499
  CHECK(calls == 3);

  // No source at all: the factor is 1.
  RestartTracker none(p);
  CHECK(none.on_failure(TimePoint{}, kExit).delay == milliseconds(0));
  CHECK(none.on_failure(TimePoint{}, kExit).delay == seconds(2));
  CHECK(none.on_failure(TimePoint{}, kExit).delay == seconds(4));
}

TEST_CASE("RestartTracker: max_restarts gives up on the next failure, reset starts over") {
  RestartPolicy p = default_preset();
  p.max_restarts = 3;
  RestartTracker t(p);
  for (uint32_t i = 1; i <= 3; ++i) {
    RestartTracker::Decision d = t.on_failure(TimePoint{}, kExit);
    CHECK_FALSE(d.give_up);
    CHECK(d.restart_number == i);
  }
  RestartTracker::Decision d = t.on_failure(TimePoint{}, kExit);
  CHECK(d.give_up);
  CHECK(d.restart_number == 4);
  CHECK(d.delay == milliseconds(0));
  CHECK(t.consecutive() == 3);
  CHECK(t.total() == 3);
  CHECK(t.on_failure(TimePoint{}, kExit).give_up);  // and stays given up

  t.reset();
  CHECK(t.consecutive() == 0);
  CHECK(t.total() == 3);  // the total survives an operator's start
  d = t.on_failure(TimePoint{}, kExit);
  CHECK_FALSE(d.give_up);
  CHECK(d.restart_number == 1);
  CHECK(d.delay == milliseconds(0));  // a new run: restart 1 is immediate
  d = t.on_failure(TimePoint{}, kExit);
  CHECK(d.restart_number == 2);
  CHECK(d.delay == seconds(2));
}

TEST_CASE(
    "RestartTracker: ready for the reset window starts the count over: immediate, then base") {
  RestartTracker t(default_preset());
  TimePoint now{};
  for (int i = 0; i < 5; ++i) t.on_failure(now, kExit);  // 0, 2, 4, 8, 16 s
  REQUIRE(t.consecutive() == 5);

  t.on_ready(now);
  CHECK(t.ready_since() == now);
  now += std::chrono::minutes(5);  // exactly the window
  RestartTracker::Decision d = t.on_failure(now, kExit);
  CHECK_FALSE(d.give_up);
  CHECK(d.restart_number == 1);
  CHECK(d.delay == milliseconds(0));
  CHECK_FALSE(t.ready_since().has_value());  // a failure ends readiness
  CHECK(t.total() == 6);

  // Crashing again right away: base, then doubling resumes.
  CHECK(t.on_failure(now, kExit).delay == seconds(2));
  CHECK(t.on_failure(now, kExit).delay == seconds(4));
  CHECK(t.on_failure(now, kExit).delay == seconds(8));
  CHECK(t.consecutive() == 4);

  // After reset() (an operator's start) the count starts over the same way:
  // immediate, then base.
  t.reset();
  CHECK(t.on_failure(now, kExit).delay == milliseconds(0));
  CHECK(t.on_failure(now, kExit).delay == seconds(2));
}

TEST_CASE("RestartTracker: ready for less than the window does not reset") {
  RestartTracker t(default_preset());
  TimePoint now{};
  t.on_failure(now, kExit);  // 0 s
  t.on_failure(now, kExit);  // 2 s
  t.on_ready(now);
  now += std::chrono::minutes(5) - milliseconds(1);
  RestartTracker::Decision d = t.on_failure(now, kExit);
  CHECK(d.restart_number == 3);
  CHECK(d.delay == seconds(4));
}

TEST_CASE("RestartTracker: on_not_ready forgets readiness, on_ready restarts the clock") {
  RestartTracker t(default_preset());
  TimePoint now{};
  t.on_failure(now, kExit);
  t.on_ready(now);
  now += std::chrono::hours(1);
  t.on_not_ready();  // e.g. stopped while ready
  CHECK_FALSE(t.ready_since().has_value());
  RestartTracker::Decision d = t.on_failure(now, kExit);
  CHECK(d.restart_number == 2);
  CHECK(d.delay == seconds(2));

  t.on_ready(now);
  now += std::chrono::minutes(1);
  t.on_ready(now);  // became ready again (a new run): measured from here
  now += std::chrono::minutes(4) + seconds(30);
  d = t.on_failure(now, kExit);
  CHECK(d.restart_number == 3);
  CHECK(d.delay == seconds(4));
}

TEST_CASE("RestartTracker: a stable run restores the whole max_restarts budget") {
  RestartPolicy p = default_preset();
  p.max_restarts = 2;
  RestartTracker t(p);
  TimePoint now{};
  t.on_failure(now, kExit);
  t.on_failure(now, kExit);
  t.on_ready(now);
  now += std::chrono::minutes(10);
  RestartTracker::Decision d = t.on_failure(now, kExit);
  CHECK_FALSE(d.give_up);
  CHECK(d.restart_number == 1);
  CHECK(d.delay == milliseconds(0));
  d = t.on_failure(now, kExit);  // restart 2 of 2
  CHECK_FALSE(d.give_up);
  CHECK(d.delay == seconds(2));
  CHECK(t.on_failure(now, kExit).give_up);
}

// The refused-start floor: herd's own prepare/start calls that containerd
// refused wait at least retry::kRefusedStart.delay(n), n the restart number.

TEST_CASE("RestartTracker: with a zero base a refused start still backs off, an exit does not") {
  RestartPolicy zero = default_preset();
  zero.base = milliseconds(0);
  RestartTracker t(zero);
  std::vector<milliseconds> delays;
  for (int i = 0; i < 9; ++i) delays.push_back(t.on_failure(TimePoint{}, kRefused).delay);
  // 100 ms doubling, capped at 5 s.
  CHECK(delays == std::vector<milliseconds>{milliseconds(100), milliseconds(200), milliseconds(400),
                                            milliseconds(800), milliseconds(1600),
                                            milliseconds(3200), milliseconds(5000),
                                            milliseconds(5000), milliseconds(5000)});
  CHECK(t.consecutive() == 9);  // refused starts are restarts like exits

  // The process exiting is the policy's business: at once.
  RestartTracker exits(zero);
  CHECK(exits.on_failure(TimePoint{}, kExit).delay == milliseconds(0));
  CHECK(exits.on_failure(TimePoint{}, kExit).delay == milliseconds(0));
}

TEST_CASE("RestartTracker: the refused-start floor is capped at 5 s, however many failures") {
  RestartPolicy zero = default_preset();
  zero.base = milliseconds(0);
  RestartTracker t(zero);
  RestartTracker::Decision last;
  for (int i = 0; i < 12; ++i) last = t.on_failure(TimePoint{}, kRefused);
  CHECK(last.delay == seconds(5));
  for (int i = 0; i < 100; ++i) last = t.on_failure(TimePoint{}, kRefused);
  CHECK(last.delay == seconds(5));
}

TEST_CASE("RestartTracker: a refused start waits the policy's delay when that is longer") {
  RestartTracker t(default_preset());
  // Restart 1: the policy says at once, the floor 100 ms.
  CHECK(t.on_failure(TimePoint{}, kRefused).delay == milliseconds(100));
  // Restart 2 on: the policy's 2 s, 4 s, 8 s over the floor's 200, 400, 800 ms.
  CHECK(t.on_failure(TimePoint{}, kRefused).delay == seconds(2));
  CHECK(t.on_failure(TimePoint{}, kExit).delay == seconds(4));
  CHECK(t.on_failure(TimePoint{}, kRefused).delay == seconds(8));

  // Jitter may shorten the policy's delay, never below the floor.
  RestartPolicy jittered = default_preset();
  jittered.base = seconds(1);
  jittered.jitter = 1.0;
  int calls = 0;
  RestartTracker j(jittered, FakeRandom{{0.0}, &calls});
  CHECK(j.on_failure(TimePoint{}, kExit).delay == milliseconds(0));  // restart 1, no draw
  CHECK(calls == 0);
  // Restart 2: the policy's 1 s, jittered down to 1 ms; the floor holds 200 ms.
  CHECK(j.on_failure(TimePoint{}, kRefused).delay == milliseconds(200));
  // Restart 3, an exit: no floor, the jittered delay itself (2 s, held at 1 ms).
  CHECK(j.on_failure(TimePoint{}, kExit).delay == milliseconds(1));
  CHECK(calls == 2);
}

TEST_CASE("RestartTracker: the floor's n is the restart number, whatever caused the others") {
  RestartPolicy zero = default_preset();
  zero.base = milliseconds(0);
  RestartTracker t(zero);
  CHECK(t.on_failure(TimePoint{}, kExit).delay == milliseconds(0));       // restart 1
  CHECK(t.on_failure(TimePoint{}, kExit).delay == milliseconds(0));       // restart 2
  CHECK(t.on_failure(TimePoint{}, kRefused).delay == milliseconds(400));  // restart 3
  t.reset();                                                              // an operator's start
  CHECK(t.on_failure(TimePoint{}, kRefused).delay == milliseconds(100));

  // After a stable run the count starts over: restart 1, 100 ms.
  TimePoint now{};
  t.on_ready(now);
  now += std::chrono::minutes(5);
  RestartTracker::Decision d = t.on_failure(now, kRefused);
  CHECK(d.restart_number == 1);
  CHECK(d.delay == milliseconds(100));
}

TEST_CASE("RestartTracker: giving up on a refused start has no delay") {
  RestartPolicy p = default_preset();
  p.base = milliseconds(0);
  p.max_restarts = 2;
  RestartTracker t(p);
  CHECK(t.on_failure(TimePoint{}, kRefused).delay == milliseconds(100));
  CHECK(t.on_failure(TimePoint{}, kRefused).delay == milliseconds(200));
  RestartTracker::Decision d = t.on_failure(TimePoint{}, kRefused);
  CHECK(d.give_up);
  CHECK(d.delay == milliseconds(0));
  CHECK(d.restart_number == 3);
}
