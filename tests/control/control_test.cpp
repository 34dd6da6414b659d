// The control API server (lib/control/server.h) and herdctl: a fake Backend
// whose completions run on an io_context thread (as herdd's do), a real
// unix socket in a temp dir, and the real herdctl binary (HERDCTL_BINARY).
// The peer-credential cases fork a child that drops to uid 65534: they need
// root, as CTest runs them here.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <grpcpp/grpcpp.h>
#include <nlohmann/json.hpp>

#include "common/asio.h"
#include "control/backend.h"
#include "control/convert.h"
#include "control/server.h"
#include "herd/v1/control.grpc.pb.h"

namespace {

namespace asio = herd::asio;
using herd::Code;
using herd::Result;
using herd::Status;
using herd::control::Backend;
using herd::control::ControlServer;
using herd::control::ReloadResult;
using herd::control::Verb;
using herd::supervise::ComponentStatus;
using herd::supervise::State;
using json = nlohmann::json;
using SysClock = std::chrono::system_clock;
using namespace std::chrono_literals;

constexpr gid_t kTestGid = 4242;  // a gid no one on the machine has
constexpr uid_t kNobody = 65534;

// Polls `pred` until it holds or `limit` passes.
bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds limit = 10s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

// ---------------------------------------------------------------------------
// The fake Backend: records every request, answers from its data, and runs
// every completion on the io_context thread.

class FakeBackend final : public Backend {
 public:
  explicit FakeBackend(asio::any_io_executor ex) : ex_(std::move(ex)) {}

  void set_components(std::vector<ComponentStatus> c) {
    std::lock_guard<std::mutex> l(mu_);
    comps_ = std::move(c);
  }
  void set_reload(ReloadResult r) {
    std::lock_guard<std::mutex> l(mu_);
    reload_ = std::move(r);
  }
  void set_images(std::vector<std::string> images) {
    std::lock_guard<std::mutex> l(mu_);
    images_ = std::move(images);
  }
  // While held, list() completions are kept instead of run.
  void hold_lists(bool on) {
    std::lock_guard<std::mutex> l(mu_);
    hold_ = on;
  }
  size_t held() {
    std::lock_guard<std::mutex> l(mu_);
    return held_.size();
  }
  void release_held() {
    std::vector<std::function<void()>> h;
    {
      std::lock_guard<std::mutex> l(mu_);
      h.swap(held_);
    }
    for (auto& f : h) asio::post(ex_, f);
  }

  std::vector<std::pair<Verb, std::string>> acts() {
    std::lock_guard<std::mutex> l(mu_);
    return acts_;
  }
  std::vector<std::string> imports() {
    std::lock_guard<std::mutex> l(mu_);
    return imports_;
  }
  int reloads() {
    std::lock_guard<std::mutex> l(mu_);
    return reloads_;
  }
  size_t watchers() {
    std::lock_guard<std::mutex> l(mu_);
    return watchers_.size();
  }
  size_t unwatches() {
    std::lock_guard<std::mutex> l(mu_);
    return unwatches_;
  }

  // Returns once everything posted to the io thread so far has run.
  void flush() {
    std::promise<void> p;
    std::future<void> f = p.get_future();
    asio::post(ex_, [&p] { p.set_value(); });
    REQUIRE(f.wait_for(10s) == std::future_status::ready);
  }

  // A status change, delivered to every watcher on the io thread, in order.
  void emit(const ComponentStatus& s) {
    asio::post(ex_, [this, s] {
      std::vector<std::function<void(const ComponentStatus&)>> w;
      {
        std::lock_guard<std::mutex> l(mu_);
        for (auto& [id, f] : watchers_) w.push_back(f);
      }
      for (auto& f : w) f(s);
    });
  }

  void list(std::function<void(StatusList)> done) override {
    std::lock_guard<std::mutex> l(mu_);
    StatusList copy = comps_;
    std::function<void()> f = [done, copy] { done(copy); };
    if (hold_) {
      held_.push_back(f);
    } else {
      asio::post(ex_, f);
    }
  }

  void get(const std::string& name,
           std::function<void(Result<ComponentStatus>)> done) override {
    std::lock_guard<std::mutex> l(mu_);
    Result<ComponentStatus> r = Status::NotFound("no component named '" + name + "'");
    for (const auto& c : comps_) {
      if (c.name == name) r = c;
    }
    asio::post(ex_, [done, r] { done(r); });
  }

