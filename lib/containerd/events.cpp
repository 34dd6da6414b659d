#include "containerd/events.h"

#include <grpcpp/grpcpp.h>

#include "containerd/bridge.h"
#include "containerd/client.h"
#include "containerd/internal.h"
#include "containerd/stubs.h"
#include "github.com/containerd/containerd/api/events/task.pb.h"

namespace herd::containerd {

namespace ev = ::containerd::events;
using Envelope = ::containerd::services::events::v1::Envelope;

namespace {

constexpr char kSyncTopic[] = "/herd/sync";
constexpr char kSyncTypeUrl[] = "herd.events.Sync";

}  // namespace

std::string_view to_string(TaskEvent::Kind kind) {
  switch (kind) {
    case TaskEvent::Kind::kCreate:
      return "create";
    case TaskEvent::Kind::kStart:
      return "start";
    case TaskEvent::Kind::kExit:
      return "exit";
    case TaskEvent::Kind::kOOM:
      return "oom";
    case TaskEvent::Kind::kDelete:
      return "delete";
  }
  return "unknown";
}

Result<TaskEvent> decode_task_event(std::string_view type_url, std::string_view value) {
  // containerd sends bare names ("containerd.events.TaskExit"); accept a
  // prefixed form ("types.../containerd.events.TaskExit") as well.
  auto slash = type_url.rfind('/');
  std::string_view name = slash == std::string_view::npos ? type_url : type_url.substr(slash + 1);
  TaskEvent e;
  auto parse = [&](google::protobuf::Message& m) -> Status {
    if (!m.ParseFromArray(value.data(), static_cast<int>(value.size())))
      return Status::DataLoss("malformed " + std::string(name));
    return Status::Ok();
  };
  if (name == "containerd.events.TaskExit") {
    ev::TaskExit m;
    if (auto s = parse(m); !s.ok()) return s;
    e.kind = TaskEvent::Kind::kExit;
    e.container_id = m.container_id();
    e.exec_id = m.id();
    e.pid = m.pid();
    e.exit_status = m.exit_status();
    e.exited_at = detail::to_time_point(m.exited_at());
  } else if (name == "containerd.events.TaskStart") {
    ev::TaskStart m;
    if (auto s = parse(m); !s.ok()) return s;
    e.kind = TaskEvent::Kind::kStart;
    e.container_id = m.container_id();
    e.pid = m.pid();
  } else if (name == "containerd.events.TaskCreate") {
    ev::TaskCreate m;
    if (auto s = parse(m); !s.ok()) return s;
    e.kind = TaskEvent::Kind::kCreate;
    e.container_id = m.container_id();
    e.pid = m.pid();
  } else if (name == "containerd.events.TaskOOM") {
    ev::TaskOOM m;
    if (auto s = parse(m); !s.ok()) return s;
    e.kind = TaskEvent::Kind::kOOM;
    e.container_id = m.container_id();
  } else if (name == "containerd.events.TaskDelete") {
    ev::TaskDelete m;
    if (auto s = parse(m); !s.ok()) return s;
    e.kind = TaskEvent::Kind::kDelete;
    e.container_id = m.container_id();
    e.exec_id = m.id();
    e.pid = m.pid();
    e.exit_status = m.exit_status();
    e.exited_at = detail::to_time_point(m.exited_at());
  } else {
    return Status::NotFound("event type " + std::string(type_url) + " is not decoded");
  }
  return e;
}

// One Events.Subscribe call. It lives until gRPC reports OnDone (it holds
// itself alive until then); the EventStream holds it to cancel it. Every
// message is posted to the stream's executor tagged with its generation,
// so messages of an abandoned call are dropped there.
struct EventStream::Call : grpc::ClientReadReactor<Envelope> {
  std::unique_ptr<grpc::ClientContext> ctx;
  ::containerd::services::events::v1::SubscribeRequest req;
  Envelope env;
  std::weak_ptr<EventStream> stream;
  asio::any_io_executor executor;
  uint64_t generation = 0;
  std::shared_ptr<Call> self;  // handed to the loop in OnDone

  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows
    asio::post(executor, [w = stream, g = generation, topic = std::move(*env.mutable_topic()),
                          ns = std::move(*env.mutable_namespace_()),
                          type_url = std::move(*env.mutable_event()->mutable_type_url()),
                          value = std::move(*env.mutable_event()->mutable_value()),
                          published = detail::to_time_point(env.timestamp())]() mutable {
      if (auto s = w.lock())
        s->on_envelope(g, std::move(topic), std::move(ns), std::move(type_url), std::move(value),
                       published);
    });
    env.Clear();
    StartRead(&env);
  }

  void OnDone(const grpc::Status& s) override {
    Status st = s.ok() ? Status::Unavailable("events stream ended")
                       : detail::from_grpc(s, "events.subscribe");
    // This call's last reference (unless the stream still holds it) goes
    // to the loop with the report: its ClientContext holds the channel,
    // which must not be released on a gRPC thread (bridge.h,
    // complete_on_handler_executor).
    asio::post(executor, [w = stream, g = generation, st, keep = std::move(self)]() mutable {
      if (auto strm = w.lock()) strm->on_call_done(g, st);
      keep.reset();
    });
  }
};

std::shared_ptr<EventStream> EventStream::create(Client& client, asio::any_io_executor executor,
                                                 Options options, Handlers handlers) {
  return std::shared_ptr<EventStream>(
      new EventStream(client, std::move(executor), std::move(options), std::move(handlers)));
}

