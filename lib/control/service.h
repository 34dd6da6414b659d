// Internal to lib/control: the herd.v1.Control gRPC service, as callback
// reactors on gRPC's threads.
//
// - Unary calls (List, Get, Start/Stop/Restart, Kill, Reload) go through
//   requests.h; each is tracked (shutdown finishes it) and has a server
//   deadline (call_deadline): whoever comes first of the Backend, the
//   deadline and shutdown finishes it.
// - ImportImage takes one of `imports` (RESOURCE_EXHAUSTED at once when
//   none is free) and holds it until both the stream and the Backend's
//   import are done; the upload goes into an ImportUpload in import_dir
//   (writes on gRPC's threads); the deadline (import_deadline) covers the
//   upload and the import. A stream that is cancelled, broken, or ends
//   short of its announced size never reaches the Backend, and its file,
//   unnamed, goes with the reactor.
// - Watch: watch.h. PullImage: pull.h. ListImages, RemoveImage and
//   PruneImages are unary calls as above.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "control/backend.h"
#include "control/calls.h"
#include "herd/v1/control.grpc.pb.h"

namespace herd::control::internal {

struct ServiceConfig {
  ServiceConfig() {}  // user-provided: safe to pass by value anywhere
  Backend* backend = nullptr;
  std::shared_ptr<Tracker> tracker;
  std::shared_ptr<Deadlines> deadlines;
  std::shared_ptr<Slots> watchers;
  std::shared_ptr<Slots> imports;
  std::shared_ptr<Slots> pulls;
  size_t watch_queue_limit = 1000;
  size_t pull_pending_blobs = 1024;
  std::chrono::milliseconds call_deadline{60000};
  std::chrono::milliseconds import_deadline{1800000};
  std::chrono::milliseconds pull_deadline{1800000};
  std::string import_dir;
  uint64_t import_max_bytes = 0;
};

class Service final : public v1::Control::CallbackService {
 public:
  explicit Service(ServiceConfig c) : c_(std::move(c)) {}

  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* ctx, const v1::ListRequest* req,
                                 v1::ListResponse* resp) override;
  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* ctx, const v1::GetRequest* req,
                                v1::GetResponse* resp) override;
  grpc::ServerUnaryReactor* Start(grpc::CallbackServerContext* ctx, const v1::ActionRequest* req,
                                  v1::ActionResponse* resp) override;
  grpc::ServerUnaryReactor* Stop(grpc::CallbackServerContext* ctx, const v1::ActionRequest* req,
                                 v1::ActionResponse* resp) override;
  grpc::ServerUnaryReactor* Restart(grpc::CallbackServerContext* ctx, const v1::ActionRequest* req,
                                    v1::ActionResponse* resp) override;
  grpc::ServerUnaryReactor* Reload(grpc::CallbackServerContext* ctx, const v1::ReloadRequest* req,
                                   v1::ReloadResponse* resp) override;
  grpc::ServerReadReactor<v1::ImportImageRequest>* ImportImage(
      grpc::CallbackServerContext* ctx, v1::ImportImageResponse* resp) override;
  grpc::ServerWriteReactor<v1::WatchEvent>* Watch(grpc::CallbackServerContext* ctx,
                                                  const v1::WatchRequest* req) override;
  grpc::ServerWriteReactor<v1::PullImageEvent>* PullImage(grpc::CallbackServerContext* ctx,
                                                          const v1::PullImageRequest* req) override;
  grpc::ServerUnaryReactor* ListImages(grpc::CallbackServerContext* ctx,
                                       const v1::ListImagesRequest* req,
                                       v1::ListImagesResponse* resp) override;
  grpc::ServerUnaryReactor* RemoveImage(grpc::CallbackServerContext* ctx,
                                        const v1::RemoveImageRequest* req,
                                        v1::RemoveImageResponse* resp) override;
  grpc::ServerUnaryReactor* PruneImages(grpc::CallbackServerContext* ctx,
                                        const v1::PruneImagesRequest* req,
                                        v1::PruneImagesResponse* resp) override;
  grpc::ServerUnaryReactor* Kill(grpc::CallbackServerContext* ctx, const v1::KillRequest* req,
                                 v1::KillResponse* resp) override;

 private:
  template <class Req, class Resp, class Handle>
  grpc::ServerUnaryReactor* unary(const char* what, grpc::CallbackServerContext* ctx,
                                  const Req* req, Resp* resp, Handle handle);

  ServiceConfig c_;
};

}  // namespace herd::control::internal
