// SHA-256 against FIPS 180-4 / NIST test vectors, and against
// sha256sum for inputs that cross block boundaries in odd ways.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <string>

#include "common/sha256.h"

using herd::Sha256;
using herd::sha256_hex;

TEST_CASE("sha256 matches the NIST vectors", "[unit]") {
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(sha256_hex(std::string(1000000, 'a')) ==
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("sha256 is the same whatever the update sizes", "[unit]") {
  std::string data;
  for (int i = 0; i < 1000; ++i) data += static_cast<char>(i * 7 + 3);
  const std::string whole = sha256_hex(data);
  for (size_t step : {1u, 3u, 55u, 56u, 63u, 64u, 65u, 127u}) {
    Sha256 s;
    for (size_t i = 0; i < data.size(); i += step) s.update(std::string_view(data).substr(i, step));
    INFO("step " << step);
    CHECK(herd::to_hex(s.finish()) == whole);
  }
  // Lengths around the padding boundary, against coreutils' sha256sum.
  for (size_t len : {55u, 56u, 57u, 63u, 64u, 65u, 119u, 120u}) {
    const std::string in(len, 'x');
    std::string cmd = "printf '%s' '" + in + "' | sha256sum";
    FILE* f = ::popen(cmd.c_str(), "r");
    REQUIRE(f);
    char buf[65] = {};
    REQUIRE(fread(buf, 1, 64, f) == 64);
    ::pclose(f);
    INFO("length " << len);
    CHECK(sha256_hex(in) == std::string(buf, 64));
  }
}

TEST_CASE("sha256: the CPU's SHA extensions and the portable code agree", "[unit]") {
  INFO("SHA extensions on this CPU: " << (Sha256::hardware() ? "yes" : "no"));
  // Lengths and update splits that cover one block, many blocks in one
  // update, a partial buffer topped up, and the padding boundaries.
  std::string data;
  uint32_t x = 12345;
  for (int i = 0; i < 70000; ++i) {
    x = x * 1103515245u + 12345u;
    data += static_cast<char>(x >> 24);
  }
  for (size_t len : {0u, 1u, 55u, 56u, 64u, 65u, 127u, 128u, 1000u, 4096u, 65537u, 70000u}) {
    for (size_t step : {1u, 7u, 64u, 200u, 100000u}) {
      if (step == 1 && len > 5000) continue;
      Sha256 hw, sw(Sha256::Engine::kPortable);
      for (size_t i = 0; i < len; i += step) {
        const auto part = std::string_view(data).substr(i, std::min(step, len - i));
        hw.update(part);
        sw.update(part);
      }
      INFO("length " << len << ", step " << step);
      CHECK(herd::to_hex(hw.finish()) == herd::to_hex(sw.finish()));
    }
  }
  Sha256 sw(Sha256::Engine::kPortable);
  sw.update("abc");
  CHECK(herd::to_hex(sw.finish()) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
