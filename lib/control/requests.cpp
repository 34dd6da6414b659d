#include "control/requests.h"

#include <string>
#include <utility>

#include <spdlog/spdlog.h>

#include "common/log_text.h"
#include "control/convert.h"
#include "control/limits.h"

namespace herd::control {

namespace v1 = herd::v1;

grpc::Status to_grpc(const Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(static_cast<int>(s.code())), s.message());
}

grpc::Status check_name(std::string_view field, std::string_view name, bool required) {
  if (name.empty() && required) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "a component name is required (" + std::string(field) + ")");
  }
  if (name.size() > kMaxNameBytes) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        std::string(field) + ": a component name of " +
                            std::to_string(name.size()) + " bytes is longer than the " +
                            std::to_string(kMaxNameBytes) + " herdd accepts ('" +
                            printable(name, 64) + "')");
  }
  return grpc::Status::OK;
}

const char* verb_name(Verb verb) {
  switch (verb) {
    case Verb::kStart:
      return "start";
    case Verb::kStop:
      return "stop";
    case Verb::kRestart:
      return "restart";
  }
  return "?";
}

void handle_list(Backend& backend, const v1::ListRequest&, Done<v1::ListResponse> done) {
  backend.list([done = std::move(done)](Backend::StatusList list) {
    v1::ListResponse out;
    for (const ComponentView& s : list) *out.add_components() = to_proto(s);
    done(grpc::Status::OK, std::move(out));
  });
}

void handle_get(Backend& backend, const v1::GetRequest& req, Done<v1::GetResponse> done) {
  if (grpc::Status s = check_name("name", req.name(), true); !s.ok()) {
    done(s, v1::GetResponse());
    return;
  }
  backend.get(req.name(), [done = std::move(done)](Result<ComponentView> r) {
    v1::GetResponse out;
    if (!r.ok()) {
      done(to_grpc(r.status()), std::move(out));
      return;
    }
    *out.mutable_component() = to_proto(*r);
    done(grpc::Status::OK, std::move(out));
  });
}

void handle_act(Backend& backend, Verb verb, const v1::ActionRequest& req,
                Done<v1::ActionResponse> done) {
  if (grpc::Status s = check_name("name", req.name(), true); !s.ok()) {
    done(s, v1::ActionResponse());
    return;
  }
  spdlog::info("control: {} '{}' requested", verb_name(verb), printable(req.name()));
  backend.act(verb, req.name(),
              [done = std::move(done)](Status s) { done(to_grpc(s), v1::ActionResponse()); });
}

void handle_kill(Backend& backend, const v1::KillRequest& req, Done<v1::KillResponse> done) {
  if (grpc::Status s = check_name("name", req.name(), true); !s.ok()) {
    done(s, v1::KillResponse());
    return;
  }
  if (req.signal() < 1 || req.signal() > kMaxSignal) {
    done(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                      "signal: " + std::to_string(req.signal()) + " is not a signal (1.." +
                          std::to_string(kMaxSignal) + ")"),
         v1::KillResponse());
    return;
  }
  spdlog::info("control: kill -{} '{}' requested", req.signal(), printable(req.name()));
  backend.kill(req.name(), static_cast<int>(req.signal()),
               [done = std::move(done)](Status s) { done(to_grpc(s), v1::KillResponse()); });
}

void handle_reload(Backend& backend, const v1::ReloadRequest&, Done<v1::ReloadResponse> done) {
  spdlog::info("control: reload requested");
  backend.reload([done = std::move(done)](ReloadResult r) {
    v1::ReloadResponse out;
    out.set_ok(r.status.ok());
    for (const std::string& e : r.errors) out.add_errors(e);
    if (!r.status.ok() && r.errors.empty()) out.add_errors(r.status.message());
    for (const std::string& n : r.added) out.add_added(n);
    for (const std::string& n : r.removed) out.add_removed(n);
    for (const std::string& n : r.changed) out.add_changed(n);
    for (const std::string& n : r.unchanged) out.add_unchanged(n);
    done(grpc::Status::OK, std::move(out));
  });
}

grpc::Status check_watch(const v1::WatchRequest& req) {
  return check_name("name", req.name(), false);
}

grpc::Status check_reference(std::string_view reference) {
  if (reference.empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "an image reference is required (reference)");
  }
  if (reference.size() > kMaxReferenceBytes) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "reference: an image reference of " + std::to_string(reference.size()) +
                            " bytes is longer than the " + std::to_string(kMaxReferenceBytes) +
                            " herdd accepts ('" + printable(reference, 64) + "')");
  }
  return grpc::Status::OK;
}

grpc::Status check_pull(const v1::PullImageRequest& req) {
  return check_reference(req.reference());
}

void handle_list_images(Backend& backend, const v1::ListImagesRequest&,
                        Done<v1::ListImagesResponse> done) {
  backend.list_images([done = std::move(done)](Result<std::vector<ImageView>> r) {
    v1::ListImagesResponse out;
    if (!r.ok()) {
      done(to_grpc(r.status()), std::move(out));
      return;
    }
    for (const ImageView& v : *r) *out.add_images() = to_proto(v);
    done(grpc::Status::OK, std::move(out));
  });
}

void handle_remove_image(Backend& backend, const v1::RemoveImageRequest& req,
                         Done<v1::RemoveImageResponse> done) {
  if (grpc::Status s = check_reference(req.reference()); !s.ok()) {
    done(s, v1::RemoveImageResponse());
    return;
  }
  spdlog::info("control: remove image '{}' requested", printable(req.reference()));
  backend.remove_image(req.reference(), [done = std::move(done)](Result<std::string> r) {
    v1::RemoveImageResponse out;
    if (!r.ok()) {
      done(to_grpc(r.status()), std::move(out));
      return;
    }
    out.set_name(*r);
    done(grpc::Status::OK, std::move(out));
  });
}

void handle_prune_images(Backend& backend, const v1::PruneImagesRequest&,
                         Done<v1::PruneImagesResponse> done) {
  spdlog::info("control: prune images requested");
  backend.prune_images([done = std::move(done)](Result<std::vector<std::string>> r) {
    v1::PruneImagesResponse out;
    if (!r.ok()) {
      done(to_grpc(r.status()), std::move(out));
      return;
    }
    for (const std::string& n : *r) out.add_removed(n);
    done(grpc::Status::OK, std::move(out));
  });
}

}  // namespace herd::control
