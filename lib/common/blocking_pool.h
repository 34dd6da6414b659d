// herd::BlockingPool: a few threads for work that may block (reading and
// hashing an archive, writing a file), so the event loop never does it.
//
// run_blocking(pool, fn) runs `fn()` on one of the pool's threads and
// resumes the awaiting coroutine on *its own* executor (its strand) with
// the result. `fn` must not touch strand-confined state: give it copies or
// objects only it uses until it returns. An exception thrown by `fn` comes
// back as Status::Internal, never out of the pool.
//
// The pool is bounded by its thread count (work queues behind busy
// threads). Destroying the pool joins its threads after the queued work
// ran; destroy it after the io_context's last coroutine that awaits it.
#pragma once

#include <exception>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>

#include <boost/asio/thread_pool.hpp>

#include "common/asio.h"
#include "common/status.h"

namespace herd {

class BlockingPool {
 public:
  explicit BlockingPool(std::size_t threads = 2) : pool_(threads) {}
  ~BlockingPool() { pool_.join(); }
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  asio::thread_pool::executor_type executor() { return pool_.get_executor(); }
  // Waits for queued work to finish and ends the threads.
  void join() { pool_.join(); }

 private:
  asio::thread_pool pool_;
};

namespace detail {
template <class T>
struct blocking_result {
  using type = Result<T>;
};
template <class T>
struct blocking_result<Result<T>> {
  using type = Result<T>;
};
template <>
struct blocking_result<Status> {
  using type = Status;
};
}  // namespace detail

// The result type of run_blocking(fn): Status for a Status-returning fn,
// Result<T> for a fn returning T or Result<T>.
template <class F>
using BlockingResult = typename detail::blocking_result<std::invoke_result_t<F&>>::type;

template <class F>
asio::awaitable<BlockingResult<F>> run_blocking(BlockingPool& pool, F fn) {
  using R = BlockingResult<F>;
  auto home = co_await asio::this_coro::executor;
  // The handler below is bound to `home`, so the result is posted back to
  // the awaiting coroutine's executor; the pool thread only runs fn.
  auto task = [fn = std::move(fn)]() mutable -> R {
    try {
      return R(fn());
    } catch (const std::exception& e) {
      return Status::Internal(std::string("blocking task threw: ") + e.what());
    } catch (...) {
      return Status::Internal("blocking task threw a non-standard exception");
    }
  };
  // Named, not a temporary inside the co_await expression: g++ 12 destroys
  // such a closure twice, and with it the copy of `home` (an executor that
  // owns its strand): the strand is freed while still in use (see
  // common/asio.h). Found by the ASan run of the e2e tests.
  auto initiation = [&pool, home](auto handler, auto task_fn) mutable {
    asio::post(pool.executor(),
               [handler = std::move(handler), task_fn = std::move(task_fn), home]() mutable {
                 R r = task_fn();
                 asio::post(home, [handler = std::move(handler), r = std::move(r)]() mutable {
                   std::move(handler)(std::move(r));
                 });
               });
  };
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(R)>(
      std::move(initiation), asio::use_awaitable, std::move(task));
}

}  // namespace herd
