// herdctl: the command line of herd's control API (proto/herd/v1/control.proto),
// spoken to herdd over its unix socket (lib/control/server.h).
//
//   herdctl [--socket PATH] [--timeout DURATION] COMMAND
//     status [NAME] [--json]   every component as a table (and the last error
//                              of each that has one), or one in full
//     start NAME | stop NAME | restart NAME
//     kill [-s SIGNAL] NAME    send a signal (default SIGTERM) to the
//                              component's task; herdd does not treat it
//                              as a stop (herdctl_kill.h)
//     logs NAME [-n N] [-f] [--since TIME]
//                              the component's own output, from journald or
//                              its file (herdctl_logs.h); status NAME ends
//                              with its last 10 lines
//     reload                   re-read herdd's config
//     watch [NAME] [--json]    the current status, then every change, one line
//                              each, until SIGINT/SIGTERM
//     image import FILE        import an image archive into containerd
//                              through herdd: herdctl reads FILE with its
//                              caller's permissions and streams its bytes
//     image pull REF [--json]  pull an image from its registry, with progress
//     image ls [--json]        herd's images and the components using them
//     image rm REF | image prune   delete one unused image / every one
//                              (herdctl_image.h)
//
// The socket is --socket, else $HERD_CONTROL_SOCKET, else
// /run/herd/control.sock. Every call has a deadline (--timeout, 30 s by
// default; an import or a pull 30 min unless --timeout is given); watch
// has none. Durations are written as in the config ("10s", "500ms",
// "1m30s"); a bare number is seconds.
//
// A bad command line is one line on stderr naming the option, e.g.
// `herdctl: --timeout: invalid duration "10x": ...`, and exit 2.
//
// image import opens FILE with O_RDONLY | O_NONBLOCK | O_CLOEXEC and
// refuses at once anything fstat() does not call a regular file (a FIFO,
// /dev/zero, a directory): exit 1 naming the file and what it is. It sends
// a header (the path as given, the size) and then 1 MiB chunks.
//
// Exit codes:
//   0  success
//   1  herdd answered with an error: unknown component ("herdctl: no
//      component named 'X'"), permission denied, an invalid config on
//      reload, a failed import or pull, an image a component uses, no
//      answer within --timeout, ...
//   2  usage error
//   3  cannot connect to herdd: no socket at the path, or nothing listens
//      on it, or the socket's permissions keep this user out
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "common/file_kind.h"
#include "common/log_text.h"
#include "common/unique_fd.h"
#include "control/convert.h"
#include "control/import_upload.h"
#include "control/limits.h"
#include "control/server.h"
#include "daemon/cli_options.h"
#include "daemon/herdctl_call.h"
#include "daemon/herdctl_image.h"
#include "daemon/herdctl_kill.h"
#include "daemon/herdctl_logs.h"
#include "herd/v1/control.grpc.pb.h"

namespace {

namespace v1 = herd::v1;
using json = nlohmann::json;
using SysClock = std::chrono::system_clock;
using SysTime = SysClock::time_point;

using namespace herd::ctl;

constexpr char kExitCodesHelp[] =
    "Exit codes:\n"
    "  0  success\n"
    "  1  herdd reported an error (unknown component, permission denied,\n"
    "     invalid config on reload, failed import or pull, an image in use,\n"
    "     no answer in time)\n"
    "  2  usage error\n"
    "  3  cannot connect to herdd (no socket, nothing listening, or the\n"
    "     socket's permissions keep this user out)\n"
    "Socket: --socket, else $HERD_CONTROL_SOCKET, else /run/herd/control.sock";

// ---------------------------------------------------------------------------
// Formatting.

// RFC 3339, UTC: "2026-11-25T01:35:07Z", or with milliseconds.
std::string rfc3339(SysTime t, bool millis) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  long frac = static_cast<long>(ms % 1000);
  if (frac < 0) {
    frac += 1000;
    secs -= 1;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string s = buf;
  if (millis) {
    char f[8];
    std::snprintf(f, sizeof f, ".%03ld", frac);
    s += f;
  }
  return s + "Z";
}

int64_t unix_ms(SysTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// "42s", "3m12s", "2h05m", "3d04h".
std::string human(std::chrono::seconds d) {
  long long s = std::max<long long>(0, d.count());
  char buf[64];
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%llds", s);
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", s / 60, s % 60);
  } else if (s < 86400) {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", s / 3600, (s % 3600) / 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lldd%02lldh", s / 86400, (s % 86400) / 3600);
  }
  return buf;
}

