#include "raw_client.h"

#include <ctime>
#include <random>

#include "github.com/containerd/containerd/api/events/task.pb.h"

namespace bench {

namespace cs = ::containerd::services;
using namespace std::chrono_literals;

RawClient::RawClient(const std::string& address, std::string ns) : ns_(std::move(ns)) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(16 << 20);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 20);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 20);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 200);
  channel_ =
      grpc::CreateCustomChannel("unix://" + address, grpc::InsecureChannelCredentials(), args);
  containers_ = cs::containers::v1::Containers::NewStub(channel_);
  events_ = cs::events::v1::Events::NewStub(channel_);
  leases_ = cs::leases::v1::Leases::NewStub(channel_);
  snapshots_ = cs::snapshots::v1::Snapshots::NewStub(channel_);
  tasks_ = cs::tasks::v1::Tasks::NewStub(channel_);
  version_ = cs::version::v1::Version::NewStub(channel_);
}

RawClient::~RawClient() { unsubscribe(); }

std::unique_ptr<grpc::ClientContext> RawClient::ctx(std::chrono::milliseconds timeout) const {
  auto c = std::make_unique<grpc::ClientContext>();
  c->AddMetadata("containerd-namespace", ns_);
  if (!lease_.empty()) c->AddMetadata("containerd-lease", lease_);
  c->set_deadline(std::chrono::system_clock::now() + timeout);
  return c;
}

grpc::Status RawClient::version(std::string* version) {
  google::protobuf::Empty req;
  cs::version::v1::VersionResponse resp;
  auto c = ctx(2s);
  auto s = version_->Version(c.get(), req, &resp);
  if (s.ok() && version) *version = resp.version();
  return s;
}

grpc::Status RawClient::container_get(const std::string& id, RawContainer* out) {
  cs::containers::v1::GetContainerRequest req;
  req.set_id(id);
  cs::containers::v1::GetContainerResponse resp;
  auto c = ctx(10s);
  auto s = containers_->Get(c.get(), req, &resp);
  if (s.ok()) *out = resp.container();
  return s;
}

grpc::Status RawClient::container_create(const RawContainer& container) {
  cs::containers::v1::CreateContainerRequest req;
  *req.mutable_container() = container;
  cs::containers::v1::CreateContainerResponse resp;
  auto c = ctx(30s);
  return containers_->Create(c.get(), req, &resp);
}

grpc::Status RawClient::container_delete(const std::string& id) {
  cs::containers::v1::DeleteContainerRequest req;
  req.set_id(id);
  google::protobuf::Empty resp;
  auto c = ctx(30s);
  return containers_->Delete(c.get(), req, &resp);
}

grpc::Status RawClient::container_ids(std::vector<std::string>* ids) {
  cs::containers::v1::ListContainersRequest req;
  cs::containers::v1::ListContainersResponse resp;
  auto c = ctx(30s);
  auto s = containers_->List(c.get(), req, &resp);
  if (s.ok())
    for (const auto& x : resp.containers()) ids->push_back(x.id());
  return s;
}

grpc::Status RawClient::snapshot_parent(const std::string& snapshotter, const std::string& key,
                                        std::string* parent) {
  cs::snapshots::v1::StatSnapshotRequest req;
  req.set_snapshotter(snapshotter);
  req.set_key(key);
  cs::snapshots::v1::StatSnapshotResponse resp;
  auto c = ctx(10s);
  auto s = snapshots_->Stat(c.get(), req, &resp);
  if (s.ok()) *parent = resp.info().parent();
  return s;
}

grpc::Status RawClient::snapshot_prepare(const std::string& snapshotter, const std::string& key,
                                         const std::string& parent, Mounts* mounts) {
  cs::snapshots::v1::PrepareSnapshotRequest req;
  req.set_snapshotter(snapshotter);
  req.set_key(key);
  req.set_parent(parent);
  cs::snapshots::v1::PrepareSnapshotResponse resp;
  auto c = ctx(30s);
  auto s = snapshots_->Prepare(c.get(), req, &resp);
  if (s.ok()) mounts->assign(resp.mounts().begin(), resp.mounts().end());
  return s;
}

