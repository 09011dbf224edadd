// ops/linear.hpp: y = x W^T + b, the affine map of torch.nn.Linear (weight stored [out, in]).
// x: [N, in] (N = B*T: one GEMM for the whole batch), w: [out, in], b: [out] or none, y: [N, out].
// Hugging Face GPT-2 stores "Conv1D" weights [in, out]; the checkpoint adapter transposes them once at
// load time, so this is the only layout the kernels see.
//
// Two kernels, chosen by the number of rows of x:
//   - many rows (a prompt, a training batch): Eigen's GEMM, which packs both operands into cache-sized panels
//     and is near the machine's peak for large products;
//   - few rows (decoding: one row per sequence, N <= kStreamRows): linear_stream. Eigen would repack the whole
//     weight matrix on every call only to use it a few times; here every weight row is read once, straight from
//     where it lives, and dotted with all N rows of x while it is in the L1 cache. That is a memory-bound loop
//     whose speed is the rate at which the machine streams the weights. Split over output features across the
//     library's threads.
// Either kernel can add onto what y holds (Accumulate::yes: y += x W^T + b) instead of overwriting it. A residual
// connection puts x in y first and lets the sub-layer's last projection add onto it: Eigen's GEMM, which for `=` zeroes
// y and then accumulates into it, just skips the zeroing, and the streaming kernel adds as it stores, so the residual
// sum costs no pass over y of its own. In both modes y must not overlap x.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "eigenformer/core/tensor.hpp"
#include "eigenformer/core/threading.hpp"

namespace eigenformer {

// Up to this many rows of x, linear_forward streams the weights (linear_stream) instead of calling Eigen's GEMM.
// (EIGENFORMER_STREAM_ROWS=0 turns it off, to measure the difference.)
#ifndef EIGENFORMER_STREAM_ROWS
#define EIGENFORMER_STREAM_ROWS 16
#endif
inline constexpr Index kStreamRows = EIGENFORMER_STREAM_ROWS;

// Whether a linear kernel writes y = x W^T + b (no) or adds y += x W^T + b onto what y holds (yes).
enum class Accumulate { no, yes };

// bfloat16, as the weights of ops/narrow.hpp are kept: the top 16 bits of an IEEE float.
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

// Opt-in (EIGENFORMER_BF16_DOT, CMake -DEIGENFORMER_BF16_DOT=ON) on a CPU with AVX512_BF16: bf16 weights through
// vdpbf16ps, which multiplies 32 bf16 pairs and adds them into 16 float sums in one instruction, with no widening.
// It needs x in bf16 too, which alone would cost x 16 of its 24 significand bits; so each x is split in two bf16
// numbers, hi = bf16(x) and lo = bf16(x - hi), which together carry 16 bits (a relative error of at most 2^-17), and
// w.x = w.hi + w.lo costs two instructions per 32 weights and row of x. Off by default: on Zen 4 it measured slower
// than widening at every batch size (docs/performance.md, "bf16 and vdpbf16ps"); CPUs with full-width bf16 units may
// differ, which is what the switch is for.
#if defined(EIGENFORMER_BF16_DOT) && defined(__AVX512BF16__)
inline constexpr bool kBf16DotProduct = true;
// x is split a block of kDpBlock columns at a time into a stack buffer, so any K works without allocating.
inline constexpr Index kDpBlock = 512;

// xs[2 * m] and xs[2 * m + 1]: the hi and lo halves of row m's columns [k0, k0 + 32 * n32), 32 per vector.
template <int MB>
inline void split_bf16(const float* x, Index x_stride, Index k0, Index n32, __m512bh (*xs)[kDpBlock / 32]) {
  for (int m = 0; m < MB; ++m)
    for (Index v = 0; v < n32; ++v) {
      const float* p = x + m * x_stride + k0 + 32 * v;
      const __m512 a = _mm512_loadu_ps(p), b = _mm512_loadu_ps(p + 16);
      const __m512bh hi = _mm512_cvtne2ps_pbh(b, a);  // elements 0-15 from a, 16-31 from b: memory order
      // hi back in float: a bf16 is the top half of a float, so each 16-bit lane moves up into place.
      const __m512i h = (__m512i)hi;
      const __m512 hi_a = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(h)), 16));
      const __m512 hi_b = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(h, 1)), 16));
      xs[2 * m][v] = hi;
      xs[2 * m + 1][v] = _mm512_cvtne2ps_pbh(_mm512_sub_ps(b, hi_b), _mm512_sub_ps(a, hi_a));
    }
}