std::string ago(SysTime t, SysTime now) {
  return human(std::chrono::duration_cast<std::chrono::seconds>(now - t)) + " ago";
}

// What herdctl shows of one component: the decoded status plus the state
// as herdd named it (a newer herdd may know states this herdctl does not).
struct View {
  herd::control::ComponentView s;
  std::string state;
};

View view_of(const v1::ComponentStatus& p) { return View{herd::control::from_proto(p), p.state()}; }

std::string uptime_of(const View& v, SysTime now) {
  if (!v.s.started_at || v.s.pid == 0) return "-";
  return human(std::chrono::duration_cast<std::chrono::seconds>(now - *v.s.started_at));
}

json time_json(const std::optional<SysTime>& t) {
  return t ? json(rfc3339(*t, true)) : json(nullptr);
}
json time_ms_json(const std::optional<SysTime>& t) { return t ? json(unix_ms(*t)) : json(nullptr); }

json probe_json(const std::optional<herd::control::ProbeView>& p) {
  if (!p) return json(nullptr);
  json j;
  j["kind"] = p->kind;
  j["ok"] = p->ok;
  j["at"] = rfc3339(p->at, true);
  j["at_unix_ms"] = unix_ms(p->at);
  j["duration_ms"] = p->duration.count();
  j["detail"] = p->detail;
  return j;
}

std::string probe_line(const std::optional<herd::control::ProbeView>& p, SysTime now) {
  if (!p) return "-";
  return p->kind + " " + (p->ok ? "ok" : "failed") + " at " + rfc3339(p->at, false) + " (" +
         ago(p->at, now) + "): " + p->detail;
}

json to_json(const View& v, SysTime now) {
  const auto& s = v.s;
  std::optional<SysTime> changed;
  if (s.changed_at != SysTime{}) changed = s.changed_at;
  json j;
  j["name"] = s.name;
  j["image"] = s.image;
  j["state"] = v.state;
  j["pid"] = s.pid;
  j["restarts"] = s.restarts;
  j["last_exit_code"] = s.last_exit_code ? json(*s.last_exit_code) : json(nullptr);
  j["last_exit_reason"] = s.last_exit_reason.empty() ? json(nullptr) : json(s.last_exit_reason);
  j["oom_kills"] = s.oom_kills;
  if (!s.standby.empty()) j["standby"] = s.standby;
  j["last_exit_at"] = time_json(s.last_exit_at);
  j["last_exit_at_unix_ms"] = time_ms_json(s.last_exit_at);
  j["ready_since"] = time_json(s.ready_since);
  j["ready_since_unix_ms"] = time_ms_json(s.ready_since);
  j["started_at"] = time_json(s.started_at);
  j["started_at_unix_ms"] = time_ms_json(s.started_at);
  j["uptime_seconds"] =
      (s.started_at && s.pid != 0)
          ? json(std::max<long long>(
                0, std::chrono::duration_cast<std::chrono::seconds>(now - *s.started_at).count()))
          : json(nullptr);
  j["changed_at"] = time_json(changed);
  j["changed_at_unix_ms"] = time_ms_json(changed);
  j["last_error"] = s.last_error;
  j["adopted"] = s.adopted;
  if (!s.exits.empty()) {
    json exits = json::array();
    for (const auto& e : s.exits) {
      json x;
      x["at"] = rfc3339(e.at, true);
      x["at_unix_ms"] = unix_ms(e.at);
      x["exit_code"] = e.exit_code;
      x["reason"] = e.reason;
      exits.push_back(std::move(x));
    }
    j["exits"] = std::move(exits);
  }
  j["last_ready_probe"] = probe_json(s.last_ready_probe);
  j["last_liveness_probe"] = probe_json(s.last_liveness_probe);
  return j;
}

