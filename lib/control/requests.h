// The control API's request handling without a grpc::Server: checks each
// request and turns it into a Backend call, whose completion becomes the
// response. lib/control/service.h wraps these in gRPC reactors; the fuzz
// target (tests/fuzz/control_fuzz.cpp) drives them with parsed bytes.
//
// - A name (Get, Start/Stop/Restart) is required and at most kMaxNameBytes;
//   otherwise INVALID_ARGUMENT and the Backend is not called.
// - An image reference (PullImage, RemoveImage) is required and at most
//   kMaxReferenceBytes; otherwise INVALID_ARGUMENT, no Backend call.
// - Start, Stop, Restart, Reload, RemoveImage and PruneImages are logged
//   at info when received, names through printable().
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
// Kill: a name as above and a signal in 1..kMaxSignal, else
// INVALID_ARGUMENT naming the field. Logged at info when received.
void handle_kill(Backend& backend, const v1::KillRequest& req, Done<v1::KillResponse> done);
void handle_list_images(Backend& backend, const v1::ListImagesRequest& req,
                        Done<v1::ListImagesResponse> done);
void handle_remove_image(Backend& backend, const v1::RemoveImageRequest& req,
                         Done<v1::RemoveImageResponse> done);
void handle_prune_images(Backend& backend, const v1::PruneImagesRequest& req,
                         Done<v1::PruneImagesResponse> done);
// OK, or INVALID_ARGUMENT: an empty reference, or one longer than
// kMaxReferenceBytes.
grpc::Status check_reference(std::string_view reference);
// PullImage: only the request's check (the stream is pull.h's).
grpc::Status check_pull(const v1::PullImageRequest& req);
// Watch: only the request's check (the stream is service.h's).
grpc::Status check_watch(const v1::WatchRequest& req);

const char* verb_name(Verb verb);

}  // namespace herd::control
