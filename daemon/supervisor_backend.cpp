#include "daemon/supervisor_backend.h"

#include <spdlog/spdlog.h>

#include "common/exceptions.h"
#include "common/log_text.h"
#include "containerd/images.h"
#include "daemon/registry_options.h"

namespace herd::daemon {

using control::ComponentView;
using supervise::ComponentStatus;

std::optional<control::ProbeView> probe_view(const std::optional<supervise::ProbeResult>& r) {
  if (!r) return std::nullopt;
  control::ProbeView v;
  v.kind = r->kind;
  v.ok = r->ok;
  v.at = r->at;
  v.duration = r->duration;
  v.detail = r->detail;
  return v;
}

ComponentView view_of(const ComponentStatus& s) {
  ComponentView v;
  v.name = s.name;
  v.image = s.image;
  v.state = std::string(supervise::to_string(s.state));
  v.pid = s.pid;
  v.restarts = s.restarts;
  v.last_exit_code = s.last_exit_code;
  v.last_exit_at = s.last_exit_at;
  v.last_exit_reason = s.last_exit_reason;
  v.oom_kills = s.oom_kills;
  v.standby = s.standby;
  v.ready_since = s.ready_since;
  v.started_at = s.started_at;
  v.last_error = s.last_error;
  v.adopted = s.adopted;
  v.changed_at = s.changed_at;
  v.last_ready_probe = probe_view(s.last_ready_probe);
  v.last_liveness_probe = probe_view(s.last_liveness_probe);
  return v;
}

SupervisorBackend::SupervisorBackend(asio::io_context& io, containerd::Client& client,
                                     BlockingPool& pool, registry::Puller* puller,
                                     std::string config_path, config::Config running,
                                     std::function<void(config::Config&)> overrides,
                                     const herd::systemd::Notifier& notifier)
    : io_(io),
      client_(client),
      pool_(pool),
      puller_(puller),
      config_path_(std::move(config_path)),
      running_(std::move(running)),
      overrides_(std::move(overrides)),
      notifier_(notifier) {}

Status SupervisorBackend::unavailable() const {
  return Status::Unavailable("herdd is still waiting for containerd at " +
                             running_.containerd.address);
}

void SupervisorBackend::publish(const ComponentStatus& s) {
  history_.observe(s);
  std::lock_guard lock(watch_mu_);
  if (watchers_.empty()) return;
  ComponentView v = view_of(s);
  for (auto& [id, fn] : watchers_) fn(v);
}

uint64_t SupervisorBackend::watch(std::function<void(const ComponentView&)> on_change) {
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
        ComponentView s;
        s.name = c.name;
        s.image = c.image;
        s.last_error = unavailable().message();
        out.push_back(std::move(s));
      }
      done(std::move(out));
      return;
    }
    StatusList out;
    for (const ComponentStatus& s : sup_->status()) out.push_back(view_of(s));
    done(std::move(out));
  });
}

void SupervisorBackend::get(const std::string& name,
                            std::function<void(Result<ComponentView>)> done) {
  asio::post(io_, [this, name, done = std::move(done)] {
    if (!sup_) {
      done(unavailable());
      return;
    }
    const ComponentStatus* s = sup_->status(name);
    if (!s) {
      done(Status::NotFound("no component named '" + printable(name) + "'"));
      return;
    }
    ComponentView v = view_of(*s);
    const auto& exits = history_.exits(name);
    for (auto it = exits.rbegin(); it != exits.rend(); ++it) {
      control::ExitView e;
      e.at = it->at;
      e.exit_code = it->exit_code;
      e.reason = it->reason;
      v.exits.push_back(std::move(e));
    }
    done(std::move(v));
  });
}

