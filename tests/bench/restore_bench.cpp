// `herd_bench restore`: exit detection (measurement 1) and restore
// (measurement 2) on the same kills.
//
// herd: an in-process Supervisor runs one busybox httpd component with a
// zero-delay restart policy. Each iteration SIGKILLs its process (the pid
// from herd's status) and takes herd's own timestamps (changed_at) of the
// status that reports the exit, of the first status with a new pid
// (running) and of the ready status; our own poller connects to the port
// every 0.5 ms to see it close and answer again.
//
// Baselines, in the same process and the same containerd, interleaved with
// herd's iterations:
//  - a raw Events.Subscribe client (RawClient, its own channel and thread)
//    timestamps the same /tasks/exit of herd's container;
//  - the floor: a second container "floor", same image, same spec (copied
//    from herd's container, another port), that the raw subscriber's thread
//    restarts itself as fast as it can: on its /tasks/exit it does
//    Tasks.Delete + Create + Start (rootfs mounts cached).
//
// restore: "standby" (issue 16): a second herd component "sb" (same image,
// --standby-port) with `"restore": "standby"`, killed in the same
// iterations once its standby is ready: answer_standby_ms, ready_standby_ms
// and running_standby_ms, and the PSS of the waiting standby's process
// (runc's init; it shares the component's shim) as standby_pss_kb.
#include <signal.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "containerd/client.h"
#include "herd_run.h"
#include "raw_client.h"
#include "util.h"

