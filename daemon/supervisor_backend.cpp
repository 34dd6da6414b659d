#include "daemon/supervisor_backend.h"

#include <spdlog/spdlog.h>

#include "containerd/images.h"

namespace herd::daemon {

using supervise::ComponentStatus;

SupervisorBackend::SupervisorBackend(asio::io_context& io, containerd::Client& client,
                                     std::string config_path, config::Config running,
                                     std::function<void(config::Config&)> overrides,
                                     const herd::systemd::Notifier& notifier)
    : io_(io),
      client_(client),
      config_path_(std::move(config_path)),
      running_(std::move(running)),
      overrides_(std::move(overrides)),
      notifier_(notifier) {}

Status SupervisorBackend::unavailable() const {
  return Status::Unavailable("herdd is still waiting for containerd at " +
                             running_.containerd.address);
}

void SupervisorBackend::publish(const ComponentStatus& s) {
  std::lock_guard lock(watch_mu_);
  for (auto& [id, fn] : watchers_) fn(s);
}

uint64_t SupervisorBackend::watch(std::function<void(const ComponentStatus&)> on_change) {
  std::lock_guard lock(watch_mu_);
  watchers_[++next_watch_] = std::move(on_change);
  return next_watch_;
}

void SupervisorBackend::unwatch(uint64_t id) {
  std::lock_guard lock(watch_mu_);
  watchers_.erase(id);
}

void SupervisorBackend::list(std::function<void(StatusList)> done) {
  asio::post(io_, [this, done = std::move(done)] {
    // Before containerd answers, every configured component is pending.
    if (!sup_) {
      StatusList out;
      for (const auto& c : running_.components) {
        ComponentStatus s;
        s.name = c.name;
        s.image = c.image;
        s.last_error = unavailable().message();
        out.push_back(std::move(s));
      }
      done(std::move(out));
      return;
    }
    done(sup_->status());
  });
}

void SupervisorBackend::get(const std::string& name,
                            std::function<void(Result<ComponentStatus>)> done) {
  asio::post(io_, [this, name, done = std::move(done)] {
    if (!sup_) {
      done(unavailable());
      return;
    }
    const ComponentStatus* s = sup_->status(name);
    if (!s) {
      done(Status::NotFound("no component named '" + name + "'"));
      return;
    }
    done(*s);
  });
}

void SupervisorBackend::act(control::Verb verb, const std::string& name,
                            std::function<void(Status)> done) {
  asio::post(io_, [this, verb, name, done = std::move(done)]() mutable {
    if (!sup_) {
      done(unavailable());
      return;
    }
    const char* what = verb == control::Verb::kStart  ? "start"
                       : verb == control::Verb::kStop ? "stop"
                                                      : "restart";
    auto log_done = [name, what, done = std::move(done)](Status s) {
      if (s.ok()) {
        spdlog::info("control: {} {}", what, name);
      } else {
        spdlog::warn("control: {} {}: {}", what, name, s.to_string());
      }
      done(std::move(s));
    };
    switch (verb) {
      case control::Verb::kStart:
        sup_->start_component(name, std::move(log_done));
        break;
      case control::Verb::kStop:
        sup_->stop_component(name, std::move(log_done));
        break;
      case control::Verb::kRestart:
        sup_->restart_component(name, std::move(log_done));
        break;
    }
  });
}

namespace {

// What a reload cannot change without a herdd restart, as config errors.
std::vector<std::string> restart_only_changes(const config::Config& now,
                                              const config::Config& next) {
  std::vector<std::string> errors;
  auto needs_restart = [&](const char* path) {
    errors.push_back(std::string(path) + ": cannot change on reload; restart herdd for it");
  };
  if (next.containerd.address != now.containerd.address) needs_restart("$.containerd.address");
  if (next.containerd.namespace_name != now.containerd.namespace_name)
    needs_restart("$.containerd.namespace");
  if (next.control_socket != now.control_socket) needs_restart("$.control_socket");
  if (next.control_group != now.control_group) needs_restart("$.control_group");
  return errors;
}

}  // namespace

void SupervisorBackend::reload(std::function<void(control::ReloadResult)> done) {
  asio::post(io_, [this, done = std::move(done)]() mutable {
    control::ReloadResult r;
    if (!sup_) {
      r.status = unavailable();
      done(std::move(r));
      return;
    }
    if (reloading_) {
      r.status = Status::FailedPrecondition("a reload is already in progress");
      done(std::move(r));
      return;
    }
    auto parsed = config::load_config(config_path_);
    if (parsed.ok()) {
      overrides_(*parsed.config);
      r.errors = restart_only_changes(running_, *parsed.config);
    } else {
      for (const auto& e : parsed.errors) r.errors.push_back(e.to_string());
    }
    if (!r.errors.empty()) {
      r.status = Status::InvalidArgument(std::to_string(r.errors.size()) + " error(s) in " +
                                         config_path_ + "; the running config stays");
      spdlog::error("reload rejected: {}", r.status.message());
      for (const auto& e : r.errors) spdlog::error("reload: {}: {}", config_path_, e);
      done(std::move(r));
      return;
    }
    reloading_ = true;
    (void)notifier_.reloading();
    config::Config next = *parsed.config;
    sup_->reload(std::move(next), [this, next = *parsed.config,
                                   done = std::move(done)](supervise::Supervisor::ReloadSummary s) {
      // On the supervisor's strand; the rest belongs to the event loop.
      asio::post(io_, [this, next, s = std::move(s), done = std::move(done)]() mutable {
        reloading_ = false;
        control::ReloadResult out;
        out.status = s.status;
        out.added = std::move(s.added);
        out.removed = std::move(s.removed);
        out.changed = std::move(s.changed);
        out.unchanged = std::move(s.unchanged);
        if (out.status.ok()) {
          running_ = std::move(next);
          spdlog::info("reloaded {}: {} added, {} removed, {} changed, {} unchanged", config_path_,
                       out.added.size(), out.removed.size(), out.changed.size(), out.unchanged.size());
        } else {
          spdlog::warn("reload not applied: {}", out.status.to_string());
        }
        (void)notifier_.ready();
        done(std::move(out));
      });
    });
  });
}

void SupervisorBackend::import_image(const std::string& path,
                                     std::function<void(Result<std::vector<std::string>>)> done) {
  asio::co_spawn(
      io_,
      [this, path, done = std::move(done)]() mutable -> asio::awaitable<void> {
        if (path.empty() || path.front() != '/') {
          done(Status::InvalidArgument("image archive path must be absolute: '" + path + "'"));
          co_return;
        }
        // A big archive takes a while; the deadline covers the whole import.
        auto o = containerd::CallOptions::with_timeout(std::chrono::minutes(10));
        std::filesystem::path archive = path;  // named: see common/asio.h
        auto imported = co_await containerd::import_archive(client_, archive, o);
        if (!imported.ok()) {
          Status s = imported.status().with_context("import " + path);
          spdlog::warn("control: {}", s.to_string());
          done(s);
          co_return;
        }
        std::vector<std::string> names;
        for (const auto& img : *imported) names.push_back(img.name());
        spdlog::info("control: imported {} image(s) from {}", names.size(), path);
        done(std::move(names));
      },
      asio::detached);
}

}  // namespace herd::daemon
