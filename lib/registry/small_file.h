// herd::registry::read_small_file: reads a small configuration file
// (config.json, hosts.toml) without ever blocking or reading unbounded
// data: open O_RDONLY|O_NONBLOCK|O_CLOEXEC|O_NOCTTY (a FIFO does not wait
// for a writer), fstat, refuse anything but a regular file and anything
// bigger than `max_bytes`, read at most max_bytes + 1 (a file that grew
// meanwhile is refused too).
//
// Internal to lib/registry. Blocking file I/O (small local files): call it
// where herd does file reads (a blocking pool), not on a network strand.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "common/status.h"

namespace herd::registry::internal {

// The file's bytes; std::nullopt when it does not exist (ENOENT). Errors
// (kInvalidArgument for a wrong kind or size, kUnavailable for others)
// name `what` and the path: "docker auth file "/root/.docker/config.json":
// a directory, not a regular file".
Result<std::optional<std::string>> read_small_file(const std::string& path, std::size_t max_bytes,
                                                   const std::string& what);

}  // namespace herd::registry::internal
