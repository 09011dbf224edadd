// ops/linear_stream.hpp: the kernel behind ops/linear.hpp's linear_forward when x has few rows (decoding: one row per
// sequence, N <= kStreamRows). y = x W^T + b, as linear_reference, but shaped for memory rather than arithmetic:
// Eigen's GEMM would repack the whole weight matrix on every call only to use it a few times; here every weight row
// is read once, straight from where it lives, and dotted with all N rows of x while it is in the L1 cache. That loop
// is bound by the rate at which the machine streams the weights, so the weights may also be stored narrow
// (W = std::uint16_t bfloat16 bits, or std::int8_t with a scale per row; nn/layer_weight.hpp) and are widened in
// SIMD registers: memory traffic is then the narrow bytes alone. For float, that kernel is compiled for AVX-512 or
// AVX2 when the build targets them, and otherwise, on x86-64, chosen when the program runs, so a portable build reads
// bfloat16 as fast as a native one (issue 14). Output features are split across the library's threads.
// Accumulate::yes adds y += x W^T + b as it stores (how a residual connection's last projection adds x back).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#endif

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

// How the portable kernel reads weights of element type W into SIMD packets of Scalar: W = Scalar as it is,
// std::uint16_t as bfloat16 bits, std::int8_t as a quantised value (its row's scale is applied to the finished dot
// product). A narrow weight is widened through a small array in the L1 cache; for float, the narrow kernel below does
// it in registers instead wherever it can.
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
      alignas(64) Scalar widened[L];
      for (Index i = 0; i < L; ++i) widened[i] = one(p[i]);
      return Eigen::internal::pload<Packet>(widened);
    }
  }
};