void SupervisorBackend::kill(const std::string& name, int signal,
                             std::function<void(Status)> on_done) {
  auto answer = std::make_shared<std::function<void(Status)>>(std::move(on_done));
  asio::post(io_, [this, name, signal, answer] {
    if (!sup_) {
      (*answer)(unavailable());
      return;
    }
    const ComponentStatus* s = sup_->status(name);
    if (!s) {
      (*answer)(Status::NotFound("no component named '" + printable(name) + "'"));
      return;
    }
    if (s->pid == 0) {
      (*answer)(Status::FailedPrecondition("component '" + printable(name) +
                                           "' has no running task (" +
                                           std::string(supervise::to_string(s->state)) + ")"));
      return;
    }
    const uint32_t pid = s->pid;
    asio::co_spawn(
        io_,
        [this, name, signal, pid, answer]() -> asio::awaitable<void> {
          auto o = containerd::CallOptions::with_timeout(std::chrono::seconds(10));
          Status st = co_await client_.tasks_kill(name, static_cast<uint32_t>(signal), false, o);
          auto done = std::exchange(*answer, nullptr);
          if (!st.ok()) {
            st = Status(st.code(), "kill '" + printable(name) + "': " + printable(st.message()));
            spdlog::warn("control: {}", st.message());
          } else {
            spdlog::info("control: sent signal {} to '{}' (pid {})", signal, printable(name), pid);
          }
          done(std::move(st));
        },
        [answer, name](std::exception_ptr e) {
          if (!e) return;
          if (auto done = std::exchange(*answer, nullptr)) {
            done(Status::Internal("kill '" + printable(name) + "': " + describe_exception(e)));
          }
        });
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
    auto log_done = [shown = printable(name), what, done = std::move(done)](Status s) {
      if (s.ok()) {
        spdlog::info("control: {} '{}' accepted", what, shown);
      } else {
        // The supervisor's message may quote the name as the client sent it.
        spdlog::warn("control: {} '{}': {}", what, shown, printable(s.to_string(), 1024));
        s = Status(s.code(), printable(s.message(), 1024));
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
  const std::string listen_now = now.metrics ? now.metrics->listen : "";
  const std::string listen_next = next.metrics ? next.metrics->listen : "";
  if (listen_now != listen_next) needs_restart("$.metrics.listen");
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
    // Reading and checking the file runs on the pool: a config of the
    // maximum size (4 MiB) can take a second to parse, the loop must not.
    reloading_ = true;
    // The pool task touches nothing of `this`: herdd may be ending.
    asio::post(pool_.executor(), [this, &io = io_, path = config_path_,
                                  done = std::move(done)]() mutable {
      auto parsed = std::make_shared<config::ParseResult>();
      try {
        *parsed = config::load_config(path);
        if (parsed->ok()) {
          auto host = config::check_host(*parsed->config);  // a stat: fine on the pool
          if (!host.empty()) {
            parsed->config.reset();
            parsed->errors = std::move(host);
          }
        }
      } catch (const std::exception& e) {  // bad_alloc: an answer all the same
        parsed->errors.push_back(config::ConfigError{"", std::string("cannot read: ") + e.what()});
      }
      asio::post(io, [this, parsed, done = std::move(done)]() mutable {
        reloading_ = false;
        apply_reload(std::move(*parsed), std::move(done));
      });
    });
  });
}

// Event loop only: `parsed` is the freshly read config.
void SupervisorBackend::apply_reload(config::ParseResult parsed,
                                     std::function<void(control::ReloadResult)> done) {
  {
    control::ReloadResult r;
    if (!sup_) {
      r.status = unavailable();
      done(std::move(r));
      return;
    }
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
          // Pulls that start from now on use the new registry settings.
          if (puller_) puller_->set_registry_options(registry_options(running_.registry));
          spdlog::info("reloaded {}: {} added, {} removed, {} changed, {} unchanged", config_path_,
                       out.added.size(), out.removed.size(), out.changed.size(),
                       out.unchanged.size());
        } else {
          spdlog::warn("reload not applied: {}", out.status.to_string());
        }
        (void)notifier_.ready();
        done(std::move(out));
      });
    });
  }
}

void SupervisorBackend::import_image(
    UniqueFd upload, std::string name,
    std::function<void(Result<std::vector<std::string>>)> on_done) {
  auto file = std::make_shared<UniqueFd>(std::move(upload));
  // Shared with the completion handler: an exception still answers.
  auto answer =
      std::make_shared<std::function<void(Result<std::vector<std::string>>)>>(std::move(on_done));
  asio::co_spawn(
      io_,
      [this, file, name, answer]() mutable -> asio::awaitable<void> {
        // The control server's deadline (30 min) covers the upload and
        // this; containerd's calls get the same bound.
        auto o = containerd::CallOptions::with_timeout(std::chrono::minutes(30));
        containerd::ArchiveFile archive;  // named: see common/asio.h
        archive.fd = file;
        archive.name = name;
        auto imported = co_await containerd::import_archive(client_, pool_, archive, o);
        auto done = std::exchange(*answer, nullptr);
        if (!imported.ok()) {
          Status s = imported.status().with_context("import " + name);
          spdlog::warn("control: {}", s.to_string());
          done(s);
          co_return;
        }
        std::vector<std::string> names;
        for (const auto& img : *imported) names.push_back(img.name());
        spdlog::info("control: imported {} image(s) from {}", names.size(), name);
        done(std::move(names));
      },
      [answer, name](std::exception_ptr e) {
        if (!e) return;
        std::string what = "unknown exception";
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& x) {
          what = x.what();
        } catch (...) {
        }
        spdlog::error("control: the import of {} threw: {}", name, what);
        if (auto done = std::exchange(*answer, nullptr)) {
          done(Status::Internal("import " + name + ": " + what));
        }
      });
}

}  // namespace herd::daemon
