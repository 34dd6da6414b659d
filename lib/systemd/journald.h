// Where journald listens, and whether it is there.
//
// journald takes native-protocol datagrams on /run/systemd/journal/socket;
// libsystemd's sd_journal_send*() always sends there (libsystemd 252 has no
// way to aim it elsewhere), so that is the path herd checks. Tests that run
// a private journald make its socket appear at this path inside a private
// mount namespace (see tests/systemd/journal_env.h).
//
// herdd's own log lines do not go through libsystemd (whose sends block
// while journald's queue is full, and which cannot be aimed at another
// socket): JournalSocket speaks journald's native protocol itself, one
// datagram per entry, never blocking (see journal_sink.h for the queue in
// front of it).
//
// Dependency-free beyond libc: herd-logger uses it too.
// Thread-safety: free functions without state; a JournalSocket belongs to
// one thread at a time.
#pragma once

#include <string>
#include <string_view>

namespace herd::systemd {

inline constexpr const char* kJournaldSocket = "/run/systemd/journal/socket";

// True when a journald accepts datagrams on `socket_path` (a socket file
// left behind by a journald that was killed does not count).
bool journald_available(const std::string& socket_path = kJournaldSocket);

// Appends one field of an entry in journald's native protocol: "NAME=value\n",
// or, when the value holds a newline, "NAME\n" + its length as 64-bit
// little endian + value + "\n". `name` is upper-case letters, digits and
// '_' (not checked).
void append_journal_field(std::string& datagram, std::string_view name, std::string_view value);

// A unix datagram socket connected to journald's socket, non-blocking.
// Connected, so that poll() on fd() for POLLOUT says when journald's
// receive queue has room again.
class JournalSocket {
 public:
  explicit JournalSocket(std::string path = kJournaldSocket);
  ~JournalSocket();
  JournalSocket(const JournalSocket&) = delete;
  JournalSocket& operator=(const JournalSocket&) = delete;

  enum class Result {
    kSent,
    kFull,    // journald's queue is full (EAGAIN): poll fd() for POLLOUT, send again
    kAway,    // nothing listens at the path (ENOENT, ECONNREFUSED): dropped
    kFailed,  // any other error (e.g. EMSGSIZE), in error(): dropped
  };
  // Sends one entry without waiting, connecting first when not connected
  // (again after kAway: a restarted journald is found).
  Result send(std::string_view datagram);

  // The connected socket, or -1.
  int fd() const { return fd_; }
  // errno of the last kAway/kFailed.
  int error() const { return error_; }

 private:
  bool connect_socket();
  void close_socket();

  const std::string path_;
  int fd_ = -1;
  int error_ = 0;
};

}  // namespace herd::systemd
