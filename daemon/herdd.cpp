// herdd: the herd daemon. Reads the config, waits for containerd, runs the
// Supervisor on one io_context, reports to systemd, and stops on signals.
//
// Signals (all handled on the event loop):
//   SIGTERM, SIGINT  stop every component in reverse dependency order
//                    within stop_budget, then exit 0.
//   SIGUSR2          exit at once and LEAVE every component running, for
//                    the next herdd to adopt (upgrades without restarts).
//   SIGHUP           reload the config file (as `herdctl reload`).
// A herdd killed with SIGKILL also leaves components running.
//
// The control API (lib/control) is served on control_socket from the
// start, before containerd answers; SupervisorBackend
// (supervisor_backend.h) carries its requests to the supervisor.
//
// Exit codes (docs/operations.md):
//   0 stopped cleanly (or --check-config: the config is valid)
//   1 internal error
//   2 config invalid (every error printed with its JSON path)
//   3 containerd unreachable at start, after retrying for --connect-timeout
//   4 the control socket is unusable: another herdd serves it, or it
//     cannot be created
#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>
#include <map>
#include <spdlog/spdlog.h>

#include "common/asio.h"
#include "config/config.h"
#include "containerd/client.h"
#include "control/server.h"
#include "daemon/supervisor_backend.h"
#include "supervise/supervisor.h"
#include "systemd/container_logger.h"
#include "systemd/journal_sink.h"
#include "systemd/journald.h"
#include "systemd/notify.h"

#include <boost/asio/signal_set.hpp>

namespace {

using namespace herd;
namespace ctrd = herd::containerd;
using namespace std::chrono_literals;
using supervise::ComponentStatus;
using supervise::State;

constexpr int kExitOk = 0;
constexpr int kExitInternal = 1;
constexpr int kExitConfig = 2;
constexpr int kExitContainerd = 3;
constexpr int kExitControl = 4;

// "2/3 ready, 1 backing off: web" from the current states.
std::string status_line(const std::vector<ComponentStatus>& all) {
  size_t ready = 0;
  std::map<State, std::vector<std::string>> others;
  for (const auto& s : all) {
    if (s.state == State::kReady) {
      ++ready;
    } else {
      others[s.state].push_back(s.name);
    }
  }
  std::string line = std::to_string(ready) + "/" + std::to_string(all.size()) + " ready";
  for (const auto& [state, names] : others) {
    std::string st(supervise::to_string(state));
    for (auto& c : st)
      if (c == '_') c = ' ';
    line += ", " + std::to_string(names.size()) + " " + st + ":";
    for (size_t i = 0; i < names.size(); ++i) line += (i ? ", " : " ") + names[i];
  }
  return line;
}

// Every component ready or failed: the initial reconcile is done.
bool settled(const std::vector<ComponentStatus>& all) {
  for (const auto& s : all)
    if (s.state != State::kReady && s.state != State::kFailed) return false;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"herdd: supervises containerd-based services on a node"};
  std::string config_path = "/etc/herd/herd.json";
  bool check_only = false;
  bool show_version = false;
  std::string address, ns, log_target = "auto", log_level = "info";
  int connect_timeout_s = 60;
  app.add_option("--config", config_path, "Config file")->capture_default_str();
  app.add_flag("--check-config", check_only,
               "Validate the config, print every error with its JSON path, exit 0 (valid) or 2");
  app.add_option("--containerd-address", address, "containerd socket (overrides the config)");
  app.add_option("--namespace", ns, "containerd namespace (overrides the config)");
  app.add_option("--log-target", log_target, "journald, stderr or auto")
      ->check(CLI::IsMember({"journald", "stderr", "auto"}))
      ->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->capture_default_str();
  app.add_option("--connect-timeout", connect_timeout_s,
                 "Seconds to keep retrying an unreachable containerd at start")
      ->capture_default_str();
  std::string component_output = "auto";
  app.add_option("--component-output", component_output,
                 "Where components' stdout/stderr go: journald (through herd-logger), file "
                 "(<data_path>/.herd-logs/NAME.log) or auto (journald when it runs)")
      ->check(CLI::IsMember({"journald", "file", "auto"}))
      ->capture_default_str();
  app.add_flag("--version", show_version, "Print the version and exit");
  CLI11_PARSE(app, argc, argv);

