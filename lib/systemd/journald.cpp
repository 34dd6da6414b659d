#include "systemd/journald.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <sys/stat.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <utility>

namespace herd::systemd {

bool journald_available(const std::string& socket_path) {
  struct stat st {};
  if (::stat(socket_path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) return false;
  // A socket file outlives a journald that was killed: only a journald
  // that accepts datagrams counts.
  sockaddr_un addr{};
  if (socket_path.size() >= sizeof addr.sun_path) return false;
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const bool live = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return live;
}

void append_journal_field(std::string& datagram, std::string_view name, std::string_view value) {
  datagram.append(name);
  if (value.find('\n') == std::string_view::npos) {
    datagram += '=';
    datagram.append(value);
  } else {
    datagram += '\n';
    std::uint64_t n = value.size();
    for (int i = 0; i < 8; ++i) {
      datagram += static_cast<char>(n & 0xff);
      n >>= 8;
    }
    datagram.append(value);
  }
  datagram += '\n';
}

JournalSocket::JournalSocket(std::string path) : path_(std::move(path)) {}

JournalSocket::~JournalSocket() { close_socket(); }

void JournalSocket::close_socket() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool JournalSocket::connect_socket() {
  sockaddr_un addr{};
  if (path_.size() >= sizeof addr.sun_path) {
    error_ = ENAMETOOLONG;
    return false;
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
  fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd_ < 0) {
    error_ = errno;
    return false;
  }
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    error_ = errno;
    close_socket();
    return false;
  }
  return true;
}

JournalSocket::Result JournalSocket::send(std::string_view datagram) {
  bool reconnected = fd_ < 0;
  if (fd_ < 0 && !connect_socket()) {
    return error_ == ENOENT || error_ == ECONNREFUSED ? Result::kAway : Result::kFailed;
  }
  for (;;) {
    if (::send(fd_, datagram.data(), datagram.size(), MSG_DONTWAIT | MSG_NOSIGNAL) >= 0) {
      return Result::kSent;
    }
    const int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK) return Result::kFull;
    error_ = err;
    close_socket();
    const bool gone = err == ECONNREFUSED || err == ENOENT || err == ENOTCONN || err == EPIPE ||
                      err == ECONNRESET;
    if (!gone) return Result::kFailed;
    // The journald we were connected to is gone; a new one may listen at
    // the path already: connect once more.
    if (reconnected || !connect_socket()) return Result::kAway;
    reconnected = true;
  }
}

}  // namespace herd::systemd
