#include "systemd/notify.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <thread>

#include "common/strand_check.h"

namespace herd::systemd {

namespace {

// Where NOTIFY_SOCKET points.
struct Address {
  sockaddr_un addr{};
  socklen_t len = 0;
};
enum class Where { kNone, kUnix, kOther };

Where notify_address(Address* out) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || path[0] == '\0') return Where::kNone;
  const size_t len = std::strlen(path);
  if ((path[0] != '/' && path[0] != '@') || len >= sizeof out->addr.sun_path) {
    return Where::kOther;  // a form only libsystemd knows (e.g. vsock)
  }
  out->addr.sun_family = AF_UNIX;
  std::memcpy(out->addr.sun_path, path, len);
  if (path[0] == '@') out->addr.sun_path[0] = '\0';  // abstract namespace
  out->len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
  return Where::kUnix;
}

std::string first_line(std::string_view state) {
  return std::string(state.substr(0, state.find('\n')));
}

// One datagram without waiting: 0, or the errno.
int send_nowait(const Address& a, std::string_view state) {
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return errno;
  const ssize_t n = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL | MSG_DONTWAIT,
                             reinterpret_cast<const sockaddr*>(&a.addr), a.len);
  const int err = n < 0 ? errno : 0;
  ::close(fd);
  return err;
}

Status send_error(std::string_view state, int err) {
  return Status::Unavailable("notify " + first_line(state) + ": " + std::strerror(err) +
                             (err == EAGAIN ? " (queue full; dropped)" : ""));
}

// NOTIFY_SOCKET in a form other than a path or "@name": libsystemd also
// knows "vsock:CID:PORT", which only systemd itself meets as PID 1 of a VM
// (a service is always given a unix socket), so herd does not speak it and
// does not link libsystemd for it (herdd's RSS, docs/benchmarks.md).
Status unsupported_address(std::string_view state) {
  const char* where = std::getenv("NOTIFY_SOCKET");
  return Status::Unavailable("notify " + first_line(state) +
                             ": NOTIFY_SOCKET=" + std::string(where ? where : "") +
                             " is not a socket path or @abstract name; not sent");
}

// The one slot for a lifecycle message that found the socket full, and the
// helper thread that sends it once there is room (see notify.h).
class LifecycleSlot {
 public:
  // Never destroyed: a helper thread may still use it while the process
  // exits.
  static LifecycleSlot& instance() {
    static LifecycleSlot* slot = new LifecycleSlot;
    return *slot;
  }

  Status submit(const Address& a, std::string_view state) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (pending_ || in_flight_) {  // never ahead of a waiting one; the latest wins
      pending_ = Item{a, std::string(state)};
      return Status::Ok();
    }
    const int err = send_nowait(a, state);
    if (err == 0) return Status::Ok();
    if (err != EAGAIN && err != EWOULDBLOCK) return send_error(state, err);
    pending_ = Item{a, std::string(state)};
    if (!running_) {
      running_ = true;
      std::thread([this] { run(); }).detach();
    }
    return Status::Ok();
  }

  std::optional<std::string> pending() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (pending_) return pending_->state;
    return in_flight_;
  }

  std::string last_error() {
    std::lock_guard<std::mutex> lock(mutex_);
    return last_error_;
  }

 private:
  struct Item {
    Address address;
    std::string state;
  };
  static constexpr int kSuperseded = -1;

  void run() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (pending_) {
      Item item = std::move(*pending_);
      pending_.reset();
      in_flight_ = item.state;
      lock.unlock();
      const int err = send_when_room(item);
      lock.lock();
      in_flight_.reset();
      if (err > 0) last_error_ = send_error(item.state, err).message();
    }
    running_ = false;
  }

  // Sends `item` on a socket connected to its address, waiting for room:
  // 0, an errno, or kSuperseded when a newer message took the slot.
  int send_when_room(const Item& item) {
    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return errno;
    int result = 0;
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&item.address.addr), item.address.len) !=
        0) {
      result = errno;
    }
    while (result == 0) {
      {
        // Before every attempt: a newer state replaces this one.
        std::lock_guard<std::mutex> lock(mutex_);
        if (pending_) {
          result = kSuperseded;
          break;
        }
      }
      if (::send(fd, item.state.data(), item.state.size(), MSG_NOSIGNAL | MSG_DONTWAIT) >= 0) break;
      const int err = errno;
      if (err == EINTR) continue;
      if (err != EAGAIN && err != EWOULDBLOCK) {
        result = err;
        break;
      }
      // POLLOUT: the reader made room. The timeout re-checks the slot for
      // a newer message and a reader that went away meanwhile.
      pollfd pfd{fd, POLLOUT, 0};
      (void)::poll(&pfd, 1, 200);
    }
    ::close(fd);
    return result;
  }

  std::mutex mutex_;
  std::optional<Item> pending_;           // guarded by mutex_
  std::optional<std::string> in_flight_;  // the helper's message (guarded)
  bool running_ = false;                  // the helper thread exists (guarded)
  std::string last_error_;                // guarded by mutex_
};

}  // namespace

