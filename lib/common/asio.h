// The one way herd includes Boost.Asio (1.74, Debian 12).
//
// Boost 1.74's awaitable.hpp uses std::exchange without including
// <utility>; with g++ 12 its C++20 coroutines compile only when <utility>
// comes first. Every herd file includes Asio through this header.
//
// Two g++ 12 coroutine bugs shape herd's coroutine code:
// - A braced *aggregate* temporary with non-trivial members inside a
//   co_await expression (`co_await f(Opts{...})`, or a defaulted
//   `Opts o = {}` parameter of an aggregate type) is destroyed twice. Types
//   passed to coroutines by value get a user-provided constructor
//   (containerd::CallOptions), or are built in a named variable first.
//   Lambda closures that capture such members count too: a lambda passed
//   to a coroutine is stored in a named std::function first.
// - A braced initializer list in a co_await expression
//   (`co_await f({"a", "b"})`) does not compile ("array used as
//   initializer"): build the container in a named variable first.
#pragma once

#include <utility>  // must precede Boost.Asio (see above)

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace herd {
namespace asio = boost::asio;
}  // namespace herd
