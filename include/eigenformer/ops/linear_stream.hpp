// ops/linear_stream.hpp: the kernel behind ops/linear.hpp's linear_forward when x has few rows (decoding: one row per
// sequence, N <= kStreamRows). y = x W^T + b, as linear_reference, but shaped for memory rather than arithmetic:
// Eigen's GEMM would repack the whole weight matrix on every call only to use it a few times; here every weight row
// is read once, straight from where it lives, and dotted with all N rows of x while it is in the L1 cache. That loop
// is bound by the rate at which the machine streams the weights, so the weights may also be stored narrow
// (W = std::uint16_t bfloat16 bits, or std::int8_t with a scale per row; nn/layer_weight.hpp) and are widened in
// SIMD registers (AVX-512 or AVX2 intrinsics for float where the build targets them, a portable loop otherwise):
// memory traffic is then the narrow bytes alone. Output features are split across the library's threads.
// Accumulate::yes adds y += x W^T + b as it stores (how a residual connection's last projection adds x back).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "eigenformer/core/accumulate.hpp"
#include "eigenformer/core/tensor.hpp"
#include "eigenformer/core/threading.hpp"

namespace eigenformer {

// Up to this many rows of x, linear_forward streams the weights (linear_stream) instead of calling Eigen's GEMM.
inline constexpr Index kStreamRows = 16;

// bfloat16, as narrow weights are kept (nn/layer_weight.hpp): the top 16 bits of an IEEE float.
inline std::uint16_t float_to_bf16(float f) {
  std::uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x007fffffu)) return static_cast<std::uint16_t>((bits >> 16) | 0x40);  // NaN stays NaN
  bits += 0x7fffu + ((bits >> 16) & 1u);  // round to nearest, ties to even
  return static_cast<std::uint16_t>(bits >> 16);
}
inline float bf16_to_float(std::uint16_t h) {
  const std::uint32_t bits = static_cast<std::uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

namespace detail {

// How the streaming kernel reads weights of element type W into SIMD packets of Scalar: W = Scalar as it is,
// std::uint16_t as bfloat16 bits, std::int8_t as a quantised value (its row's scale is applied to the finished dot
// product). Widening happens in registers, so a narrow weight costs only its own bytes of memory traffic.
template <typename Scalar, typename W>
struct WeightLoad {
  using Packet = typename Eigen::internal::packet_traits<Scalar>::type;
  static constexpr Index L = Eigen::internal::packet_traits<Scalar>::size;
  static Scalar one(W w) {
    if constexpr (std::is_same_v<W, std::uint16_t>)
      return static_cast<Scalar>(bf16_to_float(w));
    else
      return static_cast<Scalar>(w);
  }
  static Packet packet(const W* p) {
    if constexpr (std::is_same_v<W, Scalar>) {
      return Eigen::internal::ploadu<Packet>(p);
    } else {
#if defined(EIGEN_VECTORIZE_AVX512)
      if constexpr (std::is_same_v<Scalar, float>) {
        const __m512i wide = std::is_same_v<W, std::uint16_t>
                                 ? _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16)
                                 : _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
        return std::is_same_v<W, std::uint16_t> ? _mm512_castsi512_ps(wide) : _mm512_cvtepi32_ps(wide);
      }
#elif defined(EIGEN_VECTORIZE_AVX2)
      if constexpr (std::is_same_v<Scalar, float>) {
        const __m256i wide = std::is_same_v<W, std::uint16_t>
                                 ? _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16)
                                 : _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
        return std::is_same_v<W, std::uint16_t> ? _mm256_castsi256_ps(wide) : _mm256_cvtepi32_ps(wide);
      }
#endif
      // Portable: widen through a small array in the L1 cache.
      alignas(64) Scalar widened[L];
      for (Index i = 0; i < L; ++i) widened[i] = one(p[i]);
      return Eigen::internal::pload<Packet>(widened);
    }
  }
};

// out[m][j] = x[m, :] . w[j, :] for MB rows of x and NB rows of w, K long, in SIMD packets of Eigen's widest type
// for Scalar (16 floats under AVX-512, 8 under AVX2), one accumulator per (m, j).
template <typename Scalar, typename W, int MB, int NB>
inline void dot_block(const Scalar* x, Index x_stride, const W* w, Index w_stride, Index K, Scalar (&out)[MB][NB]) {
  namespace ei = Eigen::internal;
  using Load = WeightLoad<Scalar, W>;
  using Packet = typename Load::Packet;
  constexpr Index L = Load::L;
  Packet acc[MB][NB];
  for (int m = 0; m < MB; ++m)
    for (int j = 0; j < NB; ++j) acc[m][j] = ei::pset1<Packet>(Scalar(0));
  Index k = 0;
  for (; k + L <= K; k += L) {
    Packet wp[NB];
    for (int j = 0; j < NB; ++j) wp[j] = Load::packet(w + j * w_stride + k);
    // Ask for the same columns of the next NB rows now: the hardware prefetcher alone left the streams from memory
    // at half the bandwidth (bench_ops, GPT-2's 154 MB lm_head on one thread: bf16 3.9 -> 1.8 ms, float 4.9 -> 3.7 ms).
    // (The last group's prefetches point past the matrix: an address computed as an integer, a hint that never faults.)
    for (int j = 0; j < NB; ++j)
      ei::prefetch(reinterpret_cast<const W*>(reinterpret_cast<std::uintptr_t>(w + k) + sizeof(W) * static_cast<std::uintptr_t>((NB + j) * w_stride)));
    for (int m = 0; m < MB; ++m) {
      const Packet xp = ei::ploadu<Packet>(x + m * x_stride + k);
      for (int j = 0; j < NB; ++j) acc[m][j] = ei::pmadd(xp, wp[j], acc[m][j]);
    }
  }
  for (int m = 0; m < MB; ++m)
    for (int j = 0; j < NB; ++j) {
      Scalar sum = ei::predux(acc[m][j]);
      for (Index t = k; t < K; ++t) sum += x[m * x_stride + t] * Load::one(w[j * w_stride + t]);
      out[m][j] = sum;
    }
}

