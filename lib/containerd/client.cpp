// The containerd client's channel and calls: Canceller, the shared helpers
// (internal.h), the Client's channel and contexts, and the runtime-side
// services (version, namespaces, containers, tasks, events). The image and
// content store services are in client_store.cpp.
#include "containerd/client.h"

#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <limits>
#include <random>

#include "common/backoff.h"
#include "common/sha256.h"
#include "containerd/bridge.h"
#include "containerd/client_unary.h"
#include "containerd/internal.h"
#include "containerd/stubs.h"

namespace herd::containerd {

namespace cs = ::containerd::services;
using google::protobuf::Empty;

// ---------------------------------------------------------------- Canceller

void Canceller::cancel() {
  std::map<uint64_t, std::function<void()>> fns;
  {
    std::lock_guard lock(mu_);
    cancelled_ = true;
    for (auto* ctx : live_) ctx->TryCancel();
    fns.swap(fns_);
  }
  for (auto& [id, fn] : fns) fn();
}

uint64_t Canceller::on_cancel(std::function<void()> fn) {
  {
    std::lock_guard lock(mu_);
    if (!cancelled_) {
      fns_.emplace(++next_fn_, std::move(fn));
      return next_fn_;
    }
  }
  fn();
  return 0;
}

void Canceller::remove(uint64_t id) {
  std::lock_guard lock(mu_);
  fns_.erase(id);
}

bool Canceller::cancelled() const {
  std::lock_guard lock(mu_);
  return cancelled_;
}

bool Canceller::attach(grpc::ClientContext* ctx) {
  std::lock_guard lock(mu_);
  if (cancelled_) return false;
  live_.insert(ctx);
  return true;
}

void Canceller::detach(grpc::ClientContext* ctx) {
  std::lock_guard lock(mu_);
  live_.erase(ctx);
}

namespace detail {

Status from_grpc(const grpc::Status& s, const std::string& what) {
  auto code = static_cast<Code>(static_cast<int>(s.error_code()));
  std::string msg = what;
  if (!s.error_message().empty()) {
    msg += ": ";
    msg += s.error_message();
  }
  return Status(code, std::move(msg));
}

std::chrono::system_clock::time_point to_time_point(const google::protobuf::Timestamp& ts) {
  // system_clock counts int64 nanoseconds: about 1678..2262. containerd
  // sends Go's zero time (year 1) for "never" (an exec process's exited_at
  // after a kill, say), and a hostile peer anything: outside that range
  // (with a margin for the nanos) the answer is the epoch, "unset".
  constexpr int64_t kMaxSeconds = std::numeric_limits<int64_t>::max() / 1'000'000'000 - 1;
  if (ts.seconds() < -kMaxSeconds || ts.seconds() > kMaxSeconds || ts.nanos() < 0 ||
      ts.nanos() > 999'999'999) {
    return std::chrono::system_clock::time_point{};
  }
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::seconds(ts.seconds()) + std::chrono::nanoseconds(ts.nanos())));
}

std::string random_token() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[20];
  snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

}  // namespace detail

// ---------------------------------------------------------------- helpers

std::string sha256_digest(std::string_view data) { return "sha256:" + sha256_hex(data); }

// ---------------------------------------------------------------- Client

Client::Client(Options options) : options_(std::move(options)) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(16 << 20);
  args.SetMaxSendMessageSize(16 << 20);
  // containerd restarts are short: reconnect quickly instead of gRPC's
  // default 1 s .. 120 s backoff, so a restarted containerd is seen at once.
  // A connect attempt on a unix socket costs microseconds, so 20..100 ms
  // (retry::kChannelReconnect) costs nothing while containerd is down
  // (docs/benchmarks.md, reconcile).
  constexpr CappedExponential kReconnect = retry::kChannelReconnect;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, static_cast<int>(kReconnect.floor.count()));
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, static_cast<int>(kReconnect.floor.count()));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, static_cast<int>(kReconnect.cap.count()));
  channel_ = grpc::CreateCustomChannel("unix://" + options_.address,
                                       grpc::InsecureChannelCredentials(), args);
  stubs_ = std::make_unique<Stubs>(channel_);
}

Client::Client(Options options, std::shared_ptr<grpc::Channel> channel)
    : options_(std::move(options)),
      channel_(std::move(channel)),
      stubs_(std::make_unique<Stubs>(channel_)) {}

Client::~Client() = default;

std::unique_ptr<Client> Client::with_namespace(std::string ns) const {
  Options o = options_;
  o.ns = std::move(ns);
  return std::unique_ptr<Client>(new Client(std::move(o), channel_));
}

