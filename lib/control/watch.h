// Internal to lib/control: one Watch stream (server.h's contract: watch
// registered before the list is asked for, the snapshot with initial =
// true, then queued changes in order; a queue beyond queue_limit ends it
// with RESOURCE_EXHAUSTED; unwatch exactly once).
//
// start_watch takes one of `watchers` for the stream's life; when none is
// free the stream ends at once with RESOURCE_EXHAUSTED (no Backend call).
// Watch has no server deadline: the client ends it.
//
// Threads: any (gRPC's threads start it; Backend callbacks may arrive on
// any thread).
#pragma once

#include <memory>

#include <grpcpp/grpcpp.h>

#include "control/backend.h"
#include "control/calls.h"
#include "herd/v1/control.pb.h"

namespace herd::control::internal {

grpc::ServerWriteReactor<v1::WatchEvent>* start_watch(grpc::CallbackServerContext* ctx,
                                                      const v1::WatchRequest* req, Backend* backend,
                                                      std::shared_ptr<Tracker> tracker,
                                                      std::shared_ptr<Slots> watchers,
                                                      size_t queue_limit);

}  // namespace herd::control::internal