grpc::Status RawClient::snapshot_mounts(const std::string& snapshotter, const std::string& key,
                                        Mounts* mounts) {
  cs::snapshots::v1::MountsRequest req;
  req.set_snapshotter(snapshotter);
  req.set_key(key);
  cs::snapshots::v1::MountsResponse resp;
  auto c = ctx(10s);
  auto s = snapshots_->Mounts(c.get(), req, &resp);
  if (s.ok()) mounts->assign(resp.mounts().begin(), resp.mounts().end());
  return s;
}

grpc::Status RawClient::snapshot_remove(const std::string& snapshotter, const std::string& key) {
  cs::snapshots::v1::RemoveSnapshotRequest req;
  req.set_snapshotter(snapshotter);
  req.set_key(key);
  google::protobuf::Empty resp;
  auto c = ctx(30s);
  return snapshots_->Remove(c.get(), req, &resp);
}

grpc::Status RawClient::task_create(const std::string& id, const Mounts& rootfs,
                                    const std::string& output_uri, uint32_t* pid) {
  cs::tasks::v1::CreateTaskRequest req;
  req.set_container_id(id);
  for (const auto& m : rootfs) *req.add_rootfs() = m;
  req.set_stdout(output_uri);
  req.set_stderr(output_uri);
  cs::tasks::v1::CreateTaskResponse resp;
  auto c = ctx(60s);
  auto s = tasks_->Create(c.get(), req, &resp);
  if (s.ok() && pid) *pid = resp.pid();
  return s;
}

grpc::Status RawClient::task_start(const std::string& id, uint32_t* pid) {
  cs::tasks::v1::StartRequest req;
  req.set_container_id(id);
  cs::tasks::v1::StartResponse resp;
  auto c = ctx(60s);
  auto s = tasks_->Start(c.get(), req, &resp);
  if (s.ok() && pid) *pid = resp.pid();
  return s;
}

grpc::Status RawClient::task_delete(const std::string& id) {
  cs::tasks::v1::DeleteTaskRequest req;
  req.set_container_id(id);
  cs::tasks::v1::DeleteResponse resp;
  auto c = ctx(30s);
  return tasks_->Delete(c.get(), req, &resp);
}

grpc::Status RawClient::task_kill(const std::string& id, uint32_t signal, bool all) {
  cs::tasks::v1::KillRequest req;
  req.set_container_id(id);
  req.set_signal(signal);
  req.set_all(all);
  google::protobuf::Empty resp;
  auto c = ctx(10s);
  return tasks_->Kill(c.get(), req, &resp);
}

grpc::Status RawClient::task_wait(const std::string& id, std::chrono::milliseconds timeout) {
  cs::tasks::v1::WaitRequest req;
  req.set_container_id(id);
  cs::tasks::v1::WaitResponse resp;
  auto c = ctx(timeout);
  return tasks_->Wait(c.get(), req, &resp);
}

grpc::Status RawClient::task_pid(const std::string& id, uint32_t* pid, bool* running) {
  cs::tasks::v1::GetRequest req;
  req.set_container_id(id);
  cs::tasks::v1::GetResponse resp;
  auto c = ctx(10s);
  auto s = tasks_->Get(c.get(), req, &resp);
  if (s.ok()) {
    *pid = resp.process().pid();
    *running = resp.process().status() == ::containerd::v1::types::Status::RUNNING;
  }
  return s;
}

grpc::Status RawClient::publish(const std::string& topic, const std::string& value) {
  cs::events::v1::PublishRequest req;
  req.set_topic(topic);
  req.mutable_event()->set_type_url("bench.Sync");
  req.mutable_event()->set_value(value);
  google::protobuf::Empty resp;
  auto c = ctx(5s);
  return events_->Publish(c.get(), req, &resp);
}

