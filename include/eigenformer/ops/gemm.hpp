// ops/gemm.hpp: the float matrix product behind ops/linear.hpp when x has many rows (prompts, training batches),
//   C (+)= A B^T + bias     A: [M, K], B: [N, K], C: [M, N], bias: [N] or none,
// i.e. C[m, n] = sum_k A[m, k] B[n, k] + bias[n]. A, B and C are read and written through strides,
// A[m, k] = a[m * a_rs + k * a_cs] (B and C likewise), so one kernel serves the forward y = x W^T and both products
// of the backward, dx = dy W and dW += dy^T x, without copying a transpose first.
//
// Why not Eigen's GEMM: on GPT-2's products it ran at 0.55-0.76x OpenBLAS's SGEMM (docs/performance.md, issue 14).
// The layout here needs no per-call packing of the weights, which is most of what a 128-row product spends outside
// arithmetic:
//   - A is copied, up to 2048 rows by KC columns at a time, into panels of P = 2L rows laid out [k][P] (L floats per
//     SIMD register): one panel step is two vector loads. The panels of one block of MC rows, MC x KC floats, stay in
//     the L2 cache while every block of B passes them.
//   - A weight B is not copied: its R rows for the current block are broadcast one element at a time straight from
//     where they live (contiguous in k). The backward's B, R neighbouring elements of one row per step of k, is
//     packed once per pass of KC into blocks laid out [k][R], shared by the threads (gemm_pack_adjacent says why);
//     the last block of fewer than R rows and rows 4 KiB apart are copied per block (gemm_blocks says why).
//   - The micro-kernel holds an R x P tile of C in 2R registers (R = 12 under AVX-512: 24 of 32 registers; R = 6 under
//     AVX2: 12 of 16), and per step of k does 2 loads, R broadcasts and 2R fused multiply-adds.
//   - The tile leaves registers once per KC steps, through a small array: transposed into a row-major C's rows, or
//     whole rows of it into a transposed C.
// The threads take work as they free up: blocks of R columns of C, and for a narrow C parts of the panels too. The kernel exists for AVX-512 and AVX2 (the vectors of
// ops/linear_stream.hpp's NarrowLanes, chosen the same way: by the build's flags, or at run time in a portable build);
// gemm_kernel() says which, and a build or CPU with neither leaves products to Eigen (ops/linear.hpp).
#pragma once

#include <algorithm>
#include <cstring>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "eigenformer/core/accumulate.hpp"
#include "eigenformer/core/tensor.hpp"
#include "eigenformer/core/threading.hpp"
#include "eigenformer/ops/linear_stream.hpp"

