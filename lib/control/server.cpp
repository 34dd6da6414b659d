#include "control/server.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <sstream>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio/local/stream_protocol.hpp>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/server_posix.h>
#include <spdlog/spdlog.h>

#include "control/convert.h"
#include "herd/v1/control.grpc.pb.h"

namespace herd::control {

static_assert(static_cast<int>(Code::kNotFound) == grpc::StatusCode::NOT_FOUND);
static_assert(static_cast<int>(Code::kPermissionDenied) == grpc::StatusCode::PERMISSION_DENIED);
static_assert(static_cast<int>(Code::kUnauthenticated) == grpc::StatusCode::UNAUTHENTICATED);
static_assert(static_cast<int>(Code::kDataLoss) == grpc::StatusCode::DATA_LOSS);

int to_grpc_code(Code code) { return static_cast<int>(code); }

namespace {

namespace v1 = herd::v1;

std::string errno_text(int e) { return std::strerror(e); }

grpc::Status to_grpc(const Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(to_grpc_code(s.code())), s.message());
}

// Trailing metadata on every answer of the server, so that herdctl can
// tell an UNAVAILABLE from herdd ("shutting down") from one of gRPC's own
// (cannot connect).
template <class Ctx>
void mark(Ctx* ctx) {
  ctx->AddTrailingMetadata(kServedByMetadata, "herdd");
}

grpc::Status shutting_down() {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE, "herdd is shutting down");
}

// An owned file descriptor.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ~UniqueFd() { reset(); }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// ---------------------------------------------------------------------------
// Groups and peers.

std::optional<gid_t> parse_id(std::string_view s) {
  if (s.empty()) return std::nullopt;
  unsigned long v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  if (v > static_cast<unsigned long>(static_cast<gid_t>(-1) - 1)) return std::nullopt;
  return static_cast<gid_t>(v);
}

struct GroupInfo {
  gid_t gid = 0;
  std::string display;  // the name, or the number when it has none
};

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
    return Status(Code::kInvalidArgument,
                  "control socket group '" + group + "': no such group");
  }
  return GroupInfo{found->gr_gid, group};
}

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

struct Policy {
  uid_t euid = 0;
  std::optional<GroupInfo> group;

