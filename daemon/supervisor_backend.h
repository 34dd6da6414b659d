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
#include "config/config.h"
#include "containerd/client.h"
#include "control/backend.h"
#include "supervise/supervisor.h"
#include "systemd/notify.h"

namespace herd::daemon {

class SupervisorBackend : public control::Backend {
 public:
  // `overrides` are applied to every re-read config as to the first one
  // (herdd's --containerd-address / --namespace).
  SupervisorBackend(asio::io_context& io, containerd::Client& client, std::string config_path,
                    config::Config running, std::function<void(config::Config&)> overrides,
                    const herd::systemd::Notifier& notifier);

  // Event loop only.
  void attach(std::shared_ptr<supervise::Supervisor> sup) { sup_ = std::move(sup); }
  void publish(const supervise::ComponentStatus& s);

  void list(std::function<void(StatusList)> done) override;
  void get(const std::string& name,
           std::function<void(Result<supervise::ComponentStatus>)> done) override;
  void act(control::Verb verb, const std::string& name, std::function<void(Status)> done) override;
  void reload(std::function<void(control::ReloadResult)> done) override;
  void import_image(const std::string& path,
                    std::function<void(Result<std::vector<std::string>>)> done) override;
  uint64_t watch(std::function<void(const supervise::ComponentStatus&)> on_change) override;
  void unwatch(uint64_t id) override;

 private:
  Status unavailable() const;

  asio::io_context& io_;
  containerd::Client& client_;
  std::string config_path_;
  config::Config running_;  // event loop only
  std::function<void(config::Config&)> overrides_;
  const herd::systemd::Notifier& notifier_;
  std::shared_ptr<supervise::Supervisor> sup_;  // event loop only
  bool reloading_ = false;

  std::mutex watch_mu_;
  uint64_t next_watch_ = 0;
  std::map<uint64_t, std::function<void(const supervise::ComponentStatus&)>> watchers_;
};

}  // namespace herd::daemon
