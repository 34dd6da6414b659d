// The steps of herdd (daemon.h): the order, the strand and the exit codes
// are stated there.
#include "daemon/daemon.h"

#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <cassert>
#include <filesystem>
#include <ostream>

#include "daemon/registry_options.h"
#include "systemd/container_logger.h"
#include "systemd/journal_sink.h"
#include "systemd/journald.h"

namespace herd::daemon {

using supervise::ComponentStatus;
using supervise::State;

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

bool settled(const std::vector<ComponentStatus>& all) {
  for (const auto& s : all)
    if (s.state != State::kReady && s.state != State::kFailed && s.state != State::kCompleted)
      return false;
  return true;
}

Announcement announcement(const std::vector<ComponentStatus>& all, bool already_ready) {
  return {status_line(all), !already_ready && settled(all)};
}

SignalAction signal_action(int sig) {
  switch (sig) {
    case SIGTERM:
    case SIGINT:
      return SignalAction::kStop;
    case SIGUSR2:
      return SignalAction::kDetach;
    case SIGHUP:
      return SignalAction::kReload;
    default:
      return SignalAction::kIgnore;
  }
}

std::string_view stopping_notice(SignalAction action) {
  return action == SignalAction::kDetach ? "STOPPING=1\nSTATUS=exiting, components left running"
                                         : "STOPPING=1\nSTATUS=stopping";
}

std::string stopping_log(int sig) {
  if (signal_action(sig) == SignalAction::kDetach)
    return "SIGUSR2: exiting, components keep running for the next herdd";
  return std::string(sig == SIGTERM ? "SIGTERM" : "SIGINT") + ": stopping every component";
}

ComponentOutput choose_component_output(std::string_view mode, const std::string& logger_path,
                                        bool logger_executable, bool journald_running) {
  if (mode == "file") return {};
  if (logger_executable && journald_running) return {logger_path, {}};
  if (mode == "journald") {
    return {{}, logger_executable ? "journald is not running" : logger_path + " is not executable"};
  }
  return {};  // auto: fall back to files
}

std::optional<std::chrono::milliseconds> next_connect_delay(
    Backoff& backoff, std::chrono::steady_clock::time_point now,
    std::chrono::steady_clock::time_point until) {
  const auto delay = backoff.next();
  if (now + delay > until) return std::nullopt;
  return delay;
}

Daemon::Daemon(Options options, std::ostream& out, std::ostream& err)
    : options_(std::move(options)), out_(out), err_(err) {}

Daemon::~Daemon() = default;

void Daemon::apply_overrides(config::Config& c) const {
  if (!options_.containerd_address.empty()) c.containerd.address = options_.containerd_address;
  if (!options_.ns.empty()) c.containerd.namespace_name = options_.ns;
}

std::optional<int> Daemon::load_config() {
  const std::string& path = options_.config_path;
  auto parsed = config::load_config(path);
  if (parsed.ok()) {
    // What the config needs of this host (tini for `init: true`).
    auto host = config::check_host(*parsed.config);
    if (!host.empty()) {
      parsed.config.reset();
      parsed.errors = std::move(host);
    }
  }
  if (!parsed.ok()) {
    for (const auto& e : parsed.errors) err_ << path << ": " << e.to_string() << "\n";
    err_ << "herdd: " << parsed.errors.size() << " error(s) in " << path << "\n";
    return kExitConfig;
  }
  cfg_ = std::move(*parsed.config);
  apply_overrides(*cfg_);
  if (options_.check_only) {
    out_ << path << ": valid, " << cfg_->components.size() << " component(s)\n";
    return kExitOk;
  }
  return std::nullopt;
}

std::optional<int> Daemon::setup_logging() {
  // herdd's logs: journald (with HERD_COMPONENT= for component lines) when
  // reachable or asked for, else stderr. The option's values are checked
  // by the command line.
  const auto target = herd::systemd::parse_log_target(options_.log_target);
  sink_ = herd::systemd::make_log_sink(target.value_or(herd::systemd::LogTarget::kAuto), "herdd");
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("herdd", sink_));
  spdlog::set_level(spdlog::level::from_str(options_.log_level));

