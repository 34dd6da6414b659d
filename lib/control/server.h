// herd::control::ControlServer: the control API (proto/herd/v1/control.proto)
// on a unix socket, for herdctl. It translates RPCs into Backend calls
// (backend.h) and decides who may use them.
//
// The socket (Options::socket_path, default /run/herd/control.sock):
// - `<socket_path>.lock` is opened (created 0600) and flock(LOCK_EX|LOCK_NB)
//   taken for the server's whole life; it holds the pid of its owner. When
//   another process holds it, start() fails with kAlreadyExists:
//   "another herdd serves <path> (pid N)". The lock file is never removed
//   (removing a lock file races with its next taker).
// - Holding the lock, whatever sits at socket_path is stale: a socket is
//   unlinked; anything else (regular file, directory, ...) is refused with
//   kFailedPrecondition, touching nothing. A missing parent directory is
//   created 0755 (one level).
// - bind() runs under umask 0177 (the socket is born 0600), then the
//   socket is chowned to <euid>:<group> and chmodded 0660, then listen().
//   At no moment is it wider than the final 0660. Options::group is a
//   group name or a numeric gid; an unknown group is kInvalidArgument
//   naming it. Without a group the socket's group is the daemon's egid.
// - Connections are accepted by the server itself, never by gRPC. For each
//   one it reads SO_PEERCRED: allowed are uid 0, the daemon's own euid, and
//   a process whose primary gid (from the credentials) or supplementary
//   groups (the "Groups:" line of /proc/<pid>/status) include the
//   configured group. An allowed fd goes to the main grpc::Server
//   (grpc::AddInsecureChannelFromFd; that server has no listening port);
//   any other goes to a second grpc::Server that answers every method with
//   PERMISSION_DENIED: "uid U (pid P) may not use the herd control socket:
//   not root and not in group 'G'". Each denial is logged at warn.
// - shutdown() closes the listener, unlinks the socket, then releases the
//   lock. Every answer carries the trailing metadata kServedByMetadata, so
//   herdctl tells herdd's own UNAVAILABLE ("shutting down") from a failed
//   connection.
// - Lifetime: call shutdown() (or destroy the server) before the
//   executor's io_context is destroyed; the io_context need not be running.
//
// Threads and strands:
// - start() runs on the calling thread, synchronously (a few syscalls); on
//   failure nothing is left behind (no socket, lock released).
// - Accepting runs on `executor`: the listener waits for readability there
//   and then accept4()s non-blocking until EAGAIN (at most 64 per wake-up;
//   on EMFILE and the like it retries after kAcceptRetryDelay, 100 ms, on a
//   timer, so it never spins); checking a peer reads one procfs file.
//   Nothing on `executor` blocks. The listener guards its state with its
//   own mutex, so `executor` may be any executor (herdd: its io_context).
//
// Limits (limits.h; docs/operations.md "Control socket limits"):
// - Options::max_connections open connections, allowed and denied peers
//   alike. One more is accepted and closed at once; the others are served
//   on. A connection counts until gRPC has closed its fd (the listener
//   checks, by fd and inode, when it is at the limit).
// - Options::max_watchers concurrent Watch streams, Options::max_imports
//   concurrent imports, Options::max_pulls concurrent PullImage streams:
//   beyond them RESOURCE_EXHAUSTED at once.
// - Messages up to kMaxReceiveMessageBytes (gRPC answers
//   RESOURCE_EXHAUSTED beyond); kMaxStreamsPerConnection calls at once on
//   one connection; names up to kMaxNameBytes (INVALID_ARGUMENT).
// - Every unary call has a server deadline, Options::call_deadline: when
//   the Backend has not completed by then, the server answers
//   DEADLINE_EXCEEDED itself (a late Backend answer is dropped). An import
//   has Options::import_deadline, upload included, and a pull
//   Options::pull_deadline (the pull is cancelled). Watch has none: it is
//   a stream the client ends. The deadlines run on a thread of the server's
//   own, so they hold even when the Backend's loop is stuck.
// Refusals are logged at warn, at most once per kRefusalLogInterval per
// kind, with the count of those held back.
//
// Imports: ImportImage is a client stream (a header, then data). The
// server writes the bytes into an unnamed file in Options::import_dir
// (made 0700 when missing; it must belong to herdd's euid), at most
// Options::import_max_bytes, on gRPC's threads; then it calls
// Backend::import_image with the file. herdd never opens a path a client
// names. A stream that is cancelled, breaks, or ends short of its size
// never reaches the Backend and leaves no file behind.
// - RPC handlers run on gRPC's threads (callback API, reactors). They call
//   the Backend there and return at once; the RPC finishes inside the
//   Backend's completion callback, on whatever thread that runs. No gRPC
//   thread ever waits for the Backend.
// - PullImage (pull.h): progress waits coalesced per blob, at most
//   Options::pull_pending_blobs blobs, so a slow client costs herdd a
//   bounded table, not a backlog; a client that cancels or goes away, the
//   deadline and shutdown cancel the Backend's pull.
// - Watch: the server registers Backend::watch before it asks for the list,
//   sends the list (initial = true), then queued changes in order. A queue
//   longer than Options::watch_queue_limit ends the stream with
//   RESOURCE_EXHAUSTED. Cancel, finish or shutdown calls Backend::unwatch
//   exactly once.
// - shutdown() may be called from any thread, including `executor`'s, and
//   does not need `executor` to run: every RPC still waiting for its
//   Backend callback is finished at once with UNAVAILABLE ("herdd is
//   shutting down"), every Watch is ended, then both grpc::Servers shut
//   down with Options::shutdown_grace as deadline. It is idempotent; the
//   destructor calls it. After it returns the server makes no further call
//   into the Backend; Backend callbacks that arrive later are ignored
//   (they hold only shared per-call state), so the Backend need only
//   outlive shutdown(), and its callbacks may still run afterwards.
//
// Backend implementations must not block in unwatch() waiting for the
// executor: unwatch runs on gRPC threads and inside shutdown().
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "common/asio.h"
#include "common/status.h"
#include "control/backend.h"
#include "control/limits.h"

