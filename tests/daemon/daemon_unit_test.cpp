// Unit tests of herdd's steps (daemon/daemon.h) that need no containerd:
// the config step's output and exit codes, the READY/STATUS text, the
// signal mapping, the component-output choice, the containerd wait
// schedule, and two whole runs that end before containerd is needed (the
// control socket refused; containerd absent with --connect-timeout 0).
// No sleeps; times are passed in.
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "daemon/daemon.h"

using namespace herd;
using namespace herd::daemon;
using namespace std::chrono_literals;
using supervise::ComponentStatus;
using supervise::State;

namespace {

ComponentStatus comp(std::string name, State state) {
  ComponentStatus s;
  s.name = std::move(name);
  s.state = state;
  return s;
}

// A directory of the test's own, removed at the end.
struct TempDir {
  std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("herd-daemon-unit-" + std::to_string(::getpid()));
  TempDir() {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::filesystem::path write(const std::string& name, const std::string& text) const {
    auto p = path / name;
    std::ofstream(p) << text;
    return p;
  }
};

Daemon::Options options_for(const std::filesystem::path& config) {
  Daemon::Options o;
  o.config_path = config.string();
  o.log_target = "stderr";
  o.component_output = "file";
  return o;
}

}  // namespace

TEST_CASE("status_line counts the ready ones and names the others by state", "[daemon]") {
  CHECK(status_line({}) == "0/0 ready");
  CHECK(status_line({comp("db", State::kReady)}) == "1/1 ready");
  CHECK(status_line({comp("db", State::kReady), comp("web", State::kBackingOff),
                     comp("api", State::kReady)}) == "2/3 ready, 1 backing off: web");
  // Other states in State order, names in the order given; '_' becomes ' '.
  CHECK(status_line({comp("c", State::kFailed), comp("a", State::kWaitingReady),
                     comp("b", State::kWaitingReady)}) ==
        "0/3 ready, 2 waiting ready: a, b, 1 failed: c");
}

TEST_CASE("READY=1 is announced once, when every component is ready or failed", "[daemon]") {
  SECTION("still starting: STATUS only") {
    auto a = announcement({comp("db", State::kReady), comp("web", State::kStarting)}, false);
    CHECK(a.status == "1/2 ready, 1 starting: web");
    CHECK_FALSE(a.ready);
  }
  SECTION("settled, with a failed one") {
    auto a = announcement({comp("db", State::kReady), comp("web", State::kFailed)}, false);
    CHECK(a.status == "1/2 ready, 1 failed: web");
    CHECK(a.ready);
  }
  SECTION("already announced: never again") {
    auto a = announcement({comp("db", State::kReady)}, true);
    CHECK(a.status == "1/1 ready");
    CHECK_FALSE(a.ready);
  }
  SECTION("backing off is not settled") {
    CHECK_FALSE(settled({comp("web", State::kBackingOff)}));
    CHECK_FALSE(announcement({comp("web", State::kBackingOff)}, false).ready);
  }
}

TEST_CASE("signals map to stop, detach and reload", "[daemon]") {
  CHECK(signal_action(SIGTERM) == SignalAction::kStop);
  CHECK(signal_action(SIGINT) == SignalAction::kStop);
  CHECK(signal_action(SIGUSR2) == SignalAction::kDetach);
  CHECK(signal_action(SIGHUP) == SignalAction::kReload);
  CHECK(signal_action(SIGUSR1) == SignalAction::kIgnore);
  CHECK(signal_action(SIGQUIT) == SignalAction::kIgnore);

  CHECK(stopping_notice(SignalAction::kStop) == "STOPPING=1\nSTATUS=stopping");
  CHECK(stopping_notice(SignalAction::kDetach) ==
        "STOPPING=1\nSTATUS=exiting, components left running");
  CHECK(stopping_log(SIGTERM) == "SIGTERM: stopping every component");
  CHECK(stopping_log(SIGINT) == "SIGINT: stopping every component");
  CHECK(stopping_log(SIGUSR2) == "SIGUSR2: exiting, components keep running for the next herdd");
}

TEST_CASE("component output: journald through herd-logger when possible", "[daemon]") {
  const std::string logger = "/usr/libexec/herd/herd-logger";
  SECTION("file: always files") {
    auto c = choose_component_output("file", logger, true, true);
    CHECK(c.logger.empty());
    CHECK(c.error.empty());
  }
  SECTION("auto: herd-logger when it and journald are there, else files") {
    CHECK(choose_component_output("auto", logger, true, true).logger == logger);
    auto no_journald = choose_component_output("auto", logger, true, false);
    CHECK(no_journald.logger.empty());
    CHECK(no_journald.error.empty());
    auto no_logger = choose_component_output("auto", logger, false, true);
    CHECK(no_logger.logger.empty());
    CHECK(no_logger.error.empty());
  }
  SECTION("journald: herd-logger, or an error saying what is missing") {
    CHECK(choose_component_output("journald", logger, true, true).logger == logger);
    CHECK(choose_component_output("journald", logger, false, true).error ==
          logger + " is not executable");
    CHECK(choose_component_output("journald", logger, true, false).error ==
          "journald is not running");
  }
}

TEST_CASE("the containerd wait follows kContainerdConnect until the connect timeout", "[daemon]") {
  const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
  SECTION("doubling from 100 ms, capped at 2 s") {
    Backoff b(retry::kContainerdConnect);
    std::vector<std::chrono::milliseconds> seen;
    for (int i = 0; i < 7; ++i) seen.push_back(*next_connect_delay(b, t0, t0 + 1h));
    CHECK(seen == std::vector<std::chrono::milliseconds>{100ms, 200ms, 400ms, 800ms, 1600ms, 2000ms,
                                                         2000ms});
  }
  SECTION("gives up when the next wait would end after the deadline") {
    // --connect-timeout 1: waits of 100, 200 and 400 ms fit; 800 ms from
    // 0.7 s does not.
    Backoff b(retry::kContainerdConnect);
    auto now = t0;
    const auto until = t0 + 1s;
    std::vector<std::chrono::milliseconds> waited;
    while (auto d = next_connect_delay(b, now, until)) {
      waited.push_back(*d);
      now += *d;
      REQUIRE(waited.size() < 10);
    }
    CHECK(waited == std::vector<std::chrono::milliseconds>{100ms, 200ms, 400ms});
  }
  SECTION("a wait that ends exactly at the deadline is still made") {
    Backoff b(retry::kContainerdConnect);
    CHECK(next_connect_delay(b, t0, t0 + 100ms) == std::optional(100ms));
    CHECK_FALSE(next_connect_delay(b, t0 + 100ms, t0 + 299ms).has_value());
  }
  SECTION("--connect-timeout 0: one probe, no wait") {
    Backoff b(retry::kContainerdConnect);
    CHECK_FALSE(next_connect_delay(b, t0, t0).has_value());
  }
}

TEST_CASE("load_config: a missing or invalid file prints every error and is exit 2", "[daemon]") {
  TempDir dir;
  std::ostringstream out, err;
  SECTION("missing") {
    Daemon d(options_for(dir.path / "absent.json"), out, err);
    CHECK(d.load_config() == std::optional<int>(kExitConfig));
    CHECK_THAT(err.str(), Catch::Contains((dir.path / "absent.json").string() + ": "));
    CHECK_THAT(err.str(), Catch::Contains("herdd: 1 error(s) in "));
    CHECK(out.str().empty());
  }
  SECTION("invalid: every error with its JSON path") {
    auto cfg = dir.write("bad.json", R"({"components": [
        {"name": "a", "image": "x", "stop_grce": "1s", "ready": {"tcp": {"port": 70000}}}]})");
    Daemon d(options_for(cfg), out, err);
    CHECK(d.load_config() == std::optional<int>(kExitConfig));
    INFO(err.str());
    CHECK_THAT(err.str(), Catch::Contains(cfg.string() + ": /components/0/stop_grce"));
    CHECK_THAT(err.str(), Catch::Contains("/components/0/ready/tcp/port"));
    CHECK_THAT(err.str(), Catch::Contains("herdd: 2 error(s) in " + cfg.string()));
  }
  SECTION("not JSON") {
    auto cfg = dir.write("garbage.json", "{ not json");
    Daemon d(options_for(cfg), out, err);
    CHECK(d.load_config() == std::optional<int>(kExitConfig));
    CHECK_THAT(err.str(), Catch::Contains("invalid JSON"));
  }
}

