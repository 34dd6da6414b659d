#include "config/duration.h"

#include <catch2/catch.hpp>

using herd::config::Duration;
using herd::config::format_duration;
using herd::config::parse_duration;

namespace {

// The message of a failed parse, or "" when the parse succeeded.
std::string parse_error(std::string_view text) {
  auto d = parse_duration(text);
  return d.ok() ? std::string() : d.status().message();
}

}  // namespace

TEST_CASE("parse_duration: accepts units, combinations and decimals") {
  struct Case {
    const char* text;
    int64_t millis;
  };
  const Case cases[] = {
      {"0", 0},
      {"0s", 0},
      {"0ms", 0},
      {"500ms", 500},
      {"2s", 2'000},
      {"5m", 300'000},
      {"1h", 3'600'000},
      {"1m30s", 90'000},
      {"1h30m", 5'400'000},
      {"1h2m3s4ms", 3'723'004},
      {"1h1s", 3'601'000},
      {"1.5s", 1'500},
      {"0.5s", 500},
      {"1.25m", 75'000},
      {"0.001s", 1},
      {"1.000s", 1'000},
      {"1.5h", 5'400'000},
      {"0.000010h", 36},  // trailing zeros do not count as precision
  };
  for (const Case& c : cases) {
    INFO(c.text);
    auto d = parse_duration(c.text);
    REQUIRE(d.ok());
    CHECK(d->count() == c.millis);
  }
}

TEST_CASE("parse_duration: rejects malformed input with a reason") {
  struct Case {
    const char* text;
    const char* fragment;
  };
  const Case cases[] = {
      {"", "empty"},
      {"30", "missing unit"},
      {"1.5", "missing unit"},
      {"10x", "unknown unit \"x\""},
      {"10sec", "unknown unit \"sec\""},
      {"-1s", "must not be negative"},
      {" 1s", "unexpected character ' '"},
      {"1s ", "unexpected character ' '"},
      {"1 s", "unexpected character ' '"},
      {"+1s", "unexpected character '+'"},
      {"s", "a number must come before each unit"},
      {".5s", "malformed number"},
      {"1.s", "malformed number"},
      {"1s5m", "decreasing order"},
      {"1s1s", "decreasing order"},
      {"1.0005s", "finer than the 1ms resolution"},
      {"0.5ms", "finer than the 1ms resolution"},
      {"0.0000001h", "finer than the 1ms resolution"},
      {"99999999999999999999h", "too large"},
      {"9999999999999999s", "too large"},
  };
  for (const Case& c : cases) {
    INFO(c.text);
    const std::string message = parse_error(c.text);
    CHECK_THAT(message, Catch::Contains(c.fragment));
    CHECK_THAT(message, Catch::Contains("invalid duration \"" + std::string(c.text) + "\""));
  }
  CHECK(parse_duration("10x").status().code() == herd::Code::kInvalidArgument);
}

TEST_CASE("format_duration: canonical form without zero parts") {
  CHECK(format_duration(Duration(0)) == "0s");
  CHECK(format_duration(Duration(500)) == "500ms");
  CHECK(format_duration(Duration(1)) == "1ms");
  CHECK(format_duration(Duration(1'000)) == "1s");
  CHECK(format_duration(Duration(1'500)) == "1.5s");
  CHECK(format_duration(Duration(1'005)) == "1.005s");
  CHECK(format_duration(Duration(1'050)) == "1.05s");
  CHECK(format_duration(Duration(90'000)) == "1m30s");
  CHECK(format_duration(Duration(60'000)) == "1m");
  CHECK(format_duration(Duration(60'500)) == "1m0.5s");
  CHECK(format_duration(Duration(3'600'000)) == "1h");
  CHECK(format_duration(Duration(3'601'000)) == "1h1s");
  CHECK(format_duration(Duration(90'000'000)) == "25h");
  CHECK(format_duration(Duration(-1'500)) == "-1.5s");
}

TEST_CASE("format_duration and parse_duration are inverses") {
  // A spread of values across every unit boundary.
  for (int64_t ms : {0LL, 1LL, 999LL, 1'000LL, 1'001LL, 59'999LL, 60'000LL, 61'001LL, 3'599'999LL,
                     3'600'000LL, 3'661'001LL, 86'400'000LL, 123'456'789LL}) {
    INFO(ms);
    const std::string text = format_duration(Duration(ms));
    auto back = parse_duration(text);
    REQUIRE(back.ok());
    CHECK(back->count() == ms);
  }
  for (int64_t ms = 0; ms < 200'000; ms += 7) {
    auto back = parse_duration(format_duration(Duration(ms)));
    REQUIRE(back.ok());
    REQUIRE(back->count() == ms);
  }
}

TEST_CASE("parse_duration: at most 10 years, whatever the digits") {
  using herd::config::kMaxDuration;
  CHECK(kMaxDuration == std::chrono::hours(87600));
  auto max = parse_duration("87600h");
  REQUIRE(max.ok());
  CHECK(*max == kMaxDuration);
  CHECK(parse_duration("87599h59m59.999s").ok());
  const char* too_long[] = {
      "87600h0.001s",
      "87601h",
      "175200h",
      "5256001m",
      "315360000001ms",
      "315360000.001s",
      "9223372036854775807ms",  // fits int64, still too long
      "9223372036854775808ms",  // does not fit int64
      "18446744073709551617h",  // wraps uint64
      "99999999999999999999999999999999999999999999999999h",
  };
  for (const char* text : too_long) {
    INFO(text);
    const std::string message = parse_error(text);
    CHECK_THAT(message, Catch::Contains("longer than the maximum of 87600h (10 years)"));
    CHECK_THAT(message, Catch::Contains("invalid duration \"" + std::string(text).substr(0, 60)));
  }
  // A million digits: refused (not wrapped around), the text in the
  // message cut short.
  const std::string digits(1'000'000, '9');
  const std::string message = parse_error(digits + "ms");
  CHECK_THAT(message, Catch::Contains("longer than the maximum"));
  CHECK(message.size() < 200);
  // Leading zeros do not count.
  auto zeros = parse_duration(std::string(100'000, '0') + "1s");
  REQUIRE(zeros.ok());
  CHECK(*zeros == std::chrono::seconds(1));
}

TEST_CASE("parse_duration: exponents, signs and NaN-like text are errors") {
  struct Case {
    const char* text;
    const char* fragment;
  };
  const Case cases[] = {
      {"1e400s", "unknown unit \"e\""},
      {"1E3s", "unknown unit \"E\""},
      {"-0s", "must not be negative"},
      {"-9223372036854775808ms", "must not be negative"},
      {"NaN", "a number must come before each unit"},
      {"nans", "a number must come before each unit"},
      {"inf", "a number must come before each unit"},
      {"Infinity", "a number must come before each unit"},
      {"0x10s", "unknown unit \"x\""},
      {"1s-1ms", "unexpected character '-'"},
  };
  for (const Case& c : cases) {
    INFO(c.text);
    CHECK_THAT(parse_error(c.text), Catch::Contains(c.fragment));
  }
}

TEST_CASE("parse_duration: hostile bytes are escaped and cut in the message") {
  CHECK_THAT(parse_error("1s\nFORGED=1"), Catch::Contains("invalid duration \"1s\\x0aFORGED=1\""));
  CHECK_THAT(parse_error("1\"s"), Catch::Contains("invalid duration \"1\\\"s\""));
  CHECK_THAT(parse_error("1\xff"), Catch::Contains("unexpected character '\\xff'"));
  const std::string letters(100'000, 'x');
  const std::string message = parse_error("1" + letters);
  CHECK_THAT(message, Catch::Contains("unknown unit \"xxx"));
  CHECK(message.size() < 300);
}