namespace eigenformer {

// One operand of gemm: element (i, k) is data[i * row_stride + k * col_stride].
struct GemmOperand {
  const float* data;
  Index row_stride, col_stride;
  float operator()(Index i, Index k) const { return data[i * row_stride + k * col_stride]; }
};

// The output: element (i, j) of C is data[i * row_stride + j * col_stride] (row-major: col_stride 1; transposed:
// row_stride 1, which lets the tile leave in whole vectors: dW += dy^T x is computed as dW^T, its rows along `in`).
struct GemmOutput {
  float* data;
  Index row_stride, col_stride;
  float& operator()(Index i, Index j) const { return data[i * row_stride + j * col_stride]; }
};

namespace detail {

// Block sizes: KC steps of k per pass over C, and rows of A per block: kGemmMC x KC floats (768 KiB), or as many
// more rows as that holds when K is shorter than KC (dW's K is the batch's tokens), or more (below) when B's blocks
// are copied. Every block of B is read once per block of A's rows, so fewer blocks of rows mean fewer passes over a
// large B. 256 rows rather than 128, although 768 KiB is more than the 512 KiB L2 cache of the Zen 3 it was measured
// on (AVX2, in-process, alternated against 128): GPT-2 small's training forward and backward 1.046 (0.992-1.091)
// times faster over 20 rounds, a 512-token prompt 1.017 (0.989-1.049) over 30, a 128-token prompt (one block of rows
// either way) 0.984 (0.957-1.040). On an AVX-512 machine in session 14 it made no difference (1.003).
inline constexpr Index kGemmKC = 768, kGemmMC = 256;

// Whether B's rows lie a multiple of 4 KiB apart (a weight 1024 or 3072 wide: GPT-2's mlp.c_proj). They would all
// fall in the same sets of the L1 cache and evict each other, so gemm_blocks copies each block of them first, and
// gemm_run lets A's row block grow to kGemmMC x kGemmCopiedRows (512 rows) so that each copy serves more panels.
inline bool gemm_copies_b(GemmOperand b) { return b.col_stride == 1 && b.row_stride % 1024 == 0; }
inline constexpr Index kGemmCopiedRows = 2;

// Rows of A packed at once, in whole blocks of MC rows: the threads meet at a barrier once per pass over them rather
// than once per block, so that a thread that finishes its share of one block goes on to the next block instead of
// waiting (measured in-process, alternating: GPT-2 small's training step 2.0% faster, the lm_head's dx product 4.4%,
// a 512-token prompt 0.5%). At most 2048 x KC floats, 6 MiB.
inline constexpr Index kGemmPackedRows = 2048;

#if defined(EIGENFORMER_NARROW_LANES) || defined(EIGENFORMER_NARROW_DISPATCH)
template <int L>
struct GemmShape {
  static constexpr int P = 2 * L;           // rows of A (and of C) per panel: two registers
  static constexpr int R = L == 16 ? 12 : 6;  // columns of C per block: 2R accumulators
};

// The A panel for rows [m0, m0 + rows) and steps [k0, k0 + kc): panel[k * P + i] = A(m0 + i, k0 + k), rows past
// `rows` zero.
inline void gemm_pack_panel(GemmOperand a, Index P, Index m0, Index rows, Index k0, Index kc, float* panel) {
  if (a.col_stride == 1) {  // rows of A contiguous (x, dy): a transpose, 4 rows x 4 steps at a time in SSE registers
    Index i = 0;            // (2% faster on a whole GPT-2 prompt than element by element), the last rows one by one
#if defined(__SSE2__)
    for (; i + 4 <= rows; i += 4) {
      const float* s0 = a.data + (m0 + i) * a.row_stride + k0;
      const float *s1 = s0 + a.row_stride, *s2 = s1 + a.row_stride, *s3 = s2 + a.row_stride;
      Index k = 0;
      for (; k + 4 <= kc; k += 4) {
        __m128 r0 = _mm_loadu_ps(s0 + k), r1 = _mm_loadu_ps(s1 + k), r2 = _mm_loadu_ps(s2 + k), r3 = _mm_loadu_ps(s3 + k);
        _MM_TRANSPOSE4_PS(r0, r1, r2, r3);  // r_j: step k + j of the four rows
        _mm_storeu_ps(panel + k * P + i, r0);
        _mm_storeu_ps(panel + (k + 1) * P + i, r1);
        _mm_storeu_ps(panel + (k + 2) * P + i, r2);
        _mm_storeu_ps(panel + (k + 3) * P + i, r3);
      }
      for (; k < kc; ++k)
        for (Index j = 0; j < 4; ++j) panel[k * P + i + j] = s0[j * a.row_stride + k];
    }
#endif
    for (; i < rows; ++i) {
      const float* src = a.data + (m0 + i) * a.row_stride + k0;
      for (Index k = 0; k < kc; ++k) panel[k * P + i] = src[k];
    }
  } else if (a.row_stride == 1) {  // columns of A contiguous (x in dW^T += x^T dy): a copy per step of k
    for (Index k = 0; k < kc; ++k) std::memcpy(panel + k * P, a.data + m0 + (k0 + k) * a.col_stride, sizeof(float) * rows);
  } else {
    for (Index k = 0; k < kc; ++k)
      for (Index i = 0; i < rows; ++i) panel[k * P + i] = a(m0 + i, k0 + k);
  }
  if (rows < P)
    for (Index k = 0; k < kc; ++k) std::fill(panel + k * P + rows, panel + (k + 1) * P, 0.0f);
}

// tile[r][i] = sum over kc steps of panel[k][i] * B(n0 + r, k0 + k), for r < R. The loops over r are unrolled by
// pragma, so that the accumulators live in registers at -O2 too (GCC 12 keeps them in memory otherwise); the loop
// over k twice (faster than once or four times, in alternated runs of GPT-2's products). AdjacentB: b_rs is 1 (the
// backward's B, R neighbouring elements of a row per step), so that one pointer serves the R broadcasts instead of
// R pointers, one per row, that do not all fit in the registers (2-4% faster on the backward's products).
template <int L, bool AdjacentB>
inline void gemm_micro_kernel(const float* panel, const float* b, Index b_rs, Index b_cs, Index kc, float (*tile)[2 * L]) {
  using Lanes = NarrowLanes<L>;
  using F = typename Lanes::F;
  constexpr int R = GemmShape<L>::R;
  if constexpr (AdjacentB) b_rs = 1;
  F acc0[R], acc1[R];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = F{};
#pragma GCC unroll 2
  for (Index k = 0; k < kc; ++k) {
    F p0, p1;
    std::memcpy(&p0, panel + k * 2 * L, sizeof p0);
    std::memcpy(&p1, panel + k * 2 * L + L, sizeof p1);
    const float* bk = b + k * b_cs;
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      F w;
      Lanes::broadcast(bk + r * b_rs, w);
      Lanes::multiply_add(w, p0, acc0[r]);
      Lanes::multiply_add(w, p1, acc1[r]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    std::memcpy(tile[r], &acc0[r], sizeof acc0[r]);
    std::memcpy(tile[r] + L, &acc1[r], sizeof acc1[r]);
  }
}

#if defined(__SSE2__)
// A tile (tile[r * P + i], r < nr, i < rows) into a row-major C (out[i * ldc + r]) as (C or 0) + tile, then + bias[r]
// when bias is given, in 4 x 4 transposes: the first multiple of 4 of the columns, for every row (1.8% faster on a
// whole GPT-2 prompt of 128 or 512 tokens than element by element). Returns how many columns it stored; gemm_blocks
// stores the rest, in the same order of operations.
inline Index gemm_store_tile_rows(const float* tile, Index P, Index rows, Index nr, float* out, Index ldc, const float* bias, bool add) {
  const Index columns = nr / 4 * 4;
  for (Index r = 0; r < columns; r += 4) {
    const __m128 bias4 = bias ? _mm_loadu_ps(bias + r) : _mm_setzero_ps();
    const auto store = [&](Index i, __m128 v) {  // v: row i of C, columns r .. r + 3
      float* o = out + i * ldc + r;
      v = _mm_add_ps(add ? _mm_loadu_ps(o) : _mm_setzero_ps(), v);
      if (bias) v = _mm_add_ps(v, bias4);
      _mm_storeu_ps(o, v);
    };
    Index i = 0;
    for (; i + 4 <= rows; i += 4) {
      __m128 t0 = _mm_loadu_ps(tile + r * P + i), t1 = _mm_loadu_ps(tile + (r + 1) * P + i);
      __m128 t2 = _mm_loadu_ps(tile + (r + 2) * P + i), t3 = _mm_loadu_ps(tile + (r + 3) * P + i);
      _MM_TRANSPOSE4_PS(t0, t1, t2, t3);  // t_j: row i + j
      store(i, t0), store(i + 1, t1), store(i + 2, t2), store(i + 3, t3);
    }
    for (; i < rows; ++i) store(i, _mm_setr_ps(tile[r * P + i], tile[(r + 1) * P + i], tile[(r + 2) * P + i], tile[(r + 3) * P + i]));
  }
  return columns;
}
#endif

// Columns [n_begin, n_end) of C's rows [m0, m0 + mc), panels [p_begin, p_end) of them, steps [k0, k0 + kc), with A
// already packed into `packed` (one panel per P rows), and an adjacent B into `b_packed` (gemm_pack_adjacent's blocks
// from column b_packed_n0 on; null for any other B). The first pass over k writes C (or adds onto it) with the bias;
// later passes add.
template <int L>
inline void gemm_blocks(const float* packed, float* b_block, const float* b_packed, Index b_packed_n0, Index m0, Index mc, Index p_begin, Index p_end, Index n_begin, Index n_end,
                        Index k0, Index kc, GemmOperand b, GemmOutput c, const float* bias, bool add) {
  constexpr int P = GemmShape<L>::P, R = GemmShape<L>::R;
  const Index stride = kc + 16;  // of rows copied into b_block
  for (Index n0 = n_begin; n0 < n_end; n0 += R) {
    const Index nr = std::min<Index>(R, n_end - n0);
    // B's rows are read where they are, or from gemm_pack_adjacent's blocks when B is adjacent (b_packed), or copied
    // into b_block first in two cases:
    // - the last block of fewer than R rows, padded with zero rows, so that the same kernel runs;
    // - rows that lie a multiple of 4 KiB apart (gemm_copies_b). While the panels are multiplied, the next block's
    //   rows are fetched into the cache for their copy.
    const float* bb = b.data + n0 * b.row_stride + k0 * b.col_stride;
    Index b_rs = b.row_stride, b_cs = b.col_stride;
    const bool aliased = gemm_copies_b(b);
    if (b_packed) {
      bb = b_packed + (n0 - b_packed_n0) * kc, b_rs = 1, b_cs = R;
    } else if (aliased || nr < R) {
      for (Index r = 0; r < nr; ++r) {
        float* dst = b_block + r * stride;
        if (b.col_stride == 1)
          std::memcpy(dst, bb + r * b.row_stride, sizeof(float) * kc);
        else
          for (Index k = 0; k < kc; ++k) dst[k] = bb[r * b.row_stride + k * b.col_stride];
      }
      for (Index r = nr; r < R; ++r) std::fill(b_block + r * stride, b_block + r * stride + kc, 0.0f);
      bb = b_block, b_rs = stride, b_cs = 1;
    }
    const Index next_rows = aliased ? std::max<Index>(0, std::min<Index>(R, n_end - n0 - R)) : 0, lines = (kc + 15) / 16;
    const Index parts = p_end - p_begin;
    alignas(64) float tile[R][P];
    for (Index p = p_begin; p < p_end; ++p) {
      for (Index line = p - p_begin; line < next_rows * lines; line += parts)
        __builtin_prefetch(b.data + (n0 + R + line / lines) * b.row_stride + k0 + line % lines * 16, 0, 2);
      if (b_rs == 1)
        gemm_micro_kernel<L, true>(packed + p * P * kc, bb, b_rs, b_cs, kc, tile);
      else
        gemm_micro_kernel<L, false>(packed + p * P * kc, bb, b_rs, b_cs, kc, tile);
      // The tile into C: tile[r][i] = C(m0 + p P + i, n0 + r), plus the bias on the first pass.
      const Index rows = std::min<Index>(P, mc - p * P), i0 = m0 + p * P;
      if (c.row_stride == 1) {  // C transposed: each tile row is a run of C
        for (Index r = 0; r < nr; ++r) {
          float* out = &c(i0, n0 + r);
          const float add_bias = bias && k0 == 0 ? bias[n0 + r] : 0.0f;
          if (add)
            for (Index i = 0; i < rows; ++i) out[i] += tile[r][i] + add_bias;
          else
            for (Index i = 0; i < rows; ++i) out[i] = tile[r][i] + add_bias;
        }
        continue;
      }
      Index r_done = 0;  // columns stored in vectors
#if defined(__SSE2__)
      if (c.col_stride == 1) r_done = gemm_store_tile_rows(tile[0], P, rows, nr, &c(i0, n0), c.row_stride, bias && k0 == 0 ? bias + n0 : nullptr, add);
#endif
      // The columns left (AVX2's R = 6 leaves 2 of every tile), bias included in the same store: adding it in a
      // second pass read back two scalar stores as one vector, which the CPU cannot forward from its store buffer
      // (6% of a single-threaded c_fc product stalled there on Zen 3; 5-11% faster per GPT-2 product with bias).
      const float* tail_bias = bias && k0 == 0 ? bias + n0 : nullptr;
      for (Index i = 0; i < rows; ++i)
        for (Index r = r_done; r < nr; ++r) {
          float& out = c(i0 + i, n0 + r);
          const float sum = (add ? out : 0.0f) + tile[r][i];
          out = tail_bias ? sum + tail_bias[r] : sum;
        }
    }
  }
}
#endif

#if defined(EIGENFORMER_NARROW_DISPATCH)
// gemm_blocks compiled for AVX-512 or AVX2 whatever the build targets; `flatten` compiles all it calls under the
// attribute. (OpenMP's parallel regions stay outside: their outlined bodies would not inherit it.)
EIGENFORMER_TARGET_AVX512 __attribute__((flatten)) inline void gemm_blocks_avx512(const float* packed, float* b_block, const float* b_packed, Index b_packed_n0, Index m0, Index mc, Index p_begin, Index p_end, Index n_begin,
                                                                                Index n_end, Index k0, Index kc, GemmOperand b,
                                                                                GemmOutput c, const float* bias, bool add) {
  gemm_blocks<16>(packed, b_block, b_packed, b_packed_n0, m0, mc, p_begin, p_end, n_begin, n_end, k0, kc, b, c, bias, add);
}
EIGENFORMER_TARGET_AVX2 __attribute__((flatten)) inline void gemm_blocks_avx2(const float* packed, float* b_block, const float* b_packed, Index b_packed_n0, Index m0, Index mc, Index p_begin, Index p_end, Index n_begin,
                                                                            Index n_end, Index k0, Index kc, GemmOperand b,
                                                                            GemmOutput c, const float* bias, bool add) {
  gemm_blocks<8>(packed, b_block, b_packed, b_packed_n0, m0, mc, p_begin, p_end, n_begin, n_end, k0, kc, b, c, bias, add);
}
#endif

#if defined(EIGENFORMER_NARROW_LANES) || defined(EIGENFORMER_NARROW_DISPATCH)
struct GemmPanels;  // the thread_buffer (core/threading.hpp) of packed panels and copied blocks of B

// A kernel's panel height P and block width R.
inline Index gemm_panel_rows(NarrowKernel kernel) { return kernel == NarrowKernel::avx512 ? GemmShape<16>::P : GemmShape<8>::P; }
inline Index gemm_block_width(NarrowKernel kernel) { return kernel == NarrowKernel::avx512 ? GemmShape<16>::R : GemmShape<8>::R; }

// Columns of an adjacent B packed at once by gemm_pack_adjacent (4.5 MiB at most): a multiple of both kernels' R.
inline constexpr Index kGemmPackedColumns = 1536;

// An adjacent B (row_stride 1: the backward's W in dx = dy W, dy in dW^T += x^T dy) for columns [n0, n0 + nc) and
// steps [k0 + k_begin, k0 + k_end), into blocks of R columns laid out [k][R]:
//   out[(j / R) kc R + k R + j % R] = B(n0 + j, k0 + k), columns past N zero.
// Read where it lies, each step of k would take R floats from a cache line of its own, kc lines per block: too many
// to stay in L1 beside the panels, so every block fetched its lines again, one per step, from L2 or L3. Packed here,
// each step of k reads one run of B's memory front to back, once per pass, and the kernel reads each block as one
// run. The threads pack a share of the steps each; 8 steps at a time, so that each block receives whole cache lines
// (its blocks lie kc R floats apart: one step at a time wrote to lines that share a few sets of the L1 cache).
// Measured on Zen 3 (AVX2), in-process and alternated against copying each block per block of rows as [k][R]
// (86ebe4f): GPT-2 small's dx products at 256 rows 1.27-1.41 times faster, its dW products 1.12-1.21, its training
// backward 1.256 (1.162-1.345) over 12 rounds.
template <int R>
inline void gemm_pack_adjacent(GemmOperand b, Index N, Index n0, Index nc, Index k0, Index kc, Index k_begin, Index k_end, float* out) {
  const Index whole = std::min(nc, N - n0) / R * R;  // columns in blocks of R that lie inside B
  constexpr Index steps = 8;  // of k at a time, so that each block receives whole cache lines
  for (Index kb = k_begin; kb < k_end; kb += steps) {
    const Index ke = std::min(k_end, kb + steps);
    const float* src = b.data + n0 + (k0 + kb) * b.col_stride;
    float* dst = out + kb * R;
    for (Index j = 0; j < whole; j += R)
      for (Index k = 0; k < ke - kb; ++k) std::memcpy(dst + j * kc + k * R, src + k * b.col_stride + j, sizeof(float) * R);
    if (whole < nc)
      for (Index k = 0; k < ke - kb; ++k)
        for (Index r = 0; r < R; ++r) dst[whole * kc + k * R + r] = whole + r < N - n0 ? src[k * b.col_stride + whole + r] : 0.0f;
  }
}

// gemm (below) on an AVX-512 or AVX2 kernel: per pass of up to kGemmPackedRows rows and KC steps, the threads pack
// A's panels (and an adjacent B's blocks, kGemmPackedColumns at a time), wait for each other, and share out the
// blocks of R columns of each block of MC rows.
inline void gemm_run(NarrowKernel kernel, Index M, Index N, Index K, GemmOperand a, GemmOperand b, GemmOutput c,
                     const float* bias, Accumulate accumulate) {
#if defined(EIGENFORMER_NARROW_LANES)
  kernel = narrow_kernel();  // a build for AVX-512 or AVX2 has that kernel alone
#endif
  const Index P = gemm_panel_rows(kernel), R = gemm_block_width(kernel);
  const Index kc_max = std::min(kGemmKC, K);
  // MC rows of A per block: more when K is short, and when every block of B is copied (gemm_copies_b; measured
  // in-process, alternating, on a 512-token GPT-2 prompt: 2% faster than 128 rows, whose copies took 2% of the time).
  const Index MC = std::max(gemm_copies_b(b) ? kGemmCopiedRows * kGemmMC : kGemmMC, kGemmMC * kGemmKC / kc_max / P * P);
  const Index blocks = (N + R - 1) / R;
  const int threads = (blocks > 1 && M * N * K >= (Index(1) << 18)) ? static_cast<int>(std::min<Index>(num_threads(), blocks)) : 1;
  // Rows packed per pass (SB): whole blocks of MC. Block b's panels start at packed + b MC kc, so panel q of the pass
  // (rows s0 + q P ...) lies at packed + q P kc whichever block it belongs to.
  const Index SB = std::max(MC, kGemmPackedRows / MC * MC);
  const Index sb_max = std::min(SB, (M + P - 1) / P * P);
  // An adjacent B is packed NC columns at a time (each step of k a run of B's memory) and read by every block of rows;
  // any other B is read in place, so one chunk holds all its columns.
  const bool adjacent = b.row_stride == 1 && b.col_stride != 1;
  const Index NC = adjacent ? std::min(kGemmPackedColumns, blocks * R) : blocks * R;
  // A's packed panels, an adjacent B's packed blocks, then one block of B per thread.
  const Index b_packed_size = adjacent ? NC * kc_max : 0;
  float* packed = thread_buffer<GemmPanels, float>(static_cast<std::size_t>(sb_max * kc_max + b_packed_size + threads * R * (kc_max + 16)));
  float* b_packed = packed + sb_max * kc_max;
  float* b_blocks = b_packed + b_packed_size;
  const float* shared_b = adjacent ? b_packed : nullptr;  // what gemm_blocks reads B from, when packed
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
#ifdef _OPENMP
    const Index thread = omp_get_thread_num(), team = omp_get_num_threads();
#else
    const Index thread = 0, team = 1;
#endif
    float* b_block = b_blocks + thread * R * (kc_max + 16);
    for (Index s0 = 0; s0 < M; s0 += SB) {
      const Index sb = std::min(SB, M - s0), row_blocks = (sb + MC - 1) / MC, pass_panels = (sb + P - 1) / P;
      for (Index k0 = 0; k0 < K; k0 += kGemmKC) {
        const Index kc = std::min(kGemmKC, K - k0);
        const bool add = accumulate == Accumulate::yes || k0 > 0;
        for (Index nc0 = 0; nc0 < N; nc0 += NC) {
          const Index nc = std::min(NC, N - nc0);
#pragma omp barrier
          // (every thread is done with the previous panels and blocks before they are overwritten)
          if (nc0 == 0)
            for (Index q = thread; q < pass_panels; q += team)
              gemm_pack_panel(a, P, s0 + q * P, std::min(P, sb - q * P), k0, kc, packed + q * P * kc);
          if (adjacent) {
            const Index k_begin = thread * kc / team, k_end = (thread + 1) * kc / team;
            if (R == GemmShape<16>::R)
              gemm_pack_adjacent<GemmShape<16>::R>(b, N, nc0, nc, k0, kc, k_begin, k_end, b_packed);
            else
              gemm_pack_adjacent<GemmShape<8>::R>(b, N, nc0, nc, k0, kc, k_begin, k_end, b_packed);
          }
#pragma omp barrier
          // (every panel and block is packed before any thread reads them)
          // The work goes out in items, about 16 per thread and block of rows, to whichever thread is free, so that a
          // thread slowed by something else on the machine does not hold up the other: groups of blocks of R columns
          // of one block of rows, and when there are too few of those (a narrow C), each one's panels in `team` parts.
          // (Each element of C is the same sum on any thread.)
          const Index chunk_blocks = (nc + R - 1) / R;
          const Index group = std::max<Index>(1, chunk_blocks / (team * 16)), groups = (chunk_blocks + group - 1) / group;
          const Index parts = row_blocks * groups >= 16 * team ? 1 : std::min(team, (std::min(MC, sb) + P - 1) / P);
#pragma omp for schedule(dynamic) nowait
          for (Index item = 0; item < row_blocks * groups * parts; ++item) {
            const Index row_block = item / (groups * parts), g = item / parts % groups, part = item % parts;
            const Index m0 = s0 + row_block * MC, mc = std::min(MC, sb - row_block * MC), panels = (mc + P - 1) / P;
            const Index p_begin = part * panels / parts, p_end = (part + 1) * panels / parts;
            if (p_begin == p_end) continue;  // (a last block of rows with fewer panels than parts)
            const Index n_begin = nc0 + g * group * R, n_end = std::min(nc0 + nc, nc0 + (g + 1) * group * R);
            const float* block_panels = packed + row_block * MC * kc;
#if defined(EIGENFORMER_NARROW_LANES)
            gemm_blocks<EIGENFORMER_NARROW_LANES>(block_panels, b_block, shared_b, nc0, m0, mc, p_begin, p_end, n_begin, n_end, k0, kc, b, c, bias, add);
#elif defined(EIGENFORMER_NARROW_DISPATCH)
            if (kernel == NarrowKernel::avx512)
              gemm_blocks_avx512(block_panels, b_block, shared_b, nc0, m0, mc, p_begin, p_end, n_begin, n_end, k0, kc, b, c, bias, add);
            else
              gemm_blocks_avx2(block_panels, b_block, shared_b, nc0, m0, mc, p_begin, p_end, n_begin, n_end, k0, kc, b, c, bias, add);
#endif
          }
          // (no wait here: the next chunk starts with a barrier, and the parallel region ends with one)
        }
      }
    }
  }
}
#endif

}  // namespace detail

// The kernel gemm runs on this build and CPU: avx512, avx2, or portable (none: callers use Eigen's GEMM).
inline detail::NarrowKernel gemm_kernel() { return detail::narrow_kernel(); }

// C (+)= A B^T + bias with A [M, K], B [N, K] (GemmOperand strides), C [M, N] (GemmOutput strides), on a
// given kernel (tests run each one the CPU has). C must not overlap A or B. Returns false, doing nothing, on
// NarrowKernel::portable.
inline bool gemm_on(detail::NarrowKernel kernel, Index M, Index N, Index K, GemmOperand a, GemmOperand b, GemmOutput c, const float* bias,
                    Accumulate accumulate) {
  EIGENFORMER_ASSERT(M >= 0 && N >= 0 && K >= 0, "gemm: sizes");
  if (kernel == detail::NarrowKernel::portable) return false;
  if (M == 0 || N == 0) return true;
  if (K == 0) {  // no products: C = bias (or 0), or C += bias
    for (Index m = 0; m < M; ++m)
      for (Index n = 0; n < N; ++n) {
        const float add = bias ? bias[n] : 0.0f;
        c(m, n) = (accumulate == Accumulate::yes ? c(m, n) : 0.0f) + add;
      }
    return true;
  }
#if defined(EIGENFORMER_NARROW_LANES) || defined(EIGENFORMER_NARROW_DISPATCH)
  detail::gemm_run(kernel, M, N, K, a, b, c, bias, accumulate);
  return true;
#else
  return false;
#endif
}

// The same on gemm_kernel().
inline bool gemm(Index M, Index N, Index K, GemmOperand a, GemmOperand b, GemmOutput c, const float* bias = nullptr,
                 Accumulate accumulate = Accumulate::no) {
  return gemm_on(gemm_kernel(), M, N, K, a, b, c, bias, accumulate);
}

}  // namespace eigenformer