  // Empty when the peer may use the API, else why not.
  std::optional<std::string> deny_reason(const ucred& peer) const {
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
};

// Denial messages by gRPC peer name ("fd:N") of the connections handed to
// the denying server. An fd number is reused only after gRPC closed it, and
// the entry is replaced before the new connection is handed over.
class DenyBook {
 public:
  void put(std::string peer, std::string why) {
    std::lock_guard<std::mutex> l(mu_);
    by_peer_[std::move(peer)] = std::move(why);
  }
  std::string get(const std::string& peer) const {
    std::lock_guard<std::mutex> l(mu_);
    auto it = by_peer_.find(peer);
    if (it != by_peer_.end()) return it->second;
    return "this process may not use the herd control socket";
  }

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::string> by_peer_;
};

class DenyService final : public grpc::CallbackGenericService {
 public:
  explicit DenyService(std::shared_ptr<DenyBook> book) : book_(std::move(book)) {}

  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override {
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

 private:
  std::shared_ptr<DenyBook> book_;
};

// ---------------------------------------------------------------------------
// The socket file.

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

Result<UniqueFd> take_lock(const std::string& socket_path) {
  std::string path = lock_path_of(socket_path);
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (fd.get() < 0) {
    int e = errno;
    return Status(Code::kFailedPrecondition, "cannot open the control socket's lock file " +
                                                 path + ": " + errno_text(e));
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
      return Status(Code::kFailedPrecondition, dir + " (the control socket's directory) is not a directory");
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
    return Status(Code::kFailedPrecondition,
                  path + " exists and is " + what +
                      ", not a stale control socket; refusing to replace it");
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
    return Status(Code::kInvalidArgument, "control socket path '" + path + "' is empty or longer than " +
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

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(asio::any_io_executor ex, Policy policy, grpc::Server* allowed, grpc::Server* denied,
           std::shared_ptr<DenyBook> book)
      : acceptor_(std::in_place, ex),
        retry_(std::in_place, ex),
        policy_(std::move(policy)),
        allowed_(allowed),
        denied_(denied),
        book_(std::move(book)) {}

  Status start(UniqueFd fd) {
    std::lock_guard<std::mutex> l(mu_);
    boost::system::error_code ec;
    acceptor_->assign(asio::local::stream_protocol(), fd.get(), ec);
    if (ec) return Status(Code::kInternal, "control socket: " + ec.message());
    fd.release();
    arm();
    return Status::Ok();
  }

  // Any thread. No handler touches the gRPC servers afterwards.
  void close() {
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

 private:
  void arm() {  // mu_ held
    acceptor_->async_wait(asio::socket_base::wait_read,
                          [self = shared_from_this()](const boost::system::error_code& ec) {
                            self->on_readable(ec);
                          });
  }

  void on_readable(const boost::system::error_code& ec) {
    std::lock_guard<std::mutex> l(mu_);
    if (closed_ || ec == asio::error::operation_aborted) return;
    if (ec) {
      spdlog::warn("control: waiting for connections: {}; retrying in 100 ms", ec.message());
      retry_later();
      return;
    }
    // At most a batch per wake-up: a flood of connections must not keep
    // the executor (herdd's one loop) from its other work.
    for (int batch = 0; batch < 64; ++batch) {
      int fd = ::accept4(acceptor_->native_handle(), nullptr, nullptr,
                         SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd >= 0) {
        hand_over(fd);
        continue;
      }
      int e = errno;
      if (e == EINTR || e == ECONNABORTED) continue;
      if (e == EAGAIN || e == EWOULDBLOCK) break;
      // Out of fds or memory: the listener stays readable, so wait a bit
      // instead of spinning.
      spdlog::warn("control: accept: {}; retrying in 100 ms", errno_text(e));
      retry_later();
      return;
    }
    arm();
  }

  void retry_later() {  // mu_ held
    retry_->expires_after(std::chrono::milliseconds(100));
    retry_->async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      std::lock_guard<std::mutex> l(self->mu_);
      if (self->closed_ || ec) return;
      self->arm();
    });
  }

  void hand_over(int fd) {  // mu_ held
    ucred peer{};
    socklen_t len = sizeof peer;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0) {
      int e = errno;
      spdlog::warn("control: SO_PEERCRED: {}; closing the connection", errno_text(e));
      ::close(fd);
      return;
    }
    std::optional<std::string> why = policy_.deny_reason(peer);
    if (!why) {
      grpc::AddInsecureChannelFromFd(allowed_, fd);
      return;
    }
    spdlog::warn("control: {}", *why);
    book_->put("fd:" + std::to_string(fd), *why);
    grpc::AddInsecureChannelFromFd(denied_, fd);
  }

  std::mutex mu_;
  bool closed_ = false;
  std::optional<asio::local::stream_protocol::acceptor> acceptor_;
  std::optional<asio::steady_timer> retry_;
  Policy policy_;
  grpc::Server* allowed_;
  grpc::Server* denied_;
  std::shared_ptr<DenyBook> book_;
};

// ---------------------------------------------------------------------------
// Calls in flight, so that shutdown() can finish them without the Backend.

class Abortable {
 public:
  virtual ~Abortable() = default;
  // Finish the RPC now with `s`, unless it is finished already.
  virtual void abort(const grpc::Status& s) = 0;
  // After the gRPC servers are down: drop what the call holds of the
  // Backend (a Watch unwatches).
  virtual void release() {}
};

class Tracker {
 public:
  bool add(const std::shared_ptr<Abortable>& c) {
    std::lock_guard<std::mutex> l(mu_);
    if (closed_) return false;
    live_.emplace(c.get(), c);
    return true;
  }
  void remove(Abortable* c) {
    std::lock_guard<std::mutex> l(mu_);
    live_.erase(c);
  }
  std::vector<std::shared_ptr<Abortable>> close() {
    std::lock_guard<std::mutex> l(mu_);
    closed_ = true;
    std::vector<std::shared_ptr<Abortable>> all;
    all.reserve(live_.size());
    for (auto& [p, c] : live_) all.push_back(c);
    live_.clear();
    return all;
  }

