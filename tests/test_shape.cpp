// Shape: rank, element count, printing, and the check_shape message that names both shapes.
#include "eigenformer/core/shape.hpp"

#include <doctest/doctest.h>

using namespace eigenformer;

TEST_CASE("Shape: rank, element count and printing") {
  const Shape s{2, 7, 64};
  CHECK(s.rank() == 3);
  CHECK(s.numel() == 2 * 7 * 64);
  CHECK(s.str() == "[2, 7, 64]");
  CHECK(s.back() == 64);
  CHECK(s.drop_front() == Shape{7, 64});
  CHECK(s.with_back(5) == Shape{2, 7, 5});
  CHECK(Shape{}.numel() == 1);  // rank 0: one scalar
  CHECK(Shape{}.str() == "[]");
  CHECK(Shape{3, 0}.numel() == 0);
  CHECK(Shape{2, 3} != Shape{3, 2});
}

TEST_CASE("Shape: rejects a rank above 4, a negative size and an overflowing count") {
  CHECK_THROWS_WITH_AS(Shape({1, 2, 3, 4, 5}), "Shape: rank 5 is not supported; expected at most 4 dimensions", ShapeError);
  CHECK_THROWS_WITH_AS(Shape({2, -1}), "Shape: dimension 1 is -1; expected >= 0", ShapeError);
  CHECK_THROWS_WITH_AS(Shape({Index(1) << 40, Index(1) << 40}), "Shape: the element count overflows a 64-bit index", ShapeError);
}

TEST_CASE("check_shape: names what, where, and both shapes") {
  CHECK_NOTHROW(check_shape("X.forward", "query", Shape{2, 7, 512}, {"B", "T", 512}));
  CHECK_THROWS_WITH_AS(check_shape("MultiHeadAttention.forward", "query", Shape{2, 7, 64}, {"B", "T", 512}, "d_model"),
                       "MultiHeadAttention.forward: query has shape [2, 7, 64]; expected [B, T, 512] (d_model)", ShapeError);
  CHECK_THROWS_WITH_AS(check_shape("X.forward", "x", Shape{7, 512}, {"B", "T", 512}),
                       "X.forward: x has shape [7, 512]; expected [B, T, 512]", ShapeError);
}
