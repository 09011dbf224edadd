// bench/bench_machine.hpp: the machine's own limits, measured in the same run as the kernels set against them: an
// Eigen SGEMM (the compute ceiling; frac_gemm divides by it) and memory traffic (the ceiling of decoding, which
// streams every weight once per step). One copy for every bench_<area>.cpp. Each file keeps the names and counters
// that bench/report reads from it, except machine/gemm_peak, the same row in bench_attention and bench_ops:
// register_gemm_peak() below.
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <eigenformer/core/tensor.hpp>
#include <eigenformer/core/threading.hpp>

namespace eigenformer::bench {

// EIGENFORMER_BENCH_THREADS, default 2. Every benchmark sets its thread count explicitly from this, so that rows
// of one run, and ours against PyTorch's (also 2 threads), compare.
inline int threads() {
  const char* s = std::getenv("EIGENFORMER_BENCH_THREADS");
  return s ? std::max(1, std::atoi(s)) : 2;
}

// Far beyond the caches, so that memory is what is timed.
inline constexpr std::size_t kMemoryBytes = std::size_t(256) << 20;

// c = a b on [n, n] float matrices, row-major as every product of the library, timed one product at a time.
class SquareSgemm {
 public:
  explicit SquareSgemm(Index n) : a_(RowMatrix<float>::Random(n, n)), b_(RowMatrix<float>::Random(n, n)), c_(n, n) {}
  double flops() const { return 2.0 * static_cast<double>(c_.rows()) * static_cast<double>(c_.rows()) * static_cast<double>(c_.rows()); }
  // One product; returns its rate in GFLOP/s.
  double run() {
    const auto start = std::chrono::steady_clock::now();
    c_.noalias() = a_ * b_;
    benchmark::DoNotOptimize(c_.data());
    benchmark::ClobberMemory();
    return flops() * 1e-9 / std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }

 private:
  RowMatrix<float> a_, b_, c_;  // [n, n] each
};

// The best single SGEMM rate seen so far in this process, in GFLOP/s: the ceiling frac_gemm divides by.
inline double& gemm_peak() {
  static double peak = 0;
  return peak;
}

// The benchmark loop of a machine row: one [n, n] product per iteration, on the threads the caller set. Returns the
// best single product's GFLOP/s, which also raises gemm_peak(). The caller names the counters.
inline double sgemm_loop(benchmark::State& state, Index n) {
  SquareSgemm product(n);
  double best = 0;
  for (auto _ : state) best = std::max(best, product.run());
  gemm_peak() = std::max(gemm_peak(), best);
  return best;
}

// gemm_peak(), or when machine/gemm_peak was filtered out of this run, the best of 10 products of 1024^3 timed now.
inline double gemm_peak_or_measure() {
  if (gemm_peak() == 0) {
    SquareSgemm product(1024);
    for (int r = 0; r < 10; ++r) gemm_peak() = std::max(gemm_peak(), product.run());
  }
  return gemm_peak();
}

// machine/gemm_peak: Eigen SGEMM 1024^3 on threads() threads. GFLOP/s is the mean rate, best_GFLOP/s the best single
// product (the ceiling the kernels are set against). Register it before the kernels, so that it runs first.
inline void machine_gemm_peak(benchmark::State& state) {
  set_num_threads(threads());
  const Index n = 1024;
  const double best = sgemm_loop(state, n);
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * n * n * n * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["best_GFLOP/s"] = best;
}
inline void register_gemm_peak() {
  benchmark::RegisterBenchmark("machine/gemm_peak", machine_gemm_peak)->UseRealTime()->Unit(benchmark::kMillisecond);
}

// A kernel's GFLOP/s for `flops` per iteration, and frac_gemm, that rate over `peak` GFLOP/s (left out when peak is 0).
inline void set_flop_counters(benchmark::State& state, double flops, double peak) {
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  if (peak > 0) state.counters["frac_gemm"] = benchmark::Counter(flops * 1e-9 / peak, benchmark::Counter::kIsIterationInvariantRate);
}

// The benchmark loop of a copy of kMemoryBytes by memcpy: each iteration reads and writes every byte once.
inline void memcpy_loop(benchmark::State& state) {
  std::vector<char> a(kMemoryBytes, 1), b(kMemoryBytes, 0);
  for (auto _ : state) {
    std::memcpy(b.data(), a.data(), kMemoryBytes);
    benchmark::DoNotOptimize(b.data());
  }
}

// The benchmark loop of a read of kMemoryBytes: a sum of floats on `team` OpenMP threads, each summing its own
// contiguous part with Eigen's vectorised sum. Batch-1 decoding reads every weight once per step, so this bounds it.
inline void memory_read_loop(benchmark::State& state, int team) {
  const Index n = static_cast<Index>(kMemoryBytes / sizeof(float));
  Tensor<float> x(Shape{n}, 1.0f);
  std::vector<float> partial(static_cast<std::size_t>(team));
  for (auto _ : state) {
    // One part per thread (without OpenMP, the parts one after the other).
#pragma omp parallel for schedule(static) num_threads(team)
    for (int t = 0; t < team; ++t) {
      const Index begin = n * t / team, end = n * (t + 1) / team;
      partial[static_cast<std::size_t>(t)] = ConstVectorMap<float>(x.data() + begin, end - begin).sum();
    }
    float sum = 0.0f;
    for (float p : partial) sum += p;
    benchmark::DoNotOptimize(sum);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * n * static_cast<std::int64_t>(sizeof(float)));
}

}  // namespace eigenformer::bench