  // herd-logger: beside herdd (the build tree, or a custom install), else
  // in <exe>/../libexec/herd (an install under another prefix: the Debian
  // package's /usr), else where `cmake --install` puts it.
  std::error_code ec;
  const auto exe_dir = std::filesystem::read_symlink("/proc/self/exe", ec).parent_path();
  std::string logger = herd::systemd::default_container_logger_path();
  for (const auto& candidate :
       {exe_dir / "herd-logger", exe_dir.parent_path() / "libexec" / "herd" / "herd-logger"}) {
    if (!ec && ::access(candidate.c_str(), X_OK) == 0) {
      logger = candidate.string();
      break;
    }
  }
  const bool executable = ::access(logger.c_str(), X_OK) == 0;
  if (options_.component_output != "file") {
    // journald_available() is only asked when herd-logger is there, as before.
    auto chosen = choose_component_output(options_.component_output, logger, executable,
                                          executable && herd::systemd::journald_available());
    if (!chosen.error.empty()) {
      err_ << "herdd: --component-output journald: " << chosen.error << "\n";
      return kExitConfig;
    }
    output_logger_ = std::move(chosen.logger);
  }
  // Files: herd-logger caps them (config `output`) when it is there.
  if (output_logger_.empty() && executable) file_logger_ = logger;
  if (!output_logger_.empty()) {
    spdlog::info("component output: journald via {}", output_logger_);
  } else {
    spdlog::info("component output: files under {}/.herd-logs{}", cfg_->data_path,
                 file_logger_.empty()
                     ? " (uncapped: no herd-logger)"
                     : ", rotated at " + std::to_string(cfg_->output.max_file_bytes) + " bytes x " +
                           std::to_string(cfg_->output.max_files) + " by " + file_logger_);
  }
  return std::nullopt;
}

std::shared_ptr<spdlog::logger> Daemon::component_log(const std::string& name) {
  auto& l = component_logs_[name];
  if (!l) {
    l = std::make_shared<spdlog::logger>(name, sink_);
    l->set_level(spdlog::get_level());
  }
  return l;
}

void Daemon::open_loop() {
  containerd::Client::Options co;
  co.address = cfg_->containerd.address;
  co.ns = cfg_->containerd.namespace_name;
  client_ = std::make_unique<containerd::Client>(co);
  pool_ = std::make_unique<BlockingPool>(2);
  registry::Puller::Options po;
  po.registry = registry_options(cfg_->registry);
  puller_ = std::make_unique<registry::Puller>(io_.get_executor(), *client_, po);
  // Registered now: from here on these signals are handled by the loop.
  signals_ = std::make_unique<asio::signal_set>(io_, SIGTERM, SIGINT, SIGUSR2);
  hup_ = std::make_unique<asio::signal_set>(io_, SIGHUP);
  watchdog_ = herd::systemd::make_watchdog_pinger(io_.get_executor());
  if (watchdog_) watchdog_->start();
}

std::optional<int> Daemon::start_control() {
  backend_ = std::make_unique<SupervisorBackend>(
      io_, *client_, *pool_, puller_.get(), options_.config_path, *cfg_,
      [this](config::Config& c) { apply_overrides(c); }, notifier_);
  control::ControlServer::Options control_options;
  control_options.socket_path = cfg_->control_socket;
  control_options.group = cfg_->control_group;
  auto control = control::ControlServer::start(io_.get_executor(), control_options, *backend_);
  if (!control.ok()) {
    spdlog::error("control socket: {}", control.status().to_string());
    err_ << "herdd: control socket: " << control.status().message() << "\n";
    return kExitControl;
  }
  control_ = std::move(*control);
  spdlog::info("control API on {}", cfg_->control_socket);
  return std::nullopt;
}

std::optional<int> Daemon::start_metrics() {
  metrics_ = std::make_unique<HerdMetrics>(options_.version);
  if (!cfg_->metrics) return std::nullopt;
  metrics::MetricsServer::Options o;
  o.listen = cfg_->metrics->listen;
  auto server = metrics::MetricsServer::start(io_.get_executor(), o, [this] {
    const std::vector<ComponentStatus> none;
    return sup_ ? metrics_->render(sup_->status(), sup_->gaps()) : metrics_->render(none, 0);
  });
  if (!server.ok()) {
    spdlog::error("{}", server.status().message());
    err_ << "herdd: " << server.status().message() << "\n";
    return kExitMetrics;
  }
  metrics_server_ = std::move(*server);
  spdlog::info("metrics on {}", metrics_server_->endpoint());
  return std::nullopt;
}

void Daemon::watch_signals() {
  wait_hup();
  signals_->async_wait([this](boost::system::error_code ec, int sig) {
    if (ec) return;
    shutdown(sig);
  });
}

void Daemon::wait_hup() {
  hup_->async_wait([this](boost::system::error_code ec, int) {
    if (ec) return;
    spdlog::info("SIGHUP: reloading {}", options_.config_path);
    backend_->reload([](control::ReloadResult) {});  // it logs the outcome
    wait_hup();
  });
}

asio::awaitable<bool> Daemon::connect_containerd() {
  const auto until = std::chrono::steady_clock::now() + options_.connect_timeout;
  Backoff backoff(retry::kContainerdConnect);
  for (;;) {
    auto v = co_await client_->version(
        containerd::CallOptions::with_timeout(retry::kContainerdConnectCall));
    if (v.ok()) {
      spdlog::info("containerd {} at {}, namespace {}", v->version, cfg_->containerd.address,
                   cfg_->containerd.namespace_name);
      co_return true;
    }
    const auto delay = next_connect_delay(backoff, std::chrono::steady_clock::now(), until);
    if (!delay) {
      spdlog::error("containerd unreachable for {}: {}",
                    config::format_duration(options_.connect_timeout), v.status().to_string());
      co_return false;
    }
    spdlog::warn("waiting for containerd: {}", v.status().to_string());
    asio::steady_timer t(io_, *delay);
    co_await t.async_wait(asio::use_awaitable);
  }
}