 private:
  std::mutex mu_;
  bool closed_ = false;
  std::unordered_map<Abortable*, std::shared_ptr<Abortable>> live_;
};

// One unary RPC waiting for its Backend callback. Whoever finishes first
// (the callback or shutdown) finishes the reactor; the other does nothing.
// The response message is written only under mu_ and only before Finish,
// while gRPC still owns it for this call.
template <class Resp>
class UnaryCall final : public Abortable {
 public:
  UnaryCall(grpc::ServerUnaryReactor* reactor, Resp* resp, std::shared_ptr<Tracker> tracker)
      : reactor_(reactor), resp_(resp), tracker_(std::move(tracker)) {}

  template <class Fill>
  void complete(Fill&& fill) {
    grpc::Status s;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (finished_) return;
      finished_ = true;
      s = fill(*resp_);
    }
    tracker_->remove(this);
    reactor_->Finish(s);
  }

  void abort(const grpc::Status& s) override {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (finished_) return;
      finished_ = true;
    }
    tracker_->remove(this);
    reactor_->Finish(s);
  }

 private:
  std::mutex mu_;
  bool finished_ = false;
  grpc::ServerUnaryReactor* reactor_;
  Resp* resp_;
  std::shared_ptr<Tracker> tracker_;
};

// ---------------------------------------------------------------------------
// Watch.

class WatchReactor;

// The state of one Watch, shared by its reactor, the Backend's callbacks
// and the tracker. Every decision is made under mu_; the reactor is called
// outside it (gRPC may run OnWriteDone inline in StartWrite's caller). A
// StartWrite is issued only while no write is in flight and Finish is not
// called; Finish waits until no write is in flight and is called once.
// OnDone cannot precede Finish, so the reactor is alive at every call.
class WatchState final : public Abortable, public std::enable_shared_from_this<WatchState> {
 public:
  WatchState(grpc::ServerWriteReactor<v1::WatchEvent>* reactor, Backend* backend,
             std::shared_ptr<Tracker> tracker, std::string filter, size_t limit)
      : reactor_(reactor),
        backend_(backend),
        tracker_(std::move(tracker)),
        filter_(std::move(filter)),
        limit_(limit) {}

  void set_watch_id(uint64_t id) {
    std::lock_guard<std::mutex> l(mu_);
    watch_id_ = id;
    registered_ = true;
  }

  void on_change(const supervise::ComponentStatus& s) {
    if (!filter_.empty() && s.name != filter_) return;
    v1::ComponentStatus p = to_proto(s);
    {
      std::lock_guard<std::mutex> l(mu_);
      if (finish_ || finish_called_) return;
      if (!have_list_) {
        if (early_.size() >= limit_) {
          fall_behind();
        } else {
          early_.push_back(std::move(p));
        }
      } else {
        enqueue(std::move(p), false);
      }
    }
    pump();
  }

