// The control tests' harness: a fake Backend whose completions run on an
// io_context thread (as herdd's do), a server on a real unix socket in a
// temp dir, and the real herdctl binary (HERDCTL_BINARY) run as a child.
#pragma once

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

#include <grpcpp/grpcpp.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "common/asio.h"
#include "common/log_text.h"
#include "common/unique_fd.h"
#include "control/backend.h"
#include "control/convert.h"
#include "control/server.h"
#include "herd/v1/control.grpc.pb.h"

namespace control_harness {

namespace asio = herd::asio;
using herd::Code;
using herd::Result;
using herd::Status;
using herd::control::Backend;
using herd::control::ComponentView;
using herd::control::ControlServer;
using herd::control::ImageView;
using herd::control::PullProgress;
using herd::control::PullSummary;
using herd::control::ReloadResult;
using herd::control::Verb;
using ComponentStatus = herd::control::ComponentView;
using json = nlohmann::json;
using SysClock = std::chrono::system_clock;
using namespace std::chrono_literals;

constexpr gid_t kTestGid = 4242;  // a gid no one on the machine has
constexpr uid_t kNobody = 65534;

// Polls `pred` until it holds or `limit` passes.
inline bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds limit = 10s) {
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
  // One import as the backend received it.
  struct Import {
    std::string name;
    std::string bytes;   // everything read from the fd, from its offset
    nlink_t links = 1;   // of the file: 0 for an unnamed one
    std::string dir_of;  // where /proc/self/fd says the file lives
  };
  std::vector<Import> imports() {
    std::lock_guard<std::mutex> l(mu_);
    return imports_;
  }
  // While held, import completions (and acts, with hold_acts) are kept
  // instead of run; release_held() runs them.
  void hold_imports(bool on) {
    std::lock_guard<std::mutex> l(mu_);
    hold_imports_ = on;
  }
  void hold_acts(bool on) {
    std::lock_guard<std::mutex> l(mu_);
    hold_acts_ = on;
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

  void get(const std::string& name, std::function<void(Result<ComponentStatus>)> done) override {
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
    Status s = Status::NotFound("no component named '" + herd::printable(name) + "'");
    for (const auto& c : comps_) {
      if (c.name == name) s = Status::Ok();
    }
    std::function<void()> f = [done, s] { done(s); };
    if (hold_acts_) {
      held_.push_back(f);
    } else {
      asio::post(ex_, f);
    }
  }

  void reload(std::function<void(ReloadResult)> done) override {
    std::lock_guard<std::mutex> l(mu_);
    ++reloads_;
    ReloadResult r = reload_;
    asio::post(ex_, [done, r] { done(r); });
  }

  void import_image(herd::UniqueFd fd, std::string name,
                    std::function<void(Result<std::vector<std::string>>)> done) override {
    Import imp;
    imp.name = std::move(name);
    struct stat st {};
    if (::fstat(fd.get(), &st) == 0) imp.links = st.st_nlink;
    char link[4096] = {};
    std::string proc = "/proc/self/fd/" + std::to_string(fd.get());
    ssize_t n = ::readlink(proc.c_str(), link, sizeof link - 1);
    if (n > 0) imp.dir_of = std::string(link, static_cast<size_t>(n));
    char buf[65536];
    for (;;) {
      ssize_t r = ::read(fd.get(), buf, sizeof buf);
      if (r <= 0) break;
      imp.bytes.append(buf, static_cast<size_t>(r));
    }
    std::lock_guard<std::mutex> l(mu_);
    imports_.push_back(std::move(imp));
    std::vector<std::string> images = images_;
    std::function<void()> f = [done, images] { done(images); };
    if (hold_imports_) {
      held_.push_back(f);
    } else {
      asio::post(ex_, f);
    }
  }

  // --- images

  // Pulls answer with `events`, then `result`, all posted at once, unless
  // held (hold_pulls): then they wait for emit_pull/finish_pull, or a
  // Cancel (which answers Cancelled).
  void set_pull(std::vector<PullProgress> events, Result<PullSummary> result) {
    std::lock_guard<std::mutex> l(mu_);
    pull_events_ = std::move(events);
    pull_result_ = std::move(result);
  }
  void hold_pulls(bool on) {
    std::lock_guard<std::mutex> l(mu_);
    hold_pulls_ = on;
  }
  std::vector<std::string> pulls() {
    std::lock_guard<std::mutex> l(mu_);
    return pull_refs_;
  }
  size_t cancels() {
    std::lock_guard<std::mutex> l(mu_);
    return cancels_;
  }
  // Progress of held pull `i`, posted to the io thread.
  void emit_pull(size_t i, PullProgress p) {
    std::shared_ptr<HeldPull> h = held_pull(i);
    asio::post(ex_, [h, p] {
      if (!h->done) h->progress(p);
    });
  }
  void finish_pull(size_t i, Result<PullSummary> r) {
    std::shared_ptr<HeldPull> h = held_pull(i);
    asio::post(ex_, [h, r] { h->finish(r); });
  }

  void set_images(Result<std::vector<ImageView>> images) {
    std::lock_guard<std::mutex> l(mu_);
    image_list_ = std::move(images);
  }
  void set_remove(Result<std::string> r) {
    std::lock_guard<std::mutex> l(mu_);
    remove_ = std::move(r);
  }
  void set_prune(Result<std::vector<std::string>> r) {
    std::lock_guard<std::mutex> l(mu_);
    prune_ = std::move(r);
  }
  std::vector<std::string> removes() {
    std::lock_guard<std::mutex> l(mu_);
    return removes_;
  }
  int prunes() {
    std::lock_guard<std::mutex> l(mu_);
    return prunes_;
  }

  Cancel pull_image(const std::string& reference, std::function<void(const PullProgress&)> progress,
                    std::function<void(Result<PullSummary>)> done) override {
    auto h = std::make_shared<HeldPull>();
    h->reference = reference;
    h->progress = std::move(progress);
    h->done_fn = std::move(done);
    std::lock_guard<std::mutex> l(mu_);
    pull_refs_.push_back(reference);
    held_pulls_.push_back(h);
    if (!hold_pulls_) {
      std::vector<PullProgress> events = pull_events_;
      Result<PullSummary> result = pull_result_;
      asio::post(ex_, [h, events, result] {
        for (const PullProgress& p : events) h->progress(p);
        h->finish(result);
      });
    }
    return [this, h] {
      {
        std::lock_guard<std::mutex> l2(mu_);
        ++cancels_;
      }
      asio::post(ex_, [h] {
        h->finish(Status::Cancelled("pull of " + herd::printable(h->reference) + " cancelled"));
      });
    };
  }

  void list_images(std::function<void(Result<std::vector<ImageView>>)> done) override {
    std::lock_guard<std::mutex> l(mu_);
    Result<std::vector<ImageView>> r = image_list_;
    asio::post(ex_, [done, r] { done(r); });
  }

  void remove_image(const std::string& reference,
                    std::function<void(Result<std::string>)> done) override {
    std::lock_guard<std::mutex> l(mu_);
    removes_.push_back(reference);
    Result<std::string> r = remove_;
    asio::post(ex_, [done, r] { done(r); });
  }

  void prune_images(std::function<void(Result<std::vector<std::string>>)> done) override {
    std::lock_guard<std::mutex> l(mu_);
    ++prunes_;
    Result<std::vector<std::string>> r = prune_;
    asio::post(ex_, [done, r] { done(r); });
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
  // One pull as the fake holds it; io thread only once handed over.
  struct HeldPull {
    std::string reference;
    std::function<void(const PullProgress&)> progress;
    std::function<void(Result<PullSummary>)> done_fn;
    bool done = false;
    void finish(const Result<PullSummary>& r) {
      if (done) return;
      done = true;
      done_fn(r);
    }
  };
  std::shared_ptr<HeldPull> held_pull(size_t i) {
    std::lock_guard<std::mutex> l(mu_);
    REQUIRE(i < held_pulls_.size());
    return held_pulls_[i];
  }

  asio::any_io_executor ex_;
  std::mutex mu_;
  std::vector<ComponentStatus> comps_;
  ReloadResult reload_;
  std::vector<std::string> images_;
  bool hold_ = false;
  std::vector<std::function<void()>> held_;
  std::vector<std::pair<Verb, std::string>> acts_;
  std::vector<Import> imports_;
  bool hold_imports_ = false;
  bool hold_acts_ = false;
  int reloads_ = 0;
  std::map<uint64_t, std::function<void(const ComponentStatus&)>> watchers_;
  uint64_t next_id_ = 1;
  size_t unwatches_ = 0;
  std::vector<PullProgress> pull_events_;
  Result<PullSummary> pull_result_ = Status::Internal("no pull result set");
  bool hold_pulls_ = false;
  std::vector<std::string> pull_refs_;
  std::vector<std::shared_ptr<HeldPull>> held_pulls_;
  size_t cancels_ = 0;
  Result<std::vector<ImageView>> image_list_ = std::vector<ImageView>{};
  Result<std::string> remove_ = Status::NotFound("no image");
  Result<std::vector<std::string>> prune_ = std::vector<std::string>{};
  std::vector<std::string> removes_;
  int prunes_ = 0;
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
    etcd.state = "ready";
    etcd.pid = 1234;
    etcd.restarts = 2;
    etcd.last_exit_code = 137;
    etcd.last_exit_at = etcd_exit;
    etcd.ready_since = etcd_ready;
    etcd.started_at = etcd_started;
    etcd.changed_at = etcd_ready;
    etcd.standby = "ready (pid 4321)";
    herd::control::ProbeView ready_probe;
    ready_probe.kind = "tcp";
    ready_probe.ok = true;
    ready_probe.at = etcd_ready;
    ready_probe.duration = std::chrono::milliseconds(3);
    ready_probe.detail = "connect 127.0.0.1:2379: connected";
    etcd.last_ready_probe = ready_probe;
    herd::control::ProbeView live;
    live.kind = "exec";
    live.ok = false;
    live.at = now - 1s;
    live.duration = std::chrono::milliseconds(40);
    live.detail = "exec [etcdctl endpoint health]: exit code 1: unhealthy";
    etcd.last_liveness_probe = live;
    ComponentStatus web;
    web.name = "web";
    web.image = "herd/busybox:1";
    web.state = "backing_off";
    web.restarts = 5;
    web.last_error = "readiness probe: connection refused";
    web.changed_at = web_changed;
    return {etcd, web};
  }
};

inline int64_t ms(SysClock::time_point t) {
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

using Tweak = std::function<void(ControlServer::Options&)>;

class Env {
 public:
  explicit Env(bool start_server = true, std::optional<std::string> group = std::nullopt,
               size_t watch_limit = 1000)
      : Env(Tweak(), start_server, std::move(group), watch_limit) {}
  // A server whose options `tweak` changes before it starts.
  template <class F, class = std::enable_if_t<std::is_invocable_v<F, ControlServer::Options&>>>
  explicit Env(F tweak) : Env(Tweak(std::move(tweak)), true, std::nullopt, 1000) {}
  Env(Tweak tweak, bool start_server, std::optional<std::string> group, size_t watch_limit)
      : work_(asio::make_work_guard(io_)), backend_(io_.get_executor()), tweak_(std::move(tweak)) {
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
    o.import_dir = dir_.path() + "/import";
    if (tweak_) tweak_(o);
    return ControlServer::start(io_.get_executor(), o, backend_);
  }

  const std::string& dir() const { return dir_.path(); }
  std::string import_dir() const { return dir_.path() + "/import"; }
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
  Tweak tweak_;
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

inline Run herdctl(const std::vector<std::string>& args, std::optional<Identity> as = std::nullopt,
                   const std::string& cwd = "") {
  Child c(args, std::move(as), cwd);
  int code = c.finish();
  Run r{code, c.out(), c.err()};
  UNSCOPED_INFO("herdctl exit " << r.code << "\nstdout:\n" << r.out << "\nstderr:\n" << r.err);
  return r;
}

inline std::vector<std::string> lines_of(const std::string& s) {
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

inline std::string line_starting(const std::string& text, const std::string& prefix) {
  for (const std::string& l : lines_of(text)) {
    if (l.rfind(prefix, 0) == 0) return l;
  }
  return "";
}

inline bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// A socket file nobody listens on: bound, then closed.
inline void make_dead_socket(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  ::close(fd);
}

inline std::unique_ptr<herd::v1::Control::Stub> stub_for(const std::string& sock) {
  return herd::v1::Control::NewStub(
      grpc::CreateChannel("unix:" + sock, grpc::InsecureChannelCredentials()));
}

// The cases that chown to another group or drop to uid 65534 need root.
#define HERD_REQUIRE_ROOT()                           \
  do {                                                \
    if (::geteuid() != 0) {                           \
      WARN("skipped: needs root (chown, setresuid)"); \
      return;                                         \
    }                                                 \
  } while (false)

}  // namespace control_harness

using namespace control_harness;