// out[m][j] = x[m, :] . w[j, :] for MB rows of x and NB rows of w, K long, in SIMD packets of Eigen's widest type
// for Scalar (16 floats under AVX-512, 8 under AVX2, 4 under SSE), one accumulator per (m, j).
struct EigenDot {
  static constexpr int registers = EIGEN_ARCH_DEFAULT_NUMBER_OF_REGISTERS;
  template <typename Scalar, typename W, int MB, int NB>
  static void run(const Scalar* x, Index x_stride, const W* w, Index w_stride, Index K, Scalar (&out)[MB][NB]) {
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
      // Ask for the same columns of the group of NB rows after the next now, into the L2 cache: the hardware
      // prefetcher alone left the streams from memory at half the bandwidth (bench_ops, GPT-2's 154 MB lm_head on one
      // thread: bf16 3.9 -> 1.8 ms, float 4.9 -> 3.7 ms), and asking for the next group into L1 (prefetcht0) kept
      // too few lines on their way: GPT-2's float32 decoding is 8% (B=1) and 11% (B=8) faster this way, measured in
      // one process alternating the two.
#if defined(__GNUC__)
      for (int j = 0; j < NB; ++j) __builtin_prefetch(next_rows(w + k, j, 2 * NB, w_stride), 0, 2);
#else
      for (int j = 0; j < NB; ++j) ei::prefetch(next_rows(w + k, j, 2 * NB, w_stride));
#endif
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
  // Row j of the next group of NB rows, at the same column (or of the group after it, given 2 NB). The last groups'
  // prefetches point past the matrix: an address computed as an integer, a hint that never faults.
  template <typename W>
  static const W* next_rows(const W* p, int j, int NB, Index w_stride) {
    return reinterpret_cast<const W*>(reinterpret_cast<std::uintptr_t>(p) + sizeof(W) * static_cast<std::uintptr_t>((NB + j) * w_stride));
  }
};

// The narrow kernel: the same dot products for float x against bfloat16 or int8 weights, widened in SIMD registers,
// so that memory traffic is the narrow bytes alone. Its loop is written once, on vectors of L floats in GCC's vector
// extensions (which Clang shares): what one AVX-512 (L = 16) or AVX2 (L = 8) register holds. The three operations
// that need that instruction set's intrinsics (widen bf16, widen int8, fused multiply-add) sit in NarrowLanes<L>,
// under `target` attributes, with `broadcast`, which ops/gemm.hpp's kernel uses. A build for such a CPU
// (-march=native) uses the kernel directly; a portable x86-64 build compiles it into two functions under those
// attributes (stream_chunk_avx512 and _avx2, below) and picks one when it runs (narrow_kernel()), so `--dtype bf16` is
// fast in either.
#if defined(__GNUC__) && defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512DQ__)
#define EIGENFORMER_NARROW_LANES 16
#elif defined(__GNUC__) && defined(__AVX2__) && defined(__FMA__)
#define EIGENFORMER_NARROW_LANES 8
#elif defined(__GNUC__) && defined(__x86_64__)
#define EIGENFORMER_NARROW_DISPATCH 1  // chosen at run time
#endif

#if defined(EIGENFORMER_NARROW_LANES) || defined(EIGENFORMER_NARROW_DISPATCH)
#define EIGENFORMER_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#define EIGENFORMER_TARGET_AVX2 __attribute__((target("avx2,fma")))

template <int L>
struct NarrowLanes;
template <>
struct NarrowLanes<8> {
  typedef float F __attribute__((vector_size(32)));  // as __m256
  static constexpr int registers = 16;
  EIGENFORMER_TARGET_AVX2 static void widen(const std::uint16_t* p, F& out) {
    out = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
  }
  EIGENFORMER_TARGET_AVX2 static void widen(const std::int8_t* p, F& out) {
    out = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  }
  EIGENFORMER_TARGET_AVX2 static void multiply_add(const F& x, const F& w, F& acc) { acc = _mm256_fmadd_ps(x, w, acc); }
  EIGENFORMER_TARGET_AVX2 static void broadcast(const float* p, F& out) { out = _mm256_broadcast_ss(p); }
  EIGENFORMER_TARGET_AVX2 static float sum(const F& v) {
    const __m128 half = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 quarter = _mm_add_ps(half, _mm_movehl_ps(half, half));
    return _mm_cvtss_f32(_mm_add_ss(quarter, _mm_movehdup_ps(quarter)));
  }
};

template <>
struct NarrowLanes<16> {
  typedef float F __attribute__((vector_size(64)));  // as __m512
  static constexpr int registers = 32;
  // bfloat16 bits become the top half of a float's; an int8 becomes its float value. (The maskz_ forms with every
  // lane selected are the plain instructions; GCC 12's plain forms start from an "undefined" vector that its
  // -Wmaybe-uninitialized reports in our code wherever they are inlined.)
  EIGENFORMER_TARGET_AVX512 static void widen(const std::uint16_t* p, F& out) {
    const __m512i wide = _mm512_maskz_cvtepu16_epi32(0xffff, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    out = _mm512_castsi512_ps(_mm512_maskz_slli_epi32(0xffff, wide, 16));
  }
  EIGENFORMER_TARGET_AVX512 static void widen(const std::int8_t* p, F& out) {
    out = _mm512_maskz_cvtepi32_ps(0xffff, _mm512_maskz_cvtepi8_epi32(0xffff, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  }
  EIGENFORMER_TARGET_AVX512 static void multiply_add(const F& x, const F& w, F& acc) { acc = _mm512_fmadd_ps(x, w, acc); }
  EIGENFORMER_TARGET_AVX512 static void broadcast(const float* p, F& out) { out = _mm512_set1_ps(*p); }
  EIGENFORMER_TARGET_AVX512 static float sum(const F& v) {
    NarrowLanes<8>::F low, high;
    std::memcpy(&low, &v, sizeof low);
    std::memcpy(&high, reinterpret_cast<const char*>(&v) + sizeof low, sizeof high);
    return NarrowLanes<8>::sum(low + high);
  }
};
// EigenDot::run for float x and narrow weights, on NarrowLanes<L>. (Vectors pass by reference: by value, their
// calling convention would depend on the instruction set.)
template <int L>
struct NarrowDot {
  using Lanes = NarrowLanes<L>;
  using F = typename Lanes::F;
  static constexpr int registers = Lanes::registers;
  template <typename Scalar, typename W, int MB, int NB>
  static void run(const float* x, Index x_stride, const W* w, Index w_stride, Index K, float (&out)[MB][NB]) {
    static_assert(std::is_same_v<Scalar, float> && !std::is_same_v<W, float>, "float x against narrow weights");
    F acc[MB][NB] = {};
    Index k = 0;
    for (; k + L <= K; k += L) {
      F wp[NB];
      for (int j = 0; j < NB; ++j) Lanes::widen(w + j * w_stride + k, wp[j]);
      // The same columns of the group of NB rows after the next, into the L2 cache only (prefetcht1): GPT-2's bf16
      // decoding ran at 1.5x float32's speed when this fetched the next group into L1, and at 2.1x with this, in one
      // process alternating the two (decoding's weights stream from memory, and more of them are on their way).
      for (int j = 0; j < NB; ++j) __builtin_prefetch(EigenDot::next_rows(w + k, j, 2 * NB, w_stride), 0, 2);
      for (int m = 0; m < MB; ++m) {
        F xp;
        std::memcpy(&xp, x + m * x_stride + k, sizeof xp);
        for (int j = 0; j < NB; ++j) Lanes::multiply_add(xp, wp[j], acc[m][j]);
      }
    }
    for (int m = 0; m < MB; ++m)
      for (int j = 0; j < NB; ++j) {
        float sum = Lanes::sum(acc[m][j]);
        for (Index t = k; t < K; ++t) sum += x[m * x_stride + t] * WeightLoad<float, W>::one(w[j * w_stride + t]);
        out[m][j] = sum;
      }
  }
};
#endif

// Rows [m0, m0 + MB) of y, output features [n0, n1): y = (x . w) * scale + bias (scales: one per weight row, or none),
// or y += the same, with Dot's dot products.
template <typename Dot, typename Scalar, typename W, int MB, typename Output>
inline void stream_rows(const Scalar* x, Index x_stride, Index m0, const W* w, Index w_stride, Index n0, Index n1, Index K,
                        const Scalar* scales, const Scalar* bias, Output& y, Accumulate accumulate) {
  // MB * NB accumulators, NB weight packets and one x packet must fit in the SIMD registers (32 under AVX-512).
  constexpr int NB = (MB <= 2 || Dot::registers >= 32) ? 4 : 2;
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
    Dot::template run<Scalar, W, MB, NB>(x + m0 * x_stride, x_stride, w + n * w_stride, w_stride, K, out);
    for (int m = 0; m < MB; ++m)
      for (int j = 0; j < NB; ++j) store(m0 + m, n + j, out[m][j]);
  }
  for (; n < n1; ++n) {
    Scalar out[MB][1];
    Dot::template run<Scalar, W, MB, 1>(x + m0 * x_stride, x_stride, w + n * w_stride, w_stride, K, out);
    for (int m = 0; m < MB; ++m) store(m0 + m, n, out[m][0]);
  }
}

// All M rows of x against output features [n0, n1): each group of weight rows meets every row of x (four at a time)
// while it is in the L1 cache.
template <typename Dot, typename Scalar, typename W, typename Output>
inline void stream_chunk(const Scalar* x, Index M, Index K, const W* w, Index w_stride, Index n0, Index n1,
                         const Scalar* scales, const Scalar* bias, Output& y, Accumulate accumulate) {
  Index m = 0;
  for (; m + 4 <= M; m += 4) stream_rows<Dot, Scalar, W, 4>(x, K, m, w, w_stride, n0, n1, K, scales, bias, y, accumulate);
  switch (M - m) {
    case 3: stream_rows<Dot, Scalar, W, 3>(x, K, m, w, w_stride, n0, n1, K, scales, bias, y, accumulate); break;
    case 2: stream_rows<Dot, Scalar, W, 2>(x, K, m, w, w_stride, n0, n1, K, scales, bias, y, accumulate); break;
    case 1: stream_rows<Dot, Scalar, W, 1>(x, K, m, w, w_stride, n0, n1, K, scales, bias, y, accumulate); break;
    default: break;  // M was a multiple of 4
  }
}

// Which dot products narrow float weights get: the narrow kernel for AVX-512 or AVX2, or EigenDot's portable loop.
enum class NarrowKernel { portable, avx2, avx512 };

inline const char* narrow_kernel_name(NarrowKernel kernel) {
  switch (kernel) {
    case NarrowKernel::avx512: return "avx512";
    case NarrowKernel::avx2: return "avx2";
    case NarrowKernel::portable: return "portable";
  }
  return "?";
}

// The kernel linear_stream uses: the one the build targets, or in a portable x86-64 build the widest this CPU runs
// (__builtin_cpu_supports: the CPU has the instructions and the operating system saves their registers).
inline NarrowKernel narrow_kernel() {
#if defined(EIGENFORMER_NARROW_LANES)
  return EIGENFORMER_NARROW_LANES == 16 ? NarrowKernel::avx512 : NarrowKernel::avx2;
#elif defined(EIGENFORMER_NARROW_DISPATCH)
  static const NarrowKernel chosen = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq"))
      return NarrowKernel::avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return NarrowKernel::avx2;
    return NarrowKernel::portable;
  }();
  return chosen;
#else
  return NarrowKernel::portable;
#endif
}

#if defined(EIGENFORMER_NARROW_DISPATCH)
// stream_chunk with the narrow kernel, compiled for AVX-512 or AVX2 whatever the build targets. `flatten` inlines
// everything it calls, so that all of the kernel is compiled under the attribute.
template <typename W, typename Output>
EIGENFORMER_TARGET_AVX512 __attribute__((flatten)) void stream_chunk_avx512(
    const float* x, Index M, Index K, const W* w, Index w_stride, Index n0, Index n1, const float* scales, const float* bias,
    Output& y, Accumulate accumulate) {
  stream_chunk<NarrowDot<16>, float, W>(x, M, K, w, w_stride, n0, n1, scales, bias, y, accumulate);
}
template <typename W, typename Output>
EIGENFORMER_TARGET_AVX2 __attribute__((flatten)) void stream_chunk_avx2(const float* x, Index M, Index K, const W* w, Index w_stride,
                                                                        Index n0, Index n1, const float* scales, const float* bias,
                                                                        Output& y, Accumulate accumulate) {
  stream_chunk<NarrowDot<8>, float, W>(x, M, K, w, w_stride, n0, n1, scales, bias, y, accumulate);
}
#endif

// stream_chunk with the dot products `kernel` names where W is narrow and Scalar float, EigenDot's otherwise. A kernel
// this build or CPU does not have is a caller's error (narrow_kernel() never returns one).
template <typename Scalar, typename W, typename Output>
inline void stream_chunk_on(NarrowKernel kernel, const Scalar* x, Index M, Index K, const W* w, Index w_stride, Index n0, Index n1,
                            const Scalar* scales, const Scalar* bias, Output& y, Accumulate accumulate) {
  if constexpr (std::is_same_v<Scalar, float> && !std::is_same_v<W, float>) {
#if defined(EIGENFORMER_NARROW_LANES)
    if (kernel != NarrowKernel::portable) {
      stream_chunk<NarrowDot<EIGENFORMER_NARROW_LANES>, float, W>(x, M, K, w, w_stride, n0, n1, scales, bias, y, accumulate);
      return;
    }
#elif defined(EIGENFORMER_NARROW_DISPATCH)
    if (kernel == NarrowKernel::avx512) {
      stream_chunk_avx512(x, M, K, w, w_stride, n0, n1, scales, bias, y, accumulate);
      return;
    }
    if (kernel == NarrowKernel::avx2) {
      stream_chunk_avx2(x, M, K, w, w_stride, n0, n1, scales, bias, y, accumulate);
      return;
    }
#endif
  }
  (void)kernel;
  stream_chunk<EigenDot, Scalar, W>(x, M, K, w, w_stride, n0, n1, scales, bias, y, accumulate);
}

// linear_stream's unit of work: this many output features (weight rows), one thread's at a time.
inline constexpr Index kStreamChunk = 64;

// linear_stream (below) with a given narrow kernel: tests run each one the CPU has.
template <typename Scalar, typename W, typename Output>
void linear_stream_on(NarrowKernel kernel, ConstMatrixMap<Scalar> x, const W* w, Index w_stride, Index n_out, const Scalar* bias,
                      Output&& y, const Scalar* scales, Accumulate accumulate) {
  const Index M = x.rows(), K = x.cols();
  // Chunks of 64 output features: 64 weight rows of GPT-2's 768 inputs are 192 KiB, read once per call.
  constexpr Index chunk = kStreamChunk;
  const Index chunks = (n_out + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) if (chunks > 1 && n_out * K >= (Index(1) << 16)) num_threads(num_threads())
  for (Index c = 0; c < chunks; ++c)
    stream_chunk_on<Scalar, W>(kernel, x.data(), M, K, w, w_stride, c * chunk, std::min(n_out, (c + 1) * chunk), scales, bias, y,
                               accumulate);
}

}  // namespace detail

// y = x W^T + b (or y += x W^T + b) for few rows of x, reading W once: w points at a row-major [N_out, K] matrix
// whose rows are w_stride apart. The output features are split into chunks, one per thread.
// W: Scalar, or a narrow type of nn/layer_weight.hpp (std::uint16_t bfloat16; std::int8_t with `scales`, one per weight row).
template <typename Scalar, typename W = Scalar, typename Output>
void linear_stream(ConstMatrixMap<Scalar> x, const W* w, Index w_stride, Index n_out, const Scalar* bias, Output&& y,
                   const Scalar* scales = nullptr, Accumulate accumulate = Accumulate::no) {
  detail::linear_stream_on<Scalar, W>(detail::narrow_kernel(), x, w, w_stride, n_out, bias, y, scales, accumulate);
}

}  // namespace eigenformer
