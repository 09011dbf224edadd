// Tensor and TensorView: ownership, alignment, row-major layout, Eigen maps, views, resizing without allocation,
// tensors left for their writer (uninitialized).
#include "eigenformer/core/tensor.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>

using namespace eigenformer;

TEST_CASE_TEMPLATE("Tensor: zero-filled, 64-byte aligned, row-major", Scalar, float, double) {
  Tensor<Scalar> t({2, 3, 4});
  CHECK(t.rank() == 3);
  CHECK(t.size() == 24);
  CHECK(reinterpret_cast<std::uintptr_t>(t.data()) % 64 == 0);
  for (Index i = 0; i < t.size(); ++i) CHECK(t[i] == Scalar(0));
  t.at(1, 2, 3) = Scalar(7);
  CHECK(t[1 * 12 + 2 * 4 + 3] == Scalar(7));  // row-major: the last index moves fastest
  // matrix() flattens the leading dimensions: [2, 3, 4] -> [6, 4]
  CHECK(t.matrix().rows() == 6);
  CHECK(t.matrix().cols() == 4);
  CHECK(t.matrix()(5, 3) == Scalar(7));
  CHECK(t.matrix(4, 6)(3, 5) == Scalar(7));
  CHECK(t.vector().size() == 24);
}

TEST_CASE("Tensor: copies are deep, moves steal") {
  Tensor<float> a({2, 2}, 1.5f);
  Tensor<float> b = a;
  b.at(0, 0) = 9.0f;
  CHECK(a.at(0, 0) == 1.5f);
  Tensor<float> c = std::move(b);
  CHECK(c.at(0, 0) == 9.0f);
  CHECK(b.size() == 0);  // NOLINT: a moved-from tensor is empty
  a = c;
  CHECK(a.at(0, 0) == 9.0f);
}

TEST_CASE("TensorView: slices, reshapes and read-only views share the data") {
  Tensor<double> t({2, 3});
  for (Index i = 0; i < t.size(); ++i) t[i] = double(i);
  TensorView<double> row = t.slice(1);
  CHECK(row.shape() == Shape{3});
  row[0] = 30.0;
  CHECK(t.at(1, 0) == 30.0);
  TensorView<const double> ro = t.view();
  CHECK(ro.reshaped({3, 2}).at(1, 1) == t[3]);
  const Tensor<double> copy = Tensor<double>::copy_of(ro);
  CHECK(copy.at(1, 0) == 30.0);
  CHECK(copy.data() != t.data());
}

TEST_CASE_TEMPLATE("Tensor::uninitialized: the shape, aligned storage, and NaN in a build with checks", Scalar, float, double) {
  Tensor<Scalar> t = Tensor<Scalar>::uninitialized({3, 5});
  CHECK(t.shape() == Shape{3, 5});
  CHECK(reinterpret_cast<std::uintptr_t>(t.data()) % 64 == 0);
#if defined(EIGENFORMER_ENABLE_ASSERTS) || !defined(NDEBUG)
  for (Index i = 0; i < t.size(); ++i) CHECK(std::isnan(t[i]));  // so that an output element left unwritten shows
#endif
  CHECK(Tensor<std::int64_t>::uninitialized({2}).size() == 2);
}

TEST_CASE("Tensor: resize reuses memory that is large enough") {
  Tensor<float> t({4, 8});
  const float* before = t.data();
  t.resize({2, 8});
  CHECK(t.data() == before);
  t.resize({4, 8});
  CHECK(t.data() == before);
  t.resize({5, 8});
  CHECK(t.shape() == Shape{5, 8});
}

TEST_CASE("Tensor: cast converts every element") {
  Tensor<double> t({3}, 2.75);
  Tensor<float> f = t.cast<float>();
  CHECK(f.shape() == t.shape());
  CHECK(f[2] == 2.75f);
}

TEST_CASE("Tensor: bad indices and shapes throw with the shape in the message") {
  Tensor<float> t({2, 3});
  CHECK_THROWS_WITH_AS(t.at(2, 0), "Tensor.at: index 2 in dimension 0 is outside a tensor of shape [2, 3]", RangeError);
  CHECK_THROWS_WITH_AS(t.at(0), "Tensor.at: 1 indices for a tensor of shape [2, 3]", RangeError);
  CHECK_THROWS_WITH_AS(t.slice(5), "Tensor.slice: index 5 is outside the first dimension of shape [2, 3]", RangeError);
  CHECK_THROWS_WITH_AS(t.view().reshaped({4, 2}), "Tensor.reshaped: cannot view shape [2, 3] as [4, 2] (element counts differ)", ShapeError);
  CHECK_THROWS_WITH_AS(t.matrix(4, 2), "Tensor.matrix: cannot read a tensor of shape [2, 3] as a [4, 2] matrix", ShapeError);
}

TEST_CASE("ShapeOnly: tensors built inside one have their shape and no storage; outside, they allocate again") {
  {
    const ShapeOnly shapes_only;
    const Tensor<float> t(Shape{Index(1) << 31, Index(1) << 31}, 1.0f);  // 2^62 floats: only a shape
    CHECK(t.shape() == Shape{Index(1) << 31, Index(1) << 31});
    CHECK(t.data() == nullptr);
    const Tensor<float> copy = t;
    CHECK(copy.shape() == t.shape());
    CHECK(copy.data() == nullptr);
  }
  const Tensor<float> t(Shape{2, 3}, 1.5f);
  REQUIRE(t.data() != nullptr);
  CHECK(t.at(1, 2) == 1.5f);
}
