// Internal to lib/control: the control socket and who may use it.
//
// - The socket file: take_lock, ensure_parent_dir, clear_stale and
//   bind_socket do what server.h's contract says of `<socket>.lock`, stale
//   sockets and the 0600-then-0660 bind. Synchronous syscalls, any thread.
// - The peer policy: Policy::deny_reason(SO_PEERCRED) decides; connections
//   it denies go to the DenyService, a generic gRPC service that answers
//   every method PERMISSION_DENIED with the reason from the DenyBook.
// - Listener: accepts on herdd's executor (see server.h: batches of 64,
//   the connection limit, the accept retry timer). All its state is under
//   its own mutex, so close() and stats() may be called from any thread.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <boost/asio/local/stream_protocol.hpp>

#include "common/asio.h"
#include "common/status.h"
#include "common/unique_fd.h"

namespace herd::control::internal {

std::string errno_text(int e);

// Trailing metadata on every answer of the server (kServedByMetadata).
void mark(grpc::ServerContextBase* ctx);

// ---------------------------------------------------------------------------
// Groups and peers.

struct GroupInfo {
  gid_t gid = 0;
  std::string display;  // the name, or the number when it has none
};

// A group name or a numeric gid; kInvalidArgument naming an unknown one.
Result<GroupInfo> resolve_group(const std::string& group);

struct Policy {
  uid_t euid = 0;
  std::optional<GroupInfo> group;

  // Empty when the peer may use the API, else why not.
  std::optional<std::string> deny_reason(const ucred& peer) const;
};

// Denial messages by gRPC peer name ("fd:N") of the connections handed to
// the denying server. An fd number is reused only after gRPC closed it, and
// the entry is replaced before the new connection is handed over.
class DenyBook {
 public:
  void put(std::string peer, std::string why);
  std::string get(const std::string& peer) const;

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::string> by_peer_;
};

class DenyService final : public grpc::CallbackGenericService {
 public:
  explicit DenyService(std::shared_ptr<DenyBook> book) : book_(std::move(book)) {}
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override;

 private:
  std::shared_ptr<DenyBook> book_;
};

// ---------------------------------------------------------------------------
// The socket file.

Result<UniqueFd> take_lock(const std::string& socket_path);
Status ensure_parent_dir(const std::string& socket_path);
Status clear_stale(const std::string& path);
Result<UniqueFd> bind_socket(const std::string& path, const std::optional<GroupInfo>& group);

// ---------------------------------------------------------------------------
// Accepting connections.

// At most one warning per interval; counts what it held back.
class LogLimiter {
 public:
  explicit LogLimiter(std::chrono::milliseconds interval) : interval_(interval) {}
  // Whether to log now; `held_back` is how many were not logged since.
  bool allow(uint64_t* held_back);

 private:
  std::chrono::milliseconds interval_;
  std::optional<std::chrono::steady_clock::time_point> last_;
  uint64_t held_ = 0;
};

struct ListenerStats {
  size_t open_connections = 0;       // handed to gRPC and not yet closed by it
  uint64_t accepted = 0;             // handed to gRPC, ever
  uint64_t refused_connections = 0;  // closed at once: over the limit
  uint64_t accept_failures = 0;      // accept() out of fds or memory: retried later
};

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(asio::any_io_executor ex, Policy policy, size_t max_connections, grpc::Server* allowed,
           grpc::Server* denied, std::shared_ptr<DenyBook> book);

  Status start(UniqueFd fd);
  // Any thread. No handler touches the gRPC servers afterwards.
  void close();
  ListenerStats stats();

 private:
  void arm();  // mu_ held
  void on_readable(const boost::system::error_code& ec);
  void retry_later();      // mu_ held
  void take(int fd);       // mu_ held
  void hand_over(int fd);  // mu_ held
  // Forgets connections gRPC has closed (their fd is gone or is another
  // file now). mu_ held.
  void sweep();

  std::mutex mu_;
  bool closed_ = false;
  std::optional<asio::local::stream_protocol::acceptor> acceptor_;
  std::optional<asio::steady_timer> retry_;
  Policy policy_;
  size_t max_connections_;
  grpc::Server* allowed_;
  grpc::Server* denied_;
  std::shared_ptr<DenyBook> book_;
  std::unordered_map<int, ino_t> open_;  // fd -> the socket's inode
  ListenerStats stats_;
  LogLimiter refusal_log_;
  LogLimiter accept_log_;
  LogLimiter deny_log_;
};

}  // namespace herd::control::internal
