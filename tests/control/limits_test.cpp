// The control socket's limits (lib/control/limits.h, docs/operations.md
// "Control socket limits"): connections, watchers, message sizes, server
// deadlines, accept() out of fds, names in logs, and the unit's
// LimitNOFILE.
#include <sys/resource.h>

#include <sstream>

#include <grpcpp/create_channel_posix.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "control/limits.h"
#include "harness.h"

namespace {

// A connected client socket that speaks nothing.
int raw_connect(const std::string& sock) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, sock.c_str(), sizeof addr.sun_path - 1);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  return fd;
}

// Whether the peer closed `fd` within `limit`.
bool closed_by_peer(int fd, std::chrono::milliseconds limit) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(limit.count())) <= 0) return false;
  char c;
  return ::recv(fd, &c, 1, MSG_DONTWAIT) == 0;
}

// spdlog's default logger writes into a string while it lives.
class LogCapture {
 public:
  LogCapture() : old_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    sink->set_pattern("%v");
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink));
  }
  ~LogCapture() { spdlog::set_default_logger(old_); }
  std::string text() {
    spdlog::default_logger()->flush();
    return out_.str();
  }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> old_;
};

}  // namespace

TEST_CASE("limits: connections beyond max_connections are closed at once, the rest served") {
  Env env([](ControlServer::Options& o) { o.max_connections = 8; });
  std::vector<int> idle;
  for (int i = 0; i < 8; ++i) idle.push_back(raw_connect(env.sock()));
  REQUIRE(eventually([&] { return env.server()->stats().open_connections == 8; }));
  int extra = raw_connect(env.sock());
  CHECK(closed_by_peer(extra, 5000ms));
  ::close(extra);
  CHECK(env.server()->stats().refused_connections >= 1);
  // herdctl names the likely cause.
  Run refused = herdctl({"--socket", env.sock(), "--timeout", "5", "status"});
  CHECK(refused.code == 1);
  CHECK(contains(refused.err, "may be serving its maximum of connections"));
  // Two idle clients leave: their slots come back once gRPC closed them.
  ::close(idle.back());
  idle.pop_back();
  ::close(idle.back());
  idle.pop_back();
  CHECK(eventually([&] { return env.server()->stats().open_connections <= 6; }));
  CHECK(herdctl({"--socket", env.sock(), "status"}).code == 0);
  for (int fd : idle) ::close(fd);
}

TEST_CASE("limits: a Watch beyond max_watchers is RESOURCE_EXHAUSTED") {
  Env env([](ControlServer::Options& o) { o.max_watchers = 3; });
  auto stub = stub_for(env.sock());
  struct W {
    grpc::ClientContext ctx;
    std::unique_ptr<grpc::ClientReader<herd::v1::WatchEvent>> reader;
  };
  std::vector<std::unique_ptr<W>> ws;
  for (int i = 0; i < 3; ++i) {
    auto w = std::make_unique<W>();
    w->reader = stub->Watch(&w->ctx, herd::v1::WatchRequest());
    herd::v1::WatchEvent ev;
    REQUIRE(w->reader->Read(&ev));  // it is live
    ws.push_back(std::move(w));
  }
  CHECK(env.server()->stats().watchers == 3);
  Run r = herdctl({"--socket", env.sock(), "watch"});
  CHECK(r.code == 1);
  CHECK(contains(r.err, "herdd serves at most 3 watchers at once"));
  CHECK(env.backend().watchers() == 3);
  // One ends: there is room again.
  ws[0]->ctx.TryCancel();
  herd::v1::WatchEvent ev;
  while (ws[0]->reader->Read(&ev)) {
  }
  ws[0]->reader->Finish();
  CHECK(eventually([&] { return env.server()->stats().watchers == 2; }));
  W again;
  again.reader = stub->Watch(&again.ctx, herd::v1::WatchRequest());
  CHECK(again.reader->Read(&ev));
  again.ctx.TryCancel();
  while (again.reader->Read(&ev)) {
  }
  again.reader->Finish();
  for (size_t i = 1; i < ws.size(); ++i) {
    ws[i]->ctx.TryCancel();
    while (ws[i]->reader->Read(&ev)) {
    }
    ws[i]->reader->Finish();
  }
}

