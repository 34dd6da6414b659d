// ControlServer: assembles the pieces (socket.h, service.h, watch.h,
// calls.h) and owns them; see server.h for the contract.
#include "control/server.h"

#include <unistd.h>

#include <mutex>
#include <utility>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include "control/calls.h"
#include "control/service.h"
#include "control/socket.h"

namespace herd::control {

static_assert(static_cast<int>(Code::kNotFound) == grpc::StatusCode::NOT_FOUND);
static_assert(static_cast<int>(Code::kPermissionDenied) == grpc::StatusCode::PERMISSION_DENIED);
static_assert(static_cast<int>(Code::kResourceExhausted) == grpc::StatusCode::RESOURCE_EXHAUSTED);
static_assert(static_cast<int>(Code::kUnauthenticated) == grpc::StatusCode::UNAUTHENTICATED);
static_assert(static_cast<int>(Code::kDataLoss) == grpc::StatusCode::DATA_LOSS);

int to_grpc_code(Code code) { return static_cast<int>(code); }

using namespace internal;

struct ControlServer::Impl {
  Options options;
  UniqueFd lock;
  std::shared_ptr<Tracker> tracker = std::make_shared<Tracker>();
  std::shared_ptr<Deadlines> deadlines = std::make_shared<Deadlines>();
  std::unique_ptr<DeadlineThread> deadline_thread;
  std::shared_ptr<Slots> watchers;
  std::shared_ptr<Slots> imports;
  std::shared_ptr<Slots> pulls;
  std::shared_ptr<DenyBook> book = std::make_shared<DenyBook>();
  // Services before servers: a server is destroyed before its service.
  std::unique_ptr<Service> service;
  std::unique_ptr<DenyService> deny_service;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<grpc::Server> deny_server;
  std::shared_ptr<Listener> listener;
  bool socket_bound = false;

  std::mutex mu;
  bool shut = false;

  void shutdown() {
    {
      std::lock_guard<std::mutex> l(mu);
      if (shut) return;
      shut = true;
    }
    if (listener) listener->close();
    if (socket_bound) ::unlink(options.socket_path.c_str());
    std::vector<std::shared_ptr<Abortable>> calls = tracker->close();
    for (const auto& c : calls) c->abort(shutting_down());
    auto deadline = std::chrono::system_clock::now() + options.shutdown_grace;
    if (server) server->Shutdown(deadline);
    if (deny_server) deny_server->Shutdown(deadline);
    for (const auto& c : calls) c->release();
    deadline_thread.reset();  // joins it; no call is left to time out
    lock.reset();             // releases the flock
  }
};

ControlServer::ControlServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ControlServer::~ControlServer() {
  if (impl_) impl_->shutdown();
}

void ControlServer::shutdown() { impl_->shutdown(); }

const std::string& ControlServer::socket_path() const { return impl_->options.socket_path; }

ControlServer::Stats ControlServer::stats() const {
  Stats s;
  if (impl_->listener) {
    ListenerStats l = impl_->listener->stats();
    s.open_connections = l.open_connections;
    s.accepted_connections = l.accepted;
    s.refused_connections = l.refused_connections;
    s.accept_failures = l.accept_failures;
  }
  s.watchers = impl_->watchers->used();
  s.imports = impl_->imports->used();
  s.pulls = impl_->pulls->used();
  s.pending_deadlines = impl_->deadlines->pending();
  return s;
}

Result<std::unique_ptr<ControlServer>> ControlServer::start(asio::any_io_executor executor,
                                                            Options options, Backend& backend) {
  auto impl = std::make_unique<Impl>();
  const std::string path = options.socket_path;
  impl->options = std::move(options);
  const Options& o = impl->options;
  impl->watchers = std::make_shared<Slots>(o.max_watchers);
  impl->imports = std::make_shared<Slots>(o.max_imports);
  impl->pulls = std::make_shared<Slots>(o.max_pulls);

  Policy policy;
  policy.euid = ::geteuid();
  if (o.group && !o.group->empty()) {
    Result<GroupInfo> g = resolve_group(*o.group);
    if (!g.ok()) return g.status();
    policy.group = *g;
  }

  if (Status s = ensure_parent_dir(path); !s.ok()) return s;
  Result<UniqueFd> lock = take_lock(path);
  if (!lock.ok()) return lock.status();
  impl->lock = std::move(lock).value();
  // From here on a failure releases the lock with impl.
  if (Status s = clear_stale(path); !s.ok()) return s;
  Result<UniqueFd> sock = bind_socket(path, policy.group);
  if (!sock.ok()) return sock.status();
  impl->socket_bound = true;
  auto fail = [&](Status s) -> Result<std::unique_ptr<ControlServer>> {
    impl->shutdown();
    return s;
  };

  impl->deadline_thread = std::make_unique<DeadlineThread>(impl->deadlines);
  ServiceConfig sc;
  sc.backend = &backend;
  sc.tracker = impl->tracker;
  sc.deadlines = impl->deadlines;
  sc.watchers = impl->watchers;
  sc.imports = impl->imports;
  sc.pulls = impl->pulls;
  sc.watch_queue_limit = o.watch_queue_limit;
  sc.pull_pending_blobs = o.pull_pending_blobs;
  sc.call_deadline = o.call_deadline;
  sc.import_deadline = o.import_deadline;
  sc.pull_deadline = o.pull_deadline;
  sc.import_dir = o.import_dir;
  sc.import_max_bytes = o.import_max_bytes;
  impl->service = std::make_unique<Service>(std::move(sc));
  // Both servers take the same bounds: a denied peer's messages are
  // refused as early.
  auto bounded = [](grpc::ServerBuilder& b) {
    b.SetMaxReceiveMessageSize(static_cast<int>(kMaxReceiveMessageBytes));
    b.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, kMaxStreamsPerConnection);
  };
  {
    grpc::ServerBuilder builder;
    bounded(builder);
    builder.RegisterService(impl->service.get());
    impl->server = builder.BuildAndStart();
  }
  impl->deny_service = std::make_unique<DenyService>(impl->book);
  {
    grpc::ServerBuilder builder;
    bounded(builder);
    builder.RegisterCallbackGenericService(impl->deny_service.get());
    impl->deny_server = builder.BuildAndStart();
  }
  if (!impl->server || !impl->deny_server) {
    return fail(Status::Internal("control: cannot start the gRPC servers"));
  }

  impl->listener = std::make_shared<Listener>(
      executor, policy, o.max_connections, impl->server.get(), impl->deny_server.get(), impl->book);
  if (Status s = impl->listener->start(std::move(sock).value()); !s.ok()) return fail(s);

  spdlog::info(
      "control: serving {} (mode 0660, group {}; at most {} connections, {} watchers, "
      "{} imports, {} pulls)",
      path, policy.group ? policy.group->display : std::string("of herdd"), o.max_connections,
      o.max_watchers, o.max_imports, o.max_pulls);
  return std::unique_ptr<ControlServer>(new ControlServer(std::move(impl)));
}

}  // namespace herd::control
