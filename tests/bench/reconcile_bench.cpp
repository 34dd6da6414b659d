// `herd_bench reconcile`: measurement 5. N busybox httpd components run
// under an in-process Supervisor. Each iteration ends containerd (SIGTERM
// by the pid scripts/dev-containerd recorded; shims and tasks keep
// running), SIGKILLs `kill` components' processes while it is down, and
// starts it again with scripts/dev-containerd. Our own poller connects to
// containerd's socket every 0.5 ms: t_up is when it answers again. Then:
//   gap_seen      herd reported the gap (Supervisor::gaps() went up;
//                 sampled every 1 ms on herd's io thread)
//   killed_exit_seen every killed component's exit is reported (its
//                 Tasks.Get after the gap found the task stopped)
//   killed_running every killed component has a new task (changed_at)
//   all_ready     every killed component is ready again and every other
//                 one is still ready with its old pid: all N reconciled
// all relative to t_up.
//
// Start priority (issue 15): --priority-of NAME gives that component
// `"priority": --priority` (default 100); with --kill N (every component)
// `priority_ready_ms` is when NAME is ready again, relative to t_up.
// --max-concurrent-starts sets the top-level key (absent: herd's default).
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "herd_run.h"
#include "util.h"

namespace bench {

using namespace std::chrono_literals;
using herd::supervise::State;

namespace {

bool unix_answers(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

bool process_gone(pid_t pid) {
  if (::kill(pid, 0) != 0) return true;
  std::ifstream st("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(st, line);
  auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z';
}

}  // namespace

int run_reconcile(const Args& a) {
  const std::string address = a.str("address"), ns = a.str("ns", "bench-reconcile");
  const std::string archive = a.str("archive"), data = a.str("data", "/tmp/herd-bench-reconcile");
  const std::string ctrd_dir = a.str("containerd-dir");
  const int count = static_cast<int>(a.num("count", 100));
  const int iterations = static_cast<int>(a.num("iterations", 10));
  const int kills = static_cast<int>(a.num("kill", std::max(1, count / 10)));
  const uint16_t base_port = static_cast<uint16_t>(a.num("base-port", 18000));
  const std::string probe_interval = a.str("probe-interval", "10ms");
  const std::string restart = a.str("restart", R"({"base": "0", "max": "1s"})");
  const std::string priority_of = a.str("priority-of", "");
  const int priority = static_cast<int>(a.num("priority", 100));
  const int max_starts = static_cast<int>(a.num("max-concurrent-starts", 0));
  std::filesystem::create_directories(data);

  std::vector<std::string> comps, names;
  for (int i = 0; i < count; ++i) {
    names.push_back("c" + std::to_string(i));
    comps.push_back(httpd_component(names.back(), static_cast<uint16_t>(base_port + i), archive,
                                    restart, probe_interval));
    if (names.back() == priority_of) {
      comps.back().insert(1, R"("priority": )" + std::to_string(priority) + ", ");
    }
  }
  std::string config = herd_config(address, ns, data, comps);
  if (max_starts > 0) {
    config.insert(1, R"("max_concurrent_starts": )" + std::to_string(max_starts) + ", ");
  }
  HerdRun herd(address, ns, config);
  const auto t_start = std::chrono::system_clock::now();
  herd.start();
  auto all_ready = [&](auto& l, auto&) {
    if (l.size() < names.size()) return false;
    for (auto& [n, s] : l)
      if (s.state != State::kReady) return false;
    return true;
  };
  if (!herd.wait(all_ready, 600s)) {
    log("reconcile: not every component became ready");
    herd.stop();
    return 1;
  }
  log("reconcile: " + std::to_string(count) + " ready after " +
      std::to_string(ms(t_start, std::chrono::system_clock::now())) + " ms");

  std::map<std::string, std::vector<double>> out;
  int failures = 0, victim_cursor = 0;
  for (int it = 0; it < iterations; ++it) {
    std::this_thread::sleep_for(500ms);
    if (!herd.wait(all_ready, 60s)) {
      ++failures;
      continue;
    }
    auto before = herd.all_latest();
    std::vector<std::string> victims;
    for (int k = 0; k < kills; ++k)
      victims.push_back(names[static_cast<size_t>((victim_cursor++) % count)]);
    const uint64_t gaps0 = herd.gaps();
    const size_t mark = herd.history_size();

    pid_t ctrd = 0;
    {
      std::ifstream pf(ctrd_dir + "/containerd.pid");
      pf >> ctrd;
    }
    if (ctrd <= 0 || ::kill(ctrd, SIGTERM) != 0) {
      log("reconcile: no containerd pid in " + ctrd_dir);
      return 1;
    }
    const auto gone_until = std::chrono::steady_clock::now() + 20s;
    while (!process_gone(ctrd) && std::chrono::steady_clock::now() < gone_until)
      std::this_thread::sleep_for(2ms);
    for (auto& v : victims) ::kill(static_cast<pid_t>(before[v].pid), SIGKILL);

    // Our poller of containerd's socket, then containerd again.
    std::atomic<bool> up{false};
    SysTime t_up{};
    std::thread poller([&] {
      const auto until = std::chrono::steady_clock::now() + 60s;
      while (std::chrono::steady_clock::now() < until) {
        const auto at = std::chrono::system_clock::now();
        if (unix_answers(address)) {
          t_up = at;
          up = true;
          return;
        }
        std::this_thread::sleep_for(500us);
      }
    });
    const std::string cmd =
        std::string(HERD_SOURCE_DIR) + "/scripts/dev-containerd start " + ctrd_dir + " >/dev/null";
    const int rc = std::system(cmd.c_str());
    // herd's gap report, sampled on its own thread every 1 ms.
    std::optional<SysTime> t_gap;
    const auto gap_until = std::chrono::steady_clock::now() + 60s;
    while (!t_gap && std::chrono::steady_clock::now() < gap_until) {
      const auto at = std::chrono::system_clock::now();
      if (herd.gaps() > gaps0)
        t_gap = at;
      else
        std::this_thread::sleep_for(1ms);
    }
    poller.join();
    if (rc != 0 || !up || !t_gap) {
      log("reconcile: containerd restart or gap not seen");
      ++failures;
      continue;
    }
    // A killed component is back: ready with a new task.
    auto back = [&](const std::string& v, const auto& s) {
      return s.state == State::kReady && s.pid != 0 && s.pid != before[v].pid;
    };
    const bool done = herd.wait(
        [&](auto& l, auto&) {
          for (auto& v : victims)
            if (!back(v, l.at(v))) return false;
          return true;
        },
        60s);
    if (!done) {
      // Which ones, and what they say: a bench run is often the only trace.
      std::set<std::string> stuck;
      std::string listed;
      auto now = herd.all_latest();
      for (auto& v : victims) {
        const auto& s = now[v];
        if (back(v, s)) continue;
        stuck.insert(v);
        listed += " " + v + "=" + std::string(herd::supervise::to_string(s.state)) +
                  (s.last_error.empty() ? "" : " (" + s.last_error + ")");
      }
      log("reconcile: killed components not ready again:" + listed);
      for (const auto& h : herd.history_from(mark)) {
        if (!stuck.count(h.name)) continue;
        log("  " + h.name + " " + std::to_string(ms(t_up, h.changed_at)) + " ms: " +
            std::string(herd::supervise::to_string(h.state)) + " pid " + std::to_string(h.pid) +
            (h.last_exit_code
                 ? " last exit " + std::to_string(*h.last_exit_code) + " " + h.last_exit_reason
                 : std::string()) +
            (h.last_error.empty() ? "" : " (" + h.last_error + ")"));
      }
      ++failures;
      continue;
    }
    std::map<std::string, SysTime> running, ready, exit_seen;
    for (const auto& s : herd.history_from(mark)) {
      const uint32_t old = before[s.name].pid;
      if (!exit_seen.count(s.name) && (s.state != State::kReady || s.pid != old))
        exit_seen[s.name] = s.changed_at;
      if (!running.count(s.name) && s.pid != 0 && s.pid != old) running[s.name] = s.changed_at;
      if (!ready.count(s.name) && s.state == State::kReady && s.pid != 0 && s.pid != old)
        ready[s.name] = s.changed_at;
    }
    SysTime last_running = t_up, last_ready = *t_gap, last_exit = t_up;
    for (auto& v : victims) {
      last_exit = std::max(last_exit, exit_seen[v]);
      out["span_exit_to_running_ms"].push_back(ms(exit_seen[v], running[v]));
      last_running = std::max(last_running, running[v]);
      last_ready = std::max(last_ready, ready[v]);
    }
    // Everyone else: untouched (same pid, still ready).
    int disturbed = 0;
    for (auto& [n, s] : herd.all_latest()) {
      if (std::find(victims.begin(), victims.end(), n) != victims.end()) continue;
      if (s.state != State::kReady || s.pid != before[n].pid) ++disturbed;
    }
    out["gap_seen_ms"].push_back(ms(t_up, *t_gap));
    out["killed_running_ms"].push_back(ms(t_up, last_running));
    out["killed_exit_seen_ms"].push_back(ms(t_up, last_exit));
    out["all_reconciled_ms"].push_back(ms(t_up, last_ready));
    if (!priority_of.empty() && ready.count(priority_of)) {
      out["priority_ready_ms"].push_back(ms(t_up, ready[priority_of]));
    }
    out["disturbed"].push_back(disturbed);
    log("reconcile: iteration " + std::to_string(it) + ": gap " + std::to_string(ms(t_up, *t_gap)) +
        " ms, all " + std::to_string(ms(t_up, last_ready)) + " ms");
  }
  herd.stop();
  nlohmann::json info;
  info["count"] = count;
  info["killed_per_iteration"] = kills;
  info["failures"] = failures;
  if (!priority_of.empty()) {
    info["priority_of"] = priority_of;
    info["priority"] = priority;
  }
  if (max_starts > 0) info["max_concurrent_starts"] = max_starts;
  emit("reconcile", out, info);
  return 0;
}

}  // namespace bench