std::unique_ptr<grpc::ClientContext> Client::make_context(const CallOptions& o) const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  auto timeout = o.timeout.count() > 0 ? o.timeout : options_.default_timeout;
  ctx->set_deadline(std::chrono::system_clock::now() + timeout);
  ctx->AddMetadata("containerd-namespace", options_.ns);
  if (!o.lease.empty()) ctx->AddMetadata("containerd-lease", o.lease);
  if (o.wait_for_ready) ctx->set_wait_for_ready(true);
  return ctx;
}

std::unique_ptr<grpc::ClientContext> Client::make_stream_context() const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->AddMetadata("containerd-namespace", options_.ns);
  // A stream opened while containerd is down waits for it (its owner
  // cancels it), so it is subscribed the moment containerd is back rather
  // than one resubscribe backoff later.
  ctx->set_wait_for_ready(true);
  return ctx;
}

// ---- version

asio::awaitable<Result<VersionInfo>> Client::version(CallOptions o) {
  Empty req;
  auto r = co_await HERD_UNARY(cs::version::v1::VersionResponse, version, Version, req, o,
                               "version at " + options_.address);
  if (!r.ok()) co_return r.status();
  co_return VersionInfo{r->version(), r->revision()};
}

// ---- namespaces

asio::awaitable<Result<std::vector<std::string>>> Client::namespaces_list(CallOptions o) {
  cs::namespaces::v1::ListNamespacesRequest req;
  auto r = co_await HERD_UNARY(cs::namespaces::v1::ListNamespacesResponse, namespaces, List, req, o,
                               "namespaces.list");
  if (!r.ok()) co_return r.status();
  std::vector<std::string> out;
  for (const auto& n : r->namespaces()) out.push_back(n.name());
  co_return out;
}

asio::awaitable<Status> Client::namespaces_delete(std::string name, CallOptions o) {
  cs::namespaces::v1::DeleteNamespaceRequest req;
  req.set_name(name);
  auto r = co_await HERD_UNARY(Empty, namespaces, Delete, req, o, "namespaces.delete " + name);
  co_return r.ok() ? Status::Ok() : r.status();
}

// ---- containers

asio::awaitable<Result<Container>> Client::containers_create(Container c, CallOptions o) {
  cs::containers::v1::CreateContainerRequest req;
  std::string what = "containers.create " + c.id();
  *req.mutable_container() = std::move(c);
  auto r = co_await HERD_UNARY(cs::containers::v1::CreateContainerResponse, containers, Create, req,
                               o, what);
  if (!r.ok()) co_return r.status();
  co_return std::move(*r->mutable_container());
}

asio::awaitable<Result<Container>> Client::containers_get(std::string id, CallOptions o) {
  cs::containers::v1::GetContainerRequest req;
  req.set_id(id);
  auto r = co_await HERD_UNARY(cs::containers::v1::GetContainerResponse, containers, Get, req, o,
                               "containers.get " + id);
  if (!r.ok()) co_return r.status();
  co_return std::move(*r->mutable_container());
}

asio::awaitable<Result<std::vector<Container>>> Client::containers_list(
    std::vector<std::string> filters, CallOptions o) {
  cs::containers::v1::ListContainersRequest req;
  for (auto& f : filters) req.add_filters(f);
  auto r = co_await HERD_UNARY(cs::containers::v1::ListContainersResponse, containers, List, req, o,
                               "containers.list");
  if (!r.ok()) co_return r.status();
  co_return std::vector<Container>(r->containers().begin(), r->containers().end());
}

asio::awaitable<Result<Container>> Client::containers_update(Container c,
                                                             std::vector<std::string> paths,
                                                             CallOptions o) {
  cs::containers::v1::UpdateContainerRequest req;
  std::string what = "containers.update " + c.id();
  *req.mutable_container() = std::move(c);
  for (auto& p : paths) req.mutable_update_mask()->add_paths(p);
  auto r = co_await HERD_UNARY(cs::containers::v1::UpdateContainerResponse, containers, Update, req,
                               o, what);
  if (!r.ok()) co_return r.status();
  co_return std::move(*r->mutable_container());
}

asio::awaitable<Status> Client::containers_delete(std::string id, CallOptions o) {
  cs::containers::v1::DeleteContainerRequest req;
  req.set_id(id);
  auto r = co_await HERD_UNARY(Empty, containers, Delete, req, o, "containers.delete " + id);
  co_return r.ok() ? Status::Ok() : r.status();
}

// ---- tasks

