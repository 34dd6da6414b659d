// herd::Sha256: SHA-256 (FIPS 180-4), the one digest herd needs (content
// digests, chain ids, spec hashes). herd's own, so herd-logger and herdctl
// need not map OpenSSL's libcrypto. On a CPU with the SHA extensions
// (x86-64 SHA-NI, checked once with cpuid) the blocks go through them:
// about 6x the portable code, which matters for a pull, where herdd hashes
// every byte of every layer as it streams (docs/benchmarks.md, pull).
//
// Thread-safety: a Sha256 is a plain value; sha256_hex is pure.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace herd {

class Sha256 {
 public:
  // kAuto: the SHA extensions when the CPU has them; kPortable: never
  // (tests compare the two).
  enum class Engine { kAuto, kPortable };
  explicit Sha256(Engine engine = Engine::kAuto);
  void update(std::string_view data);
  std::array<uint8_t, 32> finish();  // call once

  // Whether kAuto uses the CPU's SHA extensions on this machine.
  static bool hardware();

 private:
  void blocks(const uint8_t* p, size_t n);
  bool hw_;
  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buf_{};
  size_t buf_len_ = 0;
  uint64_t total_ = 0;  // bytes
};

// Lower-case hex of a digest, 64 characters.
std::string to_hex(const std::array<uint8_t, 32>& digest);
// Lower-case hex of SHA-256(data).
std::string sha256_hex(std::string_view data);

}  // namespace herd