void Daemon::start_supervisor() {
  assert(io_.get_executor().running_in_this_thread());
  supervise::Supervisor::Options options;
  options.output_logger = output_logger_;
  options.file_logger = file_logger_;
  options.pool = pool_.get();
  options.puller = puller_.get();
  options.probe_attempt = [m = metrics_.get()](const std::string& component, std::string_view probe,
                                               std::chrono::nanoseconds took) {
    if (m) m->probe_attempt(component, std::string(probe), took);
  };
  sup_ = supervise::Supervisor::create(
      io_.get_executor(), *client_, *cfg_, [this](const ComponentStatus& s) { on_status(s); },
      options);
  backend_->attach(sup_);
  if (cfg_->components.empty()) {
    (void)notifier_.notify("READY=1\nSTATUS=0/0 ready");
    announced_ready_ = true;
  }
  sup_->start();
}

void Daemon::on_status(const ComponentStatus& s) {
  backend_->publish(s);
  if (metrics_) metrics_->observe(s);
  const bool trouble = s.state == State::kBackingOff || s.state == State::kFailed;
  auto l = component_log(s.name);
  const bool oom = s.last_exit_reason == "oom_killed";
  if (trouble && oom) {
    l->warn("{}: {} (OOM killed: exit code {}, OOM kills {}, restarts {}){}", s.name,
            supervise::to_string(s.state), s.last_exit_code.value_or(0), s.oom_kills, s.restarts,
            s.last_error.empty() ? "" : "; " + s.last_error);
  } else if (trouble && !s.last_error.empty()) {
    l->warn("{}: {} ({})", s.name, supervise::to_string(s.state), s.last_error);
  } else if (trouble && s.last_exit_code) {
    l->warn("{}: {} (exit code {}, restarts {})", s.name, supervise::to_string(s.state),
            *s.last_exit_code, s.restarts);
  } else {
    l->info("{}: {}{}", s.name, supervise::to_string(s.state),
            s.pid ? " pid " + std::to_string(s.pid) : "");
  }
  // Posted: the supervisor updates its table right after observing.
  asio::post(io_, [this] { announce_ready(); });
}

void Daemon::announce_ready() {
  if (!sup_) return;
  const auto a = announcement(sup_->status(), announced_ready_);
  (void)notifier_.status(a.status);
  if (!a.ready) return;
  announced_ready_ = true;
  (void)notifier_.ready();
  spdlog::info("ready: {}", a.status);
  // The start burst (every component prepared and started at once) leaves
  // megabytes of freed heap that glibc would keep for good: give it back
  // (docs/benchmarks.md, RSS).
  ::malloc_trim(0);
}

void Daemon::shutdown(int sig) {
  assert(io_.get_executor().running_in_this_thread());
  const SignalAction action =
      signal_action(sig) == SignalAction::kDetach ? SignalAction::kDetach : SignalAction::kStop;
  hup_->cancel();
  spdlog::info("{}", stopping_log(sig));
  (void)notifier_.notify(stopping_notice(action));
  if (!sup_) {
    end_loop();
    return;
  }
  if (action == SignalAction::kDetach) {
    sup_->detach([this] { end_loop(); });
    return;
  }
  // A second signal during the stop is handled by the same stop.
  signals_->async_wait([](boost::system::error_code, int) {});
  sup_->stop([this] {
    spdlog::info("all components stopped");
    end_loop();
  });
}

// The control server's shutdown finishes RPCs still waiting for the loop
// with UNAVAILABLE itself, so it can run on the loop.
void Daemon::end_loop() {
  if (watchdog_) watchdog_->stop();
  if (control_) control_->shutdown();
  if (metrics_server_) metrics_server_->stop();
  io_.stop();
}

int Daemon::run() {
  if (auto code = load_config()) return *code;
  if (auto code = setup_logging()) return *code;
  try {
    open_loop();
    if (auto code = start_control()) return *code;
    if (auto code = start_metrics()) return *code;
    watch_signals();
    asio::co_spawn(
        io_,
        [this]() -> asio::awaitable<void> {
          if (!co_await connect_containerd()) {
            exit_code_ = kExitContainerd;
            end_loop();
            co_return;
          }
          start_supervisor();
        },
        asio::detached);
    io_.run();
    return exit_code_;
  } catch (const std::exception& e) {
    spdlog::critical("internal error: {}", e.what());
    return kExitInternal;
  }
}

}  // namespace herd::daemon
