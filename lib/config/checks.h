// Internal to lib/config: the rules for single string values (names, paths,
// modes, users...). Each check returns nullopt when the value is fine, or
// the message to report (quoting the value); each parser returns the typed
// value or InvalidArgument with that message. Pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "config/config.h"

namespace herd::config::internal {

using Problem = std::optional<std::string>;

// Component names: ^[a-z0-9][a-z0-9_.-]{0,62}$ plus containerd's identifier
// rule (no two separators in a row, none at the end).
Problem check_component_name(std::string_view name);

// containerd namespaces: 1-76 chars, [A-Za-z0-9]+ joined by single [._-].
Problem check_namespace(std::string_view ns);

// An absolute path without NUL bytes or "." / ".." segments, returned with
// repeated and trailing '/' removed ("/a//b/" -> "/a/b", "/" stays "/").
Result<std::string> normalize_absolute_path(std::string_view path);

// A normalised mount target that is not "/" and not /proc, /sys, /dev or
// below them.
Problem check_mount_target(std::string_view normalized_target);

// A data directory name: [A-Za-z0-9_.-]{1,255}, not "." or "..".
Problem check_data_name(std::string_view name);

// "0755" / "700": 3 or 4 octal digits.
Result<uint32_t> parse_mode(std::string_view text);

// "root", "<uid>" or "<uid>:<gid>", ids 0..4294967294.
Result<User> parse_user(std::string_view text);

// [A-Za-z_][A-Za-z0-9_]*
Problem check_env_name(std::string_view name);

// RFC 1123 host name, at most 64 bytes (the kernel's limit).
Problem check_hostname(std::string_view name);

// Image references: non-empty, no whitespace or control characters.
Problem check_image(std::string_view image);

// Probe host: non-empty, no whitespace, '/', or control characters.
Problem check_probe_host(std::string_view host);

// HTTP probe path: starts with '/', no whitespace or control characters.
Problem check_http_path(std::string_view path);

// Group for the control socket: a name ([A-Za-z0-9_.-], not starting with
// '-', at most 32 chars) or a numeric gid.
Problem check_group(std::string_view group);

// Shim group: [A-Za-z0-9_.-], 1 to 64 characters.
Problem check_shim_group(std::string_view group);

// No NUL byte (argv and env strings end up as C strings).
Problem check_no_nul(std::string_view text);

// Label keys: non-empty, not under "io.herd.", key + value <= 4096 bytes.
Problem check_label(std::string_view key, std::string_view value);

}  // namespace herd::config::internal
