// Debug-build checks that a strand-confined class runs where its header
// says: on its strand, or on its io_context's thread.
//
//   void Pinger::start() {
//     assert(herd::running_on(executor_));
//     ...
//   }
//
// Use them inside assert(): release builds (NDEBUG) compile them away, and
// a failure names the line. Header-only, no state.
//
// - running_on(ex): the calling thread runs a handler of `ex` (for a
//   strand: holds that strand; for an io_context executor: is inside that
//   io_context's run()). For an executor type it cannot ask (a
//   thread_pool's, system_executor, a strand of those) it answers true, so
//   it never fails a correct caller.
// - running_on_or_idle(ex): running_on(ex), or the calling thread is inside
//   no Asio event loop at all (before io_context::run(), after it returned,
//   in a test driving the loop by hand). For contracts of the form "on the
//   executor's thread, or while its io_context is not running": it catches
//   a call from another loop's or strand's handler, not one from a plain
//   thread while the loop runs elsewhere.
//
// Boost 1.74's any_executor::target<T>() casts without checking the type
// (it returns the target as a T* whatever it holds), so the type is
// compared first; lib/supervise/probe.cpp learned this on every e2e run.
#pragma once

#include <memory>
#include <typeinfo>

#include <boost/asio/detail/thread_context.hpp>

#include "common/asio.h"

namespace herd {

namespace strand_check_detail {

template <class T>
const T* target_as(const asio::any_io_executor& ex) {
  return ex.target_type() == typeid(T) ? ex.target<T>() : nullptr;
}

// io_context executors as any_io_executor holds them: plain, and with
// outstanding_work.tracked (Bits 4) as a work guard's require() makes them.
using IoExecutor = asio::io_context::executor_type;
using TrackedIoExecutor = asio::io_context::basic_executor_type<std::allocator<void>, 4>;

}  // namespace strand_check_detail

inline bool running_on(const asio::any_io_executor& ex) {
  namespace d = strand_check_detail;
  if (auto* s = d::target_as<asio::strand<asio::any_io_executor>>(ex))
    return s->running_in_this_thread();
  if (auto* s = d::target_as<asio::strand<d::IoExecutor>>(ex)) return s->running_in_this_thread();
  if (auto* s = d::target_as<asio::strand<d::TrackedIoExecutor>>(ex))
    return s->running_in_this_thread();
  if (auto* e = d::target_as<d::IoExecutor>(ex)) return e->running_in_this_thread();
  if (auto* e = d::target_as<d::TrackedIoExecutor>(ex)) return e->running_in_this_thread();
  return true;  // an executor type we cannot ask
}

// Whether the calling thread is inside no Asio scheduler's run() (every
// io_context and thread_pool thread pushes itself on this call stack).
inline bool outside_any_event_loop() {
  return asio::detail::thread_context::thread_call_stack::top() == nullptr;
}

inline bool running_on_or_idle(const asio::any_io_executor& ex) {
  return outside_any_event_loop() || running_on(ex);
}

}  // namespace herd