// stream_rows for bf16 weights through vdpbf16ps: rows [m0, m0 + MB) of y, output features [n0, n1) (at most
// kStreamChunk), in blocks of kDpBlock columns whose partial dot products are added in float.
template <int MB, typename Output>
inline void stream_rows_dpbf16(const float* x, Index x_stride, Index m0, const std::uint16_t* w, Index w_stride, Index n0, Index n1,
                               Index K, const float* bias, Output& y, Accumulate accumulate) {
  constexpr int NB = MB <= 2 ? 4 : 2;  // 2 * MB * NB accumulators and NB weight vectors within 32 registers
  alignas(64) __m512bh xs[2 * MB][kDpBlock / 32];
  float sums[MB][kStreamChunk] = {};
  const float* xm = x + m0 * x_stride;
  for (Index k0 = 0; k0 < K; k0 += kDpBlock) {
    const Index len = std::min(kDpBlock, K - k0), n32 = len / 32;
    split_bf16<MB>(xm, x_stride, k0, n32, xs);
    for (Index n = n0; n < n1; n += NB) {
      const int nb = static_cast<int>(std::min<Index>(NB, n1 - n));
      const std::uint16_t* rows[NB];
      for (int j = 0; j < NB; ++j) rows[j] = w + (n + (j < nb ? j : 0)) * w_stride + k0;  // past n1: row n again, unused
      __m512 acc_hi[MB][NB], acc_lo[MB][NB];  // two chains per sum, so that the hi and lo products do not wait on each other
      for (int m = 0; m < MB; ++m)
        for (int j = 0; j < NB; ++j) acc_hi[m][j] = acc_lo[m][j] = _mm512_setzero_ps();
      for (Index v = 0; v < n32; ++v) {
        __m512bh wv[NB];
        for (int j = 0; j < NB; ++j) {
          wv[j] = (__m512bh)_mm512_loadu_si512(rows[j] + 32 * v);
          // The same columns of the next NB rows, as in dot_block (a hint: never faults, even past the matrix).
          Eigen::internal::prefetch(reinterpret_cast<const std::uint16_t*>(
              reinterpret_cast<std::uintptr_t>(rows[j] + 32 * v) + sizeof(std::uint16_t) * static_cast<std::uintptr_t>(NB * w_stride)));
        }
        for (int m = 0; m < MB; ++m)
          for (int j = 0; j < NB; ++j) {
            acc_hi[m][j] = _mm512_dpbf16_ps(acc_hi[m][j], wv[j], xs[2 * m][v]);
            acc_lo[m][j] = _mm512_dpbf16_ps(acc_lo[m][j], wv[j], xs[2 * m + 1][v]);
          }
      }
      for (int m = 0; m < MB; ++m)
        for (int j = 0; j < nb; ++j) {
          float sum = _mm512_reduce_add_ps(_mm512_add_ps(acc_hi[m][j], acc_lo[m][j]));
          for (Index t = 32 * n32; t < len; ++t) sum += xm[m * x_stride + k0 + t] * bf16_to_float(rows[j][t]);
          sums[m][n - n0 + j] += sum;
        }
    }
  }
  for (int m = 0; m < MB; ++m)
    for (Index n = n0; n < n1; ++n) {
      const float result = sums[m][n - n0] + (bias ? bias[n] : 0.0f);
      if (accumulate == Accumulate::yes)
        y.coeffRef(m0 + m, n) += result;
      else
        y.coeffRef(m0 + m, n) = result;
    }
}
#else
inline constexpr bool kBf16DotProduct = false;
#endif

}  // namespace detail

// y = x W^T + b (or y += x W^T + b) for few rows of x, reading W once: w points at a row-major [N_out, K] matrix
// whose rows are w_stride apart. The output features are split into chunks, one per thread; within a chunk, each group
// of weight rows meets every row of x (four at a time) while it is in the L1 cache.
// W: Scalar, or a narrow type of ops/narrow.hpp (std::uint16_t bfloat16; std::int8_t with `scales`, one per weight row).
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
#if defined(EIGENFORMER_BF16_DOT) && defined(__AVX512BF16__)
      if constexpr (std::is_same_v<Scalar, float> && std::is_same_v<W, std::uint16_t>) {
        detail::stream_rows_dpbf16<MB>(x.data(), K, m, w, w_stride, n0, n1, K, bias, y, accumulate);
        return;
      }
#endif
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

// w may be any Eigen expression of a [out, in] matrix (a block of rows of a fused weight); y any writable
// [N, out] Eigen map, contiguous or strided (rows of a KV cache). Accumulate::yes: y += x W^T + b.
template <typename Scalar, typename WeightMatrix, typename Output>
void linear_forward(ConstMatrixMap<Scalar> x, const WeightMatrix& w, const Scalar* bias, Output&& y,
                    Accumulate accumulate = Accumulate::no) {
  constexpr bool streamable = (int(WeightMatrix::Flags) & Eigen::DirectAccessBit) && (int(WeightMatrix::Flags) & Eigen::RowMajorBit);
  if constexpr (streamable) {
    if (x.rows() <= kStreamRows && w.innerStride() == 1) {
      linear_stream<Scalar>(x, w.data(), w.outerStride(), w.rows(), bias, y, nullptr, accumulate);
      return;
    }
  }
  num_threads();  // applies the library's default thread count to Eigen's GEMM if nothing has yet
  if (accumulate == Accumulate::yes)
    y.noalias() += x * w.transpose();  // Eigen's GEMM adds onto y as it goes: no zeroing pass
  else
    y.noalias() = x * w.transpose();
  if (bias) y.rowwise() += ConstVectorMap<Scalar>(bias, y.cols()).transpose();
}

}  // namespace eigenformer
