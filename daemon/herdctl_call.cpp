#include "daemon/herdctl_call.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <iostream>

#include "control/limits.h"
#include "control/server.h"

namespace herd::ctl {

using SysClock = std::chrono::system_clock;

std::shared_ptr<grpc::Channel> channel_to(const Target& t) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetMaxReceiveMessageSize(static_cast<int>(herd::control::kClientMaxReceiveMessageBytes));
  return grpc::CreateCustomChannel("unix:" + t.socket, grpc::InsecureChannelCredentials(), args);
}

void set_deadline(grpc::ClientContext& ctx, const Target& t) {
  ctx.set_deadline(SysClock::now() + std::chrono::duration_cast<SysClock::duration>(
                                         std::chrono::duration<double>(t.timeout_s)));
}

void set_long_deadline(grpc::ClientContext& ctx, const Target& t,
                       std::chrono::milliseconds fallback) {
  if (t.timeout_given) {
    set_deadline(ctx, t);
  } else {
    ctx.set_deadline(SysClock::now() + fallback);
  }
}

std::optional<std::string> why_unreachable(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return "the socket path " + path + " is too long";
  std::memcpy(addr.sun_path, path.data(), path.size());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::string("socket: ") + std::strerror(errno);
  int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  int e = errno;
  ::close(fd);
  if (rc == 0) return std::nullopt;
  switch (e) {
    case ENOENT:
      return "no socket at " + path +
             " (is herdd running? --socket or HERD_CONTROL_SOCKET name another)";
    case ECONNREFUSED:
      return "nothing listens on " + path + " (herdd is not running; the socket is stale)";
    case EACCES:
    case EPERM:
      return "permission denied on " + path +
             " (run as root or as a member of the group herdd's control socket is configured for)";
    case ENOTSOCK:
      return path + " is not a socket";
    default:
      return "cannot connect to " + path + ": " + std::strerror(e);
  }
}

int report(const grpc::Status& s, const grpc::ClientContext& ctx, const Target& t,
           const std::string* name) {
  bool herdd_answered = ctx.GetServerTrailingMetadata().count(herd::control::kServedByMetadata) > 0;
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE && !herdd_answered) {
    if (std::optional<std::string> why = why_unreachable(t.socket)) {
      std::cerr << "herdctl: cannot connect to herdd: " << *why << "\n";
      return kExitNoConnection;
    }
    // Connecting works, yet herdd closed the connection: most likely it
    // serves its maximum of connections.
    std::cerr << "herdctl: herdd closed the connection on " << t.socket
              << " (it may be serving its maximum of connections; try again): " << s.error_message()
              << "\n";
    return kExitError;
  }
  if (s.error_code() == grpc::StatusCode::NOT_FOUND && name != nullptr) {
    std::cerr << "herdctl: no component named '" << *name << "'\n";
    return kExitError;
  }
  if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED && !herdd_answered) {
    std::cerr << "herdctl: herdd did not answer on " << t.socket << " within " << t.timeout_s
              << " s (--timeout)\n";
    return kExitError;
  }
  std::cerr << "herdctl: " << s.error_message() << "\n";
  return kExitError;
}

}  // namespace herd::ctl
