// Internal to lib/config: what the two halves of the schema walk share. The
// top level (config.cpp) reads the document and hands each `components`
// entry to read_component (component_schema.cpp); both read keys with the
// helpers below. Like json_reader.h: never throws, every problem goes to
// `errors` at its JSON pointer. Pure functions, no shared state.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/checks.h"
#include "config/config.h"
#include "config/dependencies.h"
#include "config/json_reader.h"

namespace herd::config::internal {

// Adds `problem` at `path` when it is set.
void report(Errors& errors, const std::string& path, const Problem& problem);

// A string key that must be one of `choices`; returns its index.
std::optional<size_t> get_choice(ObjectReader& r, std::string_view key,
                                 const std::vector<std::string_view>& choices);

// A string key holding an absolute path; returned normalised.
std::optional<std::string> get_path(ObjectReader& r, std::string_view key);

// The array at `key`, or nullptr when absent or not an array (reported).
const Json* get_array(ObjectReader& r, std::string_view key);

// The object at `key` (for maps such as env), or nullptr.
const Json* get_map(ObjectReader& r, std::string_view key);

// "512MiB" -> bytes: a whole number with a unit B, KiB, MiB or GiB, at
// most 1 PiB.
Result<uint64_t> parse_size(std::string_view text);

// "CAP_NET_ADMIN" or "NET_ADMIN" -> "CAP_NET_ADMIN" when the kernel has it;
// "ALL" -> "ALL"; nullopt otherwise.
std::optional<std::string> capability_name(std::string_view name);

// The containment keys of a component (containment_schema.cpp): resources,
// init, capabilities, read_only_rootfs, tmpfs, oom_score_adj. Reads them
// from `r` into `c`; `c.mounts` must be read already (tmpfs targets may
// not repeat them).
void read_containment(ObjectReader& r, Component& c);

// One entry of `components` at `path`. Fills `node` with its name and
// depends_on entries for the dependency checks done over all of them.
Component read_component(const Json& value, const std::string& path, Errors& errors,
                         DependencyNode& node);

}  // namespace herd::config::internal
