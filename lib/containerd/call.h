// Per-call options for every containerd RPC: a deadline, the lease the call
// belongs to, and an optional Canceller that aborts it.
//
// Contract: every unary call made through herd::containerd::Client has a
// deadline (CallOptions::timeout, or the client's default when zero); a
// Canceller, once cancel()ed, aborts every call attached to it that is in
// flight and fails every later one at once with Code::kCancelled.
//
// Thread-safety: Canceller is safe to use from any thread (gRPC completes
// calls on its own threads; herd cancels from its io_context). CallOptions
// is a plain value.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>

namespace grpc {
class ClientContext;
}

namespace herd::containerd {

class Canceller {
 public:
  // Aborts every attached call (grpc TryCancel) and makes later attach() fail.
  void cancel();
  bool cancelled() const;

  // Used by the call bridge: attach returns false when already cancelled.
  bool attach(grpc::ClientContext* ctx);
  void detach(grpc::ClientContext* ctx);

  // For work that is not a gRPC call (a registry transfer): `fn` runs once,
  // on the thread that calls cancel(), outside the lock -- or at once, on
  // this thread, when already cancelled. remove(id) forgets it (a no-op
  // once it ran). `fn` must be quick and must not call back into this
  // Canceller's on_cancel/remove.
  uint64_t on_cancel(std::function<void()> fn);
  void remove(uint64_t id);

 private:
  mutable std::mutex mu_;
  bool cancelled_ = false;                         // GUARDED_BY(mu_)
  std::unordered_set<grpc::ClientContext*> live_;  // GUARDED_BY(mu_)
  uint64_t next_fn_ = 0;                           // GUARDED_BY(mu_)
  std::map<uint64_t, std::function<void()>> fns_;  // GUARDED_BY(mu_)
};

// Not an aggregate on purpose: g++ 12 destroys a braced aggregate temporary
// twice when it appears inside a co_await expression (e.g. a defaulted
// `CallOptions o = {}` argument of a coroutine). A user-provided
// constructor avoids that code path. See common/asio.h.
struct CallOptions {
  CallOptions() {}

  // Deadline of the call, from when it is started. Zero: the client's default.
  std::chrono::milliseconds timeout{0};
  // Lease id sent as `containerd-lease` metadata; empty for none.
  std::string lease;
  // Optional; shared between the calls of one operation so one cancel()
  // aborts all of them.
  std::shared_ptr<Canceller> canceller;
  // Wait (within the deadline) for the channel to connect instead of
  // failing at once while containerd is unreachable. For calls that should
  // go out the moment containerd is back (the events stream's sync).
  bool wait_for_ready = false;

  static CallOptions with_timeout(std::chrono::milliseconds t) {
    CallOptions o;
    o.timeout = t;
    return o;
  }
};

}  // namespace herd::containerd
