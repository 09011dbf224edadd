// ops/gemm.hpp: C (+)= A B^T + bias against a sum in long double, on every kernel this CPU runs, for each way the
// linear layers read their operands (rows as they are, transposed, a weight whose rows are 4 KiB apart), sizes that
// leave remainders in every block (panel rows, block columns, KC steps, MC rows), a strided C, row-major or transposed,
// accumulation and the bias, and one or two threads. Its error bound is that of recursive summation: (K + 2) u sum |a b| (u = 2^-24).
#include "eigenformer/ops/gemm.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "eigenformer/core/random.hpp"
#include "eigenformer/core/threading.hpp"
#include "support/fixtures.hpp"

using namespace eigenformer;
using namespace eigenformer::testing;

namespace {

std::vector<detail::NarrowKernel> runnable_gemm_kernels() {
  std::vector<detail::NarrowKernel> kernels;
  if (gemm_kernel() != detail::NarrowKernel::portable) kernels.push_back(gemm_kernel());
  if (gemm_kernel() == detail::NarrowKernel::avx512) kernels.push_back(detail::NarrowKernel::avx2);
  return kernels;
}

// How A or B is stored: as [rows, K] row-major, or transposed as [K, rows] row-major; rows `stride` apart.
struct Layout {
  bool transposed;
  Index stride;  // >= the stored row's length
};

struct Stored {
  Tensor<float> data;
  GemmOperand operand;
};

Stored store(const Tensor<double>& values, Layout layout, std::uint64_t seed) {
  const Index rows = values.shape()[0], K = values.shape()[1];
  const Index outer = layout.transposed ? K : rows;
  Stored s{random_tensor<float>({outer, layout.stride}, seed), {}};  // padding holds noise the kernel must not read
  for (Index i = 0; i < rows; ++i)
    for (Index k = 0; k < K; ++k) {
      const Index at = layout.transposed ? k * layout.stride + i : i * layout.stride + k;
      s.data.data()[at] = static_cast<float>(values.at(i, k));
    }
  s.operand = layout.transposed ? GemmOperand{s.data.data(), 1, layout.stride} : GemmOperand{s.data.data(), layout.stride, 1};
  return s;
}

// C is [M, ldc] row-major, or with c_transposed [N, ldc] row-major holding C transposed (ldc >= M).
void check_gemm(Index M, Index N, Index K, Layout la, Layout lb, bool with_bias, Accumulate accumulate, Index ldc,
                bool c_transposed = false) {
  CAPTURE(M);
  CAPTURE(N);
  CAPTURE(K);
  CAPTURE(la.transposed);
  CAPTURE(lb.transposed);
  CAPTURE(lb.stride);
  CAPTURE(with_bias);
  CAPTURE(ldc);
  CAPTURE(c_transposed);
  const Tensor<double> a = random_tensor<double>({M, K}, 11), b = random_tensor<double>({N, K}, 12);
  // The float values the kernel sees, rounded once here, are what the reference multiplies.
  const Stored sa = store(a, la, 13), sb = store(b, lb, 14);
  const Tensor<float> bias = random_tensor<float>({N}, 15), c0 = random_tensor<float>({c_transposed ? N : M, ldc}, 16);
  const auto at = [&](const Tensor<float>& c, Index m, Index n) { return c_transposed ? c.at(n, m) : c.at(m, n); };
  for (const detail::NarrowKernel kernel : runnable_gemm_kernels()) {
    CAPTURE(detail::narrow_kernel_name(kernel));
    std::vector<float> first;
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      Tensor<float> c = c0;
      const GemmOutput out = c_transposed ? GemmOutput{c.data(), 1, ldc} : GemmOutput{c.data(), ldc, 1};
      REQUIRE(gemm_on(kernel, M, N, K, sa.operand, sb.operand, out, with_bias ? bias.data() : nullptr, accumulate));
      for (Index m = 0; m < M; ++m) {
        for (Index n = 0; n < N; ++n) {
          long double sum = 0, magnitude = 0;
          for (Index k = 0; k < K; ++k) {
            const long double term = static_cast<long double>(sa.operand(m, k)) * sb.operand(n, k);
            sum += term;
            magnitude += std::fabs(term);
          }
          if (with_bias) sum += bias[n], magnitude += std::fabs(bias[n]);
          if (accumulate == Accumulate::yes) sum += at(c0, m, n), magnitude += std::fabs(at(c0, m, n));
          const long double bound = (K + 2) * std::ldexp(1.0L, -24) * magnitude;
          if (std::fabs(at(c, m, n) - sum) > bound) {
            FAIL_CHECK("C[" << m << ", " << n << "] = " << at(c, m, n) << ", expected " << static_cast<double>(sum) << " within "
                            << static_cast<double>(bound));
            return;
          }
        }
      }
      // What lies past C's rows (ldc) is untouched.
      for (Index i = 0; i < c0.shape()[0]; ++i)
        for (Index j = c_transposed ? M : N; j < ldc; ++j) REQUIRE(c.at(i, j) == c0.at(i, j));
      const std::vector<float> bits(c.data(), c.data() + c.size());
      if (first.empty())
        first = bits;
      else
        CHECK(bits == first);  // the threads split the columns: the same sums in the same order
    }
  }
}

}  // namespace

