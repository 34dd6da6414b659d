#include "control/calls.h"

#include <string>

namespace herd::control::internal {

bool Tracker::add(const std::shared_ptr<Abortable>& c) {
  std::lock_guard<std::mutex> l(mu_);
  if (closed_) return false;
  live_.emplace(c.get(), c);
  return true;
}

void Tracker::remove(Abortable* c) {
  std::shared_ptr<Abortable> keep;  // destroyed outside the lock
  std::lock_guard<std::mutex> l(mu_);
  auto it = live_.find(c);
  if (it == live_.end()) return;
  keep = std::move(it->second);
  live_.erase(it);
}

std::vector<std::shared_ptr<Abortable>> Tracker::close() {
  std::lock_guard<std::mutex> l(mu_);
  closed_ = true;
  std::vector<std::shared_ptr<Abortable>> all;
  all.reserve(live_.size());
  for (auto& [p, c] : live_) all.push_back(c);
  live_.clear();
  return all;
}

void Deadlines::stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
}

Deadlines::Id Deadlines::add(Clock::time_point at, std::weak_ptr<Abortable> call,
                             grpc::Status status) {
  Id id;
  bool earliest;
  {
    std::lock_guard<std::mutex> l(mu_);
    id = ++next_;
    entries_.emplace(id, Entry{at, std::move(call), std::move(status)});
    order_.emplace(at, id);
    earliest = order_.begin()->second == id;
  }
  if (earliest) cv_.notify_all();
  return id;
}

void Deadlines::remove(Id id) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  order_.erase({it->second.at, id});
  entries_.erase(it);
}

size_t Deadlines::pending() {
  std::lock_guard<std::mutex> l(mu_);
  return entries_.size();
}

void Deadlines::run() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stop_) {
    if (order_.empty()) {
      cv_.wait(l);
      continue;
    }
    auto [at, id] = *order_.begin();
    if (Clock::now() < at) {
      cv_.wait_until(l, at);
      continue;
    }
    order_.erase(order_.begin());
    auto it = entries_.find(id);
    Entry e = std::move(it->second);
    entries_.erase(it);
    l.unlock();
    if (std::shared_ptr<Abortable> call = e.call.lock()) call->abort(e.status);
    e.call.reset();
    l.lock();
  }
}

grpc::Status shutting_down() {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE, "herdd is shutting down");
}

grpc::Status server_deadline_exceeded(const char* what, std::chrono::milliseconds d) {
  auto ms = d.count();
  std::string t = ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms";
  return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, std::string("herdd did not complete ") +
                                                               what + " within " + t +
                                                               " (its own deadline for the call)");
}

}  // namespace herd::control::internal