void print_table(const std::vector<View>& views, SysTime now) {
  if (views.empty()) {
    std::cout << "no components configured\n";
    return;
  }
  std::vector<std::vector<std::string>> rows;
  rows.push_back(
      {"NAME", "STATE", "PID", "RESTARTS", "UPTIME", "READY-SINCE", "LAST-EXIT", "IMAGE"});
  for (const View& v : views) {
    const auto& s = v.s;
    std::string last_exit = "-";
    if (s.last_exit_code) {
      last_exit = std::to_string(*s.last_exit_code);
      if (s.last_exit_reason == "oom_killed") last_exit += " OOM killed";
      if (s.last_exit_reason == "containerd_lost") last_exit += " lost";
      if (s.last_exit_at) last_exit += " (" + ago(*s.last_exit_at, now) + ")";
    }
    rows.push_back({s.name, v.state + (s.adopted ? "*" : ""),
                    s.pid != 0 ? std::to_string(s.pid) : "-", std::to_string(s.restarts),
                    uptime_of(v, now), s.ready_since ? rfc3339(*s.ready_since, false) : "-",
                    last_exit, s.image.empty() ? "-" : s.image});
  }
  std::vector<size_t> width(rows.front().size(), 0);
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    std::cout << line << "\n";
  }
  bool any_adopted =
      std::any_of(views.begin(), views.end(), [](const View& v) { return v.s.adopted; });
  if (any_adopted) std::cout << "* adopted: the task was running when this herdd started\n";
  bool header = false;
  for (const View& v : views) {
    if (v.s.last_error.empty()) continue;
    if (!header) {
      std::cout << "\nLast errors:\n";
      header = true;
    }
    std::cout << "  " << v.s.name << ": " << v.s.last_error << "\n";
  }
}

void print_block(const View& v, SysTime now) {
  const auto& s = v.s;
  auto line = [](const char* label, const std::string& value) {
    std::printf("%12s: %s\n", label, value.c_str());
  };
  const char* dot = v.state == "ready" ? "\u25cf" : (v.state == "failed" ? "\u00d7" : "\u25cb");
  std::printf("%s %s - %s\n", dot, s.name.c_str(), v.state.c_str());
  std::string state = v.state;
  if (v.state == "ready" && s.ready_since) {
    state += " since " + rfc3339(*s.ready_since, false) + " (" + ago(*s.ready_since, now) + ")";
  }
  line("State", state);
  line("Image", s.image.empty() ? "-" : s.image);
  std::string pid = s.pid != 0 ? std::to_string(s.pid) : "-";
  if (s.pid != 0 && s.adopted) pid += " (adopted: running when this herdd started)";
  line("PID", pid);
  if (s.started_at) {
    line("Started", rfc3339(*s.started_at, false) + " (uptime " + uptime_of(v, now) + ")");
  } else {
    line("Started", "-");
  }
  line("Ready since", s.ready_since ? rfc3339(*s.ready_since, false) : "-");
  line("Adopted", s.adopted ? "yes" : "no");
  line("Restarts", std::to_string(s.restarts));
  if (s.last_exit_code) {
    std::string e = "code " + std::to_string(*s.last_exit_code);
    if (s.last_exit_reason == "oom_killed") e += ", OOM killed";
    if (s.last_exit_reason == "containerd_lost") e += ", lost by containerd (see Last error)";
    if (s.last_exit_at)
      e += " at " + rfc3339(*s.last_exit_at, false) + " (" + ago(*s.last_exit_at, now) + ")";
    line("Last exit", e);
  } else {
    line("Last exit", "-");
  }
  line("OOM kills", std::to_string(s.oom_kills));
  if (!s.standby.empty()) line("Standby", s.standby);
  line("Last error", s.last_error.empty() ? "-" : s.last_error);
  line("Readiness", probe_line(s.last_ready_probe, now));
  line("Liveness", probe_line(s.last_liveness_probe, now));
  line("Changed", s.changed_at != SysTime{} ? rfc3339(s.changed_at, true) : "-");
  if (!s.exits.empty()) {
    std::printf("\nExits (newest first):\n");
    for (const auto& e : s.exits) {
      std::printf("  %s  code %-3u  %s  (%s)\n", rfc3339(e.at, false).c_str(), e.exit_code,
                  e.reason.c_str(), ago(e.at, now).c_str());
    }
  }
}

