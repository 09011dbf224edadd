// ops/linear_stream.hpp: the streaming kernel gives linear_reference's x W^T + b for every row count it takes, and,
// in the SIMD test executables, widens narrow weights with the intrinsics of their instruction set.
#include "eigenformer/ops/linear_stream.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <type_traits>

#include "eigenformer/core/random.hpp"
#include "eigenformer/ops/linear.hpp"

using namespace eigenformer;

TEST_CASE_TEMPLATE("linear_stream: x W^T + b as linear_reference gives it, for 1 to kStreamRows rows", Scalar, float, double) {
  const Index K = 37, N = 70;  // K not a multiple of any packet; N over one chunk of output features
  const Tensor<Scalar> w = random_tensor<Scalar>({N, K}, /*seed=*/3), b = random_tensor<Scalar>({N}, /*seed=*/4);
  for (Index M = 1; M <= kStreamRows; ++M) {
    CAPTURE(M);
    const Tensor<Scalar> x = random_tensor<Scalar>({M, K}, /*seed=*/5);
    Tensor<Scalar> expected(Shape{M, N}), y(Shape{M, N});
    linear_reference<Scalar>(x.matrix(), w.matrix(), b.data(), expected.matrix());
    linear_stream<Scalar>(x.matrix(), w.data(), K, N, b.data(), y.matrix());
    const double tolerance = std::is_same_v<Scalar, float> ? 1e-5 : 1e-12;
    CHECK((y.matrix() - expected.matrix()).cwiseAbs().maxCoeff() <= tolerance * (1 + expected.matrix().cwiseAbs().maxCoeff()));
  }
}

// eigenformer_simd_tests_avx2 and _avx512 (tests/CMakeLists.txt) build this file, test_linear.cpp and test_layer_weight.cpp with those
// instruction sets, to test the intrinsics that widen narrow weights in detail::WeightLoad. This case checks that
// they do take that path: were the flags to stop reaching Eigen, they would repeat the portable tests unnoticed.
#ifdef EIGENFORMER_EXPECT_WIDENING
TEST_CASE("WeightLoad: narrow weights are widened by the intrinsics of the instruction set this test was built for") {
#if defined(EIGEN_VECTORIZE_AVX512)
  const std::string widening = "avx512";
#elif defined(EIGEN_VECTORIZE_AVX2)
  const std::string widening = "avx2";
#else
  const std::string widening = "portable";
#endif
  MESSAGE("detail::WeightLoad<float, bf16 or int8>: the " << widening << " path, packets of " << detail::WeightLoad<float, std::uint16_t>::L << " floats");
  CHECK(widening == EIGENFORMER_EXPECT_WIDENING);
  CHECK(detail::WeightLoad<float, std::uint16_t>::L == EIGENFORMER_EXPECT_FLOAT_PACKET);
  CHECK(detail::WeightLoad<float, std::int8_t>::L == EIGENFORMER_EXPECT_FLOAT_PACKET);
}
#endif
