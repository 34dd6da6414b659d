// herd::supervise::ContainerdRuntime: the Runtime (container_ops.h) herdd
// runs on, with containerd's gRPC API.
//
// What the operations do:
// - prepare: resolve the image under its normalised name (docker's rules:
//   "busybox" is docker.io/library/busybox:latest). A missing image comes
//   from `image_archive` when there is one, else is pulled from its
//   registry (Settings::puller) unless `pull` is "never"; a failed pull is
//   the start's error. `pull: always` asks the registry once per actor
//   (herdd's start, a reload that re-made the component; never a restart)
//   and pulls when the digest changed, keeping the local image with a
//   warning when the registry cannot be reached. Then unpack, create the data
//   directories, build the OCI spec and its hash. Then adopt or clean up
//   what a previous herdd left: a container whose `io.herd.spec-hash`
//   label matches, with a running task, is ADOPTED (no restart); a stopped
//   task, a task record whose process is gone, a container without its
//   snapshot, or a snapshot without a container is cleaned up, and the
//   container is (re)created (snapshot + container under a self-expiring
//   lease, so a crash half-way leaks nothing for long). A changed spec
//   with its old task still running gives that task its stop signal and
//   stop_grace before it is killed and the container re-created.
// - start_task: delete the old task (one Tasks.Delete: it has normally
//   exited; a refused delete kills its process first); create and start a
//   new task in the same container (the snapshot's mounts are asked once
//   per prepare). Output: stdout and stderr go to
//   journald through herd-logger, a binary:// logger the shim itself runs
//   (Settings::output_logger), or, without one, to a file the shim writes,
//   <data_path>/.herd-logs/<name>.log. Either way the shim owns the reader,
//   so output never blocks the component and keeps flowing while herdd
//   restarts, adopted tasks included.
// - stop: stop_signal, wait stop_grace (bounded by the stop deadline),
//   SIGKILL, delete task, then container and snapshot (retried,
//   retry::kContainerDelete). The deadline bounds the waits for the
//   process; each cleanup call has its own short deadline, so a stop
//   always finishes.
// - start_task of a component in a shim group waits for the group's turn
//   (ShimGroupGates, at most kShimGroupWait) before Tasks.Create.
// - kill: SIGKILL to every process of the task.
// - reconcile: Tasks.Get, asked again on an answer that is not definitive
//   (retry::kReconcile).
// - list_tasks (the Runtime's, for the periodic reconcile): one Tasks.List.
//
// Strand: each ContainerOps runs on its actor's strand; the Runtime itself
// is immutable after construction and may be shared by every actor.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/async_gate.h"
#include "common/blocking_pool.h"
#include "containerd/client.h"
#include "supervise/container_ops.h"

namespace herd::registry {
class Puller;
}

namespace herd::supervise {

// Label keys herd puts on its containers.
inline constexpr char kLabelSpecHash[] = "io.herd.spec-hash";
inline constexpr char kLabelComponent[] = "io.herd.component";

// The spec hash herd labels containers with: sha256 of everything that
// decides what runs (spec JSON, image manifest, snapshotter, runtime).
std::string spec_hash(const std::string& spec_json, const std::string& manifest_digest,
                      const std::string& snapshotter);

// One AsyncGate per shim group: the task creates of a group go one at a
// time (see common/async_gate.h for why). Thread-safe; shared by every
// actor of a runtime (and outlives it: actors hold it through Settings).
class ShimGroupGates {
 public:
  std::shared_ptr<AsyncGate> gate(const std::string& group);

 private:
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<AsyncGate>> gates_;  // GUARDED_BY(mu_)
};

// How long a task create waits for its turn in its shim group.
inline constexpr std::chrono::seconds kShimGroupWait{120};

class ContainerdRuntime final : public Runtime {
 public:
  struct Settings {
    std::string data_path;
    std::string snapshotter = containerd::kDefaultSnapshotter;
    // Deadline of each ordinary containerd call.
    std::chrono::milliseconds call_timeout{10000};
    // herd-logger for component output; empty = files under data_path.
    std::string output_logger;
    // Without output_logger: herd-logger in file mode, writing log_path
    // rotated at these caps (config `output`); empty = the shim's file://.
    std::string file_logger;
    uint64_t max_file_bytes = 10u << 20;
    uint32_t max_files = 5;
    BlockingPool* pool = nullptr;  // blocking work (archive reading); never null
    // Pulls from registries; null = none (an image must be present or come
    // from its image_archive). Outlives the runtime.
    registry::Puller* puller = nullptr;
    // Set by the runtime's constructor when null.
    std::shared_ptr<ShimGroupGates> shim_gates;
  };
  ContainerdRuntime(containerd::Client& client, Settings settings);

  std::unique_ptr<ContainerOps> ops(const config::Component& component,
                                    asio::any_io_executor strand) override;
  std::shared_ptr<EventSubscription> subscribe(asio::any_io_executor executor,
                                               containerd::EventStream::Handlers handlers) override;
  // Tasks.List (one call, call_timeout).
  asio::awaitable<std::optional<TaskList>> list_tasks(asio::any_io_executor executor) override;

 private:
  containerd::Client& client_;
  Settings settings_;
};

}  // namespace herd::supervise
