// herd::containerd call error counts: every failed unary call of the
// Client, by method ("tasks.Start", "content.Info"), for herdd's metric
// herd_containerd_call_errors_total{method} (daemon/metrics.h).
//
// Contract: a call counts when it ends with any status but OK, NOT_FOUND
// and ALREADY_EXISTS (answers herd asks for: "is there a task?") and
// CANCELLED (herd cancelled it). Counts only grow, from 0 at process start; methods are the
// compile-time names of HERD_UNARY (client_unary.h), so the table is
// bounded by the API herd uses.
//
// Thread-safety: both functions may be called from any thread (gRPC's
// callback threads count, the metrics endpoint reads); a mutex guards the
// table.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include <grpcpp/support/status_code_enum.h>

namespace herd::containerd {

// Whether a call that ended with `code` counts as an error (above).
inline bool call_error_counts(grpc::StatusCode code) {
  return code != grpc::StatusCode::OK && code != grpc::StatusCode::NOT_FOUND &&
         code != grpc::StatusCode::ALREADY_EXISTS && code != grpc::StatusCode::CANCELLED;
}

void count_call_error(const char* method);
// A copy of the table: method -> failed calls.
std::map<std::string, uint64_t> call_errors();

}  // namespace herd::containerd
