// bench_attention: the attention kernels (ops/attention.hpp) against each other and against the machine's GEMM rate
// measured in the same run, on GPT-2 small's head shape (12 heads of 64), float, EIGENFORMER_BENCH_THREADS threads
// (default 2). bench/report --workloads attention runs it beside PyTorch (bench/compare_torch.py) and joins rows
// by name:
//   machine/gemm_peak                         Eigen SGEMM, 1024^3: the rate every kernel is set against
//   attention/{reference,flash}/B:b/T:t/m     self-attention core, q k v [b, 12, t, 64], mask m in none, causal,
//                                             padding (item i keeps t - (i+1) t/16 keys)
//   mha/B:b/T:t/m                             MultiHeadAttention (768 wide, 12 heads, projections included,
//                                             the default kernel, flash)
//   decode/B:b/L:l                            attention_decode: one query per item over l cached keys
// Counters: GFLOP/s (4 B H T S Dh for the core, counted in full even under a causal mask, as PyTorch computes
// it; plus 8 B T E^2 for MHA's projections), frac_gemm (that rate / machine/gemm_peak's), scratch_MB (the
// kernel's working buffers: the reference kernel's [T, S] scores per thread against flash's tiles), and GB/s
// for decoding (keys and values read once).
#include <benchmark/benchmark.h>

#include <cmath>
#include <string>
#include <vector>

#include <eigenformer/core/mask.hpp>
#include <eigenformer/core/random.hpp>
#include <eigenformer/core/threading.hpp>
#include <eigenformer/nn/multi_head_attention.hpp>
#include <eigenformer/ops/attention.hpp>

#include "bench_machine.hpp"

using namespace eigenformer;

namespace {

constexpr Index kHeads = 12, kHeadDim = 64, kWidth = kHeads * kHeadDim;

// frac_gemm against machine/gemm_peak's best product, or, when the filter left that row out, one measured on first use.
void set_flop_counters(benchmark::State& state, double flops) { bench::set_flop_counters(state, flops, bench::gemm_peak_or_measure()); }

Mask make_mask(const std::string& kind, Index B, Index T) {
  if (kind == "causal") return Mask::causal(T, T);
  if (kind == "padding") {
    std::vector<Index> lengths(static_cast<std::size_t>(B));
    for (Index b = 0; b < B; ++b) lengths[static_cast<std::size_t>(b)] = T - (b + 1) * T / 16;
    return Mask::key_padding(lengths, T);
  }
  return Mask();
}

void attention_core(benchmark::State& state, AttentionKernel kernel, Index B, Index T, const std::string& mask_kind) {
  set_num_threads(bench::threads());
  const Tensor<float> q = random_tensor<float>({B, kHeads, T, kHeadDim}, 1), k = random_tensor<float>({B, kHeads, T, kHeadDim}, 2),
                      v = random_tensor<float>({B, kHeads, T, kHeadDim}, 3);
  Tensor<float> out({B, kHeads, T, kHeadDim});
  const Mask mask = make_mask(mask_kind, B, T);
  const float scale = 1.0f / std::sqrt(static_cast<float>(kHeadDim));
  const auto view = [](const Tensor<float>& t) { return HeadsView<const float>::head_major(t); };
  for (auto _ : state) {
    attention_forward<float>(view(q), view(k), view(v), &mask, scale, HeadsView<float>::head_major(out), nullptr, kernel);
    benchmark::DoNotOptimize(out.data());
  }
  set_flop_counters(state, 4.0 * B * kHeads * T * T * kHeadDim);
  const FlashBlocks blocks;
  const double scratch = kernel == AttentionKernel::reference
                             ? static_cast<double>(num_threads() * T * T + (mask.empty() ? 0 : (mask.depends_on_batch() ? B : 1) * T * T))
                             : static_cast<double>(num_threads() * (2 * blocks.queries * blocks.keys + blocks.queries * (kHeadDim + 3)));
  state.counters["scratch_MB"] = scratch * sizeof(float) / 1e6;
}

void mha(benchmark::State& state, Index B, Index T, const std::string& mask_kind) {
  set_num_threads(bench::threads());
  MultiHeadAttention<float> attention(MultiHeadAttentionConfig{kWidth, kHeads});
  Random rng(4);
  attention.visit_parameters([&](const std::string&, Tensor<float>& t) { fill_normal(t.view(), rng, 0.0, 0.02); });
  const Tensor<float> x = random_tensor<float>({B, T, kWidth}, 5);
  const Mask mask = make_mask(mask_kind, B, T);
  for (auto _ : state) {
    Tensor<float> y = attention.forward(x, {&mask});
    benchmark::DoNotOptimize(y.data());
  }
  set_flop_counters(state, 8.0 * B * T * kWidth * kWidth + 4.0 * B * T * T * kWidth);
}

void decode(benchmark::State& state, Index B, Index L) {
  set_num_threads(bench::threads());
  const Tensor<float> q = random_tensor<float>({B, kHeads, 1, kHeadDim}, 6), k = random_tensor<float>({B, kHeads, L, kHeadDim}, 7),
                      v = random_tensor<float>({B, kHeads, L, kHeadDim}, 8);
  Tensor<float> out({B, kHeads, 1, kHeadDim}), scratch({num_threads(), L});
  const std::vector<Index> key_end(static_cast<std::size_t>(B), L);
  const float scale = 1.0f / std::sqrt(static_cast<float>(kHeadDim));
  const auto view = [](const Tensor<float>& t) { return HeadsView<const float>::head_major(t); };
  for (auto _ : state) {
    attention_decode<float>(view(q), view(k), view(v), nullptr, key_end.data(), scale, HeadsView<float>::head_major(out), scratch);
    benchmark::DoNotOptimize(out.data());
  }
  set_flop_counters(state, 4.0 * B * kHeads * L * kHeadDim);
  state.counters["GB/s"] = benchmark::Counter(2.0 * B * kHeads * L * kHeadDim * sizeof(float) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void register_all() {
  bench::register_gemm_peak();
  const char* masks[] = {"none", "causal", "padding"};
  for (Index B : {1, 8})
    for (const char* mask : masks)
      for (Index T : {64, 128, 256, 512, 1024, 2048})
        for (AttentionKernel kernel : {AttentionKernel::reference, AttentionKernel::flash}) {
          const std::string name = std::string("attention/") + kernel_name(kernel) + "/B:" + std::to_string(B) + "/T:" + std::to_string(T) + "/" + mask;
          benchmark::RegisterBenchmark(name.c_str(), attention_core, kernel, B, T, std::string(mask))->UseRealTime()->Unit(benchmark::kMicrosecond);
        }
  for (Index B : {1, 8})
    for (const char* mask : masks)
      for (Index T : {64, 128, 256, 512, 1024, 2048}) {
        const std::string name = "mha/B:" + std::to_string(B) + "/T:" + std::to_string(T) + "/" + mask;
        benchmark::RegisterBenchmark(name.c_str(), mha, B, T, std::string(mask))->UseRealTime()->Unit(benchmark::kMicrosecond);
      }
  for (Index B : {1, 8})
    for (Index L : {128, 256, 512, 1024}) {
      const std::string name = "decode/B:" + std::to_string(B) + "/L:" + std::to_string(L);
      benchmark::RegisterBenchmark(name.c_str(), decode, B, L)->UseRealTime()->Unit(benchmark::kMicrosecond);
    }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
