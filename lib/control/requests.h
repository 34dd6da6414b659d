// The control API's request handling without a grpc::Server: checks each
// request and turns it into a Backend call, whose completion becomes the
// response. lib/control/service.h wraps these in gRPC reactors; the fuzz
// target (tests/fuzz/control_fuzz.cpp) drives them with parsed bytes.
//
// - A name (Get, Start/Stop/Restart) is required and at most kMaxNameBytes;
//   otherwise INVALID_ARGUMENT and the Backend is not called.
// - Start, Stop, Restart and Reload are logged at info when received, the
//   name through printable().
// - Every `done` is called exactly once, on whatever thread the Backend
//   completes on (or at once, on the caller's, when the request is
//   refused).
//
// Thread-safety: free functions; `backend` must be safe to call from the
// calling thread (backend.h says every method is).
#pragma once

#include <functional>
#include <string_view>

#include <grpcpp/support/status.h>

#include "control/backend.h"
#include "herd/v1/control.pb.h"

namespace herd::control {

grpc::Status to_grpc(const Status& s);

// OK, or INVALID_ARGUMENT naming the field: empty (when required) or
// longer than kMaxNameBytes.
grpc::Status check_name(std::string_view field, std::string_view name, bool required);

template <class Resp>
using Done = std::function<void(grpc::Status, Resp)>;

void handle_list(Backend& backend, const v1::ListRequest& req, Done<v1::ListResponse> done);
void handle_get(Backend& backend, const v1::GetRequest& req, Done<v1::GetResponse> done);
void handle_act(Backend& backend, Verb verb, const v1::ActionRequest& req,
                Done<v1::ActionResponse> done);
void handle_reload(Backend& backend, const v1::ReloadRequest& req, Done<v1::ReloadResponse> done);
// Watch: only the request's check (the stream is service.h's).
grpc::Status check_watch(const v1::WatchRequest& req);

const char* verb_name(Verb verb);

}  // namespace herd::control