bool is_lifecycle_state(std::string_view state) {
  size_t start = 0;
  while (start <= state.size()) {
    const size_t end = std::min(state.find('\n', start), state.size());
    const std::string_view line = state.substr(start, end - start);
    if (line == "READY=1" || line == "RELOADING=1" || line == "STOPPING=1") return true;
    start = end + 1;
  }
  return false;
}

bool Notifier::enabled() const {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  return socket != nullptr && socket[0] != '\0';
}

Status Notifier::notify(std::string_view state) const {
  if (!is_lifecycle_state(state)) return notify_nowait(state);
  Address a;
  switch (notify_address(&a)) {
    case Where::kNone:
      return Status::Ok();
    case Where::kOther:
      return unsupported_address(state);
    case Where::kUnix:
      break;
  }
  return LifecycleSlot::instance().submit(a, state);
}

Status Notifier::notify_nowait(std::string_view state) const {
  Address a;
  switch (notify_address(&a)) {
    case Where::kNone:
      return Status::Ok();
    case Where::kOther:
      return unsupported_address(state);
    case Where::kUnix:
      break;
  }
  const int err = send_nowait(a, state);
  if (err != 0) return send_error(state, err);
  return Status::Ok();
}

std::optional<std::string> Notifier::pending_lifecycle() {
  return LifecycleSlot::instance().pending();
}

std::string Notifier::last_lifecycle_error() { return LifecycleSlot::instance().last_error(); }

Status Notifier::ready() const { return notify("READY=1"); }

Status Notifier::status(std::string_view text) const {
  std::string message = "STATUS=";
  message.append(text);
  std::replace(message.begin(), message.end(), '\n', ' ');
  return notify_nowait(message);
}

Status Notifier::stopping() const { return notify("STOPPING=1"); }

Status Notifier::reloading() const {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  auto usec = static_cast<std::uint64_t>(now.tv_sec) * 1000000u +
              static_cast<std::uint64_t>(now.tv_nsec) / 1000u;
  return notify("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

Status Notifier::watchdog() const { return notify_nowait("WATCHDOG=1"); }

std::optional<std::chrono::microseconds> watchdog_interval() {
  // sd_watchdog_enabled(3)'s rule: WATCHDOG_USEC, a positive decimal, and
  // WATCHDOG_PID, when set, must be this process.
  const char* usec_text = std::getenv("WATCHDOG_USEC");
  if (usec_text == nullptr || usec_text[0] == '\0') return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const unsigned long long usec = std::strtoull(usec_text, &end, 10);
  if (errno != 0 || *end != '\0' || usec == 0 || usec_text[0] == '-') return std::nullopt;
  if (const char* pid_text = std::getenv("WATCHDOG_PID"); pid_text && pid_text[0] != '\0') {
    errno = 0;
    const long long pid = std::strtoll(pid_text, &end, 10);
    if (errno != 0 || *end != '\0' || pid != static_cast<long long>(::getpid())) {
      return std::nullopt;
    }
  }
  return std::chrono::microseconds(static_cast<std::chrono::microseconds::rep>(usec));
}

struct WatchdogPinger::State {
  State(asio::any_io_executor executor, std::chrono::microseconds p, Notifier n)
      : timer(std::move(executor)), period(p), notifier(n) {}

  asio::steady_timer timer;
  const std::chrono::microseconds period;
  const Notifier notifier;
  bool started = false;
  bool stopped = false;
  std::atomic<std::uint64_t> pings{0};
};

WatchdogPinger::WatchdogPinger(asio::any_io_executor executor, std::chrono::microseconds interval,
                               Notifier notifier)
    : state_(std::make_shared<State>(
          std::move(executor), std::max(std::chrono::microseconds(1000), interval / 2), notifier)) {
}

WatchdogPinger::~WatchdogPinger() { stop(); }

std::chrono::microseconds WatchdogPinger::period() const { return state_->period; }

std::uint64_t WatchdogPinger::pings() const {
  return state_->pings.load(std::memory_order_relaxed);
}

// The contract (notify.h): the executor's thread, or while its io_context
// is not running; checked in debug builds (common/strand_check.h).
void WatchdogPinger::start() {
  assert(running_on_or_idle(state_->timer.get_executor()));
  if (state_->started || state_->stopped) return;
  state_->started = true;
  ping_and_rearm(state_);
}

void WatchdogPinger::stop() {
  assert(running_on_or_idle(state_->timer.get_executor()));
  if (state_->stopped) return;
  state_->stopped = true;
  state_->timer.cancel();
}

void WatchdogPinger::ping_and_rearm(const std::shared_ptr<State>& state) {
  if (state->notifier.watchdog().ok()) state->pings.fetch_add(1, std::memory_order_relaxed);
  state->timer.expires_after(state->period);
  state->timer.async_wait([state](const boost::system::error_code& ec) {
    assert(running_on(state->timer.get_executor()));
    if (ec || state->stopped) return;
    ping_and_rearm(state);
  });
}

std::unique_ptr<WatchdogPinger> make_watchdog_pinger(asio::any_io_executor executor,
                                                     Notifier notifier) {
  auto interval = watchdog_interval();
  if (!interval) return nullptr;
  return std::make_unique<WatchdogPinger>(std::move(executor), *interval, notifier);
}

}  // namespace herd::systemd
