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
              std::shared_ptr<AsyncGate::Pass>* keep, int priority = 0) {
    asio::co_spawn(
        ex,
        [this, name, entry, deadline, keep, priority]() -> asio::awaitable<void> {
          AsyncGate::Pass pass = co_await gate->enter(deadline, entry, priority);
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

namespace {

// Polls until nothing is ready to run.
void settle(asio::io_context& io) {
  io.poll();
  io.restart();
}

}  // namespace

TEST_CASE("AsyncGate: a higher priority is admitted first, FIFO within one priority") {
  Fixture f;
  std::shared_ptr<AsyncGate::Pass> a, low1, low2, high, mid;
  auto ex = f.strand();
  f.waiter("a", ex, AsyncGate::Entry::make(ex), later(), &a);
  settle(f.io);
  auto e1 = f.strand(), e2 = f.strand(), e3 = f.strand(), e4 = f.strand();
  f.waiter("low1", e1, AsyncGate::Entry::make(e1), later(), &low1, 0);
  settle(f.io);
  f.waiter("low2", e2, AsyncGate::Entry::make(e2), later(), &low2, 0);
  settle(f.io);
  f.waiter("high", e3, AsyncGate::Entry::make(e3), later(), &high, 100);
  settle(f.io);
  f.waiter("mid", e4, AsyncGate::Entry::make(e4), later(), &mid, 5);
  settle(f.io);
  CHECK(f.gate->waiting() == 4);
  a.reset();
  settle(f.io);
  high.reset();
  settle(f.io);
  mid.reset();
  settle(f.io);
  low1.reset();
  settle(f.io);
  CHECK(f.log == std::vector<std::string>{"a in", "high in", "mid in", "low1 in", "low2 in"});
}

TEST_CASE("AsyncGate: a capacity of N admits N at once, and set_capacity admits or drains") {
  Fixture f;
  f.gate = std::make_shared<AsyncGate>(2);
  std::vector<std::shared_ptr<AsyncGate::Pass>> pass(5);
  for (int i = 0; i < 5; ++i) {
    auto ex = f.strand();
    f.waiter(std::to_string(i), ex, AsyncGate::Entry::make(ex), later(), &pass[i]);
    settle(f.io);
  }
  CHECK(f.log == std::vector<std::string>{"0 in", "1 in"});
  CHECK(f.gate->holders() == 2);
  CHECK(f.gate->waiting() == 3);
  f.gate->set_capacity(4);  // two more at once
  settle(f.io);
  CHECK(f.log == std::vector<std::string>{"0 in", "1 in", "2 in", "3 in"});
  CHECK(f.gate->holders() == 4);
  f.gate->set_capacity(1);  // holders keep their slots; none is admitted until below 1
  pass[0].reset();
  pass[1].reset();
  pass[2].reset();
  settle(f.io);
  CHECK(f.log.size() == 4);
  CHECK(f.gate->holders() == 1);
  pass[3].reset();  // the last over-capacity holder leaves: 4's turn
  settle(f.io);
  CHECK(f.log.back() == "4 in");
  CHECK(f.gate->holders() == 1);
  pass[4].reset();
  CHECK_FALSE(f.gate->held());
}