grpc::Status RawClient::lease_create(std::string* id) {
  cs::leases::v1::CreateRequest req;
  std::random_device rd;
  req.set_id("bench-" + std::to_string(rd()) + std::to_string(rd()));
  // RFC 3339, UTC: containerd's garbage collector drops the lease then.
  const std::time_t expire =
      std::chrono::system_clock::to_time_t(std::chrono::system_clock::now() + 1h);
  std::tm utc{};
  gmtime_r(&expire, &utc);
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &utc);
  (*req.mutable_labels())["containerd.io/gc.expire"] = when;
  cs::leases::v1::CreateResponse resp;
  auto c = ctx(10s);
  auto s = leases_->Create(c.get(), req, &resp);
  if (s.ok()) *id = resp.lease().id();
  return s;
}

grpc::Status RawClient::lease_delete(const std::string& id) {
  cs::leases::v1::DeleteRequest req;
  req.set_id(id);
  google::protobuf::Empty resp;
  auto c = ctx(30s);
  return leases_->Delete(c.get(), req, &resp);
}

void RawClient::remove_all(const std::string& id, const std::string& snapshotter) {
  uint32_t pid = 0;
  bool running = false;
  if (task_pid(id, &pid, &running).ok()) {
    if (running) {
      (void)task_kill(id, 9, true);
      (void)task_wait(id, 10s);
    }
    for (int i = 0; i < 50 && !task_delete(id).ok(); ++i) {
      uint32_t p;
      bool r;
      if (task_pid(id, &p, &r).error_code() == grpc::StatusCode::NOT_FOUND) break;
      std::this_thread::sleep_for(50ms);
    }
  }
  (void)container_delete(id);
  (void)snapshot_remove(snapshotter, id);
}

bool RawClient::subscribe(std::function<void(const ExitSeen&)> on_exit,
                          std::chrono::milliseconds timeout) {
  unsubscribe();
  on_exit_ = std::move(on_exit);
  synced_ = false;
  std::random_device rd;
  sync_nonce_ = std::to_string(rd()) + "-" + std::to_string(rd());
  sub_ctx_ = std::make_unique<grpc::ClientContext>();
  sub_ctx_->AddMetadata("containerd-namespace", ns_);
  cs::events::v1::SubscribeRequest req;
  req.add_filters("topic==\"/tasks/exit\",namespace==\"" + ns_ + "\"");
  req.add_filters("topic==\"/bench/sync\",namespace==\"" + ns_ + "\"");
  reader_ = events_->Subscribe(sub_ctx_.get(), req);
  reader_thread_ = std::thread([this] { read_loop(); });
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (!synced_ && std::chrono::steady_clock::now() < until) {
    (void)publish("/bench/sync", sync_nonce_);
    for (int i = 0; i < 20 && !synced_; ++i) std::this_thread::sleep_for(5ms);
  }
  return synced_;
}

void RawClient::unsubscribe() {
  if (sub_ctx_) sub_ctx_->TryCancel();
  if (reader_thread_.joinable()) reader_thread_.join();
  if (reader_) (void)reader_->Finish();
  reader_.reset();
  sub_ctx_.reset();
}

void RawClient::read_loop() {
  cs::events::v1::Envelope env;
  while (reader_->Read(&env)) {
    const auto now = SysClock::now();
    if (env.topic() == "/bench/sync") {
      if (env.event().value() == sync_nonce_) synced_ = true;
      continue;
    }
    if (env.topic() != "/tasks/exit") continue;
    ::containerd::events::TaskExit exit;
    if (!exit.ParseFromString(env.event().value())) continue;
    if (exit.id() != exit.container_id()) continue;  // an exec, not init
    ExitSeen e;
    e.container_id = exit.container_id();
    e.pid = exit.pid();
    e.exit_status = exit.exit_status();
    e.received = now;
    e.published = SysClock::time_point(std::chrono::duration_cast<SysClock::duration>(
        std::chrono::seconds(env.timestamp().seconds()) +
        std::chrono::nanoseconds(env.timestamp().nanos())));
    if (on_exit_) on_exit_(e);
  }
}

}  // namespace bench