EventStream::EventStream(Client& client, asio::any_io_executor executor, Options options,
                         Handlers handlers)
    : client_(client),
      executor_(executor),
      options_(std::move(options)),
      handlers_(std::move(handlers)),
      retry_timer_(executor),
      sync_timer_(executor),
      sync_deadline_(executor),
      resubscribe_(CappedExponential{options_.backoff_min, options_.backoff_max}) {
  if (options_.filters.empty())
    options_.filters.push_back("topic~=\"/tasks/\",namespace==\"" + client_.ns() + "\"");
  options_.filters.push_back("topic==\"" + std::string(kSyncTopic) + "\",namespace==\"" +
                             client_.ns() + "\"");
}

EventStream::~EventStream() {
  if (call_) call_->ctx->TryCancel();
}

void EventStream::start() {
  if (!stopped_) return;
  stopped_ = false;
  ever_live_ = false;
  resubscribe_.reset();
  subscribe();
}

void EventStream::stop() {
  stopped_ = true;
  live_ = false;
  ++generation_;
  retry_timer_.cancel();
  sync_timer_.cancel();
  sync_deadline_.cancel();
  if (call_) call_->ctx->TryCancel();
  call_.reset();
}

void EventStream::subscribe() {
  if (stopped_) return;
  const uint64_t gen = ++generation_;
  live_ = false;
  nonce_ = detail::random_token();

  auto call = std::make_shared<Call>();
  call->ctx = client_.make_stream_context();
  for (const auto& f : options_.filters) call->req.add_filters(f);
  call->stream = weak_from_this();
  // Tracked: the io_context keeps running until the call has completed,
  // so OnDone never posts into a finished io_context.
  call->executor = asio::prefer(executor_, asio::execution::outstanding_work.tracked);
  call->generation = gen;
  call->self = call;
  call_ = call;
  client_.stubs().events->async()->Subscribe(call->ctx.get(), &call->req, call.get());
  call->StartRead(&call->env);
  call->StartCall();

  // Prove the subscription live within sync_timeout, or start over.
  sync_deadline_.expires_after(options_.sync_timeout);
  sync_deadline_.async_wait([w = weak_from_this(), gen](boost::system::error_code ec) {
    auto s = w.lock();
    if (ec || !s || s->generation_ != gen || s->live_) return;
    s->broken(Status::DeadlineExceeded("events.subscribe: subscription not live within " +
                                       std::to_string(s->options_.sync_timeout.count()) + "ms"));
  });
  send_sync(gen, 1);
}

void EventStream::send_sync(uint64_t gen, uint32_t attempt) {
  if (stopped_ || generation_ != gen || live_) return;
  auto self = shared_from_this();
  CallOptions o;
  o.timeout = retry::kEventsSyncCall;
  o.wait_for_ready = true;  // goes out the moment the channel is up again
  asio::co_spawn(
      executor_,
      [self, o, nonce = nonce_]() -> asio::awaitable<void> {
        // A failure is not fatal: the next attempt or the sync deadline
        // decides.
        (void)co_await self->client_.events_publish(kSyncTopic, kSyncTypeUrl, nonce, o);
      },
      // Nothing here throws; were it to, the sync deadline still decides.
      [](std::exception_ptr) {});
  sync_timer_.expires_after(retry::kEventsSync.delay(attempt));
  sync_timer_.async_wait([w = weak_from_this(), gen, attempt](boost::system::error_code ec) {
    auto s = w.lock();
    if (ec || !s) return;
    s->send_sync(gen, attempt + 1);
  });
}

void EventStream::on_envelope(uint64_t gen, std::string topic, std::string ns, std::string type_url,
                              std::string value, std::chrono::system_clock::time_point published) {
  if (stopped_ || gen != generation_) return;
  if (topic == kSyncTopic) {
    if (live_ || value != nonce_) return;  // another subscriber's, or a repeat
    live_ = true;
    sync_timer_.cancel();
    sync_deadline_.cancel();
    resubscribe_.reset();
    const bool first = !ever_live_;
    ever_live_ = true;
    if (handlers_.on_live) handlers_.on_live(first);
    return;
  }
  auto decoded = decode_task_event(type_url, value);
  if (!decoded.ok()) return;  // a topic herd does not decode
  decoded->topic = std::move(topic);
  decoded->ns = std::move(ns);
  decoded->published = published;
  decoded->received = std::chrono::steady_clock::now();
  if (handlers_.on_event) handlers_.on_event(*decoded);
}

void EventStream::on_call_done(uint64_t gen, Status status) {
  if (stopped_ || gen != generation_) return;
  broken(std::move(status));
}

void EventStream::broken(Status status) {
  ++generation_;  // drop whatever the old call still delivers
  live_ = false;
  ++breaks_;
  sync_timer_.cancel();
  sync_deadline_.cancel();
  if (call_) call_->ctx->TryCancel();
  call_.reset();
  if (handlers_.on_down) handlers_.on_down(status);
  if (stopped_) return;  // on_down may have stopped us
  retry_timer_.expires_after(resubscribe_.next());
  retry_timer_.async_wait([w = weak_from_this()](boost::system::error_code ec) {
    auto s = w.lock();
    if (ec || !s || s->stopped_) return;
    s->subscribe();
  });
}

}  // namespace herd::containerd
