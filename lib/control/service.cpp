#include "control/service.h"

#include <optional>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "common/log_text.h"
#include "control/import_upload.h"
#include "control/limits.h"
#include "control/pull.h"
#include "control/requests.h"
#include "control/socket.h"
#include "control/watch.h"

namespace herd::control::internal {

namespace {

using ImportReader = grpc::ServerReadReactor<v1::ImportImageRequest>;
using ImportCall = UnaryCall<v1::ImportImageResponse, ImportReader>;

// One import slot, given back when the last holder (the stream, the
// Backend's completion) lets go.
class SlotHold {
 public:
  explicit SlotHold(std::shared_ptr<Slots> s) : slots_(std::move(s)) {}
  ~SlotHold() { slots_->give_back(); }
  SlotHold(const SlotHold&) = delete;
  SlotHold& operator=(const SlotHold&) = delete;

 private:
  std::shared_ptr<Slots> slots_;
};

LogLimiter& import_refusal_log() {
  static LogLimiter log(kRefusalLogInterval);
  return log;
}
std::mutex import_refusal_mu;

class ImportReactor final : public ImportReader {
 public:
  ImportReactor(grpc::CallbackServerContext* ctx, v1::ImportImageResponse* resp,
                const ServiceConfig& c)
      : ctx_(ctx), c_(c), call_(std::make_shared<ImportCall>(this, resp, c.tracker, c.deadlines)) {
    if (!c_.tracker->add(call_)) {
      call_->abort(shutting_down());
      return;
    }
    call_->set_deadline_id(c_.deadlines->add(
        Deadlines::Clock::now() + c_.import_deadline, std::weak_ptr<Abortable>(call_),
        server_deadline_exceeded("the import", c_.import_deadline)));
    if (!c_.imports->try_take()) {
      uint64_t held = 0;
      {
        std::lock_guard<std::mutex> l(import_refusal_mu);
        if (import_refusal_log().allow(&held)) {
          spdlog::warn(
              "control: refused an import: {} run already ({} more refused since the "
              "last warning)",
              c_.imports->max(), held);
        }
      }
      call_->abort(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                "herdd runs at most " + std::to_string(c_.imports->max()) +
                                    " imports at once; try again when one has finished"));
      return;
    }
    slot_ = std::make_shared<SlotHold>(c_.imports);
    Result<ImportUpload> up = ImportUpload::create(c_.import_dir, c_.import_max_bytes);
    if (!up.ok()) {
      spdlog::warn("control: import: {}", up.status().message());
      call_->abort(to_grpc(up.status()));
      return;
    }
    upload_.emplace(std::move(up).value());
    StartRead(&req_);
  }

  void OnReadDone(bool ok) override {
    if (call_->finished() || !upload_) return;
    if (ok) {
      Status s = upload_->feed(req_);
      req_.Clear();
      if (!s.ok()) {
        spdlog::warn("control: import refused: {}", s.message());
        call_->abort(to_grpc(s));
        return;
      }
      StartRead(&req_);
      return;
    }
    if (ctx_->IsCancelled()) {
      call_->abort(grpc::Status(grpc::StatusCode::CANCELLED, "the client cancelled the import"));
      return;
    }
    Result<ImportUpload::Archive> a = upload_->finish();
    upload_.reset();
    if (!a.ok()) {
      spdlog::warn("control: import refused: {}", a.status().message());
      call_->abort(to_grpc(a.status()));
      return;
    }
    spdlog::info("control: import of {} received ({} bytes); importing", a->name, a->bytes);
    std::shared_ptr<ImportCall> call = call_;
    std::shared_ptr<SlotHold> slot = slot_;
    c_.backend->import_image(
        std::move(a->file), a->name, [call, slot](Result<std::vector<std::string>> r) {
          v1::ImportImageResponse out;
          if (r.ok()) {
            for (const std::string& n : *r) out.add_images(n);
          }
          call->complete(r.ok() ? grpc::Status::OK : to_grpc(r.status()), std::move(out));
        });
  }

  void OnCancel() override {
    call_->abort(grpc::Status(grpc::StatusCode::CANCELLED, "the client cancelled the import"));
  }

  void OnDone() override { delete this; }

 private:
  grpc::CallbackServerContext* ctx_;
  const ServiceConfig& c_;
  std::shared_ptr<ImportCall> call_;
  std::shared_ptr<SlotHold> slot_;
  std::optional<ImportUpload> upload_;  // gRPC's reactions only (one at a time)
  v1::ImportImageRequest req_;
};

}  // namespace

template <class Req, class Resp, class Handle>
grpc::ServerUnaryReactor* Service::unary(const char* what, grpc::CallbackServerContext* ctx,
                                         const Req* req, Resp* resp, Handle handle) {
  mark(ctx);
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  auto call = std::make_shared<UnaryCall<Resp>>(reactor, resp, c_.tracker, c_.deadlines);
  if (!c_.tracker->add(call)) {
    call->abort(shutting_down());
    return reactor;
  }
  call->set_deadline_id(c_.deadlines->add(Deadlines::Clock::now() + c_.call_deadline,
                                          std::weak_ptr<Abortable>(call),
                                          server_deadline_exceeded(what, c_.call_deadline)));
  handle(*req, [call](grpc::Status s, Resp r) { call->complete(std::move(s), std::move(r)); });
  return reactor;
}

