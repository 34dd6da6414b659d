// The gRPC <-> Asio bridge (internal to lib/containerd; include only from
// its .cpp files, it pulls in gRPC).
//
// gRPC's callback API completes calls on gRPC's own threads. The bridge
// turns each completion into an Asio completion *posted to the executor of
// the awaiting coroutine* (the caller's executor, e.g. a component's
// strand), so herd code never runs on a gRPC thread and never polls: an
// idle process sleeps in epoll inside gRPC and in the io_context.
//
// While a call is in flight the caller's executor is kept busy
// (outstanding_work.tracked), so io_context::run() does not return under it.
//
// Every call carries a deadline and may be attached to a Canceller.
#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/client_callback.h>

#include <functional>
#include <memory>
#include <string>

#include "common/asio.h"
#include "common/status.h"
#include "containerd/call.h"

namespace herd::containerd::detail {

// grpc::Status -> herd::Status, prefixed with what was being done.
Status from_grpc(const grpc::Status& s, const std::string& what);

// Posts the completion to the executor of `handler` and hands it the
// result. Takes (moves from) the caller's handles on the handler, on the
// work guard and on `keep` (what the call owned: its ClientContext): a
// gRPC thread keeps none of them once it has posted.
// - The handler and the work guard: if a gRPC thread kept them, whichever
//   it released last (a closure's members go in no set order) could end
//   the io_context's work and destroy the handler against an io_context
//   already gone.
// - The ClientContext holds a reference to its grpc::Channel. Released on
//   a gRPC thread after the Client is gone, it is the channel's last one,
//   and gRPC's library shutdown then runs on a detached thread of its own
//   ("grpc_shutdown spawns clean-up thread"), racing with the process's
//   exit: an ASan double free at a test's end, 1 run in ~30. Released on
//   the loop, that shutdown runs there, synchronously.
template <class Handler, class Work, class T>
void complete_on_handler_executor(std::shared_ptr<Handler>& handler, Work& work, T result,
                                  std::shared_ptr<void> keep = nullptr) {
  auto ex = asio::get_associated_executor(*handler);
  asio::post(ex, [handler = std::move(handler), work = std::move(work), keep = std::move(keep),
                  r = std::move(result)]() mutable {
    (*handler)(std::move(r));
    handler.reset();  // the handler, then the call's state, then the work
    keep.reset();
  });
}

// A unary call: the context, request and response live in one shared state
// until gRPC has completed the call.
template <class Req, class Resp>
struct UnaryState {
  std::unique_ptr<grpc::ClientContext> ctx;
  Req req;
  Resp resp;
};

// Runs one unary call and returns its response on the awaiting coroutine's
// executor. `start(ctx, req, resp, done)` must issue the gRPC callback call.
template <class Req, class Resp, class Start>
asio::awaitable<Result<Resp>> unary(std::unique_ptr<grpc::ClientContext> ctx, Req req,
                                    std::shared_ptr<Canceller> canceller, std::string what,
                                    Start start) {
  auto state = std::make_shared<UnaryState<Req, Resp>>();
  state->ctx = std::move(ctx);
  state->req = std::move(req);
  auto initiation = [state, canceller, what = std::move(what), start](auto handler) mutable {
    using H = decltype(handler);
    auto h = std::make_shared<H>(std::move(handler));
    // Keep the caller's io_context running while the call is in flight.
    auto work =
        asio::prefer(asio::get_associated_executor(*h), asio::execution::outstanding_work.tracked);
    if (canceller && !canceller->attach(state->ctx.get())) {
      complete_on_handler_executor(h, work, Result<Resp>(Status::Cancelled(what + ": cancelled")));
      return;
    }
    // Mutable: the completion moves h and work out (see
    // complete_on_handler_executor); gRPC calls it exactly once.
    start(state->ctx.get(), &state->req, &state->resp,
          [state, canceller, what, h, work](grpc::Status s) mutable {
            auto st = std::move(state);  // released on the loop
            if (canceller) canceller->detach(st->ctx.get());
            Result<Resp> r =
                s.ok() ? Result<Resp>(std::move(st->resp)) : Result<Resp>(from_grpc(s, what));
            complete_on_handler_executor(h, work, std::move(r), std::move(st));
          });
  };
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(Result<Resp>)>(
      std::move(initiation), asio::use_awaitable);
}

// A server-streaming call read to its end: every message is handed to
// `on_message` (on a gRPC thread, so it must only touch the state it owns);
// a non-OK status from it aborts the stream with that status. The final
// status is delivered on the caller's executor.
template <class Req, class Resp>
class ReadAllReactor : public grpc::ClientReadReactor<Resp> {
 public:
  using OnMessage = std::function<Status(Resp&)>;
  // Gets the final status and the reactor itself, to be deleted on the
  // loop (see complete_on_handler_executor).
  using Done = std::function<void(Status, std::shared_ptr<void> self)>;

  ReadAllReactor(std::unique_ptr<grpc::ClientContext> ctx, Req req, OnMessage on_message,
                 std::shared_ptr<Canceller> canceller, std::string what, Done done)
      : ctx_(std::move(ctx)),
        req_(std::move(req)),
        on_message_(std::move(on_message)),
        canceller_(std::move(canceller)),
        what_(std::move(what)),
        done_(std::move(done)) {}

  grpc::ClientContext* context() { return ctx_.get(); }
  const Req* request() const { return &req_; }

  // Call after the stub's async()->Method(ctx, req, this).
  void go() {
    if (canceller_ && !canceller_->attach(ctx_.get())) ctx_->TryCancel();
    this->StartRead(&msg_);
    this->StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream ended; OnDone follows
    Status s = on_message_(msg_);
    if (!s.ok()) {
      abort_ = s;
      ctx_->TryCancel();
      return;
    }
    this->StartRead(&msg_);
  }

  void OnDone(const grpc::Status& s) override {
    if (canceller_) canceller_->detach(ctx_.get());
    Status result = !abort_.ok() ? abort_ : (s.ok() ? Status::Ok() : from_grpc(s, what_));
    // gRPC is done with the reactor: it goes to the loop with the result.
    auto done = std::move(done_);
    done(std::move(result), std::shared_ptr<void>(this));
  }

 private:
  std::unique_ptr<grpc::ClientContext> ctx_;
  Req req_;
  Resp msg_;
  OnMessage on_message_;
  std::shared_ptr<Canceller> canceller_;
  std::string what_;
  Done done_;
  Status abort_;
};

// Awaitable wrapper around ReadAllReactor. `start(ctx, req, reactor)` must
// call stub->async()->Method(ctx, req, reactor).
template <class Req, class Resp, class Start>
asio::awaitable<Status> read_all(std::unique_ptr<grpc::ClientContext> ctx, Req req,
                                 typename ReadAllReactor<Req, Resp>::OnMessage on_message,
                                 std::shared_ptr<Canceller> canceller, std::string what,
                                 Start start) {
  auto initiation = [&](auto handler) {
    using H = decltype(handler);
    auto h = std::make_shared<H>(std::move(handler));
    auto work =
        asio::prefer(asio::get_associated_executor(*h), asio::execution::outstanding_work.tracked);
    auto* reactor = new ReadAllReactor<Req, Resp>(
        std::move(ctx), std::move(req), std::move(on_message), std::move(canceller),
        std::move(what), [h, work](Status s, std::shared_ptr<void> self) mutable {
          complete_on_handler_executor(h, work, std::move(s), std::move(self));
        });
    start(reactor->context(), reactor->request(), reactor);
    reactor->go();
  };
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(Status)>(
      initiation, asio::use_awaitable);
}

}  // namespace herd::containerd::detail