  void act(Verb verb, const std::string& name, std::function<void(Status)> done) override {
    std::lock_guard<std::mutex> l(mu_);
    acts_.emplace_back(verb, name);
    Status s = Status::NotFound("no component named '" + name + "'");
    for (const auto& c : comps_) {
      if (c.name == name) s = Status::Ok();
    }
    asio::post(ex_, [done, s] { done(s); });
  }

  void reload(std::function<void(ReloadResult)> done) override {
    std::lock_guard<std::mutex> l(mu_);
    ++reloads_;
    ReloadResult r = reload_;
    asio::post(ex_, [done, r] { done(r); });
  }

  void import_image(const std::string& path,
                    std::function<void(Result<std::vector<std::string>>)> done) override {
    std::lock_guard<std::mutex> l(mu_);
    imports_.push_back(path);
    std::vector<std::string> images = images_;
    asio::post(ex_, [done, images] { done(images); });
  }

  uint64_t watch(std::function<void(const ComponentStatus&)> on_change) override {
    std::lock_guard<std::mutex> l(mu_);
    uint64_t id = next_id_++;
    watchers_[id] = std::move(on_change);
    return id;
  }

  void unwatch(uint64_t id) override {
    std::lock_guard<std::mutex> l(mu_);
    if (watchers_.erase(id) > 0) ++unwatches_;
  }

 private:
  asio::any_io_executor ex_;
  std::mutex mu_;
  std::vector<ComponentStatus> comps_;
  ReloadResult reload_;
  std::vector<std::string> images_;
  bool hold_ = false;
  std::vector<std::function<void()>> held_;
  std::vector<std::pair<Verb, std::string>> acts_;
  std::vector<std::string> imports_;
  int reloads_ = 0;
  std::map<uint64_t, std::function<void(const ComponentStatus&)>> watchers_;
  uint64_t next_id_ = 1;
  size_t unwatches_ = 0;
};

// Two components with every field set that matters for display.
struct Sample {
  SysClock::time_point now = SysClock::now();
  SysClock::time_point etcd_started = now - 192s;
  SysClock::time_point etcd_ready = now - 180s;
  SysClock::time_point etcd_exit = now - 300s;
  SysClock::time_point web_changed = now - 2s;

