// restore: "standby" (issue 16): what the component's second container is
// and how it is named and reported. The operations themselves are
// ContainerdOps members (standby.cpp; contract in containerd_ops.h).
//
// A component with `"restore": "standby"` has two containers that take
// turns: NAME and NAME.B (component names are lower case, so NAME.B is
// never another component's). Both run the same spec (only the cgroup
// path differs; the hostname stays NAME), from their own snapshots of
// the same image, with the same data mounts, limits, shim group and
// output. One holds the component's task; the other holds the STANDBY:
// a task created (runc create: namespaces, mounts, cgroup, the init
// process waiting on its exec fifo) and not started, so nothing of the
// program runs, no port opens, no data lock is taken.
//
// A restart starts the standby's task (Tasks.Start: a write to the
// fifo), and the roles swap; the exited container then gets a new task
// created in the background and becomes the standby. A restart from the
// standby starts with a fresh root file system, as kubelet's restarts
// do: state belongs in data mounts. A failed or missing standby makes the
// restart happen in place (today's path) while the standby is rebuilt,
// with backoff (kStandbyBuild), and reported.
//
// Which container is the component's is never written anywhere: it is the
// one whose task runs (after a herdd restart the running one is adopted,
// a CREATED task of the other is kept as the standby). Both carry the
// label io.herd.slot ("a" for NAME, "b" for NAME.B) and the component's
// io.herd.component, io.herd.spec-hash.
//
// Strand: everything here is used on the component's strand.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/backoff.h"

namespace herd::supervise {

inline constexpr char kStandbySuffix[] = ".B";
inline constexpr char kLabelSlot[] = "io.herd.slot";

// The second container's id of component `name`.
inline std::string standby_id(std::string_view name) { return std::string(name) + kStandbySuffix; }

// The component a container id belongs to: `id` itself, or NAME for
// NAME.B.
inline std::string_view component_of(std::string_view id) {
  constexpr std::string_view suffix = kStandbySuffix;
  if (id.size() > suffix.size() && id.ends_with(suffix)) id.remove_suffix(suffix.size());
  return id;
}

// Rebuilding a standby whose creation failed: 1 s doubling to 60 s.
inline constexpr CappedExponential kStandbyBuild{std::chrono::milliseconds(1000),
                                                 std::chrono::milliseconds(60000)};

// What `herdctl status` shows of a component's standby.
struct StandbyState {
  enum class Kind { kNone, kBuilding, kReady, kFailed };
  Kind kind = Kind::kNone;
  uint32_t pid = 0;   // kReady: the created task's init pid
  std::string error;  // kFailed: the last attempt's error
  uint32_t failures = 0;

  // "" (none), "building", "ready (pid N)", "failed (N times): why".
  std::string describe() const {
    switch (kind) {
      case Kind::kNone:
        return "";
      case Kind::kBuilding:
        return "building";
      case Kind::kReady:
        return "ready (pid " + std::to_string(pid) + ")";
      case Kind::kFailed:
        return "failed (" + std::to_string(failures) + (failures == 1 ? " time" : " times") +
               "): " + error + "; restarts happen in place until it is rebuilt";
    }
    return "";
  }
};

}  // namespace herd::supervise
