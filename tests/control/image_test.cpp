// The control API's image calls (PullImage, ListImages, RemoveImage,
// PruneImages) with the fake Backend: the pull stream is bounded for a
// client that does not read (progress coalesced per blob), a client that
// goes away cancels the pull, errors reach herdctl with their messages,
// and herdctl's image verbs print what herdd answered.
#include "harness.h"

namespace {

PullProgress blob(const std::string& kind, const std::string& digest, int64_t total, int64_t done,
                  bool finished = false, bool present = false) {
  PullProgress p;
  p.kind = kind;
  p.digest = digest;
  p.total = total;
  p.done = done;
  p.finished = finished;
  p.present = present;
  return p;
}

PullSummary summary() {
  PullSummary s;
  s.name = "127.0.0.1:5000/busybox:1";
  s.target_digest = "sha256:" + std::string(64, 'a');
  s.target_media_type = "application/vnd.oci.image.manifest.v1+json";
  s.blobs_fetched = 2;
  s.blobs_present = 1;
  s.bytes_fetched = 3 << 20;
  return s;
}

const std::string kLayer = "sha256:" + std::string(64, 'b');
const std::string kConfig = "sha256:" + std::string(64, 'c');

std::vector<PullProgress> script() {
  return {blob("manifest", summary().target_digest, 500, 500, true),
          blob("config", kConfig, 1000, 1000, true, true), blob("layer", kLayer, 3 << 20, 1 << 20),
          blob("layer", kLayer, 3 << 20, 3 << 20, true)};
}

// Reads a PullImage stream to its end.
struct Stream {
  std::vector<herd::v1::PullImageEvent> events;
  grpc::Status status;
};

Stream read_all(grpc::ClientReader<herd::v1::PullImageEvent>& reader) {
  Stream s;
  herd::v1::PullImageEvent ev;
  while (reader.Read(&ev)) s.events.push_back(ev);
  s.status = reader.Finish();
  return s;
}

std::vector<json> json_lines(const std::string& out) {
  std::vector<json> v;
  for (const std::string& l : lines_of(out)) {
    if (l.empty()) continue;
    json j = json::parse(l, nullptr, false);
    REQUIRE_FALSE(j.is_discarded());
    v.push_back(j);
  }
  return v;
}

// A client whose receive window stays gRPC's initial 64 KiB (no BDP
// probing growing it), so what the transport buffers is bounded.
std::unique_ptr<herd::v1::Control::Stub> small_window_stub(const std::string& sock) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  return herd::v1::Control::NewStub(
      grpc::CreateCustomChannel("unix:" + sock, grpc::InsecureChannelCredentials(), args));
}

}  // namespace

TEST_CASE("herdctl image pull shows every blob and a summary", "[control][image]") {
  Env env;
  env.backend().set_pull(script(), summary());
  Run r = herdctl({"--socket", env.sock(), "image", "pull", "127.0.0.1:5000/busybox:1"});
  CHECK(r.code == 0);
  CHECK(env.backend().pulls() == std::vector<std::string>{"127.0.0.1:5000/busybox:1"});
  // Not a terminal: one line per finished blob, then the summary.
  CHECK(contains(r.out, "manifest aaaaaaaaaaaa  done (500 B)"));
  CHECK(contains(r.out, "config   cccccccccccc  already present"));
  CHECK(contains(r.out, "layer    bbbbbbbbbbbb  done (3.00 MiB)"));
  CHECK(contains(r.out, "pulled 127.0.0.1:5000/busybox:1 (sha256:" + std::string(64, 'a') +
                            "): 2 blob(s) fetched (3.00 MiB), 1 already present"));
  CHECK_FALSE(contains(r.out, "\x1b["));  // no cursor movement off a terminal
}

TEST_CASE("herdctl image pull --json prints one object per event and ends with the result",
          "[control][image]") {
  Env env;
  env.backend().set_pull(script(), summary());
  Run r = herdctl({"--socket", env.sock(), "image", "pull", "--json", "127.0.0.1:5000/busybox:1"});
  CHECK(r.code == 0);
  std::vector<json> events = json_lines(r.out);
  REQUIRE(events.size() >= 2);
  for (size_t i = 0; i + 1 < events.size(); ++i) CHECK(events[i]["event"] == "progress");
  const json& last = events.back();
  CHECK(last["event"] == "result");
  CHECK(last["name"] == "127.0.0.1:5000/busybox:1");
  CHECK(last["blobs_fetched"] == 2);
  CHECK(last["blobs_present"] == 1);
  CHECK(last["bytes_fetched"] == 3 << 20);
  // The layer's last state is its finished one, whatever was coalesced.
  json layer;
  for (const json& e : events) {
    if (e["event"] == "progress" && e["digest"] == kLayer) layer = e;
  }
  CHECK(layer["finished"] == true);
  CHECK(layer["done"] == 3 << 20);
}

