// The control API server (lib/control/server.h) and herdctl: a fake Backend
// whose completions run on an io_context thread (as herdd's do), a real
// unix socket in a temp dir, and the real herdctl binary (HERDCTL_BINARY).
// The peer-credential cases fork a child that drops to uid 65534: they need
// root, as CTest runs them here.
#include <cstdio>

#include "harness.h"

// ---------------------------------------------------------------------------

namespace {

// herdctl's short durations ("42s", "3m12s"; under an hour here) for every
// whole second `t` lay behind a clock read between `before` and `after`:
// herdctl reads its clock once, inside that window, so one of them is what
// it printed, however slow the machine.
std::vector<std::string> human_between(SysClock::time_point t, SysClock::time_point before,
                                       SysClock::time_point after) {
  using std::chrono::duration_cast;
  using std::chrono::seconds;
  std::vector<std::string> all;
  for (auto s = duration_cast<seconds>(before - t).count();
       s <= duration_cast<seconds>(after - t).count(); ++s) {
    char buf[32];
    if (s < 60) {
      std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(s));
    } else {
      std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(s / 60),
                    static_cast<long long>(s % 60));
    }
    all.push_back(buf);
  }
  return all;
}

bool contains_any(const std::string& s, const std::vector<std::string>& parts,
                  const std::string& prefix, const std::string& suffix) {
  for (const auto& p : parts) {
    if (contains(s, prefix + p + suffix)) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("control: status prints a table with uptime and the last errors") {
  Env env;
  const auto before = SysClock::now();
  Run r = herdctl({"--socket", env.sock(), "status"});
  const auto after = SysClock::now();
  REQUIRE(r.code == 0);
  std::vector<std::string> lines = lines_of(r.out);
  REQUIRE(lines.size() >= 3);
  for (const char* col :
       {"NAME", "STATE", "PID", "RESTARTS", "UPTIME", "READY-SINCE", "LAST-EXIT", "IMAGE"}) {
    CHECK(contains(lines[0], col));
  }
  std::string etcd = line_starting(r.out, "etcd ");
  CHECK(contains(etcd, " ready "));
  CHECK(contains(etcd, " 1234 "));
  // Uptime 3m12s and the exit 5m00s ago when herdctl runs at once.
  const auto uptimes = human_between(env.sample().etcd_started, before, after);
  INFO("uptime one of " << Catch::Detail::stringify(uptimes));
  CHECK(contains_any(etcd, uptimes, " ", " "));
  const auto exits = human_between(env.sample().etcd_exit, before, after);
  INFO("last exit one of " << Catch::Detail::stringify(exits));
  CHECK(contains_any(etcd, exits, "137 (", " ago)"));
  CHECK(contains(etcd, "herd/etcd:3.4"));
  std::string web = line_starting(r.out, "web ");
  CHECK(contains(web, " backing_off "));
  CHECK(contains(web, " 5 "));
  CHECK(contains(web, "herd/busybox:1"));
  CHECK(contains(r.out, "Last errors:\n  web: readiness probe: connection refused\n"));
  CHECK_FALSE(contains(r.out, "etcd: "));
}

TEST_CASE("control: status --json gives every field with RFC 3339 times and unix ms") {
  Env env;
  Run r = herdctl({"--socket", env.sock(), "status", "--json"});
  REQUIRE(r.code == 0);
  json j = json::parse(r.out);
  REQUIRE(j["components"].size() == 2);
  const json& etcd = j["components"][0];
  CHECK(etcd["name"] == "etcd");
  CHECK(etcd["state"] == "ready");
  CHECK(etcd["image"] == "herd/etcd:3.4");
  CHECK(etcd["pid"] == 1234);
  CHECK(etcd["restarts"] == 2);
  CHECK(etcd["last_exit_code"] == 137);
  CHECK(etcd["adopted"] == false);
  CHECK(etcd["started_at_unix_ms"] == ms(env.sample().etcd_started));
  CHECK(etcd["ready_since_unix_ms"] == ms(env.sample().etcd_ready));
  CHECK(etcd["last_exit_at_unix_ms"] == ms(env.sample().etcd_exit));
  std::string ready = etcd["ready_since"];
  REQUIRE(ready.size() == 24);  // 2026-11-25T01:35:07.123Z
  CHECK(ready[4] == '-');
  CHECK(ready[10] == 'T');
  CHECK(ready.back() == 'Z');
  CHECK(etcd["uptime_seconds"].get<int64_t>() >= 192);
  const json& web = j["components"][1];
  CHECK(web["name"] == "web");
  CHECK(web["state"] == "backing_off");
  CHECK(web["pid"] == 0);
  CHECK(web["last_exit_code"].is_null());
  CHECK(web["started_at"].is_null());
  CHECK(web["uptime_seconds"].is_null());
  CHECK(web["last_error"] == "readiness probe: connection refused");
  CHECK(web["changed_at_unix_ms"] == ms(env.sample().web_changed));

  Run one = herdctl({"--socket", env.sock(), "status", "etcd", "--json"});
  REQUIRE(one.code == 0);
  json o = json::parse(one.out);
  CHECK(o["name"] == "etcd");
  CHECK(o["pid"] == 1234);
  CHECK(o["standby"] == "ready (pid 4321)");
  CHECK_FALSE(web.contains("standby"));  // no standby: no field
}

TEST_CASE("control: status NAME prints every field of one component") {
  Env env;
  Run r = herdctl({"--socket", env.sock(), "status", "etcd"});
  REQUIRE(r.code == 0);
  CHECK(contains(r.out, "etcd - ready"));
  CHECK(contains(r.out, "Image: herd/etcd:3.4"));
  CHECK(contains(r.out, "PID: 1234"));
  CHECK(contains(r.out, "Restarts: 2"));
  CHECK(contains(r.out, "Last exit: code 137 at "));
  CHECK(contains(r.out, "Ready since: "));
  CHECK(contains(r.out, "Started: "));
  CHECK(contains(r.out, "Last error: -"));
  CHECK(contains(r.out, "Readiness: tcp ok at "));
  CHECK(contains(r.out, "): connect 127.0.0.1:2379: connected\n"));
  CHECK(contains(r.out, "Liveness: exec failed at "));
  CHECK(contains(r.out, "): exec [etcdctl endpoint health]: exit code 1: unhealthy\n"));
  Run web = herdctl({"--socket", env.sock(), "status", "web"});
  REQUIRE(web.code == 0);
  CHECK(contains(web.out, "Readiness: -\n"));
  CHECK(contains(web.out, "Liveness: -\n"));
  CHECK(contains(r.out, "Standby: ready (pid 4321)\n"));
  CHECK_FALSE(contains(web.out, "Standby:"));
}

TEST_CASE("control: status --json has the last probe results") {
  Env env;
  Run r = herdctl({"--socket", env.sock(), "status", "etcd", "--json"});
  REQUIRE(r.code == 0);
  json o = json::parse(r.out);
  const json& ready = o["last_ready_probe"];
  CHECK(ready["kind"] == "tcp");
  CHECK(ready["ok"] == true);
  CHECK(ready["at_unix_ms"] == ms(env.sample().etcd_ready));
  CHECK(ready["duration_ms"] == 3);
  CHECK(ready["detail"] == "connect 127.0.0.1:2379: connected");
  const json& live = o["last_liveness_probe"];
  CHECK(live["kind"] == "exec");
  CHECK(live["ok"] == false);
  CHECK(live["duration_ms"] == 40);
  CHECK(live["detail"] == "exec [etcdctl endpoint health]: exit code 1: unhealthy");
  Run web = herdctl({"--socket", env.sock(), "status", "web", "--json"});
  REQUIRE(web.code == 0);
  json w = json::parse(web.out);
  CHECK(w["last_ready_probe"].is_null());
  CHECK(w["last_liveness_probe"].is_null());
}

TEST_CASE("control: an unknown component is exit 1 with its name") {
  Env env;
  for (const char* verb : {"status", "start", "stop", "restart"}) {
    Run r = herdctl({"--socket", env.sock(), verb, "etcdd"});
    CHECK(r.code == 1);
    CHECK(r.err == "herdctl: no component named 'etcdd'\n");
  }
}

TEST_CASE("control: start stop and restart reach the backend with verb and name") {
  Env env;
  CHECK(herdctl({"--socket", env.sock(), "start", "etcd"}).code == 0);
  CHECK(herdctl({"--socket", env.sock(), "stop", "web"}).code == 0);
  CHECK(herdctl({"--socket", env.sock(), "restart", "etcd"}).code == 0);
  auto acts = env.backend().acts();
  REQUIRE(acts.size() == 3);
  CHECK((acts[0] == std::pair<Verb, std::string>(Verb::kStart, "etcd")));
  CHECK((acts[1] == std::pair<Verb, std::string>(Verb::kStop, "web")));
  CHECK((acts[2] == std::pair<Verb, std::string>(Verb::kRestart, "etcd")));
}

TEST_CASE("control: reload prints every config error and exits 1") {
  Env env;
  ReloadResult bad;
  bad.status = Status(Code::kInvalidArgument, "invalid config");
  bad.errors = {"/components/0/image: required", "/components/1: unknown key 'imgae'"};
  env.backend().set_reload(bad);
  Run r = herdctl({"--socket", env.sock(), "reload"});
  CHECK(r.code == 1);
  CHECK(contains(r.err, "  /components/0/image: required\n"));
  CHECK(contains(r.err, "  /components/1: unknown key 'imgae'\n"));
  CHECK(env.backend().reloads() == 1);

  ReloadResult good;
  good.added = {"cache"};
  good.changed = {"web"};
  good.unchanged = {"etcd"};
  env.backend().set_reload(good);
  Run ok = herdctl({"--socket", env.sock(), "reload"});
  CHECK(ok.code == 0);
  CHECK(contains(ok.out, "1 added, 0 removed, 1 changed, 1 unchanged"));
  CHECK(contains(ok.out, "added:     cache\n"));
  CHECK(contains(ok.out, "changed:   web\n"));
  CHECK(env.backend().reloads() == 2);
}

TEST_CASE("control: watch prints the current status then each change and stops on SIGINT") {
  Env env;
  Child watch({"--socket", env.sock(), "watch", "--json"});
  REQUIRE(eventually([&] { return env.backend().watchers() == 1; }));
  REQUIRE(watch.wait_stdout([](const std::string& s) { return lines_of(s).size() >= 2; }));
  std::vector<std::string> initial = lines_of(watch.out());
  json a = json::parse(initial[0]);
  json b = json::parse(initial[1]);
  CHECK(a["name"] == "etcd");
  CHECK(a["initial"] == true);
  CHECK(b["name"] == "web");
  CHECK(b["initial"] == true);

  ComponentStatus change = env.sample().components()[0];
  change.state = "backing_off";
  change.pid = 0;
  change.restarts = 3;
  change.last_exit_code = 1;
  change.changed_at = SysClock::now();
  env.backend().emit(change);
  REQUIRE(watch.wait_stdout([](const std::string& s) { return lines_of(s).size() >= 3; }));
  json c = json::parse(lines_of(watch.out())[2]);
  CHECK(c["name"] == "etcd");
  CHECK(c["state"] == "backing_off");
  CHECK(c["restarts"] == 3);
  CHECK(c["last_exit_code"] == 1);
  CHECK(c["initial"] == false);

  watch.signal(SIGINT);
  CHECK(watch.finish() == 0);
  CHECK(eventually([&] { return env.backend().watchers() == 0; }));
  CHECK(env.backend().unwatches() == 1);
}

TEST_CASE("control: watch NAME shows only that component as text lines") {
  Env env;
  Child watch({"--socket", env.sock(), "watch", "web"});
  REQUIRE(eventually([&] { return env.backend().watchers() == 1; }));
  REQUIRE(watch.wait_stdout([](const std::string& s) { return lines_of(s).size() >= 1; }));
  ComponentStatus etcd = env.sample().components()[0];
  etcd.restarts = 9;
  env.backend().emit(etcd);
  ComponentStatus web = env.sample().components()[1];
  web.state = "ready";
  web.pid = 777;
  web.changed_at = SysClock::now();
  env.backend().emit(web);
  REQUIRE(watch.wait_stdout([](const std::string& s) { return lines_of(s).size() >= 2; }));
  watch.signal(SIGTERM);
  CHECK(watch.finish() == 0);
  std::vector<std::string> lines = lines_of(watch.out());
  REQUIRE(lines.size() == 2);
  CHECK(contains(lines[0], " web backing_off "));
  CHECK(contains(lines[0], "(current)"));
  CHECK(contains(lines[1], " web ready pid=777 "));
  CHECK_FALSE(contains(lines[1], "(current)"));
  CHECK(lines[1].size() > 24);
  CHECK(lines[1][23] == 'Z');  // 2026-11-25T01:35:07.123Z web ...
}

TEST_CASE("control: watch of an unknown component is exit 1") {
  Env env;
  Run r = herdctl({"--socket", env.sock(), "watch", "nosuch"});
  CHECK(r.code == 1);
  CHECK(r.err == "herdctl: no component named 'nosuch'\n");
  CHECK(eventually([&] { return env.backend().watchers() == 0; }));
}

TEST_CASE("control: the server refuses empty and overlong names") {
  Env env;
  auto stub = stub_for(env.sock());
  for (const std::string& name :
       {std::string(), std::string(herd::control::kMaxNameBytes + 1, 'a')}) {
    {
      grpc::ClientContext ctx;
      herd::v1::ActionRequest req;
      req.set_name(name);
      herd::v1::ActionResponse resp;
      grpc::Status s = stub->Start(&ctx, req, &resp);
      CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    }
    {
      grpc::ClientContext ctx;
      herd::v1::GetRequest req;
      req.set_name(name);
      herd::v1::GetResponse resp;
      grpc::Status s = stub->Get(&ctx, req, &resp);
      CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    }
  }
  {
    grpc::ClientContext ctx;
    herd::v1::WatchRequest req;
    req.set_name(std::string(herd::control::kMaxNameBytes + 1, 'w'));
    auto reader = stub->Watch(&ctx, req);
    herd::v1::WatchEvent ev;
    CHECK_FALSE(reader->Read(&ev));
    grpc::Status s = reader->Finish();
    CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(contains(s.error_message(), "longer than the 256 herdd accepts"));
  }
  CHECK(env.backend().acts().empty());
  CHECK(env.backend().watchers() == 0);
}

TEST_CASE("control: a second server on the same socket fails while the first lives") {
  Env env;
  Result<std::unique_ptr<ControlServer>> second = env.start();
  REQUIRE_FALSE(second.ok());
  CHECK(second.status().code() == Code::kAlreadyExists);
  CHECK(contains(second.status().message(), "another herdd serves " + env.sock()));
  CHECK(contains(second.status().message(),
                 "(pid " + std::to_string(::getpid()) + ", holding " + env.sock() + ".lock)"));
  // The first one still serves.
  CHECK(herdctl({"--socket", env.sock(), "status"}).code == 0);
  // Once it is shut down, the socket is gone and the path is free again.
  env.server()->shutdown();
  env.server()->shutdown();  // twice is fine
  struct stat st {};
  CHECK(::lstat(env.sock().c_str(), &st) != 0);
  Result<std::unique_ptr<ControlServer>> third = env.start();
  REQUIRE(third.ok());
  CHECK(herdctl({"--socket", env.sock(), "status"}).code == 0);
}

TEST_CASE("control: a stale socket file is replaced") {
  Env env(false);
  SECTION("left by a closed server") { make_dead_socket(env.sock()); }
  SECTION("bound but not listening") {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, env.sock().c_str(), sizeof addr.sun_path - 1);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    Result<std::unique_ptr<ControlServer>> s = env.start();
    REQUIRE(s.ok());
    CHECK(herdctl({"--socket", env.sock(), "status"}).code == 0);
    ::close(fd);
    return;
  }
  Result<std::unique_ptr<ControlServer>> s = env.start();
  REQUIRE(s.ok());
  CHECK(herdctl({"--socket", env.sock(), "status"}).code == 0);
}

TEST_CASE("control: something other than a socket at the path is refused and kept") {
  Env env(false);
  SECTION("a regular file") {
    std::ofstream(env.sock()) << "precious\n";
    Result<std::unique_ptr<ControlServer>> s = env.start();
    REQUIRE_FALSE(s.ok());
    CHECK(s.status().code() == Code::kFailedPrecondition);
    CHECK(contains(s.status().message(), env.sock() + " exists and is a regular file"));
    std::ifstream in(env.sock());
    std::string content;
    std::getline(in, content);
    CHECK(content == "precious");
  }
  SECTION("a directory") {
    REQUIRE(::mkdir(env.sock().c_str(), 0755) == 0);
    Result<std::unique_ptr<ControlServer>> s = env.start();
    REQUIRE_FALSE(s.ok());
    CHECK(contains(s.status().message(), "is a directory"));
    struct stat st {};
    CHECK(::stat(env.sock().c_str(), &st) == 0);
  }
  // The failed start released the lock: with the path cleared, it starts.
  std::filesystem::remove_all(env.sock());
  Result<std::unique_ptr<ControlServer>> s = env.start();
  CHECK(s.ok());
}

TEST_CASE("control: the socket is 0660 and owned by herdd's euid and the configured group") {
  HERD_REQUIRE_ROOT();
  SECTION("numeric gid") {
    Env env(true, std::to_string(kTestGid));
    struct stat st {};
    REQUIRE(::lstat(env.sock().c_str(), &st) == 0);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK((st.st_mode & 07777) == 0660);
    CHECK(st.st_uid == ::geteuid());
    CHECK(st.st_gid == kTestGid);
    std::ifstream lock(env.sock() + ".lock");
    long pid = 0;
    lock >> pid;
    CHECK(pid == ::getpid());
  }
  SECTION("group name") {
    Env env(true, std::string("nogroup"));
    struct stat st {};
    REQUIRE(::lstat(env.sock().c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0660);
    CHECK(st.st_gid == 65534);
  }
  SECTION("a parent directory that does not exist yet") {
    Env env(false);
    ControlServer::Options o;
    o.socket_path = env.dir() + "/run/control.sock";
    FakeBackend backend{asio::system_executor()};
    asio::io_context io;
    Result<std::unique_ptr<ControlServer>> s = ControlServer::start(io.get_executor(), o, backend);
    REQUIRE(s.ok());
    struct stat st {};
    REQUIRE(::stat((env.dir() + "/run").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0755);
    (*s)->shutdown();
  }
}

TEST_CASE("control: an unknown group is an invalid argument naming it") {
  Env env(false);
  Result<std::unique_ptr<ControlServer>> s = env.start(std::string("no-such-herd-group"));
  REQUIRE_FALSE(s.ok());
  CHECK(s.status().code() == Code::kInvalidArgument);
  CHECK(contains(s.status().message(), "'no-such-herd-group'"));
  struct stat st {};
  CHECK(::lstat(env.sock().c_str(), &st) != 0);
}

TEST_CASE("control: uid 65534 outside the group gets PERMISSION_DENIED with the reason") {
  HERD_REQUIRE_ROOT();
  Env env(true, std::to_string(kTestGid));
  REQUIRE(::chmod(env.sock().c_str(), 0666) == 0);  // let the filesystem pass it
  Run r = herdctl({"--socket", env.sock(), "status"}, Identity{kNobody, kNobody, {}});
  CHECK(r.code == 1);
  CHECK(contains(r.err, "herdctl: uid 65534 (pid "));
  CHECK(contains(r.err, ") may not use the herd control socket: not root and not in group '" +
                            std::to_string(kTestGid) + "'"));
  Run act = herdctl({"--socket", env.sock(), "stop", "etcd"}, Identity{kNobody, kNobody, {}});
  CHECK(act.code == 1);
  CHECK(contains(act.err, "may not use the herd control socket"));
  CHECK(env.backend().acts().empty());
}

TEST_CASE("control: uid 65534 in the configured group may use the socket") {
  HERD_REQUIRE_ROOT();
  Env env(true, std::to_string(kTestGid));
  SECTION("as a supplementary group") {
    Run r =
        herdctl({"--socket", env.sock(), "stop", "etcd"}, Identity{kNobody, kNobody, {kTestGid}});
    CHECK(r.code == 0);
  }
  SECTION("as the primary group") {
    Run r = herdctl({"--socket", env.sock(), "stop", "etcd"}, Identity{kNobody, kTestGid, {}});
    CHECK(r.code == 0);
  }
  auto acts = env.backend().acts();
  REQUIRE(acts.size() == 1);
  CHECK((acts[0] == std::pair<Verb, std::string>(Verb::kStop, "etcd")));
}

TEST_CASE("control: without a reachable socket herdctl exits 3 and names it") {
  TempDir dir;
  std::string sock = dir.path() + "/control.sock";
  SECTION("no socket") {
    Run r = herdctl({"--socket", sock, "status"});
    CHECK(r.code == 3);
    CHECK(contains(r.err, "herdctl: cannot connect to herdd: no socket at " + sock));
  }
  SECTION("nothing listening") {
    make_dead_socket(sock);
    Run r = herdctl({"--socket", sock, "--timeout", "5", "restart", "etcd"});
    CHECK(r.code == 3);
    CHECK(contains(r.err, "nothing listens on " + sock));
  }
  SECTION("HERD_CONTROL_SOCKET names it") {
    ::setenv("HERD_CONTROL_SOCKET", sock.c_str(), 1);
    Run r = herdctl({"status"});
    ::unsetenv("HERD_CONTROL_SOCKET");
    CHECK(r.code == 3);
    CHECK(contains(r.err, sock));
  }
}

TEST_CASE("control: usage errors exit 2") {
  CHECK(herdctl({"frobnicate"}).code == 2);
  CHECK(herdctl({"start"}).code == 2);
  CHECK(herdctl({"--timeout", "-1", "status"}).code == 2);
  Run help = herdctl({"--help"});
  CHECK(help.code == 0);
  CHECK(contains(help.out, "Exit codes:"));
}

TEST_CASE("control: shutdown finishes calls still waiting for the backend") {
  Env env;
  env.backend().hold_lists(true);
  Child status({"--socket", env.sock(), "status"});
  REQUIRE(eventually([&] { return env.backend().held() == 1; }));
  Child watch({"--socket", env.sock(), "watch"});
  REQUIRE(eventually([&] { return env.backend().watchers() == 1; }));
  auto t0 = std::chrono::steady_clock::now();
  env.server()->shutdown();
  CHECK(std::chrono::steady_clock::now() - t0 < 3s);
  CHECK(env.backend().watchers() == 0);  // unwatched before shutdown returned
  CHECK(status.finish() == 1);
  CHECK(contains(status.err(), "herdd is shutting down"));
  CHECK(watch.finish() == 1);
  // The backend answers late: nothing to do, nothing breaks.
  env.backend().release_held();
  struct stat st {};
  CHECK(::lstat(env.sock().c_str(), &st) != 0);
}

TEST_CASE("control: a watcher that falls too far behind ends with RESOURCE_EXHAUSTED") {
  Env env(true, std::nullopt, 5);
  auto stub = stub_for(env.sock());
  grpc::ClientContext ctx;
  herd::v1::WatchRequest req;
  int emitted = 0;
  SECTION("while its snapshot is still being made") {
    env.backend().hold_lists(true);
    auto reader = stub->Watch(&ctx, req);
    REQUIRE(eventually([&] { return env.backend().watchers() == 1; }));
    ComponentStatus s = env.sample().components()[1];
    for (int i = 0; i < 10; ++i) {
      s.restarts = static_cast<uint64_t>(i);
      env.backend().emit(s);
    }
    env.backend().flush();
    herd::v1::WatchEvent ev;
    CHECK_FALSE(reader->Read(&ev));
    grpc::Status st = reader->Finish();
    CHECK(st.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
    CHECK(contains(st.error_message(), "more than 5 changes behind"));
    CHECK(eventually([&] { return env.backend().watchers() == 0; }));
    env.backend().release_held();
  }
  SECTION("a client that reads nothing") {
    auto reader = stub->Watch(&ctx, req);
    REQUIRE(eventually([&] { return env.backend().watchers() == 1; }));
    // Big statuses fill the socket and HTTP/2's windows: the server's
    // writes stall while the client reads nothing, and its queue grows.
    ComponentStatus big = env.sample().components()[0];
    big.last_error = std::string(1024 * 1024, 'x');
    for (int i = 0; i < 64; ++i) {
      big.restarts = static_cast<uint64_t>(i);
      env.backend().emit(big);
      ++emitted;
    }
    env.backend().flush();
    herd::v1::WatchEvent ev;
    int n = 0;
    while (reader->Read(&ev)) ++n;
    grpc::Status st = reader->Finish();
    CHECK(st.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
    CHECK(contains(st.error_message(), "more than 5 changes behind"));
    CHECK(n < 2 + emitted);
    CHECK(eventually([&] { return env.backend().watchers() == 0; }));
  }
}

TEST_CASE("control: concurrent calls and watchers all get their answers in order") {
  Env env;
  constexpr int kWatchers = 4;
  constexpr int kChanges = 200;
  constexpr int kCallers = 4;
  constexpr int kCalls = 50;

  struct Watcher {
    grpc::ClientContext ctx;
    std::unique_ptr<grpc::ClientReader<herd::v1::WatchEvent>> reader;
    std::vector<uint64_t> restarts;  // of "web" changes, in arrival order
    int initial = 0;
    grpc::Status status;
  };
  std::vector<std::unique_ptr<Watcher>> watchers;
  auto stub = stub_for(env.sock());
  for (int i = 0; i < kWatchers; ++i) {
    auto w = std::make_unique<Watcher>();
    w->reader = stub->Watch(&w->ctx, herd::v1::WatchRequest());
    watchers.push_back(std::move(w));
  }
  REQUIRE(eventually([&] { return env.backend().watchers() == kWatchers; }));
  std::vector<std::thread> readers;
  for (auto& w : watchers) {
    readers.emplace_back([&w] {
      herd::v1::WatchEvent ev;
      while (w->reader->Read(&ev)) {
        if (ev.initial()) {
          ++w->initial;
        } else {
          w->restarts.push_back(ev.component().restarts());
          if (w->restarts.size() == kChanges) w->ctx.TryCancel();
        }
      }
      w->status = w->reader->Finish();
    });
  }
  std::atomic<int> failures{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c) {
    callers.emplace_back([&, c] {
      auto my_stub = stub_for(env.sock());
      for (int i = 0; i < kCalls; ++i) {
        grpc::ClientContext ctx;
        ctx.set_deadline(SysClock::now() + 10s);
        if ((i + c) % 2 == 0) {
          herd::v1::ListResponse resp;
          grpc::Status st = my_stub->List(&ctx, herd::v1::ListRequest(), &resp);
          if (!st.ok() || resp.components_size() != 2) ++failures;
        } else {
          herd::v1::GetRequest req;
          req.set_name("etcd");
          herd::v1::GetResponse resp;
          grpc::Status st = my_stub->Get(&ctx, req, &resp);
          if (!st.ok() || resp.component().pid() != 1234) ++failures;
        }
      }
    });
  }
  ComponentStatus web = env.sample().components()[1];
  for (int i = 0; i < kChanges; ++i) {
    web.restarts = 1000 + static_cast<uint64_t>(i);
    web.changed_at = SysClock::now();
    env.backend().emit(web);
  }
  for (auto& t : callers) t.join();
  for (auto& t : readers) t.join();
  CHECK(failures == 0);
  for (auto& w : watchers) {
    CHECK(w->initial == 2);
    REQUIRE(w->restarts.size() == kChanges);
    for (int i = 0; i < kChanges; ++i)
      CHECK(w->restarts[static_cast<size_t>(i)] == 1000u + static_cast<uint64_t>(i));
    CHECK(w->status.error_code() == grpc::StatusCode::CANCELLED);
  }
  CHECK(eventually([&] { return env.backend().watchers() == 0; }));
  CHECK(env.backend().unwatches() == kWatchers);
}

TEST_CASE("control: to_proto and from_proto keep every field") {
  Sample sample;
  for (const ComponentStatus& s : sample.components()) {
    ComponentStatus back = herd::control::from_proto(herd::control::to_proto(s));
    CHECK(back.name == s.name);
    CHECK(back.image == s.image);
    CHECK(back.state == s.state);
    CHECK(back.pid == s.pid);
    CHECK(back.restarts == s.restarts);
    CHECK(back.last_exit_code == s.last_exit_code);
    CHECK(back.last_exit_at == s.last_exit_at);
    CHECK(back.ready_since == s.ready_since);
    CHECK(back.started_at == s.started_at);
    CHECK(back.changed_at == s.changed_at);
    CHECK(back.last_error == s.last_error);
    CHECK(back.adopted == s.adopted);
    CHECK(back.standby == s.standby);
  }
  herd::v1::ComponentStatus p;
  p.set_state("hibernating");  // a state a newer herdd may have: kept as is
  CHECK(herd::control::from_proto(p).state == "hibernating");
}
