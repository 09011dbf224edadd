// The exception hierarchy: everything the library throws on purpose is an eigenformer::Error.
#include "eigenformer/core/error.hpp"

#include <doctest/doctest.h>

using namespace eigenformer;

TEST_CASE("errors: every kind is an eigenformer::Error and keeps its message") {
  CHECK_THROWS_WITH_AS(throw ShapeError("a"), "a", Error);
  CHECK_THROWS_WITH_AS(throw RangeError("b"), "b", Error);
  CHECK_THROWS_WITH_AS(throw FormatError("c"), "c", Error);
  CHECK_THROWS_WITH_AS(throw IoError("d"), "d", Error);
  CHECK_THROWS_WITH_AS(throw InternalError("e"), "e", std::runtime_error);
}

TEST_CASE("EIGENFORMER_ASSERT: active in tests, throws InternalError naming the condition") {
  const int three = 3;
  CHECK_NOTHROW(EIGENFORMER_ASSERT(three == 3, "three is three"));
  try {
    EIGENFORMER_ASSERT(three == 4, "three is four");
    FAIL("no exception");
  } catch (const InternalError& e) {
    const std::string what = e.what();
    CHECK(what.find("test_error.cpp") != std::string::npos);
    CHECK(what.find("internal check failed: three == 4; three is four") != std::string::npos);
  }
}