// Rows [m0, m0 + MB) of y, output features [n0, n1): y = (x . w) * scale + bias (scales: one per weight row, or none),
// or y += the same.
template <typename Scalar, typename W, int MB, typename Output>
inline void stream_rows(const Scalar* x, Index x_stride, Index m0, const W* w, Index w_stride, Index n0, Index n1, Index K,
                        const Scalar* scales, const Scalar* bias, Output& y, Accumulate accumulate) {
  // MB * NB accumulators, NB weight packets and one x packet must fit in the SIMD registers (32 under AVX-512).
  constexpr int NB = (MB <= 2 || EIGEN_ARCH_DEFAULT_NUMBER_OF_REGISTERS >= 32) ? 4 : 2;
  const auto store = [&](Index m, Index n, Scalar dot) {
    const Scalar result = (scales ? dot * scales[n] : dot) + (bias ? bias[n] : Scalar(0));
    if (accumulate == Accumulate::yes)
      y.coeffRef(m, n) += result;
    else
      y.coeffRef(m, n) = result;
  };
  Index n = n0;
  for (; n + NB <= n1; n += NB) {
    Scalar out[MB][NB];
    dot_block<Scalar, W, MB, NB>(x + m0 * x_stride, x_stride, w + n * w_stride, w_stride, K, out);
    for (int m = 0; m < MB; ++m)
      for (int j = 0; j < NB; ++j) store(m0 + m, n + j, out[m][j]);
  }
  for (; n < n1; ++n) {
    Scalar out[MB][1];
    dot_block<Scalar, W, MB, 1>(x + m0 * x_stride, x_stride, w + n * w_stride, w_stride, K, out);
    for (int m = 0; m < MB; ++m) store(m0 + m, n, out[m][0]);
  }
}

// linear_stream's unit of work: this many output features (weight rows), one thread's at a time.
inline constexpr Index kStreamChunk = 64;

}  // namespace detail

// y = x W^T + b (or y += x W^T + b) for few rows of x, reading W once: w points at a row-major [N_out, K] matrix
// whose rows are w_stride apart. The output features are split into chunks, one per thread; within a chunk, each group
// of weight rows meets every row of x (four at a time) while it is in the L1 cache.
// W: Scalar, or a narrow type of nn/layer_weight.hpp (std::uint16_t bfloat16; std::int8_t with `scales`, one per weight row).
template <typename Scalar, typename W = Scalar, typename Output>
void linear_stream(ConstMatrixMap<Scalar> x, const W* w, Index w_stride, Index n_out, const Scalar* bias, Output&& y,
                   const Scalar* scales = nullptr, Accumulate accumulate = Accumulate::no) {
  const Index M = x.rows(), K = x.cols();
  if constexpr (std::is_same_v<W, Scalar>) if (M == 1) {
    // One row: a matrix-vector product per thread over its share of the weight rows. Eigen's GEMV streams a
    // row-major matrix at least as fast as dot_block does (measured in bench_gpt2's batch-1 decoding).
    const Index threads = (n_out * K >= (Index(1) << 16)) ? std::min<Index>(num_threads(), (n_out + 15) / 16) : 1;
    const Index share = ((n_out + threads - 1) / threads + 15) / 16 * 16;
#pragma omp parallel for schedule(static) if (threads > 1) num_threads(static_cast<int>(threads))
    for (Index t = 0; t < threads; ++t) {
      const Index n0 = t * share, n = std::min(n_out, n0 + share) - n0;
      if (n <= 0) continue;
      const ConstStridedMatrixMap<Scalar> wt(w + n0 * w_stride, n, K, Eigen::OuterStride<>(w_stride));
      auto out = y.row(0).segment(n0, n);
      if (accumulate == Accumulate::yes)
        out.noalias() += x.row(0) * wt.transpose();
      else
        out.noalias() = x.row(0) * wt.transpose();
      if (bias) out += ConstVectorMap<Scalar>(bias + n0, n).transpose();
    }
    return;
  }
  // Chunks of 64 output features: 64 weight rows of GPT-2's 768 inputs are 192 KiB, read once per call.
  constexpr Index chunk = detail::kStreamChunk;
  const Index chunks = (n_out + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) if (chunks > 1 && n_out * K >= (Index(1) << 16)) num_threads(num_threads())
  for (Index c = 0; c < chunks; ++c) {
    const Index n0 = c * chunk, n1 = std::min(n_out, n0 + chunk);
    const auto rows = [&](auto mb, Index m) {  // rows [m, m + mb) of x against this chunk
      constexpr int MB = decltype(mb)::value;
      detail::stream_rows<Scalar, W, MB>(x.data(), K, m, w, w_stride, n0, n1, K, scales, bias, y, accumulate);
    };
    Index m = 0;
    for (; m + 4 <= M; m += 4) rows(std::integral_constant<int, 4>(), m);
    switch (M - m) {
      case 3: rows(std::integral_constant<int, 3>(), m); break;
      case 2: rows(std::integral_constant<int, 2>(), m); break;
      case 1: rows(std::integral_constant<int, 1>(), m); break;
      default: break;  // M was a multiple of 4
    }
  }
}

}  // namespace eigenformer
