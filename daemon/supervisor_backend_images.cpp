// SupervisorBackend's image verbs (supervisor_backend.h): pull through the
// registry Puller, list, remove and prune containerd's image records.
// Every body runs as a coroutine on the event loop; an exception that
// leaves one still answers (Code::kInternal).
#include <algorithm>
#include <exception>
#include <utility>

#include <spdlog/spdlog.h>

#include "common/exceptions.h"
#include "common/log_text.h"
#include "containerd/images.h"
#include "containerd/oci_parse.h"
#include "daemon/supervisor_backend.h"

namespace herd::daemon {

namespace {

template <class T>
using Answer = std::shared_ptr<std::function<void(T)>>;

template <class T>
Answer<T> answer_of(std::function<void(T)> done) {
  return std::make_shared<std::function<void(T)>>(std::move(done));
}

// Calls the answer unless it ran already.
template <class T>
void answer(const Answer<T>& a, T value) {
  if (auto done = std::exchange(*a, nullptr)) done(std::move(value));
}

// co_spawn's completion: an exception that left `what` still answers.
template <class T>
auto answer_on_throw(Answer<T> a, std::string what) {
  return [a, what = std::move(what)](std::exception_ptr e) {
    if (!e) return;
    std::string why = describe_exception(e);
    spdlog::error("control: {} threw: {}", what, why);
    answer(a, T(Status::Internal(what + ": " + why)));
  };
}

std::string joined(const std::vector<std::string>& names) {
  std::string s;
  for (const std::string& n : names) {
    if (!s.empty()) s += ", ";
    s += n;
  }
  return s;
}

control::PullProgress progress_of(const registry::BlobProgress& b) {
  control::PullProgress p;
  p.kind = b.kind;
  p.digest = b.digest;
  p.total = b.total;
  p.done = b.done;
  p.present = b.present;
  p.finished = b.finished;
  return p;
}

}  // namespace

std::vector<std::string> components_using(const config::Config& config,
                                          const std::string& image_name) {
  std::vector<std::string> users;
  for (const auto& c : config.components) {
    Result<std::string> n = containerd::normalize_docker_ref(c.image);
    if (c.image == image_name || (n.ok() && *n == image_name)) users.push_back(c.name);
  }
  return users;
}

control::Backend::Cancel SupervisorBackend::pull_image(
    const std::string& reference, std::function<void(const control::PullProgress&)> progress,
    std::function<void(Result<control::PullSummary>)> done) {
  auto canceller = std::make_shared<containerd::Canceller>();
  auto a = answer_of(std::move(done));
  const std::string shown = printable(reference);
  asio::co_spawn(
      io_,
      [this, reference, shown, canceller, progress = std::move(progress),
       a]() -> asio::awaitable<void> {
        if (!sup_) {
          answer(a, Result<control::PullSummary>(unavailable()));
          co_return;
        }
        if (!puller_) {
          answer(a, Result<control::PullSummary>(
                        Status::Unavailable("herdd pulls no images (no registry client)")));
          co_return;
        }
        registry::PullRequest request;
        request.cancel = canceller;
        request.progress = [progress](const registry::BlobProgress& b) {
          progress(progress_of(b));
        };
        auto pulled = co_await puller_->pull(reference, std::move(request));
        if (!pulled.ok()) {
          Status s = pulled.status().with_context("pull " + shown);
          s = Status(s.code(), printable(s.message(), 2048));
          if (s.code() == Code::kCancelled) {
            spdlog::info("control: {}", s.message());
          } else {
            spdlog::warn("control: {}", s.to_string());
          }
          answer(a, Result<control::PullSummary>(s));
          co_return;
        }
        control::PullSummary out;
        out.name = pulled->name;
        out.target_digest = pulled->target.digest;
        out.target_media_type = pulled->target.media_type;
        out.blobs_fetched = static_cast<uint32_t>(pulled->blobs_fetched);
        out.blobs_present = static_cast<uint32_t>(pulled->blobs_present);
        out.bytes_fetched = pulled->bytes_fetched;
        spdlog::info("control: pulled {} ({}): {} blobs fetched ({} bytes), {} present", out.name,
                     out.target_digest, out.blobs_fetched, out.bytes_fetched, out.blobs_present);
        answer(a, Result<control::PullSummary>(std::move(out)));
      },
      answer_on_throw(a, "the pull of " + shown));
  return [canceller] { canceller->cancel(); };
}

void SupervisorBackend::list_images(
    std::function<void(Result<std::vector<control::ImageView>>)> done) {
  using Out = Result<std::vector<control::ImageView>>;
  auto a = answer_of(std::move(done));
  asio::co_spawn(
      io_,
      [this, a]() -> asio::awaitable<void> {
        if (!sup_) {
          answer(a, Out(unavailable()));
          co_return;
        }
        std::vector<std::string> filters;
        containerd::CallOptions o;
        auto images = co_await client_.images_list(filters, o);
        if (!images.ok()) {
          answer(a, Out(images.status().with_context("list images")));
          co_return;
        }
        std::vector<control::ImageView> out;
        for (const containerd::Image& img : *images) {
          control::ImageView v;
          v.name = img.name();
          v.target_digest = img.target().digest();
          v.target_media_type = img.target().media_type();
          containerd::CallOptions ro;
          auto resolved = co_await containerd::resolve_image(client_, img.name(), ro);
          if (resolved.ok()) {
            uint64_t size = resolved->config_json.size();
            for (const auto& l : resolved->layers) size += static_cast<uint64_t>(l.size());
            v.size = size;
          }
          v.used_by = components_using(running_, v.name);
          out.push_back(std::move(v));
        }
        std::sort(out.begin(), out.end(),
                  [](const control::ImageView& x, const control::ImageView& y) {
                    return x.name < y.name;
                  });
        answer(a, Out(std::move(out)));
      },
      answer_on_throw(a, std::string("listing images")));
}

asio::awaitable<Result<containerd::Image>> SupervisorBackend::find_image(std::string reference) {
  containerd::CallOptions o;
  auto exact = co_await client_.images_get(reference, o);
  if (exact.ok() || !exact.status().is_not_found()) co_return exact;
  Result<std::string> normal = containerd::normalize_docker_ref(reference);
  if (normal.ok() && *normal != reference) {
    auto found = co_await client_.images_get(*normal, o);
    if (found.ok() || !found.status().is_not_found()) co_return found;
    co_return Status::NotFound("no image named '" + printable(reference) + "' (nor '" +
                               printable(*normal) + "')");
  }
  co_return Status::NotFound("no image named '" + printable(reference) + "'");
}

void SupervisorBackend::remove_image(const std::string& reference,
                                     std::function<void(Result<std::string>)> done) {
  using Out = Result<std::string>;
  auto a = answer_of(std::move(done));
  const std::string shown = printable(reference);
  asio::co_spawn(
      io_,
      [this, reference, shown, a]() -> asio::awaitable<void> {
        if (!sup_) {
          answer(a, Out(unavailable()));
          co_return;
        }
        auto image = co_await find_image(reference);
        if (!image.ok()) {
          answer(a, Out(image.status()));
          co_return;
        }
        const std::string name = image->name();
        std::vector<std::string> users = components_using(running_, name);
        if (!users.empty()) {
          Status s = Status::FailedPrecondition("image " + printable(name) + " is used by " +
                                                (users.size() == 1 ? "component " : "components ") +
                                                joined(users) +
                                                "; change or remove them in the config first");
          spdlog::warn("control: remove image: {}", s.message());
          answer(a, Out(s));
          co_return;
        }
        containerd::CallOptions o;
        Status s = co_await client_.images_delete(name, true, o);
        if (!s.ok()) {
          answer(a, Out(s.with_context("delete image " + printable(name))));
          co_return;
        }
        spdlog::info("control: removed image {}", printable(name));
        answer(a, Out(name));
      },
      answer_on_throw(a, "removing image " + shown));
}

void SupervisorBackend::prune_images(std::function<void(Result<std::vector<std::string>>)> done) {
  using Out = Result<std::vector<std::string>>;
  auto a = answer_of(std::move(done));
  asio::co_spawn(
      io_,
      [this, a]() -> asio::awaitable<void> {
        if (!sup_) {
          answer(a, Out(unavailable()));
          co_return;
        }
        std::vector<std::string> filters;
        containerd::CallOptions o;
        auto images = co_await client_.images_list(filters, o);
        if (!images.ok()) {
          answer(a, Out(images.status().with_context("list images")));
          co_return;
        }
        std::vector<std::string> removed;
        for (const containerd::Image& img : *images) {
          if (!components_using(running_, img.name()).empty()) continue;
          containerd::CallOptions d;
          Status s = co_await client_.images_delete(img.name(), true, d);
          if (s.is_not_found()) continue;  // gone meanwhile
          if (!s.ok()) {
            spdlog::warn("control: prune: removed {} image(s) before {} failed: {}", removed.size(),
                         printable(img.name()), s.to_string());
            answer(a, Out(s.with_context("delete image " + printable(img.name()))));
            co_return;
          }
          spdlog::info("control: prune: removed image {}", printable(img.name()));
          removed.push_back(img.name());
        }
        std::sort(removed.begin(), removed.end());
        answer(a, Out(std::move(removed)));
      },
      answer_on_throw(a, std::string("pruning images")));
}

}  // namespace herd::daemon
