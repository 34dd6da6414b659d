// herd::daemon::Daemon: herdd from a parsed command line to its exit code.
// herdd.cpp's main parses the command line into Daemon::Options, builds
// a Daemon and returns run().
//
// The steps of run(), in order (each stops the run with its exit code when
// it fails):
//   1. load_config()      read and validate --config, apply the command
//                         line's overrides; --check-config ends here.
//   2. setup_logging()    herdd's own log sink (journald or stderr) and
//                         where components' output goes (herd-logger).
//   3. open_loop()        the io_context, the containerd client, the pool
//                         for blocking work, the signal sets and the
//                         watchdog pinger.
//   4. start_control()    the control API on control_socket, before
//                         anything talks to containerd: a second herdd on
//                         the same socket gives up here.
//      start_metrics()    with `metrics` in the config: GET /metrics on
//                         metrics.listen (daemon/metrics.h renders it);
//                         an address that cannot be bound ends herdd.
//   5. watch_signals()    SIGTERM/SIGINT stop, SIGUSR2 detach, SIGHUP
//                         reload (signal_action below).
//   6. connect_containerd()  a coroutine: asks containerd for its version
//                         on the retry::kContainerdConnect schedule
//                         (common/backoff.h) until --connect-timeout.
//   7. start_supervisor() the Supervisor over the config; every status it
//                         reports goes to the control API, the log and,
//                         through announce_ready(), to systemd.
//   then the loop runs until shutdown() or end_loop() stops it.
//
// Signals (all handled on the event loop):
//   SIGTERM, SIGINT  stop every component in reverse dependency order
//                    within stop_budget, then exit 0.
//   SIGUSR2          exit at once and LEAVE every component running, for
//                    the next herdd to adopt (upgrades without restarts).
//   SIGHUP           reload the config file (as `herdctl reload`).
// A herdd killed with SIGKILL also leaves components running.
//
// The control API (lib/control) is served from step 4 on, while herdd
// still waits for containerd; SupervisorBackend (supervisor_backend.h)
// carries its requests to the supervisor once there is one.
//
// Exit codes (docs/operations.md): see ExitCode.
//
// Strand: everything after open_loop() runs on the one thread that calls
// run(), inside the io_context's run(): handlers, the coroutine, the
// supervisor's callbacks (it is created on the io_context's executor).
// load_config() and setup_logging() run before the loop exists. A Daemon
// runs once.
//
// The pure functions below are the decisions the steps make, apart from
// the I/O, so that tests can check them without containerd.
#pragma once

#include <chrono>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <spdlog/spdlog.h>

#include <boost/asio/signal_set.hpp>

#include "common/asio.h"
#include "common/backoff.h"
#include "common/blocking_pool.h"
#include "config/config.h"
#include "containerd/client.h"
#include "control/server.h"
#include "daemon/metrics.h"
#include "daemon/supervisor_backend.h"
#include "metrics/http_server.h"
#include "registry/puller.h"
#include "supervise/supervisor.h"
#include "systemd/notify.h"

namespace herd::daemon {

// herdd's exit codes.
enum ExitCode : int {
  kExitOk = 0,          // stopped cleanly (or --check-config: the config is valid)
  kExitInternal = 1,    // internal error (an exception reached run())
  kExitConfig = 2,      // config invalid (every error printed with its JSON path),
                        // or --component-output journald impossible
  kExitContainerd = 3,  // containerd unreachable at start for --connect-timeout
  kExitControl = 4,     // the control socket is unusable: another herdd serves
                        // it, or it cannot be created
  kExitMetrics = 5,     // metrics.listen cannot be bound
  // (2 also: a bad command line, one line naming the option.)
};

// "2/3 ready, 1 backing off: web" from the current states: the ready count,
// then per other state (in State order) its count and names.
std::string status_line(const std::vector<supervise::ComponentStatus>& all);

// Every component ready, failed or completed (a job): the initial
// reconcile is done.
bool settled(const std::vector<supervise::ComponentStatus>& all);

// What herdd tells systemd after a status change: STATUS=`status` always,
// READY=1 once, the first time the components have settled().
struct Announcement {
  std::string status;
  bool ready = false;  // send READY=1 now
};
Announcement announcement(const std::vector<supervise::ComponentStatus>& all, bool already_ready);

// What a signal asks of herdd.
enum class SignalAction {
  kStop,    // SIGTERM, SIGINT: stop every component, exit 0
  kDetach,  // SIGUSR2: exit, leave the components running
  kReload,  // SIGHUP: reload the config
  kIgnore,  // any other
};
SignalAction signal_action(int sig);
// The message for systemd when herdd ends by `action` (kStop or kDetach).
std::string_view stopping_notice(SignalAction action);
// herdd's log line when `sig` (SIGTERM, SIGINT or SIGUSR2) ends it.
std::string stopping_log(int sig);

// Where components' output goes (--component-output auto|journald|file),
// given the herd-logger herdd found and what the machine offers.
struct ComponentOutput {
  std::string logger;  // herd-logger to run; empty: files under <data_path>/.herd-logs
  std::string error;   // set: `journald` was asked for and cannot be had (exit 2)
};
ComponentOutput choose_component_output(std::string_view mode, const std::string& logger_path,
                                        bool logger_executable, bool journald_running);

// The wait before the next containerd probe from `backoff` (counting the
// attempt), or nullopt when that wait would end after `until`: give up.
std::optional<std::chrono::milliseconds> next_connect_delay(
    Backoff& backoff, std::chrono::steady_clock::time_point now,
    std::chrono::steady_clock::time_point until);

class Daemon {
 public:
  // The command line (herdd.cpp declares the options and their help).
  struct Options {
    std::string config_path = "/etc/herd/herd.json";
    bool check_only = false;          // --check-config
    std::string containerd_address;   // overrides the config's when set
    std::string ns;                   // overrides the config's namespace when set
    std::string log_target = "auto";  // journald, stderr, auto
    std::string log_level = "info";
    std::chrono::milliseconds connect_timeout{std::chrono::seconds(60)};
    std::string component_output = "auto";  // journald, file, auto
    std::string version = "unknown";        // herd_build_info{version}
  };

