// Internal to lib/control: one PullImage stream (a server stream of
// progress events, then the result).
//
// - The request is checked first (check_pull: INVALID_ARGUMENT, no
//   Backend call); then the stream takes one of `pulls` (RESOURCE_EXHAUSTED
//   at once when none is free), held until both the stream and the
//   Backend's pull are done, so cancelled pulls still count while they
//   unwind.
// - Bounded whatever the client does: progress waits in a table keyed by
//   blob (kind and digest) that keeps only each blob's latest state, in
//   the order the blobs first waited; at most `pull_pending_blobs` blobs
//   wait (updates of further ones are dropped meanwhile). One write is in
//   flight at a time. The result is sent after every waiting progress
//   event, then the stream ends OK; an error ends it with the Backend's
//   status once the waiting events are sent.
// - The client cancelling (or going away: a failed write), the server
//   deadline (`pull_deadline`, on the Deadlines thread) and shutdown all
//   finish the stream at once and call the Backend's Cancel (also when the
//   Cancel arrives only after the stream ended).
//
// Threads: any (gRPC's threads start it; Backend callbacks may arrive on
// any thread). The reactor is called outside the state's mutex.
#pragma once

#include <grpcpp/grpcpp.h>

#include "control/service.h"
#include "herd/v1/control.pb.h"

namespace herd::control::internal {

grpc::ServerWriteReactor<v1::PullImageEvent>* start_pull(grpc::CallbackServerContext* ctx,
                                                         const v1::PullImageRequest* req,
                                                         const ServiceConfig& c);

}  // namespace herd::control::internal