  if (show_version) {
    std::cout << "herdd " << HERD_VERSION << "\n";
    return kExitOk;
  }

  auto parsed = config::load_config(config_path);
  if (!parsed.ok()) {
    for (const auto& e : parsed.errors) std::cerr << config_path << ": " << e.to_string() << "\n";
    std::cerr << "herdd: " << parsed.errors.size() << " error(s) in " << config_path << "\n";
    return kExitConfig;
  }
  config::Config cfg = std::move(*parsed.config);
  // Applied to every config herdd reads, the reloaded ones included.
  auto overrides = [address, ns](config::Config& c) {
    if (!address.empty()) c.containerd.address = address;
    if (!ns.empty()) c.containerd.namespace_name = ns;
  };
  overrides(cfg);
  if (check_only) {
    std::cout << config_path << ": valid, " << cfg.components.size() << " component(s)\n";
    return kExitOk;
  }

  // herdd's logs: journald (with HERD_COMPONENT= for component lines) when
  // reachable or asked for, else stderr.
  auto sink = herd::systemd::make_log_sink(*herd::systemd::parse_log_target(log_target), "herdd");
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("herdd", sink));
  spdlog::set_level(spdlog::level::from_str(log_level));
  std::map<std::string, std::shared_ptr<spdlog::logger>> component_logs;
  auto component_log = [&](const std::string& name) {
    auto& l = component_logs[name];
    if (!l) {
      l = std::make_shared<spdlog::logger>(name, sink);
      l->set_level(spdlog::get_level());
    }
    return l;
  };

  // herd-logger: beside herdd (the build tree, or a custom install), else
  // where `cmake --install` puts it.
  std::string logger;
  if (component_output != "file") {
    std::error_code ec;
    auto beside = std::filesystem::read_symlink("/proc/self/exe", ec).parent_path() / "herd-logger";
    logger = !ec && ::access(beside.c_str(), X_OK) == 0
                 ? beside.string()
                 : herd::systemd::default_container_logger_path();
    const bool usable = ::access(logger.c_str(), X_OK) == 0 && herd::systemd::journald_available();
    if (!usable) {
      if (component_output == "journald") {
        std::cerr << "herdd: --component-output journald: "
                  << (::access(logger.c_str(), X_OK) != 0 ? logger + " is not executable"
                                                            : "journald is not running")
                  << "\n";
        return kExitConfig;
      }
      logger.clear();  // auto: fall back to files
    }
  }
  spdlog::info("component output: {}", logger.empty() ? "files under " + cfg.data_path +
                                                             "/.herd-logs"
                                                       : "journald via " + logger);

  try {
    asio::io_context io;
    ctrd::Client::Options co;
    co.address = cfg.containerd.address;
    co.ns = cfg.containerd.namespace_name;
    ctrd::Client client(co);
    // Blocking work (archive reading and hashing) runs here, never on the
    // loop. Declared after `io`: destroyed (joined) first, so its last
    // completions still find the io_context.
    BlockingPool pool(2);

    int exit_code = kExitOk;
    std::shared_ptr<supervise::Supervisor> sup;
    bool announced_ready = false;
    asio::signal_set signals(io, SIGTERM, SIGINT, SIGUSR2);
    asio::signal_set hup(io, SIGHUP);

    // systemd: a no-op without NOTIFY_SOCKET. The watchdog is pinged from
    // the event loop itself, so a stuck loop is seen.
    herd::systemd::Notifier notifier;
    auto watchdog = herd::systemd::make_watchdog_pinger(io.get_executor());
    if (watchdog) watchdog->start();
    // The control API, before anything else touches containerd: a second
    // herdd on the same socket must give up here.
    daemon::SupervisorBackend backend(io, client, pool, config_path, cfg, overrides, notifier);
    control::ControlServer::Options control_options;
    control_options.socket_path = cfg.control_socket;
    control_options.group = cfg.control_group;
    auto control = control::ControlServer::start(io.get_executor(), control_options, backend);
    if (!control.ok()) {
      spdlog::error("control socket: {}", control.status().to_string());
      std::cerr << "herdd: control socket: " << control.status().message() << "\n";
      return kExitControl;
    }
    spdlog::info("control API on {}", cfg.control_socket);

    // The control server's shutdown finishes RPCs still waiting for the
    // loop with UNAVAILABLE itself, so it can run on the loop.
    auto end_loop = [&] {
      if (watchdog) watchdog->stop();
      (*control)->shutdown();
      io.stop();
    };

    auto observe = [&](const ComponentStatus& s) {
      backend.publish(s);
      const bool trouble = s.state == State::kBackingOff || s.state == State::kFailed;
      auto l = component_log(s.name);
      if (trouble && !s.last_error.empty()) {
        l->warn("{}: {} ({})", s.name, supervise::to_string(s.state), s.last_error);
      } else if (trouble && s.last_exit_code) {
        l->warn("{}: {} (exit code {}, restarts {})", s.name, supervise::to_string(s.state),
                *s.last_exit_code, s.restarts);
      } else {
        l->info("{}: {}{}", s.name, supervise::to_string(s.state),
                s.pid ? " pid " + std::to_string(s.pid) : "");
      }
      // Posted: the supervisor updates its table right after observing.
      asio::post(io, [&] {
        if (!sup) return;
        auto all = sup->status();
        const std::string line = status_line(all);
        (void)notifier.status(line);
        if (!announced_ready && settled(all)) {
          announced_ready = true;
          (void)notifier.ready();
          spdlog::info("ready: {}", line);
          // The start burst (every component prepared and started at once)
          // leaves megabytes of freed heap that glibc would keep for good:
          // give it back (docs/benchmarks.md, RSS).
          ::malloc_trim(0);
        }
      });
    };

    // Wait for containerd (bounded), then supervise.
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          auto until = std::chrono::steady_clock::now() + std::chrono::seconds(connect_timeout_s);
          auto delay = 100ms;
          for (;;) {
            auto v = co_await client.version(ctrd::CallOptions::with_timeout(2s));
            if (v.ok()) {
              spdlog::info("containerd {} at {}, namespace {}", v->version, co.address, co.ns);
              break;
            }
            if (std::chrono::steady_clock::now() + delay > until) {
              spdlog::error("containerd unreachable for {}s: {}", connect_timeout_s,
                            v.status().to_string());
              exit_code = kExitContainerd;
              end_loop();
              co_return;
            }
            spdlog::warn("waiting for containerd: {}", v.status().to_string());
            asio::steady_timer t(io, delay);
            co_await t.async_wait(asio::use_awaitable);
            delay = std::min(delay * 2, std::chrono::milliseconds(2000));
          }
          supervise::Supervisor::Options options;
          options.output_logger = logger;
          options.pool = &pool;
          sup = supervise::Supervisor::create(io.get_executor(), client, cfg, observe, options);
          backend.attach(sup);
          if (cfg.components.empty()) {
            (void)notifier.notify("READY=1\nSTATUS=0/0 ready");
            announced_ready = true;
          }
          sup->start();
        },
        asio::detached);

    std::function<void()> wait_hup = [&] {
      hup.async_wait([&](boost::system::error_code ec, int) {
        if (ec) return;
        spdlog::info("SIGHUP: reloading {}", config_path);
        backend.reload([](control::ReloadResult) {});  // it logs the outcome
        wait_hup();
      });
    };
    wait_hup();

    signals.async_wait([&](boost::system::error_code ec, int sig) {
      if (ec) return;
      hup.cancel();
      if (sig == SIGUSR2) {
        spdlog::info("SIGUSR2: exiting, components keep running for the next herdd");
        (void)notifier.notify("STOPPING=1\nSTATUS=exiting, components left running");
        if (!sup) {
          end_loop();
          return;
        }
        sup->detach(end_loop);
        return;
      }
      spdlog::info("{}: stopping every component", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      (void)notifier.notify("STOPPING=1\nSTATUS=stopping");
      if (!sup) {
        end_loop();
        return;
      }
      // A second signal during the stop is handled by the same stop.
      signals.async_wait([](boost::system::error_code, int) {});
      sup->stop([&] {
        spdlog::info("all components stopped");
        end_loop();
      });
    });

    io.run();
    return exit_code;
  } catch (const std::exception& e) {
    spdlog::critical("internal error: {}", e.what());
    return kExitInternal;
  }
}