grpc::ServerUnaryReactor* Service::List(grpc::CallbackServerContext* ctx,
                                        const v1::ListRequest* req, v1::ListResponse* resp) {
  return unary("List", ctx, req, resp, [this](const v1::ListRequest& r, Done<v1::ListResponse> d) {
    handle_list(*c_.backend, r, std::move(d));
  });
}

grpc::ServerUnaryReactor* Service::Get(grpc::CallbackServerContext* ctx, const v1::GetRequest* req,
                                       v1::GetResponse* resp) {
  return unary("Get", ctx, req, resp, [this](const v1::GetRequest& r, Done<v1::GetResponse> d) {
    handle_get(*c_.backend, r, std::move(d));
  });
}

grpc::ServerUnaryReactor* Service::Start(grpc::CallbackServerContext* ctx,
                                         const v1::ActionRequest* req, v1::ActionResponse* resp) {
  return unary("Start", ctx, req, resp,
               [this](const v1::ActionRequest& r, Done<v1::ActionResponse> d) {
                 handle_act(*c_.backend, Verb::kStart, r, std::move(d));
               });
}

grpc::ServerUnaryReactor* Service::Stop(grpc::CallbackServerContext* ctx,
                                        const v1::ActionRequest* req, v1::ActionResponse* resp) {
  return unary("Stop", ctx, req, resp,
               [this](const v1::ActionRequest& r, Done<v1::ActionResponse> d) {
                 handle_act(*c_.backend, Verb::kStop, r, std::move(d));
               });
}

grpc::ServerUnaryReactor* Service::Restart(grpc::CallbackServerContext* ctx,
                                           const v1::ActionRequest* req, v1::ActionResponse* resp) {
  return unary("Restart", ctx, req, resp,
               [this](const v1::ActionRequest& r, Done<v1::ActionResponse> d) {
                 handle_act(*c_.backend, Verb::kRestart, r, std::move(d));
               });
}

grpc::ServerUnaryReactor* Service::Reload(grpc::CallbackServerContext* ctx,
                                          const v1::ReloadRequest* req, v1::ReloadResponse* resp) {
  return unary("Reload", ctx, req, resp,
               [this](const v1::ReloadRequest& r, Done<v1::ReloadResponse> d) {
                 handle_reload(*c_.backend, r, std::move(d));
               });
}

grpc::ServerReadReactor<v1::ImportImageRequest>* Service::ImportImage(
    grpc::CallbackServerContext* ctx, v1::ImportImageResponse* resp) {
  mark(ctx);
  return new ImportReactor(ctx, resp, c_);
}

grpc::ServerWriteReactor<v1::WatchEvent>* Service::Watch(grpc::CallbackServerContext* ctx,
                                                         const v1::WatchRequest* req) {
  return start_watch(ctx, req, c_.backend, c_.tracker, c_.watchers, c_.watch_queue_limit);
}

grpc::ServerWriteReactor<v1::PullImageEvent>* Service::PullImage(grpc::CallbackServerContext* ctx,
                                                                 const v1::PullImageRequest* req) {
  return start_pull(ctx, req, c_);
}

grpc::ServerUnaryReactor* Service::ListImages(grpc::CallbackServerContext* ctx,
                                              const v1::ListImagesRequest* req,
                                              v1::ListImagesResponse* resp) {
  return unary("ListImages", ctx, req, resp,
               [this](const v1::ListImagesRequest& r, Done<v1::ListImagesResponse> d) {
                 handle_list_images(*c_.backend, r, std::move(d));
               });
}

grpc::ServerUnaryReactor* Service::RemoveImage(grpc::CallbackServerContext* ctx,
                                               const v1::RemoveImageRequest* req,
                                               v1::RemoveImageResponse* resp) {
  return unary("RemoveImage", ctx, req, resp,
               [this](const v1::RemoveImageRequest& r, Done<v1::RemoveImageResponse> d) {
                 handle_remove_image(*c_.backend, r, std::move(d));
               });
}

grpc::ServerUnaryReactor* Service::PruneImages(grpc::CallbackServerContext* ctx,
                                               const v1::PruneImagesRequest* req,
                                               v1::PruneImagesResponse* resp) {
  return unary("PruneImages", ctx, req, resp,
               [this](const v1::PruneImagesRequest& r, Done<v1::PruneImagesResponse> d) {
                 handle_prune_images(*c_.backend, r, std::move(d));
               });
}

grpc::ServerUnaryReactor* Service::Kill(grpc::CallbackServerContext* ctx,
                                        const v1::KillRequest* req, v1::KillResponse* resp) {
  return unary("Kill", ctx, req, resp, [this](const v1::KillRequest& r, Done<v1::KillResponse> d) {
    handle_kill(*c_.backend, r, std::move(d));
  });
}

}  // namespace herd::control::internal
