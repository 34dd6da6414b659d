// restore: "standby" naming and reporting (supervise/standby.h): pure.
#include <catch2/catch.hpp>

#include "supervise/standby.h"

using herd::supervise::component_of;
using herd::supervise::standby_id;
using herd::supervise::StandbyState;

TEST_CASE("standby: NAME.B belongs to NAME, every other id to itself") {
  CHECK(standby_id("web") == "web.B");
  CHECK(component_of("web.B") == "web");
  CHECK(component_of(standby_id("etcd.main")) == "etcd.main");
  CHECK(component_of("web") == "web");
  CHECK(component_of("web.b") == "web.b");  // component names are lower case
  CHECK(component_of(".B") == ".B");        // nothing before the suffix
  CHECK(component_of("") == "");
}

TEST_CASE("standby: its state as herdctl shows it") {
  StandbyState s;
  CHECK(s.describe().empty());
  s.kind = StandbyState::Kind::kBuilding;
  CHECK(s.describe() == "building");
  s.kind = StandbyState::Kind::kReady;
  s.pid = 42;
  CHECK(s.describe() == "ready (pid 42)");
  s.kind = StandbyState::Kind::kFailed;
  s.failures = 1;
  s.error = "snapshot busy";
  CHECK(s.describe() ==
        "failed (1 time): snapshot busy; restarts happen in place until it is rebuilt");
  s.failures = 3;
  CHECK(s.describe().rfind("failed (3 times): snapshot busy", 0) == 0);
}
