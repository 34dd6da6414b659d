#include "control/socket.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string_view>
#include <utility>
#include <vector>

#include <grpcpp/server_posix.h>
#include <spdlog/spdlog.h>

#include "control/limits.h"
#include "control/server.h"

namespace herd::control::internal {

std::string errno_text(int e) { return std::strerror(e); }

void mark(grpc::ServerContextBase* ctx) { ctx->AddTrailingMetadata(kServedByMetadata, "herdd"); }

// ---------------------------------------------------------------------------
// Groups and peers.

namespace {

std::optional<gid_t> parse_id(std::string_view s) {
  if (s.empty()) return std::nullopt;
  unsigned long v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  if (v > static_cast<unsigned long>(static_cast<gid_t>(-1) - 1)) return std::nullopt;
  return static_cast<gid_t>(v);
}

}  // namespace

Result<GroupInfo> resolve_group(const std::string& group) {
  std::vector<char> buf(16384);
  struct group gr {};
  struct group* found = nullptr;
  if (std::optional<gid_t> gid = parse_id(group)) {
    GroupInfo info{*gid, group};
    for (;;) {
      int rc = ::getgrgid_r(*gid, &gr, buf.data(), buf.size(), &found);
      if (rc == ERANGE && buf.size() < (1u << 22)) {
        buf.resize(buf.size() * 2);
        continue;
      }
      break;
    }
    if (found != nullptr) info.display = found->gr_name;
    return info;
  }
  for (;;) {
    int rc = ::getgrnam_r(group.c_str(), &gr, buf.data(), buf.size(), &found);
    if (rc == ERANGE && buf.size() < (1u << 22)) {
      buf.resize(buf.size() * 2);
      continue;
    }
    if (rc != 0 && rc != ENOENT && rc != ESRCH) {
      return Status(Code::kInvalidArgument,
                    "control socket group '" + group + "': " + errno_text(rc));
    }
    break;
  }
  if (found == nullptr) {
    return Status(Code::kInvalidArgument, "control socket group '" + group + "': no such group");
  }
  return GroupInfo{found->gr_gid, group};
}

namespace {

// Whether the "Groups:" line of /proc/<pid>/status lists `gid`.
bool supplementary_groups_include(pid_t pid, gid_t gid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Groups:", 0) != 0) continue;
    std::istringstream ids(line.substr(7));
    std::string id;
    while (ids >> id) {
      if (parse_id(id) == gid) return true;
    }
    return false;
  }
  return false;
}

}  // namespace

std::optional<std::string> Policy::deny_reason(const ucred& peer) const {
  if (peer.uid == 0 || peer.uid == euid) return std::nullopt;
  if (group) {
    if (peer.gid == group->gid) return std::nullopt;
    if (peer.pid > 0 && supplementary_groups_include(peer.pid, group->gid)) return std::nullopt;
  }
  std::string why = "uid " + std::to_string(peer.uid) + " (pid " + std::to_string(peer.pid) +
                    ") may not use the herd control socket: not root";
  if (euid != 0) why += ", not herdd's uid " + std::to_string(euid);
  if (group) {
    why += " and not in group '" + group->display + "'";
  } else {
    why += " (no group may use it)";
  }
  return why;
}

void DenyBook::put(std::string peer, std::string why) {
  std::lock_guard<std::mutex> l(mu_);
  by_peer_[std::move(peer)] = std::move(why);
}

std::string DenyBook::get(const std::string& peer) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = by_peer_.find(peer);
  if (it != by_peer_.end()) return it->second;
  return "this process may not use the herd control socket";
}

grpc::ServerGenericBidiReactor* DenyService::CreateReactor(
    grpc::GenericCallbackServerContext* ctx) {
  class Reactor final : public grpc::ServerGenericBidiReactor {
   public:
    explicit Reactor(std::string why) {
      Finish(grpc::Status(grpc::StatusCode::PERMISSION_DENIED, std::move(why)));
    }
    void OnDone() override { delete this; }
  };
  mark(ctx);
  return new Reactor(book_->get(ctx->peer()));
}

// ---------------------------------------------------------------------------
// The socket file.

namespace {

std::string lock_path_of(const std::string& socket_path) { return socket_path + ".lock"; }

// The pid holding a flock on the file with inode `ino`, from /proc/locks.
std::optional<long> flock_holder(ino_t ino) {
  std::ifstream in("/proc/locks");
  std::string line;
  while (std::getline(in, line)) {
    // "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF" (waiters have "->").
    std::istringstream f(line);
    std::string id, type, adv, rw, pid, dev;
    if (!(f >> id >> type)) continue;
    if (type == "->") continue;
    if (type != "FLOCK" || !(f >> adv >> rw >> pid >> dev)) continue;
    size_t colon = dev.rfind(':');
    if (colon == std::string::npos) continue;
    std::optional<gid_t> file_ino = parse_id(std::string_view(dev).substr(colon + 1));
    if (!file_ino || *file_ino != ino) continue;
    std::optional<gid_t> p = parse_id(pid);
    if (p) return static_cast<long>(*p);
  }
  return std::nullopt;
}

}  // namespace