  std::vector<ComponentStatus> components() const {
    ComponentStatus etcd;
    etcd.name = "etcd";
    etcd.image = "herd/etcd:3.4";
    etcd.state = State::kReady;
    etcd.pid = 1234;
    etcd.restarts = 2;
    etcd.last_exit_code = 137;
    etcd.last_exit_at = etcd_exit;
    etcd.ready_since = etcd_ready;
    etcd.started_at = etcd_started;
    etcd.changed_at = etcd_ready;
    ComponentStatus web;
    web.name = "web";
    web.image = "herd/busybox:1";
    web.state = State::kBackingOff;
    web.restarts = 5;
    web.last_error = "readiness probe: connection refused";
    web.changed_at = web_changed;
    return {etcd, web};
  }
};

int64_t ms(SysClock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// ---------------------------------------------------------------------------
// A temp dir, an io thread, the fake and (usually) a server.

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/herd-ctl-XXXXXX";
    char* p = ::mkdtemp(tmpl);
    REQUIRE(p != nullptr);
    path_ = p;
    ::chmod(path_.c_str(), 0711);  // uid 65534 may reach the socket inside
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class Env {
 public:
  explicit Env(bool start_server = true, std::optional<std::string> group = std::nullopt,
               size_t watch_limit = 1000)
      : work_(asio::make_work_guard(io_)), backend_(io_.get_executor()) {
    runner_ = std::thread([this] { io_.run(); });
    sock_ = dir_.path() + "/control.sock";
    backend_.set_components(sample_.components());
    if (start_server) {
      Result<std::unique_ptr<ControlServer>> s = start(group, watch_limit);
      REQUIRE(s.ok());
      server_ = std::move(s).value();
    }
  }
  ~Env() {
    if (server_) server_->shutdown();
    server_.reset();
    work_.reset();
    io_.stop();
    runner_.join();
  }

  Result<std::unique_ptr<ControlServer>> start(std::optional<std::string> group = std::nullopt,
                                               size_t watch_limit = 1000) {
    ControlServer::Options o;
    o.socket_path = sock_;
    o.group = std::move(group);
    o.watch_queue_limit = watch_limit;
    o.shutdown_grace = 1000ms;
    return ControlServer::start(io_.get_executor(), o, backend_);
  }

  const std::string& dir() const { return dir_.path(); }
  const std::string& sock() const { return sock_; }
  FakeBackend& backend() { return backend_; }
  const Sample& sample() const { return sample_; }
  std::unique_ptr<ControlServer>& server() { return server_; }

 private:
  TempDir dir_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  FakeBackend backend_;
  std::thread runner_;
  std::string sock_;
  Sample sample_;
  std::unique_ptr<ControlServer> server_;
};

// ---------------------------------------------------------------------------
// Running herdctl.

struct Identity {
  uid_t uid = kNobody;
  gid_t gid = kNobody;
  std::vector<gid_t> groups;
};

class Child {
 public:
  Child(const std::vector<std::string>& args, std::optional<Identity> as = std::nullopt,
        const std::string& cwd = "") {
    std::vector<std::string> all = {HERDCTL_BINARY};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    int out[2], err[2];
    REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(err, O_CLOEXEC) == 0);
    std::vector<gid_t> groups = as ? as->groups : std::vector<gid_t>{};
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      // Only async-signal-safe calls: the parent has threads. Raw syscalls
      // change this (only) thread's credentials.
      ::dup2(out[1], 1);
      ::dup2(err[1], 2);
      if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) ::_exit(120);
      if (as) {
        if (::syscall(SYS_setgroups, groups.size(), groups.data()) != 0) ::_exit(121);
        if (::syscall(SYS_setresgid, as->gid, as->gid, as->gid) != 0) ::_exit(122);
        if (::syscall(SYS_setresuid, as->uid, as->uid, as->uid) != 0) ::_exit(123);
      }
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    ::close(err[1]);
    out_fd_ = out[0];
    err_fd_ = err[0];
  }
  ~Child() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (out_fd_ >= 0) ::close(out_fd_);
    if (err_fd_ >= 0) ::close(err_fd_);
  }

  // Reads what is available within `limit`; false at EOF of both.
  bool pump(std::chrono::milliseconds limit) {
    std::vector<pollfd> fds;
    if (out_fd_ >= 0) fds.push_back({out_fd_, POLLIN, 0});
    if (err_fd_ >= 0) fds.push_back({err_fd_, POLLIN, 0});
    if (fds.empty()) return false;
    int n = ::poll(fds.data(), fds.size(), static_cast<int>(limit.count()));
    if (n <= 0) return true;
    for (auto& p : fds) {
      if (p.revents == 0) continue;
      char buf[4096];
      ssize_t r = ::read(p.fd, buf, sizeof buf);
      std::string& dst = p.fd == out_fd_ ? out_ : err_;
      if (r > 0) {
        dst.append(buf, static_cast<size_t>(r));
      } else {
        ::close(p.fd);
        (p.fd == out_fd_ ? out_fd_ : err_fd_) = -1;
      }
    }
    return out_fd_ >= 0 || err_fd_ >= 0;
  }

  // Waits for `pred(stdout)` while reading.
  bool wait_stdout(const std::function<bool(const std::string&)>& pred,
                   std::chrono::milliseconds limit = 10s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!pred(out_)) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      if (!pump(50ms) && !pred(out_)) return false;
    }
    return true;
  }

  // Reads everything and reaps; the exit code (-1 on timeout, 128+sig).
  int finish(std::chrono::milliseconds limit = 30s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline && pump(50ms)) {
    }
    int status = 0;
    for (;;) {
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) break;
      if (std::chrono::steady_clock::now() >= deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        reaped_ = true;
        return -1;
      }
      std::this_thread::sleep_for(5ms);
    }
    reaped_ = true;
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
  }

  void signal(int sig) { ::kill(pid_, sig); }
  const std::string& out() const { return out_; }
  const std::string& err() const { return err_; }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int out_fd_ = -1, err_fd_ = -1;
  std::string out_, err_;
};

struct Run {
  int code;
  std::string out, err;
};

Run herdctl(const std::vector<std::string>& args, std::optional<Identity> as = std::nullopt,
            const std::string& cwd = "") {
  Child c(args, std::move(as), cwd);
  int code = c.finish();
  Run r{code, c.out(), c.err()};
  UNSCOPED_INFO("herdctl exit " << r.code << "\nstdout:\n" << r.out << "\nstderr:\n" << r.err);
  return r;
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> v;
  size_t start = 0;
  while (start < s.size()) {
    size_t nl = s.find('\n', start);
    if (nl == std::string::npos) nl = s.size();
    v.push_back(s.substr(start, nl - start));
    start = nl + 1;
  }
  return v;
}

