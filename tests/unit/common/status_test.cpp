#include "common/status.h"

#include <catch2/catch.hpp>

using herd::Code;
using herd::Result;
using herd::Status;

TEST_CASE("Status: OK is the default and prints as OK") {
  Status s;
  CHECK(s.ok());
  CHECK(s.code() == Code::kOk);
  CHECK(s.to_string() == "OK");
  CHECK(s.with_context("tasks.create").ok());
}

TEST_CASE("Status: errors print code and message, context prefixes") {
  Status s = Status::NotFound("container etcd");
  CHECK_FALSE(s.ok());
  CHECK(s.is_not_found());
  CHECK(s.to_string() == "not found: container etcd");
  Status c = s.with_context("containers.get");
  CHECK(c.code() == Code::kNotFound);
  CHECK(c.message() == "containers.get: container etcd");
}

TEST_CASE("Result: holds a value or an error") {
  Result<int> good(42);
  REQUIRE(good.ok());
  CHECK(*good == 42);

  Result<int> bad(Status::Unavailable("containerd down"));
  CHECK_FALSE(bad.ok());
  CHECK(bad.status().code() == Code::kUnavailable);

  Result<std::string> unset;
  CHECK_FALSE(unset.ok());
  CHECK(unset.status().code() == Code::kUnknown);
}
