// Conversions between herd::control::ComponentView (backend.h) and its
// wire form, herd.v1.ComponentStatus (proto/herd/v1/control.proto), and
// of the image types (PullProgress, PullSummary, ImageView) to theirs.
//
// Times travel as int64 unix nanoseconds; an empty optional (or the epoch
// for changed_at) is 0 on the wire and 0 reads back as empty. The state
// travels as its name, unchanged both ways (herdctl shows the wire string
// itself, so a newer herdd with more states still displays right).
//
// Thread-safety: pure functions.
#pragma once

#include <chrono>
#include <cstdint>

#include "control/backend.h"
#include "herd/v1/control.pb.h"

namespace herd::control {

herd::v1::ComponentStatus to_proto(const ComponentView& s);
ComponentView from_proto(const herd::v1::ComponentStatus& p);

herd::v1::BlobProgress to_proto(const PullProgress& p);
herd::v1::PullResult to_proto(const PullSummary& s);
herd::v1::ImageInfo to_proto(const ImageView& v);

int64_t to_unix_nano(std::chrono::system_clock::time_point t);
std::chrono::system_clock::time_point from_unix_nano(int64_t ns);

}  // namespace herd::control
