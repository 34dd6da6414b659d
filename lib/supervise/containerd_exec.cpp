// ContainerdOps::exec (contract in container_ops.h): an exec probe in the
// component's running task, its output captured to a file and read back
// off the event loop.
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include <spdlog/spdlog.h>

#include "common/blocking_pool.h"
#include "supervise/containerd_ops_impl.h"

namespace herd::supervise {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// ------------------------------------------------------------ exec probe

asio::awaitable<ContainerOps::ExecOutcome> ContainerdOps::exec(std::vector<std::string> command,
                                                               std::chrono::milliseconds timeout,
                                                               std::shared_ptr<Canceller> cancel) {
  auto& c = client_;
  ExecOutcome out;
  // The container's own process spec (user, env, cwd, capabilities, ...)
  // with the probe's argv.
  // The task's container now: a restore from the standby may swap it
  // while this probe's cleanup still runs.
  const std::string id = active_;
  auto ctr = co_await c.containers_get(id, call(cancel));
  if (!ctr.ok()) {
    out.error = "exec: " + ctr.status().to_string();
    co_return out;
  }
  std::string process_json;
  {
    auto spec = nlohmann::json::parse(ctr->spec().value(), nullptr, /*allow_exceptions=*/false);
    if (!spec.is_object() || !spec.contains("process") || !spec["process"].is_object()) {
      out.error = "exec: the container's spec has no process";
      co_return out;
    }
    nlohmann::json process = spec["process"];
    process["args"] = command;
    process["terminal"] = false;
    process.erase("consoleSize");
    process_json = process.dump();
  }
  static std::atomic<uint64_t> counter{0};
  const std::string exec_id =
      "herd-probe-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
  const fs::path dir = fs::path(s_.data_path) / ".herd-probes";
  const fs::path out_file = dir / (config_.name + "." + exec_id + ".out");
  {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) {
      out.error = "exec: create " + dir.string() + ": " + ec.message();
      co_return out;
    }
  }
  const std::string uri = "file://" + out_file.string();
  // Cleanup calls: short deadlines of their own, never the probe's cancel.
  CallOptions cleanup = CallOptions::with_timeout(2s);
  const TimePoint deadline = Clock::now() + timeout;

  Status created = co_await c.exec_create(id, exec_id, process_json, uri, uri, call(cancel));
  if (!created.ok()) {
    out.error = "exec: " + created.to_string();
    // A create that went through before the cancel still left an id.
    (void)co_await c.exec_delete(id, exec_id, cleanup);
    co_return out;
  }
  auto started = co_await c.exec_start(id, exec_id, call(cancel));
  if (started.ok()) {
    CallOptions w = call(cancel);
    w.timeout = until(deadline, 1ms);
    auto waited = co_await c.exec_wait(id, exec_id, w);
    if (waited.ok()) {
      out.ran = true;
      out.exit_code = waited->code;
    } else {
      out.timed_out = true;
      out.error = "exec: timeout after " + std::to_string(timeout.count()) + "ms, killed";
      (void)co_await c.exec_kill(id, exec_id, SIGKILL, cleanup);
      (void)co_await c.exec_wait(id, exec_id, cleanup);
    }
  } else {
    out.error = "exec: " + started.status().to_string();
  }
  auto deleted = co_await c.exec_delete(id, exec_id, cleanup);
  if (!deleted.ok() && !deleted.status().is_not_found()) {
    spdlog::warn("component {}: exec probe {}: delete: {}", config_.name, exec_id,
                 deleted.status().to_string());
  }
  // Its output: the first kMaxExecOutput bytes, read off the event loop.
  auto read = [path = out_file]() -> Result<std::string> {
    std::string text;
    std::ifstream in(path, std::ios::binary);
    if (in) {
      text.resize(kMaxExecOutput);
      in.read(text.data(), static_cast<std::streamsize>(kMaxExecOutput));
      text.resize(static_cast<std::size_t>(in.gcount()));
    }
    std::error_code ec;
    fs::remove(path, ec);
    return text;
  };
  if (s_.pool) {
    auto text = co_await run_blocking(*s_.pool, std::move(read));
    if (text.ok()) out.output = std::move(*text);
  }
  co_return out;
}

}  // namespace herd::supervise