namespace bench {

using namespace std::chrono_literals;
using herd::supervise::State;

int run_restore(const Args& a) {
  const std::string address = a.str("address"), ns = a.str("ns", "bench-restore");
  const std::string archive = a.str("archive"), data = a.str("data", "/tmp/herd-bench-restore");
  const int iterations = static_cast<int>(a.num("iterations", 30));
  const uint16_t port = static_cast<uint16_t>(a.num("port", 16001));
  const uint16_t floor_port = static_cast<uint16_t>(a.num("floor-port", 16002));
  const uint16_t standby_port = static_cast<uint16_t>(a.num("standby-port", 16003));
  const std::string probe_interval = a.str("probe-interval", "10ms");
  const std::string restart = a.str("restart", R"({"base": "0", "max": "1s"})");
  const std::string snapshotter = herd::containerd::kDefaultSnapshotter;
  std::filesystem::create_directories(data);

  RawClient raw(address, ns);
  // What the raw subscriber saw, and the floor's own restarts.
  struct FloorRestart {
    uint32_t old_pid = 0, new_pid = 0;
    SysTime seen{}, running{};
    std::string error;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::vector<ExitSeen> exits;
  std::vector<FloorRestart> floor_restarts;
  Mounts floor_mounts;
  const std::string floor_log = "file://" + data + "/floor.log";

  HerdRun herd(
      address, ns,
      herd_config(
          address, ns, data,
          {httpd_component("web", port, archive, restart, probe_interval),
           R"({"restore": "standby", )" +
               httpd_component("sb", standby_port, archive, restart, probe_interval).substr(1)}));
  herd.start();
  auto standby_ready = [](const auto& l) {
    return l.count("sb") && l.at("sb").state == State::kReady &&
           l.at("sb").standby.rfind("ready", 0) == 0;
  };
  if (!herd.wait(
          [&](auto& l, auto&) {
            return l.count("web") && l.at("web").state == State::kReady && standby_ready(l);
          },
          180s)) {
    log("restore: herd's component did not become ready");
    return 1;
  }
  log("restore: herd's component is ready");

  // The floor's container: herd's spec, another port and cgroup.
  RawContainer c;
  if (auto s = raw.container_get("web", &c); !s.ok()) {
    log("restore: containers.get web: " + s.error_message());
    return 1;
  }
  raw.remove_all("floor", snapshotter);
  auto spec = nlohmann::json::parse(c.spec().value());
  spec["process"]["args"] = {"httpd", "-f",      "-p", "127.0.0.1:" + std::to_string(floor_port),
                             "-h",    "/var/www"};
  spec["linux"]["cgroupsPath"] = "/" + ns + "/floor";
  RawContainer fc;
  fc.set_id("floor");
  fc.set_image(c.image());
  *fc.mutable_runtime() = c.runtime();
  fc.mutable_spec()->set_type_url(c.spec().type_url());
  fc.mutable_spec()->set_value(spec.dump());
  fc.set_snapshotter(c.snapshotter());
  fc.set_snapshot_key("floor");
  std::string parent;
  grpc::Status s = raw.snapshot_parent(c.snapshotter(), c.snapshot_key(), &parent);
  if (s.ok()) s = raw.snapshot_prepare(c.snapshotter(), "floor", parent, &floor_mounts);
  if (s.ok()) s = raw.container_create(fc);
  uint32_t floor_pid = 0;
  if (s.ok()) s = raw.task_create("floor", floor_mounts, floor_log);
  if (s.ok()) s = raw.task_start("floor", &floor_pid);
  if (!s.ok()) {
    log("restore: floor setup: " + s.error_message());
    return 1;
  }
  if (!wait_port(floor_port, true, 10s)) {
    log("restore: the floor's httpd does not answer");
    return 1;
  }

  const bool live = raw.subscribe([&](const ExitSeen& e) {
    if (e.container_id == "floor") {
      FloorRestart r;
      r.old_pid = e.pid;
      r.seen = e.received;
      grpc::Status st = raw.task_delete("floor");
      if (st.ok()) st = raw.task_create("floor", floor_mounts, floor_log);
      if (st.ok()) st = raw.task_start("floor", &r.new_pid);
      r.running = std::chrono::system_clock::now();
      if (!st.ok()) r.error = st.error_message();
      std::lock_guard<std::mutex> lock(mu);
      floor_restarts.push_back(r);
      cv.notify_all();
      return;
    }
    std::lock_guard<std::mutex> lock(mu);
    exits.push_back(e);
    cv.notify_all();
  });
  if (!live) {
    log("restore: the raw subscription did not become live");
    return 1;
  }

  std::map<std::string, std::vector<double>> out;
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> settle(150, 350);
  int failures = 0;
  // One SIGKILL of herd component `name` (on `p`): the port closing and
  // answering again (our poller), herd's ready status with a new pid, and
  // herd's own timestamps of the exit, the new task and ready.
  struct Kill {
    bool killed = false, back = false;
    uint32_t pid0 = 0;
    SysTime at{};
    std::optional<SysTime> down, up, exit_at, running_at, ready_at;
  };
  auto kill_herd = [&](const std::string& name, uint16_t p) {
    Kill k;
    k.pid0 = herd.latest(name).pid;
    const size_t mark = herd.history_size();
    k.at = std::chrono::system_clock::now();
    if (::kill(static_cast<pid_t>(k.pid0), SIGKILL) != 0) {
      log("restore: kill " + name + " " + std::to_string(k.pid0) + " failed");
      return k;
    }
    k.killed = true;
    k.down = wait_port(p, false, 2s);
    k.up = wait_port(p, true, 30s);
    k.back = herd.wait(
        [&](auto& l, auto&) {
          const auto& w = l.at(name);
          return w.state == State::kReady && w.pid != 0 && w.pid != k.pid0;
        },
        30s);
    for (const auto& st : herd.history_from(mark)) {
      if (st.name != name) continue;
      if (!k.exit_at && (st.state != State::kReady || st.pid != k.pid0)) k.exit_at = st.changed_at;
      if (!k.running_at && st.pid != 0 && st.pid != k.pid0) k.running_at = st.changed_at;
      if (!k.ready_at && st.state == State::kReady && st.pid != 0 && st.pid != k.pid0)
        k.ready_at = st.changed_at;
    }
    return k;
  };
  for (int i = 0; i < iterations; ++i) {
    // ---- herd
    std::this_thread::sleep_for(std::chrono::milliseconds(settle(rng)));
    const Kill web = kill_herd("web", port);
    if (!web.killed) return 1;
    bool raw_seen;
    SysTime raw_at{};
    {
      std::unique_lock<std::mutex> lock(mu);
      raw_seen = cv.wait_for(lock, 5s, [&] {
        for (auto& e : exits)
          if (e.container_id == "web" && e.pid == web.pid0) return true;
        return false;
      });
      for (auto& e : exits)
        if (e.container_id == "web" && e.pid == web.pid0) raw_at = e.received;
    }
    if (!web.down || !web.up || !web.back || !raw_seen) {
      log("restore: herd iteration " + std::to_string(i) + " incomplete (down " +
          std::to_string(bool(web.down)) + " up " + std::to_string(bool(web.up)) + " ready " +
          std::to_string(web.back) + " raw " + std::to_string(raw_seen) + ")");
      ++failures;
      continue;
    }
    if (!web.exit_at || !web.running_at || !web.ready_at) {
      ++failures;
      continue;
    }
    out["exit_herd_ms"].push_back(ms(web.at, *web.exit_at));
    out["exit_raw_ms"].push_back(ms(web.at, raw_at));
    out["exit_added_ms"].push_back(ms(raw_at, *web.exit_at));
    out["running_herd_ms"].push_back(ms(web.at, *web.running_at));
    out["ready_herd_ms"].push_back(ms(web.at, *web.ready_at));
    out["answer_herd_ms"].push_back(ms(web.at, *web.up));
    out["ready_lag_ms"].push_back(ms(*web.up, *web.ready_at));
    out["exit_to_running_herd_ms"].push_back(ms(*web.exit_at, *web.running_at));

    // ---- the floor
    std::this_thread::sleep_for(std::chrono::milliseconds(settle(rng)));
    size_t fmark;
    {
      std::lock_guard<std::mutex> lock(mu);
      fmark = floor_restarts.size();
    }
    const SysTime f_kill = std::chrono::system_clock::now();
    if (::kill(static_cast<pid_t>(floor_pid), SIGKILL) != 0) {
      log("restore: kill floor " + std::to_string(floor_pid) + " failed");
      return 1;
    }
    auto fdown = wait_port(floor_port, false, 2s);
    auto fup = wait_port(floor_port, true, 30s);
    FloorRestart r;
    bool fdone;
    {
      std::unique_lock<std::mutex> lock(mu);
      fdone = cv.wait_for(lock, 10s, [&] { return floor_restarts.size() > fmark; });
      if (fdone) r = floor_restarts[fmark];
    }
    if (!fdown || !fup || !fdone || !r.error.empty()) {
      log("restore: floor iteration " + std::to_string(i) + " incomplete " + r.error);
      ++failures;
      if (fdone && r.new_pid) floor_pid = r.new_pid;
      continue;
    }
    floor_pid = r.new_pid;
    out["exit_raw_floor_ms"].push_back(ms(f_kill, r.seen));
    out["running_floor_ms"].push_back(ms(f_kill, r.running));
    out["answer_floor_ms"].push_back(ms(f_kill, *fup));
    out["exit_to_running_floor_ms"].push_back(ms(r.seen, r.running));

    // ---- herd, restore: standby
    std::this_thread::sleep_for(std::chrono::milliseconds(settle(rng)));
    if (!herd.wait([&](auto& l, auto&) { return standby_ready(l); }, 30s)) {
      log("restore: standby iteration " + std::to_string(i) +
          ": no standby ready: " + herd.latest("sb").standby);
      ++failures;
      continue;
    }
    const auto sb_before = herd.latest("sb");
    {
      // "ready (pid N)": the waiting task's init.
      const auto at = sb_before.standby.find("pid ");
      const uint32_t waiting = at == std::string::npos
                                   ? 0
                                   : static_cast<uint32_t>(std::strtoul(
                                         sb_before.standby.c_str() + at + 4, nullptr, 10));
      const double pss = waiting ? pss_kb(waiting) : 0;
      if (pss > 0) out["standby_pss_kb"].push_back(pss);
    }
    const Kill sb = kill_herd("sb", standby_port);
    if (!sb.killed) return 1;
    if (!sb.down || !sb.up || !sb.back || !sb.running_at || !sb.ready_at) {
      log("restore: standby iteration " + std::to_string(i) + " incomplete");
      ++failures;
      continue;
    }
    out["answer_standby_ms"].push_back(ms(sb.at, *sb.up));
    out["running_standby_ms"].push_back(ms(sb.at, *sb.running_at));
    out["ready_standby_ms"].push_back(ms(sb.at, *sb.ready_at));
    if ((i + 1) % 10 == 0) log("restore: " + std::to_string(i + 1) + " iterations");
  }
  raw.unsubscribe();
  raw.remove_all("floor", snapshotter);
  herd.stop();
  nlohmann::json info;
  info["failures"] = failures;
  info["probe_interval"] = probe_interval;
  info["restart"] = nlohmann::json::parse(restart);
  emit("restore", out, info);
  return 0;
}

}  // namespace bench
