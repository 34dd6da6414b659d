// herd::containerd::EventStream: one live subscription to containerd's
// event stream, with automatic resubscription and explicit gap reports.
//
// The stream subscribes with the given filters (plus its own sync topic),
// decodes task events (TaskCreate/Start/Exit/OOM/Delete, which containerd
// sends with *bare* type_urls such as "containerd.events.TaskExit") and
// hands them to Handlers::on_event on the stream's executor.
//
// Knowing that a subscription is live: gRPC cannot tell when containerd has
// registered a subscriber, so after every (re)subscribe the stream publishes
// a sync event with a fresh nonce on topic /herd/sync (repeating with
// backoff) until it reads that event back. Only then does it report
// on_live(first): `first` true for the very first subscription, false after
// a break. A report with first == false is the GAP notification: events
// published between on_down and now are lost, and the caller must re-list
// tasks and reconcile. Because the report comes only once the new
// subscription is proven live, a reconcile started from it misses nothing.
//
// The sync publishes go out 10 ms, 20 ms, 40 ms ... apart, at most 500 ms
// (retry::kEventsSync), each with a 1 s deadline (retry::kEventsSyncCall).
//
// When the stream breaks (containerd restarted, connection lost, sync not
// seen within sync_timeout), on_down(status) is reported once and the
// stream resubscribes after a backoff that doubles from backoff_min to
// backoff_max (defaults: retry::kEventsResubscribe, 50 ms to 2 s); it
// starts over at backoff_min once a subscription is live again.
//
// Strand: every handler runs on `executor`; start() and stop() must be
// called on it too. After stop() returns no handler runs again.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/asio.h"
#include "common/backoff.h"
#include "common/status.h"

namespace herd::containerd {

class Client;

struct TaskEvent {
  enum class Kind { kCreate, kStart, kExit, kOOM, kDelete };
  Kind kind = Kind::kExit;
  std::string topic;  // e.g. "/tasks/exit"
  std::string ns;     // namespace of the envelope
  std::string container_id;
  std::string exec_id;  // == container_id for the init process (exit)
  uint32_t pid = 0;
  uint32_t exit_status = 0;                           // exit and delete
  std::chrono::system_clock::time_point exited_at{};  // exit and delete
  std::chrono::system_clock::time_point published{};  // envelope timestamp
  std::chrono::steady_clock::time_point received{};   // when herd read it
};

std::string_view to_string(TaskEvent::Kind kind);

// Decodes one envelope's event (bare or prefixed type_url). Returns
// kNotFound for event types herd does not decode, kDataLoss for a
// malformed value.
Result<TaskEvent> decode_task_event(std::string_view type_url, std::string_view value);

class EventStream : public std::enable_shared_from_this<EventStream> {
 public:
  struct Options {
    // containerd filter expressions, e.g. `topic~="/tasks/",namespace=="herd"`;
    // several are OR-ed. Empty: every task topic of the client's namespace.
    std::vector<std::string> filters;
    // Resubscribe delays: backoff_min doubling to at most backoff_max (a
    // backoff_min above backoff_max waits backoff_max).
    std::chrono::milliseconds backoff_min = retry::kEventsResubscribe.floor;
    std::chrono::milliseconds backoff_max = retry::kEventsResubscribe.cap;
    // How long a new subscription may take to prove itself live.
    std::chrono::milliseconds sync_timeout = retry::kEventsSyncTimeout;
  };
  struct Handlers {
    std::function<void(const TaskEvent&)> on_event;
    std::function<void(bool first)> on_live;  // first == false: a gap, reconcile
    std::function<void(const Status&)> on_down;
  };

  static std::shared_ptr<EventStream> create(Client& client, asio::any_io_executor executor,
                                             Options options, Handlers handlers);
  ~EventStream();

  void start();
  void stop();

  bool live() const { return live_; }
  // How many times the stream has gone down since start().
  uint64_t breaks() const { return breaks_; }

 private:
  struct Call;
  friend struct Call;
  EventStream(Client& client, asio::any_io_executor executor, Options options, Handlers handlers);

  void subscribe();
  void on_envelope(uint64_t generation, std::string topic, std::string ns, std::string type_url,
                   std::string value, std::chrono::system_clock::time_point published);
  void on_call_done(uint64_t generation, Status status);
  // Sync publish number `attempt` (1-based) of subscription `generation`;
  // the next one follows retry::kEventsSync.delay(attempt) later.
  void send_sync(uint64_t generation, uint32_t attempt);
  void broken(Status status);

  Client& client_;
  asio::any_io_executor executor_;
  Options options_;
  Handlers handlers_;
  asio::steady_timer retry_timer_;
  asio::steady_timer sync_timer_;
  asio::steady_timer sync_deadline_;
  std::shared_ptr<Call> call_;
  uint64_t generation_ = 0;
  std::string nonce_;
  bool stopped_ = true;
  bool live_ = false;
  bool ever_live_ = false;
  uint64_t breaks_ = 0;
  Backoff resubscribe_;  // options_.backoff_min .. backoff_max
};

}  // namespace herd::containerd