  void on_list(const Backend::StatusList& list) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (finish_ || finish_called_) return;
      have_list_ = true;
      std::unordered_map<std::string, v1::ComponentStatus> snapshot;
      for (const supervise::ComponentStatus& s : list) {
        if (!filter_.empty() && s.name != filter_) continue;
        v1::ComponentStatus p = to_proto(s);
        snapshot.emplace(p.name(), p);
        enqueue(std::move(p), true);
      }
      if (!filter_.empty() && snapshot.empty()) {
        finish_ = grpc::Status(grpc::StatusCode::NOT_FOUND,
                               "no component named '" + filter_ + "'");
        queue_.clear();
      } else {
        // Changes seen while the list was being made: skip those the
        // snapshot already shows (older, or the same status).
        for (v1::ComponentStatus& p : early_) {
          auto it = snapshot.find(p.name());
          if (it != snapshot.end() &&
              (p.changed_at_unix_nano() < it->second.changed_at_unix_nano() ||
               p.SerializeAsString() == it->second.SerializeAsString())) {
            continue;
          }
          enqueue(std::move(p), false);
          if (finish_) break;
        }
      }
      early_.clear();
    }
    pump();
  }

  void request_finish(const grpc::Status& s) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (!finish_ && !finish_called_) {
        finish_ = s;
        queue_.clear();
        early_.clear();
      }
    }
    pump();
  }

  void abort(const grpc::Status& s) override { request_finish(s); }
  void release() override { unwatch_once(); }

  void write_done(bool ok) {
    {
      std::lock_guard<std::mutex> l(mu_);
      writing_ = false;
      if (!ok && !finish_ && !finish_called_) {
        finish_ = grpc::Status(grpc::StatusCode::CANCELLED, "the watcher went away");
        queue_.clear();
      }
    }
    pump();
  }

  void done() {
    unwatch_once();
    tracker_->remove(this);
  }

  // Starts the next write or the finish, if one is due.
  void pump() {
    bool write = false;
    grpc::Status status;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (finish_called_ || writing_) return;
      if (finish_) {
        finish_called_ = true;
        status = *finish_;
      } else if (!queue_.empty()) {
        in_flight_ = std::move(queue_.front());
        queue_.pop_front();
        writing_ = true;
        write = true;
      } else {
        return;
      }
    }
    if (write) {
      reactor_->StartWrite(&in_flight_);
    } else {
      reactor_->Finish(status);
    }
  }

 private:
  void enqueue(v1::ComponentStatus p, bool initial) {  // mu_ held
    if (!initial && queue_.size() >= limit_) {
      fall_behind();
      return;
    }
    v1::WatchEvent ev;
    *ev.mutable_component() = std::move(p);
    ev.set_initial(initial);
    queue_.push_back(std::move(ev));
  }

  void fall_behind() {  // mu_ held
    finish_ = grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                           "the watcher fell more than " + std::to_string(limit_) +
                               " changes behind; watch again");
    queue_.clear();
    early_.clear();
    spdlog::warn("control: a watcher fell more than {} changes behind; ending its stream", limit_);
  }

  void unwatch_once() {
    uint64_t id = 0;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (!registered_) return;
      registered_ = false;
      id = watch_id_;
    }
    backend_->unwatch(id);
  }

  std::mutex mu_;
  grpc::ServerWriteReactor<v1::WatchEvent>* reactor_;
  Backend* backend_;
  std::shared_ptr<Tracker> tracker_;
  const std::string filter_;
  const size_t limit_;

  uint64_t watch_id_ = 0;
  bool registered_ = false;
  bool have_list_ = false;
  std::vector<v1::ComponentStatus> early_;
  std::deque<v1::WatchEvent> queue_;
  v1::WatchEvent in_flight_;
  bool writing_ = false;
  std::optional<grpc::Status> finish_;
  bool finish_called_ = false;
};

class WatchReactor final : public grpc::ServerWriteReactor<v1::WatchEvent> {
 public:
  WatchReactor(Backend* backend, std::shared_ptr<Tracker> tracker, std::string filter,
               size_t limit)
      : state_(std::make_shared<WatchState>(this, backend, std::move(tracker),
                                            std::move(filter), limit)) {}

  const std::shared_ptr<WatchState>& state() const { return state_; }

