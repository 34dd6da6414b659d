// herdd's implementation of the control API's Backend (lib/control/
// backend.h) over the Supervisor, plus the reload that SIGHUP and
// `herdctl reload` share.
//
// Contract:
// - Methods may be called from any thread; the work is posted to the event
//   loop (`io`), where the supervisor pointer and the running config live.
//   Completions run on the event loop.
// - Until attach() hands over the supervisor (herdd is still waiting for
//   containerd), every request completes with Code::kUnavailable.
// - publish() runs on the event loop; it calls every watcher under a mutex,
//   so once unwatch() returns no new call for that watcher starts.
// - Statuses are handed to the control API as control::ComponentView
//   (view_of below); names from clients appear in messages and logs only
//   through printable() (common/log_text.h).
// - get() adds the component's exit history (exit_history.h), newest
//   first; list() and watch leave it out.
// - kill(): Tasks.Kill on the running task only (FailedPrecondition
//   without one); the supervisor is not told, so an exit it causes is an
//   ordinary exit.
// - import_image(): the uploaded file is read off the loop (import_archive
//   reads and hashes on `pool`); the loop only talks to containerd.
// - Images (supervisor_backend_images.cpp): pull_image() pulls through
//   the registry Puller on the event loop, its progress handed on as it
//   comes and its Cancel a containerd::Canceller's cancel(); list_images,
//   remove_image and prune_images talk to containerd's Images service in
//   herd's namespace. An image is "used" when a component of the running
//   config names it (components_using); remove_image refuses those
//   (kFailedPrecondition naming the components), prune_images keeps them.
// - reload(): reads the config file again and validates it; an invalid
//   file, or one that changes what needs a herdd restart (containerd
//   address or namespace, control socket or group), is rejected with every
//   error and nothing running is touched. Otherwise systemd hears
//   RELOADING=1, the supervisor swaps the config in, the Puller takes the
//   new `registry` settings, and READY=1 follows.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/asio.h"
#include "common/blocking_pool.h"
#include "common/unique_fd.h"
#include "config/config.h"
#include "containerd/client.h"
#include "control/backend.h"
#include "daemon/exit_history.h"
#include "registry/puller.h"
#include "supervise/supervisor.h"
#include "systemd/notify.h"

namespace herd::daemon {

// What the control API shows of a supervisor status.
control::ComponentView view_of(const supervise::ComponentStatus& s);

// The components of `config` whose image is `image_name` (an image
// record's name), in config order: each component's image is normalised
// as docker does (containerd::normalize_docker_ref; busybox:1 is
// docker.io/library/busybox:1) and compared, as is the image as written.
std::vector<std::string> components_using(const config::Config& config,
                                          const std::string& image_name);

class SupervisorBackend : public control::Backend {
 public:
  // `overrides` are applied to every re-read config as to the first one
  // (herdd's --containerd-address / --namespace). `puller` (on `io`'s
  // executor) serves pull_image; null: pulls answer kUnavailable.
  SupervisorBackend(asio::io_context& io, containerd::Client& client, BlockingPool& pool,
                    registry::Puller* puller, std::string config_path, config::Config running,
                    std::function<void(config::Config&)> overrides,
                    const herd::systemd::Notifier& notifier);

  // Event loop only. publish() also keeps the exit history get() shows.
  void attach(std::shared_ptr<supervise::Supervisor> sup) { sup_ = std::move(sup); }
  void publish(const supervise::ComponentStatus& s);
  const ExitHistory& history() const { return history_; }

  void list(std::function<void(StatusList)> done) override;
  void get(const std::string& name,
           std::function<void(Result<control::ComponentView>)> done) override;
  void act(control::Verb verb, const std::string& name, std::function<void(Status)> done) override;
  void reload(std::function<void(control::ReloadResult)> done) override;
  void import_image(UniqueFd archive, std::string name,
                    std::function<void(Result<std::vector<std::string>>)> done) override;
  Cancel pull_image(const std::string& reference,
                    std::function<void(const control::PullProgress&)> progress,
                    std::function<void(Result<control::PullSummary>)> done) override;
  void list_images(std::function<void(Result<std::vector<control::ImageView>>)> done) override;
  void remove_image(const std::string& reference,
                    std::function<void(Result<std::string>)> done) override;
  void prune_images(std::function<void(Result<std::vector<std::string>>)> done) override;
  // Tasks.Kill on the component's task (the container is named after the
  // component), under a 10 s deadline; the supervisor is not told.
  void kill(const std::string& name, int signal, std::function<void(Status)> done) override;
  uint64_t watch(std::function<void(const control::ComponentView&)> on_change) override;
  void unwatch(uint64_t id) override;

 private:
  Status unavailable() const;
  void apply_reload(config::ParseResult parsed, std::function<void(control::ReloadResult)> done);
  // The image record `reference` names: the name as given, else as docker
  // normalises it. kNotFound naming both. Event loop only.
  asio::awaitable<Result<containerd::Image>> find_image(std::string reference);

  asio::io_context& io_;
  containerd::Client& client_;
  BlockingPool& pool_;
  registry::Puller* puller_;  // may be null
  std::string config_path_;
  config::Config running_;  // event loop only
  std::function<void(config::Config&)> overrides_;
  const herd::systemd::Notifier& notifier_;
  std::shared_ptr<supervise::Supervisor> sup_;  // event loop only
  bool reloading_ = false;
  ExitHistory history_;  // event loop only

  std::mutex watch_mu_;
  uint64_t next_watch_ = 0;
  std::map<uint64_t, std::function<void(const control::ComponentView&)>> watchers_;
};

}  // namespace herd::daemon
