// herd::Sha256: SHA-256 (FIPS 180-4), the one digest herd needs (content
// digests, chain ids, spec hashes). herd's own, so herdd need not map
// OpenSSL's libcrypto: it talks to containerd over a unix socket without
// TLS and links gRPC's TLS-free flavour (see docs/benchmarks.md, RSS).
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
  Sha256();
  void update(std::string_view data);
  std::array<uint8_t, 32> finish();  // call once

 private:
  void block(const uint8_t* p);
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
