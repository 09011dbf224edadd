// ops/linear_stream.hpp: the streaming kernel gives linear_reference's x W^T + b for every row count it takes, with
// full-width weights and with narrow ones under every instruction set the CPU runs; a portable build picks the widest.
#include "eigenformer/ops/linear_stream.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "eigenformer/core/random.hpp"
#include "eigenformer/nn/layer_weight.hpp"
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

// The narrow kernel (float x, bf16 or int8 weights) under each instruction set this build and CPU can run: the
// portable loop always; in a portable x86-64 build, also the AVX2 and AVX-512 functions chosen at run time; in a build
// for AVX2 or AVX-512, the kernel compiled for it.
std::vector<detail::NarrowKernel> runnable_narrow_kernels() {
  std::vector<detail::NarrowKernel> kernels{detail::NarrowKernel::portable};
  if (detail::narrow_kernel() != detail::NarrowKernel::portable) kernels.push_back(detail::narrow_kernel());
  if (detail::narrow_kernel() == detail::NarrowKernel::avx512) kernels.push_back(detail::NarrowKernel::avx2);
  return kernels;
}

TEST_CASE("linear_stream with narrow weights: every kernel the CPU runs gives x W^T + b of the widened weights") {
  const Index N = 70;  // over one chunk of output features, and not a multiple of 4 weight rows
  for (const Index K : {Index(37), Index(768)}) {  // K not a multiple of any vector; and GPT-2's width
    const Tensor<float> w = random_tensor<float>({N, K}, 3), bias = random_tensor<float>({N}, 4);
    for (WeightType type : {WeightType::bf16, WeightType::int8}) {
      const NarrowMatrix<float> narrow(w.matrix(), type);
      RowMatrix<float> widened(N, K);
      narrow.widen_rows(0, N, widened);
      const std::uint16_t* bf16 = narrow.bf16_data();
      const std::int8_t* int8 = narrow.int8_data();
      for (const detail::NarrowKernel kernel : runnable_narrow_kernels()) {
        for (Index M = 1; M <= kStreamRows; ++M) {
          const std::string kernel_name = detail::narrow_kernel_name(kernel), type_name = weight_type_name(type);
          CAPTURE(kernel_name);
          CAPTURE(type_name);
          CAPTURE(K);
          CAPTURE(M);
          const Tensor<float> x = random_tensor<float>({M, K}, 5 + M), y0 = random_tensor<float>({M, N}, 6);
          Tensor<float> expected({M, N}), y({M, N}), added = y0;
          // The kernel applies int8's scales to the finished dot products; widen_rows applied them to each weight.
          const float* scales = type == WeightType::int8 ? narrow.scales() : nullptr;
          linear_reference<float>(x.matrix(), ConstMatrixMap<float>(widened.data(), N, K), bias.data(), expected.matrix());
          const auto run = [&](Tensor<float>& out, Accumulate accumulate) {
            if (type == WeightType::bf16)
              detail::linear_stream_on<float>(kernel, x.matrix(), bf16, K, N, bias.data(), out.matrix(), scales, accumulate);
            else
              detail::linear_stream_on<float>(kernel, x.matrix(), int8, K, N, bias.data(), out.matrix(), scales, accumulate);
          };
          run(y, Accumulate::no);
          run(added, Accumulate::yes);
          // Rounding scales with sum |x| |w|.
          const double tolerance = 1e-6 * static_cast<double>((x.matrix().cwiseAbs() * widened.cwiseAbs().transpose()).maxCoeff());
          CHECK((y.matrix() - expected.matrix()).cwiseAbs().maxCoeff() <= tolerance);
          CHECK((added.matrix() - y0.matrix() - expected.matrix()).cwiseAbs().maxCoeff() <= 2 * tolerance);
        }
      }
    }
  }
}

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__AVX2__)
TEST_CASE("narrow_kernel: a portable x86-64 build picks AVX2 or AVX-512 for narrow weights when the CPU has them") {
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  MESSAGE("this CPU: avx2 " << avx2 << ", avx512 " << avx512 << "; narrow weights use " << detail::narrow_kernel_name(detail::narrow_kernel()));
  CHECK(detail::narrow_kernel() == (avx512 ? detail::NarrowKernel::avx512 : avx2 ? detail::NarrowKernel::avx2 : detail::NarrowKernel::portable));
}
#endif

// eigenformer_simd_tests_avx2 and _avx512 (tests/CMakeLists.txt) build this file, test_linear.cpp and test_layer_weight.cpp
// with those instruction sets. This case checks that the flags reach both the narrow kernel and Eigen: were they to
// stop, those executables would repeat the portable tests unnoticed.
#ifdef EIGENFORMER_EXPECT_WIDENING
TEST_CASE("narrow_kernel and Eigen's packets: the instruction set this test was built for") {
  MESSAGE("narrow weights: the " << detail::narrow_kernel_name(detail::narrow_kernel()) << " kernel; Eigen's float packets: "
                                 << detail::WeightLoad<float, float>::L << " floats");
  CHECK(std::string(detail::narrow_kernel_name(detail::narrow_kernel())) == EIGENFORMER_EXPECT_WIDENING);
  CHECK(detail::WeightLoad<float, float>::L == EIGENFORMER_EXPECT_FLOAT_PACKET);
}
#endif
