// Conversions between herd::supervise::ComponentStatus and its wire form,
// herd.v1.ComponentStatus (proto/herd/v1/control.proto).
//
// Times travel as int64 unix nanoseconds; an empty optional (or the epoch
// for changed_at) is 0 on the wire and 0 reads back as empty. The state
// travels as supervise::to_string(State); a state name this build does not
// know reads back as kPending with `known_state` false (herdctl shows the
// wire string itself, so a newer herdd still displays right).
//
// Thread-safety: pure functions.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

#include "herd/v1/control.pb.h"
#include "supervise/component.h"

namespace herd::control {

herd::v1::ComponentStatus to_proto(const supervise::ComponentStatus& s);
supervise::ComponentStatus from_proto(const herd::v1::ComponentStatus& p,
                                      bool* known_state = nullptr);

// The State named by supervise::to_string(State), if any.
std::optional<supervise::State> state_from_string(std::string_view s);

int64_t to_unix_nano(std::chrono::system_clock::time_point t);
std::chrono::system_clock::time_point from_unix_nano(int64_t ns);

}  // namespace herd::control
