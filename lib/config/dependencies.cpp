#include "config/dependencies.h"

#include <algorithm>
#include <deque>
#include <map>
#include <set>

namespace herd::config::internal {
namespace {

// reach[s][t]: t can be reached from s by one or more edges.
std::vector<std::vector<bool>> reachability(const std::vector<std::vector<size_t>>& edges) {
  const size_t n = edges.size();
  std::vector<std::vector<bool>> reach(n, std::vector<bool>(n, false));
  for (size_t s = 0; s < n; ++s) {
    std::vector<size_t> stack(edges[s].begin(), edges[s].end());
    while (!stack.empty()) {
      const size_t v = stack.back();
      stack.pop_back();
      if (reach[s][v]) continue;
      reach[s][v] = true;
      for (size_t w : edges[v]) {
        if (!reach[s][w]) stack.push_back(w);
      }
    }
  }
  return reach;
}

// The shortest cycle s -> ... -> s using only nodes in `members`, as node
// indexes starting and ending with s. Requires that one exists.
std::vector<size_t> shortest_cycle(size_t s, const std::vector<std::vector<size_t>>& edges,
                                   const std::vector<bool>& members) {
  const size_t n = edges.size();
  constexpr size_t kNone = static_cast<size_t>(-1);
  std::vector<size_t> parent(n, kNone);
  std::deque<size_t> queue{s};
  size_t last = kNone;  // the node whose edge closes the cycle back to s
  while (!queue.empty() && last == kNone) {
    const size_t v = queue.front();
    queue.pop_front();
    for (size_t w : edges[v]) {
      if (w == s) {
        last = v;
        break;
      }
      if (!members[w] || parent[w] != kNone) continue;
      parent[w] = v;
      queue.push_back(w);
    }
  }
  std::vector<size_t> cycle{s};
  for (size_t v = last; v != s && v != kNone; v = parent[v]) cycle.push_back(v);
  std::reverse(cycle.begin() + 1, cycle.end());
  cycle.push_back(s);
  return cycle;
}

}  // namespace

void check_dependencies(const std::vector<DependencyNode>& nodes, Errors& errors) {
  const size_t n = nodes.size();
  std::map<std::string, size_t> index;  // first occurrence of each name
  std::vector<std::string_view> names;
  for (size_t i = 0; i < n; ++i) {
    if (nodes[i].name.empty()) continue;
    if (index.emplace(nodes[i].name, i).second) names.push_back(nodes[i].name);
  }

  // Entry checks; valid entries become edges i -> dependency.
  std::vector<std::vector<size_t>> edges(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string base = pointer_append(pointer_append("/components", i), "depends_on");
    std::set<std::string> seen;
    for (const auto& [j, dep] : nodes[i].depends_on) {
      const std::string path = pointer_append(base, j);
      if (!seen.insert(dep).second) {
        errors.add(path, "duplicate dependency " + quote(dep));
        continue;
      }
      if (!nodes[i].name.empty() && dep == nodes[i].name) {
        errors.add(path, "a component cannot depend on itself");
        continue;
      }
      auto it = index.find(dep);
      if (it == index.end()) {
        // The hint searches every name: skip it once errors are only counted.
        errors.add(path, errors.full()
                             ? std::string()
                             : "unknown component " + quote(dep) + did_you_mean(dep, names));
        continue;
      }
      // A second component with this component's name points here too:
      // that is the duplicate-name error, not a cycle.
      if (it->second == i) continue;
      edges[i].push_back(it->second);
    }
  }

  // Cycles: one error per strongly connected component with a cycle.
  const std::vector<std::vector<bool>> reach = reachability(edges);
  std::vector<bool> reported(n, false);
  for (size_t s = 0; s < n; ++s) {
    if (reported[s] || !reach[s][s]) continue;
    std::vector<bool> members(n, false);
    for (size_t t = 0; t < n; ++t) {
      members[t] = t == s || (reach[s][t] && reach[t][s]);
      if (members[t]) reported[t] = true;
    }
    std::string text;
    for (size_t v : shortest_cycle(s, edges, members)) {
      if (!text.empty()) text += " -> ";
      text += nodes[v].name;
    }
    errors.add(pointer_append(pointer_append("/components", s), "depends_on"),
               "dependency cycle: " + text);
  }
}

std::vector<size_t> start_order(const std::vector<std::vector<size_t>>& deps) {
  const size_t n = deps.size();
  std::vector<bool> placed(n, false);
  std::vector<size_t> order;
  order.reserve(n);
  bool progress = true;
  while (progress && order.size() < n) {
    progress = false;
    for (size_t i = 0; i < n; ++i) {
      if (placed[i]) continue;
      const bool ready = std::all_of(deps[i].begin(), deps[i].end(),
                                     [&](size_t d) { return d >= n || d == i || placed[d]; });
      if (!ready) continue;
      placed[i] = true;
      order.push_back(i);
      progress = true;
      break;  // rescan from the start: the lowest ready index goes next
    }
  }
  for (size_t i = 0; i < n; ++i) {
    if (!placed[i]) order.push_back(i);
  }
  return order;
}

}  // namespace herd::config::internal
