// herdctl's side of a call to herdd (herdctl.cpp, herdctl_image.cpp): the
// target socket and deadline, the channel, and how a failed call is
// reported (message on stderr, exit code).
//
// Thread-safety: plain functions of the calling thread.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <grpcpp/grpcpp.h>

namespace herd::ctl {

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitNoConnection = 3;

struct Target {
  std::string socket;
  double timeout_s = 30;
  bool timeout_given = false;  // --timeout on the command line
};

std::shared_ptr<grpc::Channel> channel_to(const Target& t);

// The call's deadline: --timeout from now.
void set_deadline(grpc::ClientContext& ctx, const Target& t);
// --timeout when it was given, else `fallback` from now (imports, pulls).
void set_long_deadline(grpc::ClientContext& ctx, const Target& t,
                       std::chrono::milliseconds fallback);

// Why the socket cannot be reached, if it cannot.
std::optional<std::string> why_unreachable(const std::string& path);

// Reports a failed call on stderr; returns the exit code. `name`: the
// component the call named (NOT_FOUND is then "no component named").
int report(const grpc::Status& s, const grpc::ClientContext& ctx, const Target& t,
           const std::string* name = nullptr);

}  // namespace herd::ctl
