#include "systemd/notify.h"

#include <systemd/sd-daemon.h>

#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace herd::systemd {

bool Notifier::enabled() const {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  return socket != nullptr && socket[0] != '\0';
}

Status Notifier::notify(std::string_view state) const {
  std::string message(state);
  int r = sd_notify(0, message.c_str());
  if (r < 0) {
    std::string first_line = message.substr(0, message.find('\n'));
    return Status::Unavailable("sd_notify " + first_line + ": " + std::strerror(-r));
  }
  return Status::Ok();
}

Status Notifier::notify_nowait(std::string_view state) const {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || path[0] == '\0') return Status::Ok();
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const size_t len = std::strlen(path);
  if ((path[0] != '/' && path[0] != '@') || len >= sizeof addr.sun_path)
    return notify(state);  // a form only libsystemd knows (e.g. vsock)
  std::memcpy(addr.sun_path, path, len);
  if (path[0] == '@') addr.sun_path[0] = '\0';  // abstract namespace
  const socklen_t addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Status::Unavailable(std::string("notify socket: ") + std::strerror(errno));
  const ssize_t n = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL | MSG_DONTWAIT,
                             reinterpret_cast<const sockaddr*>(&addr), addr_len);
  const int err = errno;
  ::close(fd);
  if (n < 0) {
    std::string first_line(state.substr(0, state.find('\n')));
    return Status::Unavailable("notify " + first_line + ": " + std::strerror(err) +
                               (err == EAGAIN ? " (queue full; dropped)" : ""));
  }
  return Status::Ok();
}

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
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
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

void WatchdogPinger::start() {
  if (state_->started || state_->stopped) return;
  state_->started = true;
  ping_and_rearm(state_);
}

void WatchdogPinger::stop() {
  if (state_->stopped) return;
  state_->stopped = true;
  state_->timer.cancel();
}

void WatchdogPinger::ping_and_rearm(const std::shared_ptr<State>& state) {
  if (state->notifier.watchdog().ok()) state->pings.fetch_add(1, std::memory_order_relaxed);
  state->timer.expires_after(state->period);
  state->timer.async_wait([state](const boost::system::error_code& ec) {
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