namespace herd::control {

inline constexpr char kDefaultSocketPath[] = "/run/herd/control.sock";
// Trailing metadata key on every answer the server gives (value "herdd"):
// a client that sees it knows herdd answered, even with UNAVAILABLE.
inline constexpr char kServedByMetadata[] = "herd-served-by";

class ControlServer {
 public:
  struct Options {
    Options() = default;  // user-provided: safe to pass into coroutines
    std::string socket_path = kDefaultSocketPath;
    // Group whose members may use the API besides root and herdd's euid:
    // a name ("herd") or a numeric gid ("4242"). Empty: nobody else.
    std::optional<std::string> group;
    // How long shutdown() lets gRPC finish in-flight RPCs.
    std::chrono::milliseconds shutdown_grace{2000};
    // Changes a Watch may fall behind before RESOURCE_EXHAUSTED.
    std::size_t watch_queue_limit = 1000;
    // The limits above (defaults in limits.h).
    std::size_t max_connections = kDefaultMaxConnections;
    std::size_t max_watchers = kDefaultMaxWatchers;
    std::size_t max_imports = kDefaultMaxImports;
    std::size_t max_pulls = kDefaultMaxPulls;
    std::size_t pull_pending_blobs = kPullPendingBlobs;
    std::chrono::milliseconds call_deadline = kDefaultCallDeadline;
    std::chrono::milliseconds import_deadline = kDefaultImportDeadline;
    std::chrono::milliseconds pull_deadline = kDefaultPullDeadline;
    std::string import_dir = kDefaultImportDir;
    uint64_t import_max_bytes = kDefaultImportMaxBytes;
  };

  // What the server holds now and has refused; for tests and diagnostics.
  struct Stats {
    std::size_t open_connections = 0;
    uint64_t accepted_connections = 0;
    uint64_t refused_connections = 0;
    uint64_t accept_failures = 0;  // accept() out of fds or memory
    std::size_t watchers = 0;
    std::size_t imports = 0;
    std::size_t pulls = 0;  // PullImage streams, and pulls still unwinding
    std::size_t pending_deadlines = 0;
  };

  static Result<std::unique_ptr<ControlServer>> start(asio::any_io_executor executor,
                                                      Options options, Backend& backend);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // See the contract above. Idempotent, any thread.
  void shutdown();

  const std::string& socket_path() const;
  // Any thread.
  Stats stats() const;

  struct Impl;

 private:
  explicit ControlServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// One to one, herd::Code to grpc::StatusCode numbers (they are the same).
int to_grpc_code(Code code);

}  // namespace herd::control
