// herd::supervise::grpc_health_check: one grpc.health.v1.Health/Check call,
// for the grpc probe (probe.h).
//
// The two messages are encoded by hand (HealthCheckRequest{string service
// = 1}, HealthCheckResponse{ServingStatus status = 1}; SERVING = 1): no
// generated code for a two-field protocol. The call runs over `fd`, a TCP
// socket the caller has already connected (possibly inside a component's
// network namespace), through gRPC's CreateInsecureChannelFromFd, with the
// callback API and a deadline `timeout` from now.
//
// Contract: takes ownership of `fd` (gRPC closes it). `done(ok, detail)` is
// called exactly once, on one of gRPC's callback threads: ok is true only
// for SERVING; detail says what was seen ("status SERVING", "status
// NOT_SERVING", "NOT_FOUND: unknown service", "DEADLINE_EXCEEDED: ..."). The
// returned GrpcHealthCall cancels the call with cancel() (TryCancel; `done`
// still runs, with CANCELLED). The call keeps itself alive until `done`
// has run, and then hands its last own reference to `executor` (a post), so
// its channel never goes on gRPC's callback thread (gRPC 1.51 may abort
// when a channel's last reference goes while its call winds down there,
// grpc/grpc#32584). Thread-safety: cancel() may be called from any thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "common/asio.h"

namespace herd::supervise {

class GrpcHealthCall {
 public:
  virtual ~GrpcHealthCall() = default;
  virtual void cancel() = 0;
};

std::shared_ptr<GrpcHealthCall> grpc_health_check(
    asio::any_io_executor executor, int fd, const std::string& authority,
    const std::string& service, std::chrono::milliseconds timeout,
    std::function<void(bool ok, std::string detail)> done);

}  // namespace herd::supervise
