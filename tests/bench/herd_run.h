// bench::HerdRun: herd's own Supervisor, in process, on an io_context of
// its own thread, with an observer that keeps every status it reports
// (ComponentStatus::changed_at is herd's own timestamp of each change).
#pragma once

#include <condition_variable>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "common/asio.h"
#include "config/config.h"
#include "containerd/client.h"
#include "supervise/supervisor.h"

namespace bench {
namespace asio = boost::asio;

class HerdRun {
 public:
  using Status = herd::supervise::ComponentStatus;

  HerdRun(const std::string& address, const std::string& ns, const std::string& config_text)
      : work_(asio::make_work_guard(io_)) {
    auto parsed = herd::config::parse_config(config_text);
    if (!parsed.ok()) throw std::runtime_error("bad config: " + parsed.error_text());
    herd::containerd::Client::Options o;
    o.address = address;
    o.ns = ns;
    client_ = std::make_unique<herd::containerd::Client>(o);
    config_ = std::move(*parsed.config);
    thread_ = std::thread([this] { io_.run(); });
  }

  ~HerdRun() {
    work_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }

  void start() {
    asio::post(io_, [this] {
      sup_ = herd::supervise::Supervisor::create(io_.get_executor(), *client_, config_,
                                                 [this](const Status& s) {
                                                   std::lock_guard<std::mutex> lock(mu_);
                                                   history_.push_back(s);
                                                   latest_[s.name] = s;
                                                   cv_.notify_all();
                                                 });
      sup_->start();
    });
  }

  // Stops every component (removes them) and waits.
  bool stop(std::chrono::seconds limit = std::chrono::seconds(180)) {
    auto done = std::make_shared<std::promise<void>>();
    auto f = done->get_future();
    asio::post(io_, [this, done] {
      if (!sup_) return done->set_value();
      sup_->stop([done] { done->set_value(); });
    });
    return f.wait_for(limit) == std::future_status::ready;
  }

  // Runs `fn` on the io thread (the supervisor's strand: one thread) and returns its value.
  template <class F>
  auto on_io(F fn) -> decltype(fn()) {
    std::packaged_task<decltype(fn())()> task(std::move(fn));
    auto f = task.get_future();
    asio::post(io_, [&task] { task(); });
    return f.get();
  }

  uint64_t gaps() {
    return on_io([this] { return sup_ ? sup_->gaps() : uint64_t{0}; });
  }

  // Waits until pred(latest statuses, history) holds; false on timeout.
  template <class Pred>
  bool wait(Pred pred, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return pred(latest_, history_); });
  }

  size_t history_size() {
    std::lock_guard<std::mutex> lock(mu_);
    return history_.size();
  }
  std::vector<Status> history_from(size_t i) {
    std::lock_guard<std::mutex> lock(mu_);
    return std::vector<Status>(history_.begin() + static_cast<long>(std::min(i, history_.size())),
                               history_.end());
  }
  Status latest(const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    return latest_[name];
  }
  std::map<std::string, Status> all_latest() {
    std::lock_guard<std::mutex> lock(mu_);
    return latest_;
  }

  asio::io_context& io() { return io_; }
  herd::containerd::Client& client() { return *client_; }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::unique_ptr<herd::containerd::Client> client_;
  herd::config::Config config_;
  std::shared_ptr<herd::supervise::Supervisor> sup_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Status> history_;
  std::map<std::string, Status> latest_;
};

}  // namespace bench
