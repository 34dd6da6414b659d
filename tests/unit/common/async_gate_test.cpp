// AsyncGate (common/async_gate.h): one holder at a time, FIFO, waits that
// end at their deadline or on cancel, and a gate that is never lost when a
// waiter gives up at the moment it is admitted. A real io_context, strands
// per waiter, no sleeps: a deadline in the past stands for a timeout, and
// poll() (never run(): a waiter's timer would keep it busy) drives it.
#include "common/async_gate.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

using herd::AsyncGate;
namespace asio = herd::asio;
using Clock = std::chrono::steady_clock;

namespace {

struct Fixture {
  asio::io_context io;
  std::shared_ptr<AsyncGate> gate = std::make_shared<AsyncGate>();
  std::vector<std::string> log;

  asio::any_io_executor strand() { return asio::make_strand(io); }

  // Enters with `entry` (made on `ex`), logs "name in" or "name out",
  // holds the pass until `*release` is set, polled on its own strand.
  void waiter(const std::string& name, asio::any_io_executor ex,
              std::shared_ptr<AsyncGate::Entry> entry, Clock::time_point deadline,
              std::shared_ptr<AsyncGate::Pass>* keep) {
    asio::co_spawn(
        ex,
        [this, name, entry, deadline, keep]() -> asio::awaitable<void> {
          AsyncGate::Pass pass = co_await gate->enter(deadline, entry);
          log.push_back(name + (pass ? " in" : " out"));
          if (pass && keep) *keep = std::make_shared<AsyncGate::Pass>(std::move(pass));
        },
        asio::detached);
  }
};

Clock::time_point later() { return Clock::now() + std::chrono::hours(1); }

}  // namespace

TEST_CASE("AsyncGate: a free gate is entered at once and freed with its pass") {
  Fixture f;
  std::shared_ptr<AsyncGate::Pass> a;
  auto ex = f.strand();
  f.waiter("a", ex, AsyncGate::Entry::make(ex), later(), &a);
  f.io.run();
  CHECK(f.log == std::vector<std::string>{"a in"});
  CHECK(f.gate->held());
  a.reset();
  CHECK_FALSE(f.gate->held());
}

TEST_CASE("AsyncGate: waiters are admitted one at a time, first come first served") {
  Fixture f;
  std::shared_ptr<AsyncGate::Pass> a, b, c;
  auto ea = f.strand(), eb = f.strand(), ec = f.strand();
  f.waiter("a", ea, AsyncGate::Entry::make(ea), later(), &a);
  f.io.poll();
  f.io.restart();
  f.waiter("b", eb, AsyncGate::Entry::make(eb), later(), &b);
  f.io.poll();
  f.io.restart();
  f.waiter("c", ec, AsyncGate::Entry::make(ec), later(), &c);
  f.io.poll();
  f.io.restart();
  CHECK(f.log == std::vector<std::string>{"a in"});
  a.reset();  // b's turn, not c's
  f.io.poll();
  f.io.restart();
  CHECK(f.log == std::vector<std::string>{"a in", "b in"});
  CHECK(f.gate->held());
  b.reset();
  f.io.poll();
  f.io.restart();
  CHECK(f.log == std::vector<std::string>{"a in", "b in", "c in"});
  c.reset();
  CHECK_FALSE(f.gate->held());
}

TEST_CASE("AsyncGate: a cancelled waiter leaves the queue, the gate passes to the next") {
  Fixture f;
  std::shared_ptr<AsyncGate::Pass> a, c;
  auto ea = f.strand(), eb = f.strand(), ec = f.strand();
  f.waiter("a", ea, AsyncGate::Entry::make(ea), later(), &a);
  f.io.poll();
  f.io.restart();
  auto b_entry = AsyncGate::Entry::make(eb);
  f.waiter("b", eb, b_entry, later(), nullptr);
  f.waiter("c", ec, AsyncGate::Entry::make(ec), later(), &c);
  f.io.poll();
  f.io.restart();
  b_entry->cancel();
  f.io.poll();
  f.io.restart();
  CHECK(f.log == std::vector<std::string>{"a in", "b out"});
  a.reset();
  f.io.poll();
  f.io.restart();
  CHECK(f.log == std::vector<std::string>{"a in", "b out", "c in"});
  c.reset();
  CHECK_FALSE(f.gate->held());
}

TEST_CASE("AsyncGate: a wait ends at its deadline and the holder keeps the gate") {
  Fixture f;
  std::shared_ptr<AsyncGate::Pass> a;
  auto ea = f.strand(), eb = f.strand();
  f.waiter("a", ea, AsyncGate::Entry::make(ea), later(), &a);
  f.io.poll();
  f.io.restart();
  f.waiter("b", eb, AsyncGate::Entry::make(eb), Clock::now() - std::chrono::seconds(1), nullptr);
  f.io.run();
  CHECK(f.log == std::vector<std::string>{"a in", "b out"});
  CHECK(f.gate->held());
  a.reset();
  CHECK_FALSE(f.gate->held());  // b is gone from the queue
}

TEST_CASE("AsyncGate: a waiter cancelled as it is admitted does not lose the gate") {
  Fixture f;
  std::shared_ptr<AsyncGate::Pass> a, b, c;
  auto ea = f.strand(), eb = f.strand(), ec = f.strand();
  f.waiter("a", ea, AsyncGate::Entry::make(ea), later(), &a);
  f.io.poll();
  f.io.restart();
  auto b_entry = AsyncGate::Entry::make(eb);
  f.waiter("b", eb, b_entry, later(), &b);
  f.waiter("c", ec, AsyncGate::Entry::make(ec), later(), &c);
  f.io.poll();
  f.io.restart();
  // Both in one go: the release admits b (posted) and b's cancel is posted
  // behind it; whichever wins, c gets the gate once b is done with it.
  b_entry->cancel();
  a.reset();
  f.io.poll();
  f.io.restart();
  b.reset();
  f.io.poll();
  f.io.restart();
  REQUIRE(f.log.size() == 3);
  CHECK(f.log[0] == "a in");
  CHECK(f.log[2] == "c in");
  c.reset();
  CHECK_FALSE(f.gate->held());
}
