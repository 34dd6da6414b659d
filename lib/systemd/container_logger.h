// herd-logger's parts: forwarding a container's stdout/stderr to journald.
//
// herd-logger is a containerd "binary://" logger. herdd creates each task
// with stdout = stderr = container_logger_uri(path, component), e.g.
//   binary:///usr/local/libexec/herd/herd-logger?component=etcd
// and the task's shim (containerd 1.6, pkg/process.NewBinaryIO) then runs
//   /usr/local/libexec/herd/herd-logger component etcd
// (each query key and its first value as two arguments, keys in random
// order), with ONLY CONTAINER_ID and CONTAINER_NAMESPACE in its
// environment, fd 3 = the read end of the container's stdout pipe, fd 4 =
// stderr's, fd 5 = a pipe on which the shim waits for one byte (or EOF)
// before it starts the container, and stdin/stdout/stderr on /dev/null. The
// logger belongs to the shim, not to herdd, so output keeps flowing while
// herdd restarts. When the task is deleted the shim closes the pipes,
// sends SIGTERM and kills the logger 12 s later.
//
// Each line becomes one journal entry:
//   MESSAGE=<line>  PRIORITY=6 (stdout) | 4 (stderr)
//   SYSLOG_IDENTIFIER=<component>  HERD_COMPONENT=<component>
//   HERD_STREAM=stdout|stderr  CONTAINER_ID=<id>  CONTAINER_NAMESPACE=<ns>
// so `journalctl -t etcd` shows etcd's output. Lines are split as
// LineSplitter says (64 KiB records); an unterminated last line is sent at
// EOF or SIGTERM.
//
// Never blocking the component: the forwarder reads both pipes whenever
// they have data (poll, non-blocking reads) and hands records to a sender
// thread through a bounded queue. When the queue is full (journald slow or
// wedged: the sender waits then) or a send fails (journald away),
// records are dropped and counted; once sends work again a note
//   "herd-logger: dropped N lines ..." (HERD_STREAM=logger, PRIORITY=4)
// says how many were lost.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "systemd/line_splitter.h"

namespace herd::systemd {

enum class Stream { kStdout, kStderr, kLogger /* herd-logger's own notes */ };

inline constexpr int kStdoutPriority = 6;  // LOG_INFO
inline constexpr int kStderrPriority = 4;  // LOG_WARNING
inline constexpr int kLoggerPriority = 4;

// "stdout", "stderr", "logger" (the HERD_STREAM values).
std::string_view to_string(Stream stream);
int priority_of(Stream stream);

// The logger's arguments (argv without argv[0]). Accepted forms, so that a
// URI query and a human both work: `component NAME` (what the shim passes
// for ?component=NAME), `--component NAME`, `--component=NAME`,
// `component=NAME`. Unknown keys and a key without a value are reported in
// `warnings` and otherwise ignored: the logger must start whatever it gets,
// or the container's writes would fail.
//
// File mode (config `output`, when herdd has no journald): `file PATH`
// with `max_bytes N` and `max_files K` writes each line to PATH through
// RotatingFile (rotating_file.h) instead of journald, stderr lines marked
// "stderr: " and the logger's notes "herd-logger: ". Bad numbers are
// warnings and leave the defaults (10 MiB, 5 files).
struct LoggerArgs {
  std::string component;  // empty when not given
  std::string file;       // file mode when set
  uint64_t max_bytes = 10u << 20;
  uint32_t max_files = 5;
  std::vector<std::string> warnings;
};
LoggerArgs parse_logger_args(const std::vector<std::string>& args);

struct ForwarderConfig {
  std::string component;  // SYSLOG_IDENTIFIER and HERD_COMPONENT
  std::string container_id;
  std::string container_namespace;
  std::size_t max_line = kMaxLogLine;
  // Records waiting for the sender, in bytes (each record counts its size
  // + 64); beyond it new records are dropped. journald takes roughly 15k
  // entries/s on a small VM, so this absorbs a burst of ~100k short lines.
  std::size_t max_queued_bytes = 8u << 20;
  // At the end, how long to wait for the sender to empty the queue (the
  // shim kills the logger 12 s after its SIGTERM).
  std::chrono::milliseconds drain_timeout{10000};
};

struct LogRecord {
  Stream stream;
  std::string_view message;
};

// Delivers one record; false = not delivered (counted as dropped). Called
// by one thread at a time.
using RecordSender = std::function<bool(const LogRecord&)>;

// The journald sender: one native-protocol datagram (journald.h) with the
// fields above; false when journald's socket is missing or the send fails,
// waits while journald's queue is full.
RecordSender make_journald_sender(const ForwarderConfig& config);

struct ForwarderStats {
  std::uint64_t lines = 0;    // records read (both streams)
  std::uint64_t sent = 0;     // delivered
  std::uint64_t dropped = 0;  // queue full + failed sends + left in the queue at the end
  bool drained = true;        // the sender emptied the queue within drain_timeout
};

// Forwards `stdout_fd` and `stderr_fd` (either may be -1 or closed) until
// both reach EOF, or until `stop_fd` (-1: none) becomes readable: then it
// reads what the pipes still hold without waiting, flushes unterminated
// lines and stops. It sets O_NONBLOCK on the two fds and does not close
// them. Returns once the sender has sent everything or drain_timeout has
// passed (the sender thread is then left behind, detached, still owning
// `sender`).
ForwarderStats forward_container_output(const ForwarderConfig& config, int stdout_fd, int stderr_fd,
                                        int stop_fd, RecordSender sender);

// "binary://<logger_path>?component=<component>" with both parts
// percent-encoded as a URL needs (logger_path must be absolute). Give it as
// both stdout and stderr of Tasks.Create (terminal = false).
std::string container_logger_uri(std::string_view logger_path, std::string_view component);
// The same in file mode: "...?component=C&file=PATH&max_bytes=N&max_files=K".
std::string container_file_logger_uri(std::string_view logger_path, std::string_view component,
                                      std::string_view file, uint64_t max_bytes,
                                      uint32_t max_files);

// File mode's sender: each record as one line of `file`.
class RotatingFile;
RecordSender make_file_sender(std::shared_ptr<RotatingFile> file);

// Where `cmake --install` puts herd-logger
// (${CMAKE_INSTALL_FULL_LIBEXECDIR}/herd/herd-logger).
std::string default_container_logger_path();

}  // namespace herd::systemd
