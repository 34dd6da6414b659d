// Internal to lib/containerd: HERD_UNARY, how Client's methods issue a
// unary call (client.cpp, client_store.cpp). Include only from those .cpp
// files, after client.h; each #undefs it at its end.
//
// HERD_UNARY(Resp, stub, METHOD, req, opts, what) is an
// asio::awaitable<Result<Resp>>: stub->async()->METHOD through the bridge
// (bridge.h), with a context from make_context(opts), opts.canceller
// attached and `what` naming the call in errors. It is used inside Client's
// member functions (it reads make_context and stubs_), on the awaiting
// coroutine's executor. A failed call is counted under "stub.METHOD"
// (call_errors.h).
#pragma once

#include <functional>
#include <type_traits>
#include <utility>

#include "containerd/bridge.h"
#include "containerd/call_errors.h"
#include "containerd/stubs.h"

// Issues stub->async()->METHOD through the bridge.
#define HERD_UNARY(Resp, stub, METHOD, req, opts, what)                                         \
  detail::unary<std::decay_t<decltype(req)>, Resp>(                                             \
      make_context(opts), std::move(req), (opts).canceller, (what),                             \
      [stub_ = stubs_->stub.get()](grpc::ClientContext* ctx_,                                   \
                                   const std::decay_t<decltype(req)>* req_, Resp* resp_,        \
                                   std::function<void(grpc::Status)> done_) {                   \
        stub_->async()->METHOD(ctx_, req_, resp_, [done_ = std::move(done_)](grpc::Status s_) { \
          if (call_error_counts(s_.error_code())) count_call_error(#stub "." #METHOD);          \
          done_(std::move(s_));                                                                 \
        });                                                                                     \
      })