TEST_CASE("A failed pull reaches herdctl with its message and exit code 1", "[control][image]") {
  Env env;
  env.backend().set_pull(
      {blob("manifest", kConfig, 10, 0)},
      Status::NotFound("pull 127.0.0.1:5000/busybox:nosuch: 127.0.0.1:5000 answered HTTP 404"));
  Run r = herdctl({"--socket", env.sock(), "image", "pull", "127.0.0.1:5000/busybox:nosuch"});
  CHECK(r.code == 1);
  CHECK(contains(r.err, "herdctl: pull 127.0.0.1:5000/busybox:nosuch: 127.0.0.1:5000 answered"));
  CHECK_FALSE(contains(r.out, "pulled"));

  Run j =
      herdctl({"--socket", env.sock(), "image", "pull", "--json", "127.0.0.1:5000/busybox:nosuch"});
  CHECK(j.code == 1);
  std::vector<json> events = json_lines(j.out);
  REQUIRE_FALSE(events.empty());
  CHECK(events.back()["event"] == "error");
  CHECK(events.back()["code"] == "NOT_FOUND");
  CHECK(contains(events.back()["message"].get<std::string>(), "busybox:nosuch"));
}

TEST_CASE("PullImage refuses an empty or overlong reference without asking the Backend",
          "[control][image]") {
  Env env;
  auto stub = stub_for(env.sock());
  for (const std::string& ref : {std::string(), std::string(2000, 'x')}) {
    grpc::ClientContext ctx;
    herd::v1::PullImageRequest req;
    req.set_reference(ref);
    auto reader = stub->PullImage(&ctx, req);
    Stream s = read_all(*reader);
    CHECK(s.status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(s.events.empty());
  }
  CHECK(env.backend().pulls().empty());
  CHECK(env.server()->stats().pulls == 0);
}

TEST_CASE("A PullImage client that reads nothing gets coalesced progress, not a backlog",
          "[control][image]") {
  Env env([](ControlServer::Options& o) { o.pull_pending_blobs = 8; });
  env.backend().hold_pulls(true);
  auto stub = small_window_stub(env.sock());
  grpc::ClientContext ctx;
  herd::v1::PullImageRequest req;
  req.set_reference("busybox:1");
  auto reader = stub->PullImage(&ctx, req);
  REQUIRE(eventually([&] { return env.backend().pulls().size() == 1; }));

  // 3 blobs, 20000 updates each, and 100 more blobs than the table keeps,
  // while the client reads nothing.
  constexpr int kUpdates = 20000;
  for (int i = 1; i <= kUpdates; ++i) {
    for (int b = 0; b < 3; ++b) {
      env.backend().emit_pull(
          0, blob("layer", "sha256:" + std::to_string(b), kUpdates, i, i == kUpdates));
    }
  }
  for (int b = 0; b < 100; ++b) {
    env.backend().emit_pull(0, blob("layer", "sha256:extra" + std::to_string(b), 1, 0));
  }
  env.backend().flush();
  env.backend().finish_pull(0, summary());
  env.backend().flush();

  Stream s = read_all(*reader);
  CHECK(s.status.ok());
  REQUIRE_FALSE(s.events.empty());
  CHECK(s.events.back().has_result());
  // Far fewer events than updates: what gRPC buffered before the writes
  // stopped completing, then the latest state of each waiting blob.
  CHECK(s.events.size() < 5000);
  std::map<std::string, herd::v1::BlobProgress> last;
  for (const auto& e : s.events) {
    if (e.has_progress()) last[e.progress().digest()] = e.progress();
  }
  for (int b = 0; b < 3; ++b) {
    const auto& p = last["sha256:" + std::to_string(b)];
    CHECK(p.finished());
    CHECK(p.done() == kUpdates);
  }
  CHECK(env.backend().cancels() == 0);
  CHECK(eventually([&] { return env.server()->stats().pulls == 0; }));
}

TEST_CASE("A PullImage client that goes away cancels the pull", "[control][image]") {
  Env env;
  env.backend().hold_pulls(true);
  {
    Child c({"--socket", env.sock(), "image", "pull", "busybox:1"});
    REQUIRE(eventually([&] { return env.backend().pulls().size() == 1; }));
    env.backend().emit_pull(0, blob("layer", kLayer, 100, 10));
    c.signal(SIGKILL);
    c.finish();
  }
  CHECK(eventually([&] { return env.backend().cancels() == 1; }));
  CHECK(eventually([&] { return env.server()->stats().pulls == 0; }));

  // A gRPC client's own cancel does the same.
  auto stub = stub_for(env.sock());
  grpc::ClientContext ctx;
  herd::v1::PullImageRequest req;
  req.set_reference("busybox:1");
  auto reader = stub->PullImage(&ctx, req);
  REQUIRE(eventually([&] { return env.backend().pulls().size() == 2; }));
  ctx.TryCancel();
  Stream s = read_all(*reader);
  CHECK(s.status.error_code() == grpc::StatusCode::CANCELLED);
  CHECK(eventually([&] { return env.backend().cancels() == 2; }));
  CHECK(eventually([&] { return env.server()->stats().pulls == 0; }));
}

TEST_CASE("PullImage beyond max_pulls is refused and a slow pull meets herdd's deadline",
          "[control][image]") {
  Env env([](ControlServer::Options& o) {
    o.max_pulls = 1;
    o.pull_deadline = 300ms;
  });
  env.backend().hold_pulls(true);
  auto stub = stub_for(env.sock());
  grpc::ClientContext first;
  herd::v1::PullImageRequest req;
  req.set_reference("busybox:1");
  auto r1 = stub->PullImage(&first, req);
  REQUIRE(eventually([&] { return env.backend().pulls().size() == 1; }));

  Run busy = herdctl({"--socket", env.sock(), "image", "pull", "busybox:2"});
  CHECK(busy.code == 1);
  CHECK(contains(busy.err, "herdd runs at most 1 pulls at once"));
  CHECK(env.backend().pulls().size() == 1);

  Stream s = read_all(*r1);
  CHECK(s.status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED);
  CHECK(contains(s.status.error_message(), "herdd did not complete the pull within 300 ms"));
  CHECK(eventually([&] { return env.backend().cancels() == 1; }));
  CHECK(eventually([&] { return env.server()->stats().pulls == 0; }));
}

TEST_CASE("Shutdown ends a pull in flight with UNAVAILABLE and cancels it", "[control][image]") {
  Env env;
  env.backend().hold_pulls(true);
  auto stub = stub_for(env.sock());
  grpc::ClientContext ctx;
  herd::v1::PullImageRequest req;
  req.set_reference("busybox:1");
  auto reader = stub->PullImage(&ctx, req);
  REQUIRE(eventually([&] { return env.backend().pulls().size() == 1; }));
  env.server()->shutdown();
  Stream s = read_all(*reader);
  CHECK(s.status.error_code() == grpc::StatusCode::UNAVAILABLE);
  CHECK(eventually([&] { return env.backend().cancels() == 1; }));
}

TEST_CASE("herdctl image ls shows names digests sizes and users", "[control][image]") {
  Env env;
  ImageView used;
  used.name = "docker.io/library/busybox:1";
  used.target_digest = "sha256:0123456789abcdef" + std::string(48, '0');
  used.size = 1536 * 1024;
  used.used_by = {"web", "worker"};
  ImageView unused;
  unused.name = "127.0.0.1:5000/etcd:3";
  unused.target_digest = "sha256:fedcba9876543210" + std::string(48, '0');
  env.backend().set_images(std::vector<ImageView>{used, unused});

  Run r = herdctl({"--socket", env.sock(), "image", "ls"});
  CHECK(r.code == 0);
  std::vector<std::string> lines = lines_of(r.out);
  REQUIRE(lines.size() == 3);
  CHECK(lines[0].rfind("NAME", 0) == 0);
  CHECK(contains(lines[0], "DIGEST"));
  CHECK(contains(lines[0], "SIZE"));
  CHECK(contains(lines[0], "USED BY"));
  CHECK(contains(lines[1], "docker.io/library/busybox:1"));
  CHECK(contains(lines[1], "0123456789ab "));
  CHECK(contains(lines[1], "1.50 MiB"));
  CHECK(contains(lines[1], "web,worker"));
  CHECK(contains(lines[2], "127.0.0.1:5000/etcd:3"));
  CHECK(contains(lines[2], " - "));  // size unknown

  Run j = herdctl({"--socket", env.sock(), "image", "ls", "--json"});
  CHECK(j.code == 0);
  json out = json::parse(j.out);
  REQUIRE(out["images"].size() == 2);
  CHECK(out["images"][0]["name"] == "docker.io/library/busybox:1");
  CHECK(out["images"][0]["size"] == 1536 * 1024);
  CHECK(out["images"][0]["used_by"] == json::array({"web", "worker"}));
  CHECK(out["images"][1]["size"].is_null());

  env.backend().set_images(Status::Unavailable("herdd is still waiting for containerd at /x"));
  Run bad = herdctl({"--socket", env.sock(), "image", "ls"});
  CHECK(bad.code == 1);
  CHECK(contains(bad.err, "herdctl: herdd is still waiting for containerd at /x"));
}

TEST_CASE("herdctl image rm and prune report what herdd removed or refused", "[control][image]") {
  Env env;
  env.backend().set_remove(Status::FailedPrecondition(
      "image docker.io/library/busybox:1 is used by component web; change or remove them in the "
      "config first"));
  Run refused = herdctl({"--socket", env.sock(), "image", "rm", "busybox:1"});
  CHECK(refused.code == 1);
  CHECK(contains(refused.err, "is used by component web"));
  CHECK(env.backend().removes() == std::vector<std::string>{"busybox:1"});

  env.backend().set_remove(std::string("127.0.0.1:5000/etcd:3"));
  Run removed = herdctl({"--socket", env.sock(), "image", "rm", "127.0.0.1:5000/etcd:3"});
  CHECK(removed.code == 0);
  CHECK(removed.out == "removed 127.0.0.1:5000/etcd:3\n");

  env.backend().set_prune(std::vector<std::string>{"a:1", "b:2"});
  Run pruned = herdctl({"--socket", env.sock(), "image", "prune"});
  CHECK(pruned.code == 0);
  CHECK(pruned.out == "removed a:1\nremoved b:2\npruned 2 image(s)\n");
  env.backend().set_prune(std::vector<std::string>{});
  Run none = herdctl({"--socket", env.sock(), "image", "prune"});
  CHECK(none.code == 0);
  CHECK(none.out == "no unused images\n");
  CHECK(env.backend().prunes() == 2);

  // A reference longer than herdd takes never reaches the Backend.
  Run long_ref = herdctl({"--socket", env.sock(), "image", "rm", std::string(2000, 'x')});
  CHECK(long_ref.code == 1);
  CHECK(contains(long_ref.err, "longer than the 1024 herdd accepts"));
  CHECK(env.backend().removes().size() == 2);
}

TEST_CASE("On a terminal herdctl image pull redraws one bar per blob in place",
          "[control][image]") {
  Env env;
  env.backend().hold_pulls(true);
  // script(1) gives herdctl a pseudo-terminal as its stdout.
  const std::string cmd = "script -qec '" + std::string(HERDCTL_BINARY) + " --socket " +
                          env.sock() + " image pull busybox:1' /dev/null";
  std::string out;
  int rc = -1;
  std::thread runner([&] {
    FILE* f = ::popen(cmd.c_str(), "r");
    if (f == nullptr) return;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    int st = ::pclose(f);
    rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  });
  bool started = eventually([&] { return env.backend().pulls().size() == 1; });
  if (started) {
    env.backend().emit_pull(0, blob("layer", kLayer, 3 << 20, 1 << 20));
    env.backend().emit_pull(0, blob("config", kConfig, 1000, 1000, true, true));
    env.backend().emit_pull(0, blob("layer", kLayer, 3 << 20, 3 << 20, true));
    env.backend().finish_pull(0, summary());
  }
  runner.join();
  REQUIRE(started);
  INFO(herd::printable(out, 4096));
  CHECK(rc == 0);
  CHECK(contains(out, "\r\x1b[2K"));  // each bar line cleared and rewritten
  CHECK(contains(out, "\x1b[1A"));    // then redrawn from the line above
  CHECK(contains(out, "layer    bbbbbbbbbbbb"));
  CHECK(contains(out, "pulled 127.0.0.1:5000/busybox:1"));
}
