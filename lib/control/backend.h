// herd::control::Backend: what the control API server (server.h) asks of
// the daemon. herdd implements it on top of the Supervisor; the server's
// tests implement it with a fake.
//
// Contract:
// - Every method may be called from any thread (gRPC's threads call them).
// - Every completion callback is called exactly once, from any thread
//   (herdd calls it on its event loop). The server must not block the
//   caller's thread inside the callback for long: it only finishes the RPC.
// - Unknown component names complete with Code::kNotFound and a message
//   that names the component ("no component named 'etcdd'").
// - watch() callbacks run on the daemon's event loop, one per status change
//   of any component, in order; after unwatch(id) returns no further call
//   for that id starts.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "supervise/component.h"

namespace herd::control {

enum class Verb { kStart, kStop, kRestart };

struct ReloadResult {
  Status status;                    // OK, or kInvalidArgument with the errors below
  std::vector<std::string> errors;  // every config error, "<json path>: <message>"
  std::vector<std::string> added, removed, changed, unchanged;  // component names
};

class Backend {
 public:
  virtual ~Backend() = default;

  using StatusList = std::vector<supervise::ComponentStatus>;

  // Every configured component, in start order.
  virtual void list(std::function<void(StatusList)> done) = 0;
  // One component; kNotFound when there is no such name.
  virtual void get(const std::string& name,
                   std::function<void(Result<supervise::ComponentStatus>)> done) = 0;
  // Start/stop/restart one component. Completes once the request is
  // accepted by the component (not when it is ready or stopped; watch for
  // that).
  virtual void act(Verb verb, const std::string& name, std::function<void(Status)> done) = 0;
  // Re-reads the config file: validates it, then adds, removes and
  // re-creates components. Completes when the new set is in place (removed
  // components stopped, added ones asked to start).
  virtual void reload(std::function<void(ReloadResult)> done) = 0;
  // Imports an OCI archive (a path on herdd's host) into containerd; the
  // result is the list of image names imported.
  virtual void import_image(const std::string& path,
                            std::function<void(Result<std::vector<std::string>>)> done) = 0;

  // Status changes of every component, from now on.
  virtual uint64_t watch(std::function<void(const supervise::ComponentStatus&)> on_change) = 0;
  virtual void unwatch(uint64_t id) = 0;
};

}  // namespace herd::control
