// `herd_bench floor-start`: the floor of measurement 4 (scale). The same
// N busybox httpd containers herdd would start (the spec herd builds, the
// same image, host network, distinct ports), created and started by the
// minimal client at herd's concurrency (all at once: one thread each):
// Snapshots.Prepare + Containers.Create + Tasks.Create + Tasks.Start, then
// our own poller connects to every port until all answer. Reports the time
// until all are started and until all answer. Setup (image import, specs)
// and cleanup are not timed.
#include <atomic>
#include <barrier>
#include <filesystem>
#include <mutex>
#include <thread>

#include "containerd/client.h"
#include "containerd/images.h"
#include "containerd/oci_spec.h"
#include "raw_client.h"
#include "util.h"

namespace bench {
namespace asio = boost::asio;

using namespace std::chrono_literals;

namespace {

// Runs one coroutine of herd's client to completion (setup only).
template <class T>
T run_sync(asio::io_context& io, asio::awaitable<T> aw) {
  std::optional<T> result;
  asio::co_spawn(io, std::move(aw), [&](std::exception_ptr e, T v) {
    if (e) std::rethrow_exception(e);
    result = std::move(v);
  });
  io.restart();
  io.run();
  return std::move(*result);
}

}  // namespace

int run_floor_start(const Args& a) {
  const std::string address = a.str("address"), ns = a.str("ns", "bench-floor");
  const std::string archive = a.str("archive"), data = a.str("data", "/tmp/herd-bench-floor");
  const int count = static_cast<int>(a.num("count", 100));
  const int iterations = static_cast<int>(a.num("iterations", 1));
  const uint16_t base_port = static_cast<uint16_t>(a.num("base-port", 17000));
  const std::string image_name = "herd.local/busybox:latest";
  const std::string snapshotter = herd::containerd::kDefaultSnapshotter;
  std::filesystem::create_directories(data + "/.floor-logs");

  // Setup with herd's library (not timed): the image, unpacked, and the
  // specs herd would build for these components.
  asio::io_context io;
  herd::containerd::Client::Options co;
  co.address = address;
  co.ns = ns;
  herd::containerd::Client client(co);
  herd::BlockingPool pool(1);
  auto present = run_sync(io, client.images_get(image_name));
  if (!present.ok()) {
    auto imported = run_sync(io, herd::containerd::import_archive(client, pool, archive));
    if (!imported.ok()) {
      log("floor-start: import: " + imported.status().to_string());
      return 1;
    }
  }
  auto image = run_sync(io, herd::containerd::unpack_image(client, image_name, snapshotter));
  if (!image.ok()) {
    log("floor-start: unpack: " + image.status().to_string());
    return 1;
  }
  auto image_config = herd::containerd::parse_image_config(image->config_json);
  if (!image_config.ok()) return 1;
  std::vector<RawContainer> containers(static_cast<size_t>(count));
  std::vector<uint16_t> ports(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    const std::string id = "floor-" + std::to_string(i);
    ports[static_cast<size_t>(i)] = static_cast<uint16_t>(base_port + i);
    herd::containerd::SpecOptions so;
    so.container_id = id;
    so.ns = ns;
    so.args = {"httpd", "-f",
               "-p",    "127.0.0.1:" + std::to_string(ports[static_cast<size_t>(i)]),
               "-h",    "/var/www"};
    so.host_network = true;
    auto spec = herd::containerd::build_runtime_spec(*image_config, so);
    if (!spec.ok()) {
      log("floor-start: spec: " + spec.status().to_string());
      return 1;
    }
    auto& c = containers[static_cast<size_t>(i)];
    c.set_id(id);
    c.set_image(image_name);
    c.mutable_runtime()->set_name(herd::containerd::kRuntimeRuncV2);
    c.mutable_spec()->set_type_url(herd::containerd::kSpecTypeUrl);
    c.mutable_spec()->set_value(spec->dump());
    c.set_snapshotter(snapshotter);
    c.set_snapshot_key(id);
  }
  const std::string parent = image->top_chain_id();

  // One raw client (one channel), as herd has one. Its snapshots are
  // prepared under one lease made beforehand (not timed): without it,
  // containerd's garbage collector, woken by the previous cleanup, can take
  // a snapshot between Prepare and Containers.Create.
  RawClient raw(address, ns);
  std::string lease;
  if (auto s = raw.lease_create(&lease); !s.ok()) {
    log("floor-start: leases.create: " + s.error_message());
    return 1;
  }
  auto cleanup = [&] {
    std::vector<std::thread> th;
    const int workers = 8;
    for (int w = 0; w < workers; ++w)
      th.emplace_back([&, w] {
        for (int i = w; i < count; i += workers)
          raw.remove_all(containers[static_cast<size_t>(i)].id(), snapshotter);
      });
    for (auto& t : th) t.join();
  };
  cleanup();

  std::map<std::string, std::vector<double>> out;
  int failures = 0;
  for (int it = 0; it < iterations; ++it) {
    std::vector<SysTime> started(static_cast<size_t>(count)), created(static_cast<size_t>(count));
    std::vector<std::string> errors(static_cast<size_t>(count));
    // Set once a task has started: only those ports are polled.
    std::unique_ptr<std::atomic<bool>[]> is_started(
        new std::atomic<bool>[static_cast<size_t>(count)]);
    for (int i = 0; i < count; ++i) is_started[static_cast<size_t>(i)] = false;
    SysTime t0{};
    raw.set_lease(lease);
    std::barrier go(count + 1, [&]() noexcept { t0 = std::chrono::system_clock::now(); });
    std::vector<std::thread> th;
    for (int i = 0; i < count; ++i) {
      th.emplace_back([&, i] {
        const size_t k = static_cast<size_t>(i);
        const auto& c = containers[k];
        go.arrive_and_wait();
        Mounts mounts;
        grpc::Status s = raw.snapshot_prepare(snapshotter, c.id(), parent, &mounts);
        if (s.ok()) s = raw.container_create(c);
        created[k] = std::chrono::system_clock::now();
        if (s.ok())
          s = raw.task_create(c.id(), mounts, "file://" + data + "/.floor-logs/" + c.id() + ".log");
        if (s.ok()) s = raw.task_start(c.id());
        started[k] = std::chrono::system_clock::now();
        if (!s.ok()) errors[k] = s.error_message();
        is_started[k] = true;
      });
    }
    go.arrive_and_wait();
    // Our poller: every port until all answer.
    std::vector<std::optional<SysTime>> answered(static_cast<size_t>(count));
    int left = count;
    const auto until = std::chrono::steady_clock::now() + 300s;
    while (left > 0 && std::chrono::steady_clock::now() < until) {
      for (int i = 0; i < count; ++i) {
        const size_t k = static_cast<size_t>(i);
        if (answered[k] || !is_started[k]) continue;
        if (!errors[k].empty()) {
          answered[k] = std::chrono::system_clock::now();
          --left;
          continue;
        }
        const auto at = std::chrono::system_clock::now();
        if (port_answers(ports[k])) {
          answered[k] = at;
          --left;
        }
      }
      std::this_thread::sleep_for(1ms);
    }
    for (auto& t : th) t.join();
    raw.set_lease("");
    SysTime all_started = t0, all_answered = t0;
    bool ok = left == 0;
    for (int i = 0; i < count; ++i) {
      const size_t k = static_cast<size_t>(i);
      if (!errors[k].empty()) {
        log("floor-start: " + containers[k].id() + ": " + errors[k]);
        ok = false;
      }
      all_started = std::max(all_started, started[k]);
      if (answered[k]) all_answered = std::max(all_answered, *answered[k]);
    }
    if (ok) {
      for (int i = 0; i < count; ++i) {
        const size_t k = static_cast<size_t>(i);
        out["span_container_ms"].push_back(ms(t0, created[k]));
        out["span_task_ms"].push_back(ms(created[k], started[k]));
        out["span_answer_ms"].push_back(ms(started[k], *answered[k]));
      }
      out["floor_started_ms"].push_back(ms(t0, all_started));
      out["floor_answer_ms"].push_back(ms(t0, all_answered));
      log("floor-start: " + std::to_string(count) + " answering after " +
          std::to_string(ms(t0, all_answered)) + " ms");
    } else {
      ++failures;
    }
    cleanup();
  }
  (void)raw.lease_delete(lease);
  nlohmann::json info;
  info["count"] = count;
  info["failures"] = failures;
  emit("floor-start", out, info);
  return 0;
}

}  // namespace bench
