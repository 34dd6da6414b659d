// herd_bench: the measurements of issue 5 that need herd's code in process
// or a minimal client of our own. scripts/bench runs it; every subcommand
// prints one JSON line of raw samples (milliseconds) on stdout and logs to
// stderr. Nothing here asserts on time.
//
//   restore      exit detection and restore: herd vs raw subscriber and floor
//   floor-start  N containers created and started by the minimal client
//   reconcile    containerd restart with N components under herd
//   kill-wait    SIGKILL a pid, time until 127.0.0.1:PORT answers again (peers)
//   clean        remove every container of a namespace (cleanup, not timed)
//   idle-client  a minimal gRPC client that subscribes and idles (RSS baseline)
#include <signal.h>

#include <iostream>
#include <thread>

#include "raw_client.h"

#include "util.h"

namespace bench {
int run_restore(const Args& a);
int run_floor_start(const Args& a);
int run_reconcile(const Args& a);

namespace {

int run_kill_wait(const Args& a) {
  using namespace std::chrono_literals;
  const pid_t pid = static_cast<pid_t>(a.num("pid", 0));
  const uint16_t port = static_cast<uint16_t>(a.num("port", 0));
  const auto timeout = std::chrono::milliseconds(a.num("timeout-ms", 60000));
  if (pid <= 0 || port == 0) {
    std::cerr << "kill-wait: --pid and --port are required\n";
    return 2;
  }
  if (!port_answers(port)) {
    std::cerr << "kill-wait: port " << port << " does not answer before the kill\n";
    return 1;
  }
  const auto t_kill = std::chrono::system_clock::now();
  if (::kill(pid, SIGKILL) != 0) {
    std::cerr << "kill-wait: kill " << pid << " failed\n";
    return 1;
  }
  auto down = wait_port(port, false, 5s);
  auto up = wait_port(port, true, timeout, std::chrono::microseconds(1000));
  if (!down || !up) {
    std::cerr << "kill-wait: port " << port << (down ? " did not answer again" : " never closed")
              << "\n";
    return 1;
  }
  emit("kill-wait", {{"answer_ms", {ms(t_kill, *up)}}, {"down_ms", {ms(t_kill, *down)}}});
  return 0;
}

// Removes every container of a namespace (tasks, containers, snapshots),
// 8 at a time. Not timed: cleanup between runs.
int run_clean(const Args& a) {
  RawClient raw(a.str("address"), a.str("ns"));
  std::vector<std::string> ids;
  if (auto s = raw.container_ids(&ids); !s.ok()) {
    std::cerr << "clean: " << s.error_message() << "\n";
    return 1;
  }
  std::vector<std::thread> th;
  for (size_t w = 0; w < 8; ++w)
    th.emplace_back([&, w] {
      for (size_t i = w; i < ids.size(); i += 8) raw.remove_all(ids[i], "overlayfs");
    });
  for (auto& t : th) t.join();
  return 0;
}

// A minimal gRPC client process: one channel to containerd, one Version
// call, one live events subscription, then idle for --seconds. Its VmRSS
// is the baseline for herdd's: what any process costs that talks to
// containerd through Debian's shared gRPC and protobuf.
int run_idle_client(const Args& a) {
  RawClient raw(a.str("address"), a.str("ns", "bench-idle"));
  std::string v;
  if (!raw.version(&v).ok()) return 1;
  if (!raw.subscribe([](const ExitSeen&) {})) return 1;
  std::cout << "live" << std::endl;
  std::this_thread::sleep_for(std::chrono::seconds(a.num("seconds", 30)));
  raw.unsubscribe();
  return 0;
}

}  // namespace
}  // namespace bench

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: herd_bench restore|floor-start|reconcile|kill-wait --key value ...\n";
    return 2;
  }
  const std::string cmd = argv[1];
  try {
    bench::Args args(argc, argv, 2);
    if (cmd == "restore") return bench::run_restore(args);
    if (cmd == "floor-start") return bench::run_floor_start(args);
    if (cmd == "reconcile") return bench::run_reconcile(args);
    if (cmd == "kill-wait") return bench::run_kill_wait(args);
    if (cmd == "clean") return bench::run_clean(args);
    if (cmd == "idle-client") return bench::run_idle_client(args);
  } catch (const std::exception& e) {
    std::cerr << "herd_bench " << cmd << ": " << e.what() << "\n";
    return 1;
  }
  std::cerr << "herd_bench: unknown subcommand " << cmd << "\n";
  return 2;
}
