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
#pragma once

#include <algorithm>
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

namespace detail {

// out[m][j] = x[m, :] . w[j, :] for MB rows of x and NB rows of w, K long, in SIMD packets of Eigen's widest type
// for Scalar (16 floats under AVX-512, 8 under AVX2), one accumulator per (m, j): MB * NB <= 16 registers.
template <typename Scalar, int MB, int NB>
inline void dot_block(const Scalar* x, Index x_stride, const Scalar* w, Index w_stride, Index K, Scalar (&out)[MB][NB]) {
  namespace ei = Eigen::internal;
  using Packet = typename ei::packet_traits<Scalar>::type;
  constexpr Index L = ei::packet_traits<Scalar>::size;
  Packet acc[MB][NB];
  for (int m = 0; m < MB; ++m)
    for (int j = 0; j < NB; ++j) acc[m][j] = ei::pset1<Packet>(Scalar(0));
  Index k = 0;
  for (; k + L <= K; k += L) {
    Packet wp[NB];
    for (int j = 0; j < NB; ++j) wp[j] = ei::ploadu<Packet>(w + j * w_stride + k);
    for (int m = 0; m < MB; ++m) {
      const Packet xp = ei::ploadu<Packet>(x + m * x_stride + k);
      for (int j = 0; j < NB; ++j) acc[m][j] = ei::pmadd(xp, wp[j], acc[m][j]);
    }
  }
  for (int m = 0; m < MB; ++m)
    for (int j = 0; j < NB; ++j) {
      Scalar sum = ei::predux(acc[m][j]);
      for (Index t = k; t < K; ++t) sum += x[m * x_stride + t] * w[j * w_stride + t];
      out[m][j] = sum;
    }
}

template <typename Scalar, int MB, typename Output>
inline void stream_rows(const Scalar* x, Index x_stride, Index m0, const Scalar* w, Index w_stride, Index n0, Index n1, Index K,
                        const Scalar* bias, Output& y) {
  // MB * NB accumulators, NB weight packets and one x packet must fit in the SIMD registers (32 under AVX-512).
  constexpr int NB = (MB <= 2 || EIGEN_ARCH_DEFAULT_NUMBER_OF_REGISTERS >= 32) ? 4 : 2;
  Index n = n0;
  for (; n + NB <= n1; n += NB) {
    Scalar out[MB][NB];
    dot_block<Scalar, MB, NB>(x + m0 * x_stride, x_stride, w + n * w_stride, w_stride, K, out);
    for (int m = 0; m < MB; ++m)
      for (int j = 0; j < NB; ++j) y.coeffRef(m0 + m, n + j) = out[m][j] + (bias ? bias[n + j] : Scalar(0));
  }
  for (; n < n1; ++n) {
    Scalar out[MB][1];
    dot_block<Scalar, MB, 1>(x + m0 * x_stride, x_stride, w + n * w_stride, w_stride, K, out);
    for (int m = 0; m < MB; ++m) y.coeffRef(m0 + m, n) = out[m][0] + (bias ? bias[n] : Scalar(0));
  }
}

}  // namespace detail

// y = x W^T + b for few rows of x, reading W once: w points at a row-major [N_out, K] matrix whose rows are
// w_stride apart. The output features are split into chunks, one per thread; within a chunk, each group of weight
// rows meets every row of x (four at a time) while it is in the L1 cache.
template <typename Scalar, typename Output>
void linear_stream(ConstMatrixMap<Scalar> x, const Scalar* w, Index w_stride, Index n_out, const Scalar* bias, Output&& y) {
  const Index M = x.rows(), K = x.cols();
  if (M == 1) {
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
      out.noalias() = x.row(0) * wt.transpose();
      if (bias) out += ConstVectorMap<Scalar>(bias + n0, n).transpose();
    }
    return;
  }
  // Chunks of 64 output features: 64 weight rows of GPT-2's 768 inputs are 192 KiB, read once per call.
  constexpr Index chunk = 64;
  const Index chunks = (n_out + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) if (chunks > 1 && n_out * K >= (Index(1) << 16)) num_threads(num_threads())
  for (Index c = 0; c < chunks; ++c) {
    const Index n0 = c * chunk, n1 = std::min(n_out, n0 + chunk);
    Index m = 0;
    for (; m + 4 <= M; m += 4) detail::stream_rows<Scalar, 4>(x.data(), K, m, w, w_stride, n0, n1, K, bias, y);
    switch (M - m) {
      case 3: detail::stream_rows<Scalar, 3>(x.data(), K, m, w, w_stride, n0, n1, K, bias, y); break;
      case 2: detail::stream_rows<Scalar, 2>(x.data(), K, m, w, w_stride, n0, n1, K, bias, y); break;
      case 1: detail::stream_rows<Scalar, 1>(x.data(), K, m, w, w_stride, n0, n1, K, bias, y); break;
      default: break;  // M was a multiple of 4
    }
  }
}

// w may be any Eigen expression of a [out, in] matrix (a block of rows of a fused weight); y any writable
// [N, out] Eigen map, contiguous or strided (rows of a KV cache).
template <typename Scalar, typename WeightMatrix, typename Output>
void linear_forward(ConstMatrixMap<Scalar> x, const WeightMatrix& w, const Scalar* bias, Output&& y) {
  constexpr bool streamable = (int(WeightMatrix::Flags) & Eigen::DirectAccessBit) && (int(WeightMatrix::Flags) & Eigen::RowMajorBit);
  if constexpr (streamable) {
    if (x.rows() <= kStreamRows && w.innerStride() == 1) {
      linear_stream<Scalar>(x, w.data(), w.outerStride(), w.rows(), bias, y);
      return;
    }
  }
  y.noalias() = x * w.transpose();
  if (bias) y.rowwise() += ConstVectorMap<Scalar>(bias, y.cols()).transpose();
}

}  // namespace eigenformer
