// herd::containerd::Client: an asynchronous client of containerd's gRPC API.
//
// Every operation is a C++20 coroutine (asio::awaitable) that completes on
// the executor of the coroutine that awaits it -- the caller's strand -- via
// the gRPC<->Asio bridge (bridge.h). Nothing polls: while idle, the process
// sleeps in epoll.
//
// Contract:
// - Every call carries the `containerd-namespace` metadata of this client
//   and, when CallOptions::lease is set, `containerd-lease`.
// - Every unary call has a deadline: CallOptions::timeout, else
//   Options::default_timeout. Streams that end by themselves (content read,
//   snapshot list, content write) have the same deadline. Long waits
//   (tasks_wait) take their deadline from the caller.
// - Failures come back as herd::Status with the gRPC code kept and a message
//   naming the operation and the object ("tasks.start etcd: ...").
// - A Canceller in CallOptions aborts the call at once (Code::kCancelled).
//
// Thread-safety: a Client is immutable after construction and may be shared
// by coroutines on any executor; it owns the gRPC channel and stubs, which
// are thread-safe. It must outlive every call made through it.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/asio.h"
#include "common/status.h"
#include "containerd/call.h"
#include "github.com/containerd/containerd/api/services/containers/v1/containers.pb.h"
#include "github.com/containerd/containerd/api/services/content/v1/content.pb.h"
#include "github.com/containerd/containerd/api/services/images/v1/images.pb.h"
#include "github.com/containerd/containerd/api/services/leases/v1/leases.pb.h"
#include "github.com/containerd/containerd/api/services/snapshots/v1/snapshots.pb.h"
#include "github.com/containerd/containerd/api/services/tasks/v1/tasks.pb.h"
#include "github.com/containerd/containerd/api/types/descriptor.pb.h"
#include "github.com/containerd/containerd/api/types/mount.pb.h"
#include "github.com/containerd/containerd/api/types/task/task.pb.h"

namespace grpc {
class Channel;
class ClientContext;
}  // namespace grpc

namespace herd::containerd {

// The protobuf types of containerd's API are herd's vocabulary for them.
using Container = ::containerd::services::containers::v1::Container;
using Image = ::containerd::services::images::v1::Image;
using ContentInfo = ::containerd::services::content::v1::Info;
using SnapshotInfo = ::containerd::services::snapshots::v1::Info;
using Lease = ::containerd::services::leases::v1::Lease;
using Process = ::containerd::v1::types::Process;
using ProcessStatus = ::containerd::v1::types::Status;
using Mount = ::containerd::types::Mount;
using Descriptor = ::containerd::types::Descriptor;
using CreateTaskRequest = ::containerd::services::tasks::v1::CreateTaskRequest;
using Labels = std::map<std::string, std::string>;

inline constexpr char kRuntimeRuncV2[] = "io.containerd.runc.v2";
inline constexpr char kSpecTypeUrl[] = "types.containerd.io/opencontainers/runtime-spec/1/Spec";
inline constexpr char kProcessTypeUrl[] =
    "types.containerd.io/opencontainers/runtime-spec/1/Process";
inline constexpr char kDefaultSnapshotter[] = "overlayfs";

struct VersionInfo {
  std::string version;
  std::string revision;
};

// Exit of a task's process: code and when.
struct ExitStatus {
  uint32_t code = 0;
  std::chrono::system_clock::time_point exited_at{};
};

class Client {
 public:
  struct Options {
    std::string address = "/run/containerd/containerd.sock";  // unix socket path
    std::string ns = "herd";                                  // containerd namespace
    std::chrono::milliseconds default_timeout{10000};
  };

