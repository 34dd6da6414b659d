// Small helpers shared by the lib/containerd sources (internal; not part of
// the module's interface). Defined in client.cpp.
//
// Thread-safety: both are safe from any thread (random_token uses a
// thread-local engine).
#pragma once

#include <google/protobuf/timestamp.pb.h>

#include <chrono>
#include <string>

namespace herd::containerd::detail {

// A protobuf Timestamp as a system_clock time point; one outside what
// system_clock can hold (Go's zero time, year 1, say) gives the epoch.
std::chrono::system_clock::time_point to_time_point(const google::protobuf::Timestamp& ts);

// 16 random hex digits: unique lease ids, content refs, snapshot keys and
// the events stream's sync nonces.
std::string random_token();

}  // namespace herd::containerd::detail
