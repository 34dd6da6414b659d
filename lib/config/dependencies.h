// Internal to lib/config: the depends_on graph. Checks it (unknown, self,
// duplicate, cyclic entries) and orders it (dependencies first, ties in
// config order). Pure functions.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "config/json_reader.h"

namespace herd::config::internal {

struct DependencyNode {
  // The component's name as written ("" when it is missing or not a
  // string). A duplicate name refers to its first occurrence.
  std::string name;
  // (index in the JSON depends_on array, name) of each string entry.
  std::vector<std::pair<size_t, std::string>> depends_on;
};

// Node i is /components/<i>. Reports self-dependencies, duplicate entries
// (at the second occurrence) and unknown names (with a did-you-mean hint)
// at /components/<i>/depends_on/<j>; then one error per cycle
// ("dependency cycle: a -> b -> a") at /components/<i>/depends_on, <i>
// being the cycle's component that comes first in the config.
void check_dependencies(const std::vector<DependencyNode>& nodes, Errors& errors);

// Node indexes in start order: every node after the nodes it depends on
// (`deps[i]` = indexes node i depends on; out-of-range entries ignored).
// Among ready nodes the lowest index comes first; nodes left in a cycle are
// appended in index order.
std::vector<size_t> start_order(const std::vector<std::vector<size_t>>& deps);

}  // namespace herd::config::internal