Result<UniqueFd> take_lock(const std::string& socket_path) {
  std::string path = lock_path_of(socket_path);
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (fd.get() < 0) {
    int e = errno;
    return Status(Code::kFailedPrecondition,
                  "cannot open the control socket's lock file " + path + ": " + errno_text(e));
  }
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    if (e != EWOULDBLOCK) {
      return Status(Code::kFailedPrecondition, "cannot lock " + path + ": " + errno_text(e));
    }
    std::string who;
    struct stat st {};
    std::optional<long> pid;
    if (::fstat(fd.get(), &st) == 0) pid = flock_holder(st.st_ino);
    if (!pid) {
      char buf[32] = {};
      ssize_t n = ::pread(fd.get(), buf, sizeof buf - 1, 0);
      if (n > 0) {
        std::string s(buf, static_cast<size_t>(n));
        while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
        if (std::optional<gid_t> p = parse_id(s)) pid = static_cast<long>(*p);
      }
    }
    std::string msg = "another herdd serves " + socket_path + " (";
    if (pid) msg += "pid " + std::to_string(*pid) + ", ";
    msg += "holding " + path + ")";
    return Status(Code::kAlreadyExists, std::move(msg));
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd.get(), 0) == 0) {
    [[maybe_unused]] ssize_t n = ::pwrite(fd.get(), pid.data(), pid.size(), 0);
  }
  return fd;
}

Status ensure_parent_dir(const std::string& socket_path) {
  size_t slash = socket_path.rfind('/');
  if (slash == std::string::npos || slash == 0) return Status::Ok();
  std::string dir = socket_path.substr(0, slash);
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) {
      return Status(Code::kFailedPrecondition,
                    dir + " (the control socket's directory) is not a directory");
    }
    return Status::Ok();
  }
  if (::mkdir(dir.c_str(), 0755) != 0) {
    int e = errno;
    if (e == EEXIST) return Status::Ok();  // made by someone else meanwhile
    return Status(Code::kFailedPrecondition,
                  "cannot create " + dir + " for the control socket: " + errno_text(e));
  }
  ::chmod(dir.c_str(), 0755);  // whatever the umask was
  return Status::Ok();
}

// With the lock held, whatever is at `path` is stale: a socket is removed,
// anything else refused.
Status clear_stale(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    int e = errno;
    if (e == ENOENT) return Status::Ok();
    return Status(Code::kFailedPrecondition, "cannot inspect " + path + ": " + errno_text(e));
  }
  if (!S_ISSOCK(st.st_mode)) {
    std::string what = S_ISDIR(st.st_mode)   ? "a directory"
                       : S_ISREG(st.st_mode) ? "a regular file"
                       : S_ISLNK(st.st_mode) ? "a symbolic link"
                                             : "not a socket";
    return Status(
        Code::kFailedPrecondition,
        path + " exists and is " + what + ", not a stale control socket; refusing to replace it");
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    int e = errno;
    return Status(Code::kFailedPrecondition,
                  "cannot remove the stale control socket " + path + ": " + errno_text(e));
  }
  spdlog::info("control: removed the stale socket {}", path);
  return Status::Ok();
}

Result<UniqueFd> bind_socket(const std::string& path, const std::optional<GroupInfo>& group) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    return Status(Code::kInvalidArgument, "control socket path '" + path +
                                              "' is empty or longer than " +
                                              std::to_string(sizeof addr.sun_path - 1) + " bytes");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (fd.get() < 0) {
    int e = errno;
    return Status(Code::kInternal, "socket(AF_UNIX): " + errno_text(e));
  }
  // Born 0600: never wider than the final 0660 (umask is per process; a
  // file another thread creates meanwhile only gets narrower).
  mode_t old_mask = ::umask(0177);
  int rc = ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  int bind_errno = errno;
  ::umask(old_mask);
  if (rc != 0) {
    return Status(Code::kFailedPrecondition, "bind " + path + ": " + errno_text(bind_errno));
  }
  auto fail = [&](const std::string& what) {
    int e = errno;
    ::unlink(path.c_str());
    return Status(Code::kFailedPrecondition, what + " " + path + ": " + errno_text(e));
  };
  gid_t gid = group ? group->gid : static_cast<gid_t>(-1);
  if (::chown(path.c_str(), ::geteuid(), gid) != 0) return fail("chown");
  if (::chmod(path.c_str(), 0660) != 0) return fail("chmod");
  if (::listen(fd.get(), 128) != 0) return fail("listen on");
  return fd;
}

// ---------------------------------------------------------------------------
// Accepting connections.

bool LogLimiter::allow(uint64_t* held_back) {
  auto now = std::chrono::steady_clock::now();
  if (last_ && now - *last_ < interval_) {
    ++held_;
    return false;
  }
  last_ = now;
  *held_back = held_;
  held_ = 0;
  return true;
}