  void OnWriteDone(bool ok) override { state_->write_done(ok); }
  void OnCancel() override {
    state_->request_finish(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
  }
  void OnDone() override {
    state_->done();
    delete this;
  }

 private:
  std::shared_ptr<WatchState> state_;
};

// ---------------------------------------------------------------------------
// The service.

class Service final : public v1::Control::CallbackService {
 public:
  Service(Backend* backend, std::shared_ptr<Tracker> tracker, size_t watch_limit)
      : backend_(backend), tracker_(std::move(tracker)), watch_limit_(watch_limit) {}

  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* ctx, const v1::ListRequest*,
                                 v1::ListResponse* resp) override {
    mark(ctx);
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    auto call = begin(reactor, resp);
    if (!call) return reactor;
    backend_->list([call](Backend::StatusList list) {
      call->complete([&](v1::ListResponse& out) {
        for (const supervise::ComponentStatus& s : list) *out.add_components() = to_proto(s);
        return grpc::Status::OK;
      });
    });
    return reactor;
  }

  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* ctx, const v1::GetRequest* req,
                                v1::GetResponse* resp) override {
    mark(ctx);
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    if (req->name().empty()) {
      reactor->Finish(name_required());
      return reactor;
    }
    auto call = begin(reactor, resp);
    if (!call) return reactor;
    backend_->get(req->name(), [call](Result<supervise::ComponentStatus> r) {
      call->complete([&](v1::GetResponse& out) {
        if (!r.ok()) return to_grpc(r.status());
        *out.mutable_component() = to_proto(*r);
        return grpc::Status::OK;
      });
    });
    return reactor;
  }

  grpc::ServerUnaryReactor* Start(grpc::CallbackServerContext* ctx, const v1::ActionRequest* req,
                                  v1::ActionResponse* resp) override {
    return act(Verb::kStart, ctx, req, resp);
  }
  grpc::ServerUnaryReactor* Stop(grpc::CallbackServerContext* ctx, const v1::ActionRequest* req,
                                 v1::ActionResponse* resp) override {
    return act(Verb::kStop, ctx, req, resp);
  }
  grpc::ServerUnaryReactor* Restart(grpc::CallbackServerContext* ctx,
                                    const v1::ActionRequest* req,
                                    v1::ActionResponse* resp) override {
    return act(Verb::kRestart, ctx, req, resp);
  }

  grpc::ServerUnaryReactor* Reload(grpc::CallbackServerContext* ctx, const v1::ReloadRequest*,
                                   v1::ReloadResponse* resp) override {
    mark(ctx);
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    auto call = begin(reactor, resp);
    if (!call) return reactor;
    backend_->reload([call](ReloadResult r) {
      call->complete([&](v1::ReloadResponse& out) {
        out.set_ok(r.status.ok());
        for (const std::string& e : r.errors) out.add_errors(e);
        if (!r.status.ok() && r.errors.empty()) out.add_errors(r.status.message());
        for (const std::string& n : r.added) out.add_added(n);
        for (const std::string& n : r.removed) out.add_removed(n);
        for (const std::string& n : r.changed) out.add_changed(n);
        for (const std::string& n : r.unchanged) out.add_unchanged(n);
        return grpc::Status::OK;
      });
    });
    return reactor;
  }

  grpc::ServerUnaryReactor* ImportImage(grpc::CallbackServerContext* ctx,
                                        const v1::ImportImageRequest* req,
                                        v1::ImportImageResponse* resp) override {
    mark(ctx);
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    if (req->path().empty() || req->path().front() != '/') {
      reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                   "the image archive path must be absolute, not '" +
                                       req->path() + "'"));
      return reactor;
    }
    auto call = begin(reactor, resp);
    if (!call) return reactor;
    backend_->import_image(req->path(), [call](Result<std::vector<std::string>> r) {
      call->complete([&](v1::ImportImageResponse& out) {
        if (!r.ok()) return to_grpc(r.status());
        for (const std::string& n : *r) out.add_images(n);
        return grpc::Status::OK;
      });
    });
    return reactor;
  }

  grpc::ServerWriteReactor<v1::WatchEvent>* Watch(grpc::CallbackServerContext* ctx,
                                                  const v1::WatchRequest* req) override {
    mark(ctx);
    auto* reactor = new WatchReactor(backend_, tracker_, req->name(), watch_limit_);
    std::shared_ptr<WatchState> state = reactor->state();
    if (!tracker_->add(state)) {
      state->request_finish(shutting_down());
      return reactor;
    }
    std::weak_ptr<WatchState> weak = state;
    uint64_t id = backend_->watch([weak](const supervise::ComponentStatus& s) {
      if (std::shared_ptr<WatchState> st = weak.lock()) st->on_change(s);
    });
    state->set_watch_id(id);
    backend_->list([state](Backend::StatusList list) { state->on_list(list); });
    return reactor;
  }

 private:
  static grpc::Status name_required() {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "a component name is required");
  }

  template <class Resp>
  std::shared_ptr<UnaryCall<Resp>> begin(grpc::ServerUnaryReactor* reactor, Resp* resp) {
    auto call = std::make_shared<UnaryCall<Resp>>(reactor, resp, tracker_);
    if (!tracker_->add(call)) {
      call->abort(shutting_down());
      return nullptr;
    }
    return call;
  }

  grpc::ServerUnaryReactor* act(Verb verb, grpc::CallbackServerContext* ctx,
                                const v1::ActionRequest* req, v1::ActionResponse* resp) {
    mark(ctx);
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    if (req->name().empty()) {
      reactor->Finish(name_required());
      return reactor;
    }
    auto call = begin(reactor, resp);
    if (!call) return reactor;
    backend_->act(verb, req->name(), [call](Status s) {
      call->complete([&](v1::ActionResponse&) { return to_grpc(s); });
    });
    return reactor;
  }

  Backend* backend_;
  std::shared_ptr<Tracker> tracker_;
  size_t watch_limit_;
};

}  // namespace

