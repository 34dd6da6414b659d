// bench::RawClient: the minimal containerd client the benchmarks measure
// herd against. Blocking gRPC calls on its own channel (no herd code in the
// timed path), one namespace, and an events subscription read on a thread
// of its own. It does only what a floor needs: Snapshots.Prepare/Mounts,
// Containers.Create, Tasks.Create/Start/Delete/Kill/Wait, Events.Subscribe.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "github.com/containerd/containerd/api/services/containers/v1/containers.grpc.pb.h"
#include "github.com/containerd/containerd/api/services/events/v1/events.grpc.pb.h"
#include "github.com/containerd/containerd/api/services/leases/v1/leases.grpc.pb.h"
#include "github.com/containerd/containerd/api/services/snapshots/v1/snapshots.grpc.pb.h"
#include "github.com/containerd/containerd/api/services/tasks/v1/tasks.grpc.pb.h"
#include "github.com/containerd/containerd/api/services/version/v1/version.grpc.pb.h"

namespace bench {

using SysClock = std::chrono::system_clock;
using Mounts = std::vector<::containerd::types::Mount>;
using RawContainer = ::containerd::services::containers::v1::Container;

// One /tasks/exit of an init process, as the raw subscriber read it.
struct ExitSeen {
  std::string container_id;
  uint32_t pid = 0;
  uint32_t exit_status = 0;
  SysClock::time_point received{};   // when Read() returned on our thread
  SysClock::time_point published{};  // the envelope's timestamp
};

class RawClient {
 public:
  RawClient(const std::string& address, std::string ns);
  ~RawClient();

  const std::string& ns() const { return ns_; }

  grpc::Status version(std::string* version = nullptr);
  grpc::Status container_get(const std::string& id, RawContainer* out);
  grpc::Status container_create(const RawContainer& c);
  grpc::Status container_delete(const std::string& id);
  grpc::Status container_ids(std::vector<std::string>* ids);
  grpc::Status snapshot_parent(const std::string& snapshotter, const std::string& key,
                               std::string* parent);
  grpc::Status snapshot_prepare(const std::string& snapshotter, const std::string& key,
                                const std::string& parent, Mounts* mounts);
  grpc::Status snapshot_mounts(const std::string& snapshotter, const std::string& key,
                               Mounts* mounts);
  grpc::Status snapshot_remove(const std::string& snapshotter, const std::string& key);
  grpc::Status task_create(const std::string& id, const Mounts& rootfs,
                           const std::string& output_uri, uint32_t* pid = nullptr);
  grpc::Status task_start(const std::string& id, uint32_t* pid = nullptr);
  grpc::Status task_delete(const std::string& id);
  grpc::Status task_kill(const std::string& id, uint32_t signal, bool all);
  grpc::Status task_wait(const std::string& id, std::chrono::milliseconds timeout);
  grpc::Status task_pid(const std::string& id, uint32_t* pid, bool* running);
  grpc::Status publish(const std::string& topic, const std::string& value);
  // A lease that expires by itself after an hour; calls made after
  // set_lease() carry it (snapshots prepared under it are safe from
  // containerd's garbage collector until their container exists).
  grpc::Status lease_create(std::string* id);
  grpc::Status lease_delete(const std::string& id);
  void set_lease(std::string id) { lease_ = std::move(id); }

  // Removes a container whatever state it is in (kill, wait, delete task,
  // delete container, remove its snapshot). Errors are ignored.
  void remove_all(const std::string& id, const std::string& snapshotter);

  // Subscribes to /tasks/exit of this namespace (and a sync topic of its
  // own) and calls on_exit on the reader thread for each init-process exit.
  // Returns once the subscription is proven live (a published sync event
  // was read back), or false after `timeout`.
  bool subscribe(std::function<void(const ExitSeen&)> on_exit,
                 std::chrono::milliseconds timeout = std::chrono::seconds(10));
  void unsubscribe();

 private:
  std::unique_ptr<grpc::ClientContext> ctx(std::chrono::milliseconds timeout) const;
  void read_loop();

  std::string ns_;
  std::string lease_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<::containerd::services::containers::v1::Containers::Stub> containers_;
  std::unique_ptr<::containerd::services::events::v1::Events::Stub> events_;
  std::unique_ptr<::containerd::services::leases::v1::Leases::Stub> leases_;
  std::unique_ptr<::containerd::services::snapshots::v1::Snapshots::Stub> snapshots_;
  std::unique_ptr<::containerd::services::tasks::v1::Tasks::Stub> tasks_;
  std::unique_ptr<::containerd::services::version::v1::Version::Stub> version_;

  std::unique_ptr<grpc::ClientContext> sub_ctx_;
  std::unique_ptr<grpc::ClientReader<::containerd::services::events::v1::Envelope>> reader_;
  std::function<void(const ExitSeen&)> on_exit_;
  std::thread reader_thread_;
  std::atomic<bool> synced_{false};
  std::string sync_nonce_;
};

}  // namespace bench
