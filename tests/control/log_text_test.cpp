// herd::printable (common/log_text.h): what a client's string looks like
// in a log line or an error message.
#include <catch2/catch.hpp>
#include <string>

#include "common/log_text.h"

using herd::printable;

TEST_CASE("printable keeps plain text and valid UTF-8 as it is") {
  CHECK(printable("etcd") == "etcd");
  CHECK(printable("") == "");
  CHECK(printable("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x91") ==
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x91");
  CHECK(printable("a 'quoted' \"name\"") == "a 'quoted' \"name\"");
}

TEST_CASE("printable escapes newlines, control characters and backslashes") {
  CHECK(printable("web\nherdd[1]: forged line") == "web\\nherdd[1]: forged line");
  CHECK(printable("a\rb\tc") == "a\\rb\\tc");
  CHECK(printable(std::string("nul\0x", 5)) == "nul\\x00x");
  CHECK(printable("\x1b[31mred") == "\\x1b[31mred");
  CHECK(printable("del\x7f") == "del\\x7f");
  CHECK(printable("back\\slash") == "back\\\\slash");
  // The escape of a backslash cannot be confused with an escape.
  CHECK(printable("\\n") == "\\\\n");
}

TEST_CASE("printable escapes bytes that are not UTF-8 as \\xNN") {
  CHECK(printable("\xff") == "\\xff");
  CHECK(printable("a\x80z") == "a\\x80z");                         // a lone continuation byte
  CHECK(printable("\xc3") == "\\xc3");                             // truncated at the end
  CHECK(printable("\xe2\x82z") == "\\xe2\\x82z");                  // truncated in the middle
  CHECK(printable("\xc0\xaf") == "\\xc0\\xaf");                    // overlong '/'
  CHECK(printable("\xe0\x80\xaf") == "\\xe0\\x80\\xaf");           // overlong, 3 bytes
  CHECK(printable("\xed\xa0\x80") == "\\xed\\xa0\\x80");           // a UTF-16 surrogate
  CHECK(printable("\xf4\x90\x80\x80") == "\\xf4\\x90\\x80\\x80");  // above U+10FFFF
}

TEST_CASE("printable escapes C1 controls, line separators and bidi overrides") {
  CHECK(printable("a\xc2\x85z") == "a\\u0085z");      // NEL
  CHECK(printable("a\xe2\x80\xa8z") == "a\\u2028z");  // LINE SEPARATOR
  CHECK(printable("a\xe2\x80\xaez") == "a\\u202ez");  // RIGHT-TO-LEFT OVERRIDE
  CHECK(printable("a\xe2\x81\xa6z") == "a\\u2066z");  // LEFT-TO-RIGHT ISOLATE
  CHECK(printable("\xc2\xa0") == "\xc2\xa0");         // NBSP stays
}

TEST_CASE("printable truncates at max bytes on a boundary and marks it") {
  CHECK(printable("abcdef", 6) == "abcdef");
  CHECK(printable("abcdefg", 6) == "abcdef\u2026");
  CHECK(printable(std::string(10000, 'x')).size() == 256 + 3);
  // An escape is never cut in half.
  CHECK(printable("abcde\n", 6) == "abcde\u2026");
  CHECK(printable("abcd\n", 6) == "abcd\\n");
  // Nor is a UTF-8 character.
  CHECK(printable("abcde\xc3\xa9", 6) == "abcde\u2026");
  CHECK(printable("x", 0) == "\u2026");
}

TEST_CASE("printable never lets a control byte through, whatever the input") {
  // Every single byte and every pair of bytes.
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      std::string in;
      in += static_cast<char>(a);
      in += static_cast<char>(b);
      std::string out = printable(in);
      for (unsigned char c : out) {
        INFO("input bytes " << a << " " << b);
        REQUIRE(c >= 0x20);
        REQUIRE(c != 0x7f);
      }
    }
  }
}