// ---------------------------------------------------------------------------

struct ControlServer::Impl {
  Options options;
  UniqueFd lock;
  std::shared_ptr<Tracker> tracker = std::make_shared<Tracker>();
  std::shared_ptr<DenyBook> book = std::make_shared<DenyBook>();
  // Services before servers: a server is destroyed before its service.
  std::unique_ptr<Service> service;
  std::unique_ptr<DenyService> deny_service;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<grpc::Server> deny_server;
  std::shared_ptr<Listener> listener;
  bool socket_bound = false;

  std::mutex mu;
  bool shut = false;

  void shutdown() {
    {
      std::lock_guard<std::mutex> l(mu);
      if (shut) return;
      shut = true;
    }
    if (listener) listener->close();
    if (socket_bound) ::unlink(options.socket_path.c_str());
    std::vector<std::shared_ptr<Abortable>> calls = tracker->close();
    for (const auto& c : calls) c->abort(shutting_down());
    auto deadline = std::chrono::system_clock::now() + options.shutdown_grace;
    if (server) server->Shutdown(deadline);
    if (deny_server) deny_server->Shutdown(deadline);
    for (const auto& c : calls) c->release();
    lock.reset();  // releases the flock
  }
};

ControlServer::ControlServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ControlServer::~ControlServer() {
  if (impl_) impl_->shutdown();
}

void ControlServer::shutdown() { impl_->shutdown(); }

const std::string& ControlServer::socket_path() const { return impl_->options.socket_path; }

Result<std::unique_ptr<ControlServer>> ControlServer::start(asio::any_io_executor executor,
                                                           Options options, Backend& backend) {
  auto impl = std::make_unique<Impl>();
  const std::string path = options.socket_path;
  impl->options = std::move(options);

  Policy policy;
  policy.euid = ::geteuid();
  if (impl->options.group && !impl->options.group->empty()) {
    Result<GroupInfo> g = resolve_group(*impl->options.group);
    if (!g.ok()) return g.status();
    policy.group = *g;
  }

  if (Status s = ensure_parent_dir(path); !s.ok()) return s;
  Result<UniqueFd> lock = take_lock(path);
  if (!lock.ok()) return lock.status();
  impl->lock = std::move(lock).value();
  // From here on a failure releases the lock with impl.
  if (Status s = clear_stale(path); !s.ok()) return s;
  Result<UniqueFd> sock = bind_socket(path, policy.group);
  if (!sock.ok()) return sock.status();
  impl->socket_bound = true;
  auto fail = [&](Status s) -> Result<std::unique_ptr<ControlServer>> {
    impl->shutdown();
    return s;
  };

  impl->service = std::make_unique<Service>(&backend, impl->tracker,
                                            impl->options.watch_queue_limit);
  {
    grpc::ServerBuilder builder;
    builder.RegisterService(impl->service.get());
    impl->server = builder.BuildAndStart();
  }
  impl->deny_service = std::make_unique<DenyService>(impl->book);
  {
    grpc::ServerBuilder builder;
    builder.RegisterCallbackGenericService(impl->deny_service.get());
    impl->deny_server = builder.BuildAndStart();
  }
  if (!impl->server || !impl->deny_server) {
    return fail(Status::Internal("control: cannot start the gRPC servers"));
  }

  impl->listener = std::make_shared<Listener>(executor, policy, impl->server.get(),
                                              impl->deny_server.get(), impl->book);
  if (Status s = impl->listener->start(std::move(sock).value()); !s.ok()) return fail(s);

  spdlog::info("control: serving {} (mode 0660, group {})", path,
               policy.group ? policy.group->display : std::string("of herdd"));
  return std::unique_ptr<ControlServer>(new ControlServer(std::move(impl)));
}

}  // namespace herd::control