TEST_CASE("load_config: a valid file, with the command line's overrides", "[daemon]") {
  TempDir dir;
  std::ostringstream out, err;
  auto cfg = dir.write("ok.json", R"({"containerd": {"address": "/run/a.sock", "namespace": "n1"},
      "components": [{"name": "a", "image": "herd.local/busybox:latest"}]})");
  SECTION("--check-config: valid, exit 0") {
    auto o = options_for(cfg);
    o.check_only = true;
    Daemon d(o, out, err);
    CHECK(d.load_config() == std::optional<int>(kExitOk));
    CHECK(out.str() == cfg.string() + ": valid, 1 component(s)\n");
    CHECK(err.str().empty());
  }
  SECTION("no overrides: the file's containerd") {
    Daemon d(options_for(cfg), out, err);
    CHECK_FALSE(d.load_config().has_value());
    CHECK(d.config().containerd.address == "/run/a.sock");
    CHECK(d.config().containerd.namespace_name == "n1");
  }
  SECTION("--containerd-address and --namespace win, for reloads too") {
    auto o = options_for(cfg);
    o.containerd_address = "/run/b.sock";
    o.ns = "n2";
    Daemon d(o, out, err);
    CHECK_FALSE(d.load_config().has_value());
    CHECK(d.config().containerd.address == "/run/b.sock");
    CHECK(d.config().containerd.namespace_name == "n2");
    config::Config reloaded;
    d.apply_overrides(reloaded);
    CHECK(reloaded.containerd.address == "/run/b.sock");
    CHECK(reloaded.containerd.namespace_name == "n2");
  }
}