  // `out` and `err` take what herdd prints for a person (the config check,
  // config errors, fatal setup errors); its logs go to the log sink.
  explicit Daemon(Options options, std::ostream& out, std::ostream& err);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // All the steps above, then the loop; the exit code.
  int run();

  // The steps, public for tests. A step returning an exit code ends the
  // run with it; nullopt: go on.

  // Reads options.config_path. Invalid or unreadable: every error on
  // `err` as "<path>: <error>" and a count line, kExitConfig. With
  // check_only: "<path>: valid, N component(s)" on `out`, kExitOk.
  std::optional<int> load_config();
  // The config load_config() read, with the overrides applied. REQUIRES:
  // load_config() succeeded.
  const config::Config& config() const { return *cfg_; }
  // --containerd-address and --namespace, applied to every config herdd
  // reads (the reloaded ones too).
  void apply_overrides(config::Config& c) const;

  // Installs herdd's default spdlog logger and picks the herd-logger;
  // kExitConfig when --component-output journald cannot be honoured.
  std::optional<int> setup_logging();

 private:
  void open_loop();
  // kExitControl when the socket is taken or cannot be created.
  std::optional<int> start_control();
  // kExitMetrics when metrics.listen cannot be bound; nothing without
  // `metrics` in the config.
  std::optional<int> start_metrics();
  void watch_signals();
  void wait_hup();  // one SIGHUP, then waits for the next
  // True once containerd answered; false (logged) when it stayed
  // unreachable for --connect-timeout.
  asio::awaitable<bool> connect_containerd();
  // Creates and starts the Supervisor; with no components READY=1 at once.
  void start_supervisor();
  // The supervisor's observer: the control API, the component's log line,
  // then announce_ready() posted (the supervisor updates its table right
  // after observing).
  void on_status(const supervise::ComponentStatus& s);
  // STATUS= from the supervisor's table; READY=1 (and malloc_trim) the
  // first time it has settled (announcement() above).
  void announce_ready();
  // `sig` (SIGTERM, SIGINT: stop; SIGUSR2: detach) ends herdd: tell
  // systemd, stop or detach the supervisor, then end_loop().
  void shutdown(int sig);
  // Stops the watchdog, the control server and the loop; run() returns.
  void end_loop();
  std::shared_ptr<spdlog::logger> component_log(const std::string& name);

  const Options options_;
  std::ostream& out_;
  std::ostream& err_;
  std::optional<config::Config> cfg_;
  std::shared_ptr<spdlog::sinks::sink> sink_;
  std::map<std::string, std::shared_ptr<spdlog::logger>> component_logs_;
  std::string output_logger_;  // empty: component output to files
  std::string file_logger_;    // files through herd-logger's file mode; empty: the shim's

  // The loop (open_loop() on). Declared in the order they must be built;
  // destroyed in reverse: the control server before the backend it
  // calls, the pool (joined) before the client and io_context its last
  // completions use.
  asio::io_context io_;
  std::unique_ptr<containerd::Client> client_;
  // Blocking work (archive reading and hashing) runs here, never on the loop.
  std::unique_ptr<BlockingPool> pool_;
  // Registry pulls (components' missing images, herdctl image pull).
  std::unique_ptr<registry::Puller> puller_;
  std::unique_ptr<asio::signal_set> signals_;  // SIGTERM, SIGINT, SIGUSR2
  std::unique_ptr<asio::signal_set> hup_;      // SIGHUP
  // systemd: a no-op without NOTIFY_SOCKET. The watchdog is pinged from
  // the event loop itself, so a stuck loop is seen.
  herd::systemd::Notifier notifier_;
  std::unique_ptr<herd::systemd::WatchdogPinger> watchdog_;
  std::shared_ptr<supervise::Supervisor> sup_;  // set once containerd answered
  std::unique_ptr<SupervisorBackend> backend_;
  std::unique_ptr<control::ControlServer> control_;
  std::unique_ptr<HerdMetrics> metrics_;  // fed by on_status() on the loop
  std::unique_ptr<metrics::MetricsServer> metrics_server_;

  int exit_code_ = kExitOk;
  bool announced_ready_ = false;
};

}  // namespace herd::daemon