  explicit Client(Options options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const Options& options() const { return options_; }
  const std::string& ns() const { return options_.ns; }
  const std::string& address() const { return options_.address; }

  // A client for another namespace on the same channel (tests use one
  // namespace each).
  std::unique_ptr<Client> with_namespace(std::string ns) const;

  // --- version
  asio::awaitable<Result<VersionInfo>> version(CallOptions o = {});

  // --- namespaces (tests and cleanup)
  asio::awaitable<Result<std::vector<std::string>>> namespaces_list(CallOptions o = {});
  // Fails with kFailedPrecondition while anything is left in the namespace.
  asio::awaitable<Status> namespaces_delete(std::string name, CallOptions o = {});

  // --- images
  asio::awaitable<Result<Image>> images_get(std::string name, CallOptions o = {});
  asio::awaitable<Result<std::vector<Image>>> images_list(std::vector<std::string> filters = {},
                                                          CallOptions o = {});
  asio::awaitable<Result<Image>> images_create(Image image, CallOptions o = {});
  // Replaces target and labels of an existing image record.
  asio::awaitable<Result<Image>> images_update(Image image, CallOptions o = {});
  // sync: containerd garbage-collects before answering.
  asio::awaitable<Status> images_delete(std::string name, bool sync, CallOptions o = {});

  // --- content
  asio::awaitable<Result<ContentInfo>> content_info(std::string digest, CallOptions o = {});
  // Reads a whole blob; fails with kOutOfRange when it is larger than max_size.
  asio::awaitable<Result<std::string>> content_read(std::string digest, int64_t max_size = 16 << 20,
                                                    CallOptions o = {});
  // Sets the labels of a blob (replacing those with the same keys).
  asio::awaitable<Result<ContentInfo>> content_set_labels(std::string digest, Labels labels,
                                                          CallOptions o = {});
  // Writes a blob through the Write stream in chunks and commits it under
  // `expected` with `labels` (containerd checks the digest at commit).
  // STAT first: the source is first asked for the bytes at the offset the
  // ingest `ref` already has (0 for a new one), and never when another
  // namespace holds the blob (the commit adopts it).
  // `read_chunk(offset, done)` asks for the bytes at `offset`; the source
  // calls `done(status, bytes)` exactly once, from any thread (a pool
  // thread reading a file, or inline): non-empty bytes, or an error. The
  // stream waits meanwhile, so a slow source never blocks gRPC's threads or
  // the caller's. AlreadyExists is success. On failure or cancellation the
  // ingest `ref` is aborted (Content.Abort, with a fresh short deadline and
  // no canceller), so no half-written ingest is left behind.
  using ChunkDone = std::function<void(Status, std::string)>;
  using ChunkSource = std::function<void(int64_t offset, ChunkDone done)>;
  asio::awaitable<Status> content_write(std::string ref, int64_t total, std::string expected,
                                        Labels labels, ChunkSource read_chunk, CallOptions o = {});
  asio::awaitable<Status> content_delete(std::string digest, CallOptions o = {});

  // --- snapshots
  asio::awaitable<Result<std::vector<Mount>>> snapshots_prepare(std::string snapshotter,
                                                                std::string key, std::string parent,
                                                                Labels labels = {},
                                                                CallOptions o = {});
  asio::awaitable<Result<std::vector<Mount>>> snapshots_mounts(std::string snapshotter,
                                                               std::string key, CallOptions o = {});
  asio::awaitable<Status> snapshots_commit(std::string snapshotter, std::string name,
                                           std::string key, Labels labels = {}, CallOptions o = {});
  asio::awaitable<Result<SnapshotInfo>> snapshots_stat(std::string snapshotter, std::string key,
                                                       CallOptions o = {});
  asio::awaitable<Result<std::vector<SnapshotInfo>>> snapshots_list(
      std::string snapshotter, std::vector<std::string> filters = {}, CallOptions o = {});
  asio::awaitable<Status> snapshots_remove(std::string snapshotter, std::string key,
                                           CallOptions o = {});

  // --- leases
  // An empty id lets herd pick a unique one. `expire_after` > 0 adds
  // containerd's gc.expire label, so a lease left by a crash ends by itself.
  asio::awaitable<Result<Lease>> leases_create(std::string id, std::chrono::seconds expire_after,
                                               Labels labels = {}, CallOptions o = {});
  asio::awaitable<Result<std::vector<Lease>>> leases_list(std::vector<std::string> filters = {},
                                                          CallOptions o = {});
  // sync: containerd garbage-collects before answering.
  asio::awaitable<Status> leases_delete(std::string id, bool sync, CallOptions o = {});

  // --- containers
  asio::awaitable<Result<Container>> containers_create(Container c, CallOptions o = {});
  asio::awaitable<Result<Container>> containers_get(std::string id, CallOptions o = {});
  asio::awaitable<Result<std::vector<Container>>> containers_list(
      std::vector<std::string> filters = {}, CallOptions o = {});
  // Updates the fields named in `paths` ("labels", "spec", "image", ...).
  asio::awaitable<Result<Container>> containers_update(Container c, std::vector<std::string> paths,
                                                       CallOptions o = {});
  asio::awaitable<Status> containers_delete(std::string id, CallOptions o = {});

  // --- tasks (the init process of a container; exec ids are not used)
  // tasks_create and tasks_delete ignore o.canceller (their deadline
  // holds): containerd 1.6 leaks the shim of a call cancelled in flight. A
  // cancelled Tasks.Delete returns at the shim's "context canceled" before
  // containerd shuts the shim down and removes its bundle, although the
  // shim has already deleted the task (so the task is gone, the shim is
  // not, and nothing ever tells it to exit); a cancelled Tasks.Create can
  // kill `shim start` after it forked the shim. Both are short (tens of
  // ms), so the caller waits for them and checks its canceller after.
  // Returns the pid of the created (not yet started) process.
  asio::awaitable<Result<uint32_t>> tasks_create(CreateTaskRequest req, CallOptions o = {});
  asio::awaitable<Result<uint32_t>> tasks_start(std::string container_id, CallOptions o = {});
  asio::awaitable<Result<Process>> tasks_get(std::string container_id, CallOptions o = {});
  asio::awaitable<Result<std::vector<Process>>> tasks_list(std::string filter = {},
                                                           CallOptions o = {});
  // all: signal every process of the container, not just init.
  asio::awaitable<Status> tasks_kill(std::string container_id, uint32_t signal, bool all = false,
                                     CallOptions o = {});
  // Blocks (asynchronously) until the task exits or the deadline passes.
  asio::awaitable<Result<ExitStatus>> tasks_wait(std::string container_id, CallOptions o);
  // Deletes a stopped task record.
  asio::awaitable<Result<ExitStatus>> tasks_delete(std::string container_id, CallOptions o = {});
  // Deletes the task whatever its state: SIGKILLs every process of it
  // first when it is still running, waits for the exit, then deletes the
  // record. NotFound when there is no task. One deadline covers all steps.
  asio::awaitable<Result<ExitStatus>> tasks_kill_and_delete(std::string container_id,
                                                            CallOptions o = {});

  // --- exec processes of a running task (Tasks.Exec and friends)
  // Creates (does not start) process `exec_id` in the task of
  // `container_id`: `process_json` is an OCI runtime-spec Process (JSON),
  // stdout/stderr are shim stdio URIs ("file:///abs/path", or "" for none).
  asio::awaitable<Status> exec_create(std::string container_id, std::string exec_id,
                                      std::string process_json, std::string stdout_uri,
                                      std::string stderr_uri, CallOptions o = {});
  // Starts it; returns its pid.
  asio::awaitable<Result<uint32_t>> exec_start(std::string container_id, std::string exec_id,
                                               CallOptions o = {});
  // Until it exits (or the deadline passes / the call is cancelled).
  asio::awaitable<Result<ExitStatus>> exec_wait(std::string container_id, std::string exec_id,
                                                CallOptions o);
  asio::awaitable<Status> exec_kill(std::string container_id, std::string exec_id, uint32_t signal,
                                    CallOptions o = {});
  // The exec process `exec_id` (Tasks.Get with an exec id); NotFound once deleted.
  asio::awaitable<Result<Process>> exec_get(std::string container_id, std::string exec_id,
                                            CallOptions o = {});
  // The pids of every process of the task, init and exec processes (Tasks.ListPids).
  asio::awaitable<Result<std::vector<uint32_t>>> tasks_pids(std::string container_id,
                                                            CallOptions o = {});
  // Removes the exec process and its id (Tasks.DeleteProcess); it must have exited.
  asio::awaitable<Result<ExitStatus>> exec_delete(std::string container_id, std::string exec_id,
                                                  CallOptions o = {});

  // --- diff
  asio::awaitable<Result<Descriptor>> diff_apply(Descriptor layer, std::vector<Mount> mounts,
                                                 CallOptions o = {});

  // --- events
  // Publishes an event (type_url/value are sent as a google.protobuf.Any).
  asio::awaitable<Status> events_publish(std::string topic, std::string type_url, std::string value,
                                         CallOptions o = {});

  // For the events subscription (events.cpp): a context with the client's
  // metadata and no deadline.
  std::unique_ptr<grpc::ClientContext> make_stream_context() const;
  struct Stubs;
  Stubs& stubs() const { return *stubs_; }

 private:
  Client(Options options, std::shared_ptr<grpc::Channel> channel);
  std::unique_ptr<grpc::ClientContext> make_context(const CallOptions& o) const;

  Options options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<Stubs> stubs_;
};

// "sha256:<hex>" of `data`.
std::string sha256_digest(std::string_view data);

}  // namespace herd::containerd