TEST_CASE("run: a control socket path that is not a socket is exit 4", "[daemon]") {
  TempDir dir;
  auto occupied = dir.write("control.sock", "a regular file");
  auto cfg = dir.write("ok.json", R"({"containerd": {"address": ")" +
                                      (dir.path / "none.sock").string() + R"("}, "data_path": ")" +
                                      dir.path.string() + R"(", "control_socket": ")" +
                                      occupied.string() + R"(", "components": []})");
  std::ostringstream out, err;
  Daemon d(options_for(cfg), out, err);
  CHECK(d.run() == kExitControl);
  CHECK_THAT(err.str(), Catch::Contains("herdd: control socket: "));
  CHECK(std::filesystem::is_regular_file(occupied));  // touched nothing
}

TEST_CASE("run: containerd absent with --connect-timeout 0 is exit 3", "[daemon]") {
  TempDir dir;
  auto control = dir.path / "control.sock";
  auto cfg = dir.write("ok.json", R"({"containerd": {"address": ")" +
                                      (dir.path / "none.sock").string() + R"("}, "data_path": ")" +
                                      dir.path.string() + R"(", "control_socket": ")" +
                                      control.string() + R"(", "components": []})");
  auto o = options_for(cfg);
  o.connect_timeout = std::chrono::milliseconds(0);
  std::ostringstream out, err;
  Daemon d(o, out, err);
  CHECK(d.run() == kExitContainerd);
  CHECK(err.str().empty());
  CHECK_FALSE(std::filesystem::exists(control));  // the control server shut down
}

TEST_CASE("components_using compares images normalised as docker does", "[unit]") {
  config::Config c;
  auto add = [&](std::string name, std::string image) {
    config::Component comp;
    comp.name = std::move(name);
    comp.image = std::move(image);
    c.components.push_back(std::move(comp));
  };
  add("web", "busybox:1");
  add("worker", "docker.io/library/busybox:1");
  add("local", "herd.local/busybox:latest");
  add("reg", "127.0.0.1:5000/busybox");
  CHECK(components_using(c, "docker.io/library/busybox:1") ==
        std::vector<std::string>{"web", "worker"});
  CHECK(components_using(c, "herd.local/busybox:latest") == std::vector<std::string>{"local"});
  CHECK(components_using(c, "127.0.0.1:5000/busybox:latest") == std::vector<std::string>{"reg"});
  CHECK(components_using(c, "docker.io/library/busybox:2").empty());
}
