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
// - import_image(): the uploaded file is read off the loop (import_archive
//   reads and hashes on `pool`); the loop only talks to containerd.
// - reload(): reads the config file again and validates it; an invalid
//   file, or one that changes what needs a herdd restart (containerd
//   address or namespace, control socket or group), is rejected with every
//   error and nothing running is touched. Otherwise systemd hears
//   RELOADING=1, the supervisor swaps the config in, and READY=1 follows.
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
#include "supervise/supervisor.h"
#include "systemd/notify.h"

namespace herd::daemon {

// What the control API shows of a supervisor status.
control::ComponentView view_of(const supervise::ComponentStatus& s);

class SupervisorBackend : public control::Backend {
 public:
  // `overrides` are applied to every re-read config as to the first one
  // (herdd's --containerd-address / --namespace).
  SupervisorBackend(asio::io_context& io, containerd::Client& client, BlockingPool& pool,
                    std::string config_path, config::Config running,
                    std::function<void(config::Config&)> overrides,
                    const herd::systemd::Notifier& notifier);

  // Event loop only.
  void attach(std::shared_ptr<supervise::Supervisor> sup) { sup_ = std::move(sup); }
  void publish(const supervise::ComponentStatus& s);

  void list(std::function<void(StatusList)> done) override;
  void get(const std::string& name,
           std::function<void(Result<control::ComponentView>)> done) override;
  void act(control::Verb verb, const std::string& name, std::function<void(Status)> done) override;
  void reload(std::function<void(control::ReloadResult)> done) override;
  void import_image(UniqueFd archive, std::string name,
                    std::function<void(Result<std::vector<std::string>>)> done) override;
  uint64_t watch(std::function<void(const control::ComponentView&)> on_change) override;
  void unwatch(uint64_t id) override;

 private:
  Status unavailable() const;
  void apply_reload(config::ParseResult parsed, std::function<void(control::ReloadResult)> done);

  asio::io_context& io_;
  containerd::Client& client_;
  BlockingPool& pool_;
  std::string config_path_;
  config::Config running_;  // event loop only
  std::function<void(config::Config&)> overrides_;
  const herd::systemd::Notifier& notifier_;
  std::shared_ptr<supervise::Supervisor> sup_;  // event loop only
  bool reloading_ = false;

  std::mutex watch_mu_;
  uint64_t next_watch_ = 0;
  std::map<uint64_t, std::function<void(const control::ComponentView&)>> watchers_;
};

}  // namespace herd::daemon
