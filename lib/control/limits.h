// The control API's limits: what one client, or many, can make herdd spend.
// Each is a default of ControlServer::Options (server.h) or a fixed bound;
// docs/operations.md ("Control socket limits") says what a client sees
// when it hits one.
//
// Thread-safety: constants.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace herd::control {

inline constexpr std::size_t kMiB = 1024 * 1024;

// Open connections on the socket, allowed and denied peers alike. One
// beyond it is accepted and closed at once (the client sees UNAVAILABLE);
// herdd keeps serving the others.
inline constexpr std::size_t kDefaultMaxConnections = 128;
// Concurrent Watch streams; beyond: RESOURCE_EXHAUSTED.
inline constexpr std::size_t kDefaultMaxWatchers = 32;
// Concurrent ImportImage streams; beyond: RESOURCE_EXHAUSTED at once,
// before a byte is read.
inline constexpr std::size_t kDefaultMaxImports = 2;
// Concurrent PullImage streams; beyond: RESOURCE_EXHAUSTED at once.
inline constexpr std::size_t kDefaultMaxPulls = 4;
// Blobs whose latest progress one PullImage stream keeps while its client
// reads slowly (a blob's newer state replaces its older one); updates of
// further blobs are dropped until the client catches up. The result is
// never dropped.
inline constexpr std::size_t kPullPendingBlobs = 1024;
// The bytes one import may upload; beyond: RESOURCE_EXHAUSTED naming it.
inline constexpr uint64_t kDefaultImportMaxBytes = uint64_t{8} * 1024 * kMiB;
// Where uploads are kept (unnamed files; created 0700 if missing).
inline constexpr char kDefaultImportDir[] = "/var/lib/herd/import";

// The largest message herdd accepts (gRPC answers RESOURCE_EXHAUSTED).
inline constexpr std::size_t kMaxReceiveMessageBytes = 4 * kMiB;
// The size of the data chunks herdctl sends: well inside the above.
inline constexpr std::size_t kImportChunkBytes = 1 * kMiB;
// The largest answer herdctl accepts (a List of many components).
inline constexpr std::size_t kClientMaxReceiveMessageBytes = 64 * kMiB;
// Concurrent calls on one connection (HTTP/2 streams).
inline constexpr int kMaxStreamsPerConnection = 64;

// A component name in a request; longer is INVALID_ARGUMENT (herd's own
// names are at most 63 bytes).
inline constexpr std::size_t kMaxNameBytes = 256;
// The display name of an import.
inline constexpr std::size_t kMaxImportNameBytes = 4096;
// An image reference (pull, remove); longer is INVALID_ARGUMENT.
inline constexpr std::size_t kMaxReferenceBytes = 1024;
// Kill: the highest signal number (Linux's SIGRTMAX).
inline constexpr uint32_t kMaxSignal = 64;

// herdd answers DEADLINE_EXCEEDED itself when the daemon has not completed
// a unary call in this time.
inline constexpr std::chrono::milliseconds kDefaultCallDeadline{std::chrono::seconds(60)};
// The same for an import, upload included.
inline constexpr std::chrono::milliseconds kDefaultImportDeadline{std::chrono::minutes(30)};
// A pull, from the request to its result: beyond, herdd cancels it and
// answers DEADLINE_EXCEEDED.
inline constexpr std::chrono::milliseconds kDefaultPullDeadline{std::chrono::minutes(30)};
// Watch has no server deadline: it is a stream the client ends.

// How long the listener waits after accept() failed for want of file
// descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) before trying
// again: the listener stays readable, so retrying at once would spin.
inline constexpr std::chrono::milliseconds kAcceptRetryDelay{100};
// Warnings about refused connections and failed accepts: at most one per
// this interval, with the count of those not logged.
inline constexpr std::chrono::milliseconds kRefusalLogInterval{std::chrono::seconds(10)};

}  // namespace herd::control