Listener::Listener(asio::any_io_executor ex, Policy policy, size_t max_connections,
                   grpc::Server* allowed, grpc::Server* denied, std::shared_ptr<DenyBook> book)
    : acceptor_(std::in_place, ex),
      retry_(std::in_place, ex),
      policy_(std::move(policy)),
      max_connections_(max_connections),
      allowed_(allowed),
      denied_(denied),
      book_(std::move(book)),
      refusal_log_(kRefusalLogInterval),
      accept_log_(kRefusalLogInterval),
      deny_log_(std::chrono::seconds(1)) {}

Status Listener::start(UniqueFd fd) {
  std::lock_guard<std::mutex> l(mu_);
  boost::system::error_code ec;
  acceptor_->assign(asio::local::stream_protocol(), fd.get(), ec);
  if (ec) return Status(Code::kInternal, "control socket: " + ec.message());
  fd.release();
  arm();
  return Status::Ok();
}

void Listener::close() {
  std::lock_guard<std::mutex> l(mu_);
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ec;
  acceptor_->close(ec);
  retry_->cancel();
  // Pending handlers hold the Listener, not these objects.
  acceptor_.reset();
  retry_.reset();
}

ListenerStats Listener::stats() {
  std::lock_guard<std::mutex> l(mu_);
  sweep();
  ListenerStats s = stats_;
  s.open_connections = open_.size();
  return s;
}

void Listener::arm() {
  acceptor_->async_wait(
      asio::socket_base::wait_read,
      [self = shared_from_this()](const boost::system::error_code& ec) { self->on_readable(ec); });
}

void Listener::on_readable(const boost::system::error_code& ec) {
  std::lock_guard<std::mutex> l(mu_);
  if (closed_ || ec == asio::error::operation_aborted) return;
  if (ec) {
    spdlog::warn("control: waiting for connections: {}; retrying in {} ms", ec.message(),
                 kAcceptRetryDelay.count());
    retry_later();
    return;
  }
  // At most a batch per wake-up: a flood of connections must not keep
  // the executor (herdd's one loop) from its other work.
  for (int batch = 0; batch < 64; ++batch) {
    int fd = ::accept4(acceptor_->native_handle(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd >= 0) {
      take(fd);
      continue;
    }
    int e = errno;
    if (e == EINTR || e == ECONNABORTED) continue;
    if (e == EAGAIN || e == EWOULDBLOCK) break;
    // Out of fds or memory: the listener stays readable, so wait a bit
    // instead of spinning.
    ++stats_.accept_failures;
    uint64_t held = 0;
    if (accept_log_.allow(&held)) {
      spdlog::warn(
          "control: accept: {}; retrying every {} ms ({} more failures since the last "
          "warning)",
          errno_text(e), kAcceptRetryDelay.count(), held);
    }
    retry_later();
    return;
  }
  arm();
}

void Listener::retry_later() {
  retry_->expires_after(kAcceptRetryDelay);
  retry_->async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    std::lock_guard<std::mutex> l(self->mu_);
    if (self->closed_ || ec) return;
    self->arm();
  });
}

void Listener::sweep() {
  for (auto it = open_.begin(); it != open_.end();) {
    struct stat st {};
    if (::fstat(it->first, &st) != 0 || !S_ISSOCK(st.st_mode) || st.st_ino != it->second) {
      it = open_.erase(it);
    } else {
      ++it;
    }
  }
}

void Listener::take(int fd) {
  // The kernel gave us `fd`: whatever had that number before is closed.
  open_.erase(fd);
  if (open_.size() >= max_connections_) sweep();
  if (open_.size() >= max_connections_) {
    ::close(fd);
    ++stats_.refused_connections;
    uint64_t held = 0;
    if (refusal_log_.allow(&held)) {
      spdlog::warn(
          "control: refused a connection: herdd serves at most {} connections at once "
          "({} more refused since the last warning)",
          max_connections_, held);
    }
    return;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    spdlog::warn("control: fstat of a new connection: {}; closing it", errno_text(e));
    ::close(fd);
    return;
  }
  open_[fd] = st.st_ino;
  hand_over(fd);
}

void Listener::hand_over(int fd) {
  ucred peer{};
  socklen_t len = sizeof peer;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0) {
    int e = errno;
    spdlog::warn("control: SO_PEERCRED: {}; closing the connection", errno_text(e));
    open_.erase(fd);
    ::close(fd);
    return;
  }
  ++stats_.accepted;
  std::optional<std::string> why = policy_.deny_reason(peer);
  if (!why) {
    grpc::AddInsecureChannelFromFd(allowed_, fd);
    return;
  }
  uint64_t held = 0;
  if (deny_log_.allow(&held)) {
    spdlog::warn("control: {} ({} more denials since the last warning)", *why, held);
  }
  book_->put("fd:" + std::to_string(fd), *why);
  grpc::AddInsecureChannelFromFd(denied_, fd);
}

}  // namespace herd::control::internal
