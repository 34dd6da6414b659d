// Where journald listens, and whether it is there.
//
// journald takes native-protocol datagrams on /run/systemd/journal/socket;
// libsystemd's sd_journal_send*() always sends there (libsystemd 252 has no
// way to aim it elsewhere), so that is the path herd checks. Tests that run
// a private journald make its socket appear at this path inside a private
// mount namespace (see tests/systemd/journal_env.h).
//
// Dependency-free beyond libc: herd-logger uses it too.
// Thread-safety: free functions without state.
#pragma once

#include <string>

namespace herd::systemd {

inline constexpr const char* kJournaldSocket = "/run/systemd/journal/socket";

// True when a journald accepts datagrams on `socket_path` (a socket file
// left behind by a journald that was killed does not count).
bool journald_available(const std::string& socket_path = kJournaldSocket);

}  // namespace herd::systemd