std::string watch_line(const v1::WatchEvent& ev) {
  View v = view_of(ev.component());
  const auto& s = v.s;
  SysTime at = s.changed_at != SysTime{} ? s.changed_at : SysClock::now();
  std::string line = rfc3339(at, true) + " " + s.name + " " + v.state;
  if (s.pid != 0) line += " pid=" + std::to_string(s.pid);
  line += " restarts=" + std::to_string(s.restarts);
  if (s.last_exit_code) line += " last-exit=" + std::to_string(*s.last_exit_code);
  if (s.last_exit_reason == "oom_killed") line += " oom-killed";
  if (s.last_exit_reason == "containerd_lost") line += " containerd-lost";
  if (s.adopted) line += " adopted";
  if (ev.initial()) line += " (current)";
  if (!s.last_error.empty()) line += " error: " + s.last_error;
  return line;
}

// ---------------------------------------------------------------------------
// Talking to herdd.

int cmd_status(const Target& t, const std::string& name, bool as_json, LogsOptions logs) {
  auto stub = v1::Control::NewStub(channel_to(t));
  grpc::ClientContext ctx;
  set_deadline(ctx, t);
  SysTime now = SysClock::now();
  if (!name.empty()) {
    v1::GetRequest req;
    req.set_name(name);
    v1::GetResponse resp;
    grpc::Status s = stub->Get(&ctx, req, &resp);
    if (!s.ok()) return report(s, ctx, t, &name);
    View v = view_of(resp.component());
    if (as_json) {
      std::cout << to_json(v, now).dump(2) << "\n";
    } else {
      print_block(v, now);
      // As systemctl status: the last lines of its output.
      std::ostringstream tail;
      logs.name = name;
      logs.lines = 10;
      logs.follow = false;
      std::streambuf* err = std::cerr.rdbuf(nullptr);  // no "no output" message here
      show_logs(logs, tail);
      std::cerr.rdbuf(err);
      std::cerr.clear();
      if (!tail.str().empty()) std::cout << "\n" << tail.str();
    }
    return kExitOk;
  }
  v1::ListResponse resp;
  grpc::Status s = stub->List(&ctx, v1::ListRequest(), &resp);
  if (!s.ok()) return report(s, ctx, t);
  std::vector<View> views;
  for (const auto& c : resp.components()) views.push_back(view_of(c));
  if (as_json) {
    json arr = json::array();
    for (const View& v : views) arr.push_back(to_json(v, now));
    json out;
    out["components"] = arr;
    std::cout << out.dump(2) << "\n";
  } else {
    print_table(views, now);
  }
  return kExitOk;
}

int cmd_act(const Target& t, const std::string& verb, const std::string& name) {
  auto stub = v1::Control::NewStub(channel_to(t));
  grpc::ClientContext ctx;
  set_deadline(ctx, t);
  v1::ActionRequest req;
  req.set_name(name);
  v1::ActionResponse resp;
  grpc::Status s;
  if (verb == "start") {
    s = stub->Start(&ctx, req, &resp);
  } else if (verb == "stop") {
    s = stub->Stop(&ctx, req, &resp);
  } else {
    s = stub->Restart(&ctx, req, &resp);
  }
  if (!s.ok()) return report(s, ctx, t, &name);
  return kExitOk;
}

std::string joined(const google::protobuf::RepeatedPtrField<std::string>& names) {
  std::string s;
  for (const std::string& n : names) {
    if (!s.empty()) s += " ";
    s += n;
  }
  return s;
}