asio::awaitable<Result<uint32_t>> Client::tasks_create(CreateTaskRequest req, CallOptions o) {
  o.canceller = nullptr;  // never cancelled in flight (client.h)
  std::string what = "tasks.create " + req.container_id();
  auto r = co_await HERD_UNARY(cs::tasks::v1::CreateTaskResponse, tasks, Create, req, o, what);
  if (!r.ok()) co_return r.status();
  co_return r->pid();
}

asio::awaitable<Result<uint32_t>> Client::tasks_start(std::string container_id, CallOptions o) {
  cs::tasks::v1::StartRequest req;
  req.set_container_id(container_id);
  auto r = co_await HERD_UNARY(cs::tasks::v1::StartResponse, tasks, Start, req, o,
                               "tasks.start " + container_id);
  if (!r.ok()) co_return r.status();
  co_return r->pid();
}

asio::awaitable<Result<Process>> Client::tasks_get(std::string container_id, CallOptions o) {
  cs::tasks::v1::GetRequest req;
  req.set_container_id(container_id);
  auto r = co_await HERD_UNARY(cs::tasks::v1::GetResponse, tasks, Get, req, o,
                               "tasks.get " + container_id);
  if (!r.ok()) co_return r.status();
  co_return std::move(*r->mutable_process());
}

asio::awaitable<Result<std::vector<Process>>> Client::tasks_list(std::string filter,
                                                                 CallOptions o) {
  cs::tasks::v1::ListTasksRequest req;
  req.set_filter(filter);
  auto r = co_await HERD_UNARY(cs::tasks::v1::ListTasksResponse, tasks, List, req, o, "tasks.list");
  if (!r.ok()) co_return r.status();
  co_return std::vector<Process>(r->tasks().begin(), r->tasks().end());
}

asio::awaitable<Status> Client::tasks_kill(std::string container_id, uint32_t signal, bool all,
                                           CallOptions o) {
  cs::tasks::v1::KillRequest req;
  req.set_container_id(container_id);
  req.set_signal(signal);
  req.set_all(all);
  auto r = co_await HERD_UNARY(Empty, tasks, Kill, req, o,
                               "tasks.kill " + container_id + " signal " + std::to_string(signal));
  co_return r.ok() ? Status::Ok() : r.status();
}

asio::awaitable<Result<ExitStatus>> Client::tasks_wait(std::string container_id, CallOptions o) {
  cs::tasks::v1::WaitRequest req;
  req.set_container_id(container_id);
  auto r = co_await HERD_UNARY(cs::tasks::v1::WaitResponse, tasks, Wait, req, o,
                               "tasks.wait " + container_id);
  if (!r.ok()) co_return r.status();
  co_return ExitStatus{r->exit_status(), detail::to_time_point(r->exited_at())};
}

asio::awaitable<Result<ExitStatus>> Client::tasks_delete(std::string container_id, CallOptions o) {
  o.canceller = nullptr;  // never cancelled in flight (client.h)
  cs::tasks::v1::DeleteTaskRequest req;
  req.set_container_id(container_id);
  auto r = co_await HERD_UNARY(cs::tasks::v1::DeleteResponse, tasks, Delete, req, o,
                               "tasks.delete " + container_id);
  if (!r.ok()) co_return r.status();
  co_return ExitStatus{r->exit_status(), detail::to_time_point(r->exited_at())};
}

asio::awaitable<Status> Client::exec_create(std::string container_id, std::string exec_id,
                                            std::string process_json, std::string stdout_uri,
                                            std::string stderr_uri, CallOptions o) {
  cs::tasks::v1::ExecProcessRequest req;
  req.set_container_id(container_id);
  req.set_exec_id(exec_id);
  req.set_stdout(stdout_uri);
  req.set_stderr(stderr_uri);
  req.set_terminal(false);
  req.mutable_spec()->set_type_url(kProcessTypeUrl);
  req.mutable_spec()->set_value(std::move(process_json));
  auto r =
      co_await HERD_UNARY(Empty, tasks, Exec, req, o, "tasks.exec " + container_id + " " + exec_id);
  co_return r.ok() ? Status::Ok() : r.status();
}

asio::awaitable<Result<uint32_t>> Client::exec_start(std::string container_id, std::string exec_id,
                                                     CallOptions o) {
  cs::tasks::v1::StartRequest req;
  req.set_container_id(container_id);
  req.set_exec_id(exec_id);
  auto r = co_await HERD_UNARY(cs::tasks::v1::StartResponse, tasks, Start, req, o,
                               "tasks.start " + container_id + " " + exec_id);
  if (!r.ok()) co_return r.status();
  co_return r->pid();
}

