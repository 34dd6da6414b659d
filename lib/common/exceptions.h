// herd::describe_exception: what an exception_ptr holds, as text, for the
// completion handlers of co_spawn (an exception that leaves a coroutine
// arrives there; with asio::detached it would be dropped silently).
//
// Pure; any thread.
#pragma once

#include <exception>
#include <string>

namespace herd {

inline std::string describe_exception(const std::exception_ptr& e) {
  if (!e) return "no exception";
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "a non-standard exception";
  }
}

}  // namespace herd