TEST_CASE("limits: a message above the receive limit is refused and herdd serves on") {
  Env env;
  auto stub = stub_for(env.sock());
  {
    grpc::ClientContext ctx;
    herd::v1::ActionRequest req;
    req.set_name(std::string(herd::control::kMaxReceiveMessageBytes + 1, 'n'));
    herd::v1::ActionResponse resp;
    grpc::Status s = stub->Stop(&ctx, req, &resp);
    CHECK(s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  }
  {
    grpc::ClientContext ctx;
    herd::v1::ImportImageResponse resp;
    auto writer = stub->ImportImage(&ctx, &resp);
    herd::v1::ImportImageRequest h;
    h.mutable_header()->set_name("x.tar");
    h.mutable_header()->set_size(5 * herd::control::kMiB);
    writer->Write(h);
    herd::v1::ImportImageRequest d;
    d.set_data(std::string(5 * herd::control::kMiB, 'd'));
    writer->Write(d);
    writer->WritesDone();
    CHECK(writer->Finish().error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  }
  // A chunk as herdctl sends it fits.
  static_assert(herd::control::kImportChunkBytes + 64 < herd::control::kMaxReceiveMessageBytes);
  CHECK(env.backend().acts().empty());
  CHECK(env.backend().imports().empty());
  CHECK(herdctl({"--socket", env.sock(), "status"}).code == 0);
}

TEST_CASE("limits: one connection gets at most kMaxStreamsPerConnection calls at once") {
  Env env;
  env.backend().hold_lists(true);
  auto stub = stub_for(env.sock());
  constexpr int kCalls = herd::control::kMaxStreamsPerConnection + 6;
  grpc::CompletionQueue cq;
  std::vector<std::unique_ptr<grpc::ClientContext>> ctxs;
  std::vector<herd::v1::ListResponse> resps(kCalls);
  std::vector<grpc::Status> statuses(kCalls);
  std::vector<std::unique_ptr<grpc::ClientAsyncResponseReader<herd::v1::ListResponse>>> calls;
  for (int i = 0; i < kCalls; ++i) {
    ctxs.push_back(std::make_unique<grpc::ClientContext>());
    ctxs.back()->set_deadline(SysClock::now() + 20s);
    calls.push_back(stub->AsyncList(ctxs.back().get(), herd::v1::ListRequest(), &cq));
    calls.back()->Finish(&resps[static_cast<size_t>(i)], &statuses[static_cast<size_t>(i)],
                         reinterpret_cast<void*>(static_cast<intptr_t>(i + 1)));
  }
  const size_t max = herd::control::kMaxStreamsPerConnection;
  REQUIRE(eventually([&] { return env.backend().held() == max; }));
  std::this_thread::sleep_for(200ms);
  CHECK(env.backend().held() == max);  // the others wait in the client
  env.backend().hold_lists(false);
  env.backend().release_held();
  for (int i = 0; i < kCalls; ++i) {
    void* tag = nullptr;
    bool ok = false;
    REQUIRE(cq.Next(&tag, &ok));
    CHECK(ok);
  }
  for (const grpc::Status& st : statuses) CHECK(st.ok());
  cq.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
  }
}

TEST_CASE("limits: herdctl refuses an answer above its receive limit") {
  Env env;
  std::vector<ComponentStatus> comps = env.sample().components();
  comps[1].last_error = std::string(herd::control::kClientMaxReceiveMessageBytes + 1, 'e');
  env.backend().set_components(comps);
  Run r = herdctl({"--socket", env.sock(), "status"});
  CHECK(r.code == 1);
  CHECK(contains(r.err, "larger than max"));
  env.backend().set_components(env.sample().components());
  CHECK(herdctl({"--socket", env.sock(), "status"}).code == 0);
}

TEST_CASE("limits: herdd answers DEADLINE_EXCEEDED itself when the backend is too slow") {
  Env env([](ControlServer::Options& o) { o.call_deadline = 300ms; });
  env.backend().hold_lists(true);
  env.backend().hold_acts(true);
  auto t0 = std::chrono::steady_clock::now();
  Run list = herdctl({"--socket", env.sock(), "status"});
  CHECK(list.code == 1);
  CHECK(list.err ==
        "herdctl: herdd did not complete List within 300 ms (its own deadline for "
        "the call)\n");
  Run stop = herdctl({"--socket", env.sock(), "stop", "etcd"});
  CHECK(stop.code == 1);
  CHECK(contains(stop.err, "herdd did not complete Stop within 300 ms"));
  CHECK(std::chrono::steady_clock::now() - t0 < 10s);
  // The backend answers late: dropped, nothing breaks.
  env.backend().release_held();
  env.backend().flush();
  CHECK(eventually([&] { return env.server()->stats().pending_deadlines == 0; }));
  env.backend().hold_lists(false);
  env.backend().hold_acts(false);
  CHECK(herdctl({"--socket", env.sock(), "status"}).code == 0);
}

TEST_CASE("limits: Watch has no server deadline") {
  Env env([](ControlServer::Options& o) { o.call_deadline = 200ms; });
  auto stub = stub_for(env.sock());
  grpc::ClientContext ctx;
  auto reader = stub->Watch(&ctx, herd::v1::WatchRequest());
  herd::v1::WatchEvent ev;
  REQUIRE(reader->Read(&ev));
  REQUIRE(reader->Read(&ev));          // the two initial statuses
  std::this_thread::sleep_for(600ms);  // three call deadlines
  ComponentStatus web = env.sample().components()[1];
  web.restarts = 99;
  env.backend().emit(web);
  REQUIRE(reader->Read(&ev));
  CHECK(ev.component().restarts() == 99);
  CHECK_FALSE(ev.initial());
  ctx.TryCancel();
  while (reader->Read(&ev)) {
  }
  CHECK(reader->Finish().error_code() == grpc::StatusCode::CANCELLED);
}

TEST_CASE("limits: accept out of file descriptors retries on a timer, never spins") {
  Env env;
  // The client's socket exists before the process runs out of fds.
  int client = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(client >= 0);
  herd::UniqueFd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  REQUIRE(null);
  rlimit old{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &old) == 0);
  // Lower the soft limit just above what is open, then use up the rest.
  int highest = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    highest = std::max(highest, std::stoi(e.path().filename().string()));
  }
  rlimit low = old;
  low.rlim_cur = static_cast<rlim_t>(highest + 64);
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &low) == 0);
  std::vector<int> filler;
  for (;;) {
    int fd = ::fcntl(null.get(), F_DUPFD_CLOEXEC, 0);
    if (fd < 0) break;
    filler.push_back(fd);
  }
  uint64_t before = env.server()->stats().accept_failures;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, env.sock().c_str(), sizeof addr.sun_path - 1);
  int rc = ::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  // The connection waits in the backlog: accept() fails with EMFILE.
  std::this_thread::sleep_for(1000ms);
  uint64_t failures = env.server()->stats().accept_failures - before;
  for (int fd : filler) ::close(fd);
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &old) == 0);
  REQUIRE(rc == 0);
  // About one try per 100 ms: a busy loop would make thousands.
  CHECK(failures >= 3);
  CHECK(failures <= 15);
  // With fds back, the waiting connection is accepted and served.
  auto channel = grpc::CreateInsecureChannelFromFd("control", client);
  auto stub = herd::v1::Control::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(SysClock::now() + 10s);
  herd::v1::ListResponse resp;
  grpc::Status s = stub->List(&ctx, herd::v1::ListRequest(), &resp);
  CHECK(s.ok());
  CHECK(resp.components_size() == 2);
}