asio::awaitable<Result<ExitStatus>> Client::exec_wait(std::string container_id, std::string exec_id,
                                                      CallOptions o) {
  cs::tasks::v1::WaitRequest req;
  req.set_container_id(container_id);
  req.set_exec_id(exec_id);
  auto r = co_await HERD_UNARY(cs::tasks::v1::WaitResponse, tasks, Wait, req, o,
                               "tasks.wait " + container_id + " " + exec_id);
  if (!r.ok()) co_return r.status();
  co_return ExitStatus{r->exit_status(), detail::to_time_point(r->exited_at())};
}

asio::awaitable<Status> Client::exec_kill(std::string container_id, std::string exec_id,
                                          uint32_t signal, CallOptions o) {
  cs::tasks::v1::KillRequest req;
  req.set_container_id(container_id);
  req.set_exec_id(exec_id);
  req.set_signal(signal);
  auto r = co_await HERD_UNARY(
      Empty, tasks, Kill, req, o,
      "tasks.kill " + container_id + " " + exec_id + " signal " + std::to_string(signal));
  co_return r.ok() ? Status::Ok() : r.status();
}

asio::awaitable<Result<Process>> Client::exec_get(std::string container_id, std::string exec_id,
                                                  CallOptions o) {
  cs::tasks::v1::GetRequest req;
  req.set_container_id(container_id);
  req.set_exec_id(exec_id);
  auto r = co_await HERD_UNARY(cs::tasks::v1::GetResponse, tasks, Get, req, o,
                               "tasks.get " + container_id + " " + exec_id);
  if (!r.ok()) co_return r.status();
  co_return std::move(*r->mutable_process());
}

asio::awaitable<Result<std::vector<uint32_t>>> Client::tasks_pids(std::string container_id,
                                                                  CallOptions o) {
  cs::tasks::v1::ListPidsRequest req;
  req.set_container_id(container_id);
  auto r = co_await HERD_UNARY(cs::tasks::v1::ListPidsResponse, tasks, ListPids, req, o,
                               "tasks.list_pids " + container_id);
  if (!r.ok()) co_return r.status();
  std::vector<uint32_t> pids;
  for (const auto& p : r->processes()) pids.push_back(p.pid());
  co_return pids;
}

asio::awaitable<Result<ExitStatus>> Client::exec_delete(std::string container_id,
                                                        std::string exec_id, CallOptions o) {
  cs::tasks::v1::DeleteProcessRequest req;
  req.set_container_id(container_id);
  req.set_exec_id(exec_id);
  auto r = co_await HERD_UNARY(cs::tasks::v1::DeleteResponse, tasks, DeleteProcess, req, o,
                               "tasks.delete_process " + container_id + " " + exec_id);
  if (!r.ok()) co_return r.status();
  co_return ExitStatus{r->exit_status(), detail::to_time_point(r->exited_at())};
}

asio::awaitable<Result<ExitStatus>> Client::tasks_kill_and_delete(std::string container_id,
                                                                  CallOptions o) {
  using namespace std::chrono;
  const auto budget = o.timeout.count() > 0 ? o.timeout : options_.default_timeout;
  const auto deadline = steady_clock::now() + budget;
  auto step = [&] {
    CallOptions s = o;
    s.timeout =
        std::max(milliseconds(1), duration_cast<milliseconds>(deadline - steady_clock::now()));
    return s;
  };

  auto task = co_await tasks_get(container_id, step());
  if (!task.ok() && task.status().is_not_found()) co_return task.status();
  // A task whose shim is gone cannot be queried; go straight to delete.
  if (task.ok() && task->status() != ProcessStatus::STOPPED) {
    Status k = co_await tasks_kill(container_id, SIGKILL, /*all=*/true, step());
    // NotFound: the process finished between get and kill.
    if (!k.ok() && !k.is_not_found()) co_return k;
    auto w = co_await tasks_wait(container_id, step());
    if (!w.ok() && !w.status().is_not_found()) co_return w.status();
  }
  co_return co_await tasks_delete(container_id, step());
}

// ---- events

asio::awaitable<Status> Client::events_publish(std::string topic, std::string type_url,
                                               std::string value, CallOptions o) {
  cs::events::v1::PublishRequest req;
  req.set_topic(topic);
  req.mutable_event()->set_type_url(std::move(type_url));
  req.mutable_event()->set_value(std::move(value));
  auto r = co_await HERD_UNARY(Empty, events, Publish, req, o, "events.publish " + topic);
  co_return r.ok() ? Status::Ok() : r.status();
}

#undef HERD_UNARY

}  // namespace herd::containerd