std::string line_starting(const std::string& text, const std::string& prefix) {
  for (const std::string& l : lines_of(text)) {
    if (l.rfind(prefix, 0) == 0) return l;
  }
  return "";
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// A socket file nobody listens on: bound, then closed.
void make_dead_socket(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  ::close(fd);
}

std::unique_ptr<herd::v1::Control::Stub> stub_for(const std::string& sock) {
  return herd::v1::Control::NewStub(
      grpc::CreateChannel("unix:" + sock, grpc::InsecureChannelCredentials()));
}

// The cases that chown to another group or drop to uid 65534 need root.
#define HERD_REQUIRE_ROOT()                                   \
  do {                                                        \
    if (::geteuid() != 0) {                                   \
      WARN("skipped: needs root (chown, setresuid)");         \
      return;                                                 \
    }                                                         \
  } while (false)

}  // namespace

// ---------------------------------------------------------------------------

TEST_CASE("control: status prints a table with uptime and the last errors") {
  Env env;
  Run r = herdctl({"--socket", env.sock(), "status"});
  REQUIRE(r.code == 0);
  std::vector<std::string> lines = lines_of(r.out);
  REQUIRE(lines.size() >= 3);
  for (const char* col : {"NAME", "STATE", "PID", "RESTARTS", "UPTIME", "READY-SINCE",
                          "LAST-EXIT", "IMAGE"}) {
    CHECK(contains(lines[0], col));
  }
  std::string etcd = line_starting(r.out, "etcd ");
  CHECK(contains(etcd, " ready "));
  CHECK(contains(etcd, " 1234 "));
  CHECK((contains(etcd, " 3m12s ") || contains(etcd, " 3m13s ")));
  CHECK(contains(etcd, "137 (5m0"));
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
  change.state = State::kBackingOff;
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
  web.state = State::kReady;
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

TEST_CASE("control: image import sends an absolute path") {
  Env env;
  env.backend().set_images({"herd/busybox:1"});
  Run r = herdctl({"--socket", env.sock(), "image", "import", "sub/../busybox.tar"}, std::nullopt,
                  env.dir());
  CHECK(r.code == 0);
  CHECK(r.out == "imported herd/busybox:1\n");
  auto imports = env.backend().imports();
  REQUIRE(imports.size() == 1);
  CHECK(imports[0] == env.dir() + "/busybox.tar");
}

TEST_CASE("control: the server refuses relative image paths and empty names") {
  Env env;
  auto stub = stub_for(env.sock());
  {
    grpc::ClientContext ctx;
    herd::v1::ImportImageRequest req;
    req.set_path("busybox.tar");
    herd::v1::ImportImageResponse resp;
    grpc::Status s = stub->ImportImage(&ctx, req, &resp);
    CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  }
  {
    grpc::ClientContext ctx;
    herd::v1::ActionRequest req;
    herd::v1::ActionResponse resp;
    grpc::Status s = stub->Start(&ctx, req, &resp);
    CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  }
  CHECK(env.backend().imports().empty());
  CHECK(env.backend().acts().empty());
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
    Run r = herdctl({"--socket", env.sock(), "stop", "etcd"},
                    Identity{kNobody, kNobody, {kTestGid}});
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
    for (int i = 0; i < kChanges; ++i) CHECK(w->restarts[static_cast<size_t>(i)] == 1000u + static_cast<uint64_t>(i));
    CHECK(w->status.error_code() == grpc::StatusCode::CANCELLED);
  }
  CHECK(eventually([&] { return env.backend().watchers() == 0; }));
  CHECK(env.backend().unwatches() == kWatchers);
}

TEST_CASE("control: to_proto and from_proto keep every field") {
  Sample sample;
  for (const ComponentStatus& s : sample.components()) {
    bool known = false;
    ComponentStatus back = herd::control::from_proto(herd::control::to_proto(s), &known);
    CHECK(known);
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
  }
  herd::v1::ComponentStatus p;
  p.set_state("hibernating");
  bool known = true;
  herd::control::from_proto(p, &known);
  CHECK_FALSE(known);
  CHECK(herd::control::state_from_string("waiting_ready") == State::kWaitingReady);
}