TEST_CASE("limits: a component name with a newline is logged escaped") {
  Env env;
  LogCapture log;
  auto stub = stub_for(env.sock());
  grpc::ClientContext ctx;
  herd::v1::ActionRequest req;
  req.set_name("web\nherdd: root logged in\x1b[2K");
  herd::v1::ActionResponse resp;
  grpc::Status s = stub->Stop(&ctx, req, &resp);
  CHECK(s.error_code() == grpc::StatusCode::NOT_FOUND);
  // The answer names it escaped too.
  CHECK(s.error_message() == "no component named 'web\\nherdd: root logged in\\x1b[2K'");
  std::string text = log.text();
  INFO(text);
  CHECK(contains(text, "control: stop 'web\\nherdd: root logged in\\x1b[2K' requested\n"));
  for (const std::string& line : lines_of(text)) CHECK(line.rfind("herdd: root", 0) != 0);
  CHECK_FALSE(contains(text, "\x1b"));
}

TEST_CASE("limits: herd.service raises LimitNOFILE well above the connection limit") {
  std::ifstream unit(HERD_UNIT_FILE);
  REQUIRE(unit.good());
  std::string line, section;
  std::optional<long> nofile;
  while (std::getline(unit, line)) {
    if (!line.empty() && line[0] == '[') section = line;
    if (section == "[Service]" && line.rfind("LimitNOFILE=", 0) == 0) {
      nofile = std::stol(line.substr(12));
    }
  }
  REQUIRE(nofile.has_value());
  CHECK(*nofile >= 65536);
  CHECK(*nofile >= static_cast<long>(8 * herd::control::kDefaultMaxConnections));
}
