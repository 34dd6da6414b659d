// herdd: the herd daemon. main parses the command line and runs a Daemon
// (daemon.h: the steps, the signals and the exit codes).
#include <CLI/CLI.hpp>
#include <iostream>

#include "daemon/cli_options.h"
#include "daemon/daemon.h"

int main(int argc, char** argv) {
  herd::daemon::Daemon::Options o;
  bool show_version = false;
  CLI::App app{"herdd: supervises containerd-based services on a node"};
  app.add_option("--config", o.config_path, "Config file")->capture_default_str();
  app.add_flag("--check-config", o.check_only,
               "Validate the config, print every error with its JSON path, exit 0 (valid) or 2");
  app.add_option("--containerd-address", o.containerd_address,
                 "containerd socket (overrides the config)");
  app.add_option("--namespace", o.ns, "containerd namespace (overrides the config)");
  app.add_option("--log-target", o.log_target, "journald, stderr or auto")
      ->check(CLI::IsMember({"journald", "stderr", "auto"}))
      ->capture_default_str();
  app.add_option("--log-level", o.log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->capture_default_str();
  std::string connect_timeout = "60s";
  app.add_option("--connect-timeout", connect_timeout,
                 "How long to keep retrying an unreachable containerd at start (10s, 2m; a bare "
                 "number is seconds)")
      ->type_name("DURATION")
      ->check(herd::cli::duration_check(false))
      ->capture_default_str();
  app.add_option("--component-output", o.component_output,
                 "Where components' stdout/stderr go: journald (through herd-logger), file "
                 "(<data_path>/.herd-logs/NAME.log) or auto (journald when it runs)")
      ->check(CLI::IsMember({"journald", "file", "auto"}))
      ->capture_default_str();
  app.add_flag("--version", show_version, "Print the version and exit");
  if (auto rc = herd::cli::parse_or_exit(app, argc, argv, "herdd")) return *rc;
  o.connect_timeout = herd::cli::duration_of(connect_timeout);
  o.version = HERD_VERSION;

  if (show_version) {
    std::cout << "herdd " << HERD_VERSION << "\n";
    return herd::daemon::kExitOk;
  }
  herd::daemon::Daemon daemon(std::move(o), std::cout, std::cerr);
  return daemon.run();
}
