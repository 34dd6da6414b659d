// herd::control::Backend: what the control API server (server.h) asks of
// the daemon, in the control API's own types (nothing of lib/supervise).
// herdd implements it on top of the Supervisor (daemon/supervisor_backend.h);
// the server's tests and its fuzz target implement it with fakes.
//
// Contract:
// - Every method may be called from any thread (gRPC's threads call them).
// - Every completion callback (`done`) is called exactly once, from any thread
//   (herdd calls it on its event loop). The server must not block the
//   caller's thread inside the callback for long: it only finishes the RPC.
// - Names reach the Backend validated by the server: non-empty and at most
//   kMaxNameBytes (limits.h), but otherwise as the client sent them. Unknown
//   component names complete with Code::kNotFound and a message that names
//   the component through printable() (common/log_text.h), as every message
//   and log line that shows a client's string must.
// - Image references (pull_image, remove_image) reach the Backend checked
//   by the server: non-empty and at most kMaxReferenceBytes, otherwise as
//   the client sent them; messages show them through printable().
// - pull_image's `progress` calls come one at a time, in order, and none
//   after `done`; the server copes with any number of them (it keeps only
//   the latest per blob for a slow client).
// - watch() callbacks run on the daemon's event loop, one per status change
//   of any component, in order; after unwatch(id) returns no further call
//   for that id starts.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"

namespace herd::control {

enum class Verb { kStart, kStop, kRestart };

// One exit of a component's task (herd.v1.ExitRecord).
struct ExitView {
  std::chrono::system_clock::time_point at{};
  uint32_t exit_code = 0;
  // "exited", "oom_killed", "liveness", "readiness_timeout",
  // "operator_stop", "containerd_lost".
  std::string reason;
};

// One finished probe attempt (herd.v1.ProbeResult).
struct ProbeView {
  std::string kind;  // "tcp", "http"
  bool ok = false;
  std::chrono::system_clock::time_point at{};
  std::chrono::milliseconds duration{0};
  std::string detail;
};

// What the API shows of one component (herd.v1.ComponentStatus).
struct ComponentView {
  using Time = std::chrono::system_clock::time_point;
  std::string name;
  std::string image;
  // "pending", "preparing", "starting", "waiting_ready", "ready",
  // "backing_off", "stopping", "stopped", "failed" or "completed".
  std::string state = "pending";
  uint32_t pid = 0;       // 0: no running task
  uint64_t restarts = 0;  // since herdd started supervising it
  std::optional<uint32_t> last_exit_code;
  std::optional<Time> last_exit_at;
  // "exited", "oom_killed", "containerd_lost"; "" before any exit
  std::string last_exit_reason;
  uint64_t oom_kills = 0;
  std::string standby;  // restore: standby: its state ("" = none)
  std::optional<Time> ready_since;
  std::optional<Time> started_at;  // uptime = now - started_at
  std::string last_error;
  bool adopted = false;  // the running task was adopted
  Time changed_at{};     // when herdd produced this status
  // The last exits, newest first (at most 20); filled by get() only.
  std::vector<ExitView> exits;
  std::optional<ProbeView> last_ready_probe;  // the last readiness attempt
  std::optional<ProbeView> last_liveness_probe;
};

// One blob of a pull as it stands (herd.v1.BlobProgress).
struct PullProgress {
  std::string kind;  // "index", "manifest", "config", "layer"
  std::string digest;
  int64_t total = 0;
  int64_t done = 0;      // bytes in the content store
  bool present = false;  // there already: nothing fetched
  bool finished = false;
};

// What a successful pull did (herd.v1.PullResult).
struct PullSummary {
  std::string name;  // the image record: the normalised reference
  std::string target_digest;
  std::string target_media_type;
  uint32_t blobs_fetched = 0;
  uint32_t blobs_present = 0;
  uint64_t bytes_fetched = 0;
};

// One image of herd's containerd namespace (herd.v1.ImageInfo).
struct ImageView {
  std::string name;
  std::string target_digest;
  std::string target_media_type;
  std::optional<uint64_t> size;      // config + layers; unknown when unreadable
  std::vector<std::string> used_by;  // configured components whose image it is
};

struct ReloadResult {
  Status status;                    // OK, or kInvalidArgument with the errors below
  std::vector<std::string> errors;  // every config error, "<json path>: <message>"
  std::vector<std::string> added, removed, changed, unchanged;  // component names
};

class Backend {
 public:
  virtual ~Backend() = default;

  using StatusList = std::vector<ComponentView>;

  // Every configured component, in start order.
  virtual void list(std::function<void(StatusList)> done) = 0;
  // One component; kNotFound when there is no such name.
  virtual void get(const std::string& name, std::function<void(Result<ComponentView>)> done) = 0;
  // Start/stop/restart one component. Completes once the request is
  // accepted by the component (not when it is ready or stopped; watch for
  // that).
  virtual void act(Verb verb, const std::string& name, std::function<void(Status)> done) = 0;
  // Re-reads the config file: validates it, then adds, removes and
  // re-creates components. Completes when the new set is in place (removed
  // components stopped, added ones asked to start).
  virtual void reload(std::function<void(ReloadResult)> done) = 0;
  // Imports the image archive a client uploaded into containerd; the result
  // is the list of image names imported. `archive` is an unnamed temporary
  // file that holds every byte the client sent, open for reading at offset
  // 0; the Backend owns it from now on (closing it frees it). `name` is the
  // display name the client gave, already made printable(): for messages
  // only, never a path to open.
  virtual void import_image(UniqueFd archive, std::string name,
                            std::function<void(Result<std::vector<std::string>>)> done) = 0;

  // Cancels a call in flight (a pull) from any thread. Calling it after the
  // call completed, or more than once, does nothing.
  using Cancel = std::function<void()>;

  // Pulls `reference` from its registry into containerd. `progress` is
  // called as blobs move; `done` once, with the result or the error (its
  // message names the reference). The returned Cancel ends the pull
  // early: `done` then completes with Code::kCancelled (unless another
  // client pulls the same reference, whose pull goes on).
  virtual Cancel pull_image(const std::string& reference,
                            std::function<void(const PullProgress&)> progress,
                            std::function<void(Result<PullSummary>)> done) = 0;
  // Every image in the daemon's containerd namespace, sorted by name.
  virtual void list_images(std::function<void(Result<std::vector<ImageView>>)> done) = 0;
  // Deletes one image and completes with the name deleted. `reference` is
  // an image name or normalises to one. kNotFound when there is none;
  // kFailedPrecondition naming every configured component that uses it.
  virtual void remove_image(const std::string& reference,
                            std::function<void(Result<std::string>)> done) = 0;
  // Deletes every image no configured component uses; completes with the
  // names deleted (those deleted before an error are not reported).
  virtual void prune_images(std::function<void(Result<std::vector<std::string>>)> done) = 0;

  // Sends `signal` (1..64, checked by the server) to the component's
  // running task without telling the supervisor. kNotFound for an unknown
  // name, kFailedPrecondition when it has no running task. The default
  // (fakes that do not care) answers kUnimplemented.
  virtual void kill(const std::string& name, int signal, std::function<void(Status)> done) {
    (void)name;
    (void)signal;
    done(Status(Code::kUnimplemented, "kill is not implemented by this backend"));
  }

  // Status changes of every component, from now on.
  virtual uint64_t watch(std::function<void(const ComponentView&)> on_change) = 0;
  virtual void unwatch(uint64_t id) = 0;
};

}  // namespace herd::control