int cmd_reload(const Target& t) {
  auto stub = v1::Control::NewStub(channel_to(t));
  grpc::ClientContext ctx;
  set_deadline(ctx, t);
  v1::ReloadResponse resp;
  grpc::Status s = stub->Reload(&ctx, v1::ReloadRequest(), &resp);
  if (!s.ok()) return report(s, ctx, t);
  if (!resp.ok()) {
    std::cerr << "herdctl: reload failed; herdd keeps its current config:\n";
    for (const std::string& e : resp.errors()) std::cerr << "  " << e << "\n";
    return kExitError;
  }
  std::cout << "reloaded: " << resp.added_size() << " added, " << resp.removed_size()
            << " removed, " << resp.changed_size() << " changed, " << resp.unchanged_size()
            << " unchanged\n";
  if (resp.added_size() > 0) std::cout << "  added:     " << joined(resp.added()) << "\n";
  if (resp.removed_size() > 0) std::cout << "  removed:   " << joined(resp.removed()) << "\n";
  if (resp.changed_size() > 0) std::cout << "  changed:   " << joined(resp.changed()) << "\n";
  if (resp.unchanged_size() > 0) std::cout << "  unchanged: " << joined(resp.unchanged()) << "\n";
  return kExitOk;
}

// Streams until herdd ends the stream or SIGINT/SIGTERM arrives (exit 0).
int cmd_watch(const Target& t, const std::string& name, bool as_json) {
  // Block the signals before gRPC starts threads, so that they all inherit
  // the mask and only the waiter below sees them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  auto stub = v1::Control::NewStub(channel_to(t));
  grpc::ClientContext ctx;
  std::atomic<bool> finished{false};
  std::atomic<bool> interrupted{false};
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&set, &sig);
    if (finished.load()) return;
    interrupted.store(true);
    ctx.TryCancel();
  });

  v1::WatchRequest req;
  req.set_name(name);
  std::unique_ptr<grpc::ClientReader<v1::WatchEvent>> reader = stub->Watch(&ctx, req);
  v1::WatchEvent ev;
  SysTime now = SysClock::now();
  while (reader->Read(&ev)) {
    if (as_json) {
      json j = to_json(view_of(ev.component()), now);
      j["initial"] = ev.initial();
      std::cout << j.dump() << std::endl;
    } else {
      std::cout << watch_line(ev) << std::endl;
    }
    now = SysClock::now();
  }
  grpc::Status s = reader->Finish();
  finished.store(true);
  if (!interrupted.load()) pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  if (interrupted.load()) return kExitOk;
  if (s.ok()) {
    std::cerr << "herdctl: herdd ended the watch\n";
    return kExitOk;
  }
  return report(s, ctx, t, name.empty() ? nullptr : &name);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"herdctl: ask herdd about and act on its components"};
  app.footer(kExitCodesHelp);
  app.require_subcommand(1);

  Target target;
  const char* env_socket = std::getenv("HERD_CONTROL_SOCKET");
  target.socket = (env_socket != nullptr && *env_socket != '\0')
                      ? env_socket
                      : herd::control::kDefaultSocketPath;
  app.add_option("--socket", target.socket, "herdd's control socket")->capture_default_str();
  std::string timeout_text;
  CLI::Option* timeout =
      app.add_option("--timeout", timeout_text,
                     "deadline of each call: 10s, 500ms, 1m30s, or seconds (default 30s; an "
                     "import or a pull: 30m unless given)")
          ->type_name("DURATION")
          ->check(herd::cli::duration_check(true));

  std::string name;
  bool as_json = false;

  CLI::App* status = app.add_subcommand("status", "every component as a table, or one in full");
  status->add_option("NAME", name, "one component");
  status->add_flag("--json", as_json, "machine-readable output");

  std::string verb_name;
  std::string verb;
  for (const char* v : {"start", "stop", "restart"}) {
    CLI::App* sub = app.add_subcommand(v, std::string("ask herdd to ") + v + " a component");
    sub->add_option("NAME", verb_name, "the component")->required();
    sub->callback([&verb, v] { verb = v; });
  }

  std::string kill_name;
  std::string signal_text = "TERM";
  CLI::App* kill = app.add_subcommand(
      "kill", "send a signal to a component's task (herdd does not treat it as a stop)");
  kill->add_option("-s,--signal", signal_text, "a signal name (HUP, SIGHUP) or number")
      ->capture_default_str()
      ->check(CLI::Validator(
          [](std::string& v) -> std::string {
            return parse_signal(v) ? std::string() : "unknown signal \"" + v + "\"";
          },
          ""));
  kill->add_option("NAME", kill_name, "the component")->required();

  LogsOptions logs;
  const char* env_data = std::getenv("HERD_DATA_PATH");
  logs.data_path = (env_data != nullptr && *env_data != '\0') ? env_data : "/var/lib/herd";
  std::string since_text;
  CLI::App* logs_cmd = app.add_subcommand("logs", "a component's own output (journald or file)");
  logs_cmd->add_option("NAME", logs.name, "the component")->required();
  logs_cmd->add_option("-n,--lines", logs.lines, "the last N lines (0: all)")
      ->capture_default_str();
  logs_cmd->add_flag("-f,--follow", logs.follow, "then every new line until interrupted");
  logs_cmd->add_option("--since", since_text,
                       "from this time on: 2026-12-02T14:00:00Z, or a duration ago (10m)");
  for (CLI::App* sub : {status, logs_cmd}) {
    sub->add_option("--journal-directory", logs.journal_directory,
                    "read this journal directory instead of the local journal");
    sub->add_option("--data-path", logs.data_path,
                    "herdd's data_path, for output files (or $HERD_DATA_PATH)")
        ->capture_default_str();
  }

  CLI::App* reload = app.add_subcommand("reload", "re-read herdd's config file");

  CLI::App* watch = app.add_subcommand("watch", "print every status change until interrupted");
  watch->add_option("NAME", name, "only this component");
  watch->add_flag("--json", as_json, "one JSON object per line");

  CLI::App* image = app.add_subcommand("image", "container images");
  image->require_subcommand(1);
  std::string file;
  CLI::App* import = image->add_subcommand("import", "import an image archive through herdd");
  import->add_option("FILE", file, "the archive, read by herdctl and streamed to herdd")
      ->required();
  import->add_flag("--json", as_json, "one JSON object per progress event and the result");
  std::string reference;
  CLI::App* pull = image->add_subcommand("pull", "pull an image from its registry through herdd");
  pull->add_option("REF", reference, "the image reference, as a component's `image`")->required();
  pull->add_flag("--json", as_json, "one JSON object per event");
  CLI::App* images = image->add_subcommand("ls", "herd's images and the components using them");
  images->add_flag("--json", as_json, "machine-readable output");
  CLI::App* rm = image->add_subcommand("rm", "delete an image no configured component uses");
  rm->add_option("REF", reference, "the image name (or a reference that normalises to it)")
      ->required();
  CLI::App* prune = image->add_subcommand("prune", "delete every image no component uses");

  if (auto rc = herd::cli::parse_or_exit(app, argc, argv, "herdctl")) return *rc;

  target.timeout_given = timeout->count() > 0;
  if (target.timeout_given) {
    target.timeout_s = static_cast<double>(herd::cli::duration_of(timeout_text).count()) / 1000.0;
  }
  if (kill->parsed()) return cmd_kill(target, kill_name, *parse_signal(signal_text));
  if (status->parsed()) return cmd_status(target, name, as_json, logs);
  if (logs_cmd->parsed()) {
    if (!since_text.empty()) {
      std::string why;
      logs.since_unix_us = parse_since(since_text, &why);
      if (!logs.since_unix_us) {
        std::cerr << "herdctl: --since: " << why << "\n";
        return kExitUsage;
      }
    }
    return show_logs(logs, std::cout);
  }
  if (!verb.empty()) return cmd_act(target, verb, verb_name);
  if (reload->parsed()) return cmd_reload(target);
  if (watch->parsed()) return cmd_watch(target, name, as_json);
  if (import->parsed()) return cmd_import(target, file, as_json);
  if (pull->parsed()) return cmd_pull(target, reference, as_json);
  if (images->parsed()) return cmd_images(target, as_json);
  if (rm->parsed()) return cmd_image_rm(target, reference);
  if (prune->parsed()) return cmd_image_prune(target);
  std::cerr << app.help() << "\n";
  return kExitUsage;
}