TEST_CASE("gemm: C = A B^T + bias within the error bound of recursive summation, on every kernel, for each layout") {
  if (runnable_gemm_kernels().empty()) return;  // a CPU without AVX2: linear.hpp uses Eigen's GEMM
  const int before = num_threads();
  const Layout rows{false, 0}, columns{true, 0};
  const auto with = [](Layout l, Index stride) { return Layout{l.transposed, stride}; };
  SUBCASE("x W^T: both operands by rows, sizes that leave remainders") {
    for (Index M : {1, 15, 16, 17, 31, 33, 70})
      for (Index N : {1, 5, 6, 7, 12, 13, 25})
        for (Index K : {1, 3, 37}) check_gemm(M, N, K, with(rows, K + 3), with(rows, K + 1), true, Accumulate::no, N + 2);
  }
  SUBCASE("the backward's layouts: dx = dy W (B transposed), dW^T += x^T dy (A, B and C transposed)") {
    check_gemm(45, 29, 50, with(rows, 53), with(columns, 31), false, Accumulate::yes, 29);
    for (Index M : {29, 32, 70})
      for (bool c_transposed : {false, true})
        check_gemm(M, 50, 45, with(columns, 72), with(columns, 52), c_transposed, Accumulate::yes, 73, c_transposed);
    check_gemm(33, 14, 19, with(columns, 40), with(rows, 19), true, Accumulate::no, 34, true);
    // B transposed is packed per pass of KC, kGemmPackedColumns columns at a time: more steps than one pass, a last
    // block of a few columns, and more columns than one packing holds.
    const Index K = detail::kGemmKC + 9;
    check_gemm(40, 17, K, with(rows, K), with(columns, 19), false, Accumulate::yes, 17);
    check_gemm(40, 17, K, with(columns, 41), with(columns, 17), true, Accumulate::no, 40, true);
    const Index wide = 2 * detail::kGemmPackedColumns + 13;
    check_gemm(20, wide, K, with(rows, K), with(columns, wide + 3), true, Accumulate::no, wide);
    check_gemm(20, wide, 37, with(columns, 21), with(columns, wide), false, Accumulate::yes, 22, true);
  }
  SUBCASE("more rows than one block of MC, more steps than one pass of KC, accumulation and the bias added once") {
    const Index M = detail::kGemmMC + 37, K = 2 * detail::kGemmKC + 9;
    check_gemm(M, 27, K, with(rows, K), with(rows, K + 5), true, Accumulate::no, 27);
    check_gemm(M, 27, K, with(rows, K), with(rows, K + 5), true, Accumulate::yes, 27);
    // More rows than one pass packs (several blocks of MC share it), and a last block of a few rows, by rows and
    // transposed.
    const Index P2 = detail::kGemmPackedRows + detail::kGemmMC + 5, P1 = detail::kGemmPackedRows + 3;
    check_gemm(P2, 14, detail::kGemmKC + 5, with(rows, detail::kGemmKC + 5), with(rows, detail::kGemmKC + 6), true, Accumulate::no, 14);
    check_gemm(P1, 9, detail::kGemmKC, with(columns, P1), with(columns, 9), true, Accumulate::yes, P1 + 3, true);
  }
  SUBCASE("weight rows 4 KiB apart, which the kernel copies first") {
    check_gemm(40, 30, 1000, with(rows, 1000), with(rows, 1024), true, Accumulate::no, 30);
    check_gemm(40, 30, detail::kGemmKC + 200, with(rows, 1000), with(rows, 2048), false, Accumulate::yes, 33);
    // Their row block is kGemmCopiedRows times the usual: more rows than one of those too.
    const Index K = detail::kGemmKC + 10;
    check_gemm(detail::kGemmCopiedRows * detail::kGemmMC + 37, 14, K, with(rows, K), with(rows, 1024), true, Accumulate::yes, 14);
  }
  SUBCASE("K = 0: C is the bias, or gains it") {
    check_gemm(20, 13, 0, with(rows, 1), with(rows, 1), true, Accumulate::no, 13);
    check_gemm(20, 13, 0, with(rows, 1), with(rows, 1), true, Accumulate::yes, 13);
  }
  set_num_threads(before);
}

TEST_CASE("gemm: the portable kernel leaves products to Eigen; which kernel runs follows the CPU") {
  float c = 7;
  const float one = 1;
  CHECK_FALSE(gemm_on(detail::NarrowKernel::portable, 1, 1, 1, {&one, 1, 1}, {&one, 1, 1}, {&c, 1, 1}, nullptr, Accumulate::no));
  CHECK(c == 7);
  CHECK(gemm_kernel() == detail::narrow_kernel());
}
