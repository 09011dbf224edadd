// bench_ops: the products and element-wise kernels GPT-2 small and the translator spend their time in, float, on
// EIGENFORMER_BENCH_THREADS threads (default 2), against the machine's GEMM rate measured in the same run.
//   machine/gemm_peak                        Eigen SGEMM 1024^3 (best single product)
//   linear/<model>/<layer>/M:m/<dtype>       linear_forward: y[m, N] = x[m, K] W^T + b, W [N, K]; m = 1 and 8
//                                            (decoding: the streaming kernel), 512 or 16*20 (a prompt, a batch of
//                                            sources: ops/gemm.hpp); dtype f32, and bf16 / int8 for decoding rows
//   linear_eigen/<model>/<layer>/M:m         the same product by Eigen's GEMM, whatever m (what the streaming
//                                            kernel and ops/gemm.hpp replace)
//   linear_kernel/gpt2/<layer>/M:m/<dtype>/<kernel>
//                                            a portable x86-64 build only: the narrow rows (m = 1 and 8) on each
//                                            kernel it can dispatch to on this CPU (portable, avx2, avx512), so that
//                                            an AVX-512 machine also times what an AVX2-only one runs
//   softmax/R:r/S:s, layer_norm/R:r/D:d, gelu_tanh/R:r/F:f
// Counters: GFLOP/s and frac_gemm for products; GB/s of weights read for decoding rows (set it against a memory
// copy: bench_gpt2's BM_Machine_Copy); GB/s of data for the element-wise kernels.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include <eigenformer/core/random.hpp>
#include <eigenformer/core/threading.hpp>
#include <eigenformer/ops/activations.hpp>
#include <eigenformer/ops/layer_norm.hpp>
#include <eigenformer/ops/linear.hpp>
#include <eigenformer/ops/linear_stream.hpp>
#include <eigenformer/nn/layer_weight.hpp>
#include <eigenformer/ops/softmax.hpp>

#include "bench_machine.hpp"

using namespace eigenformer;

namespace {

// frac_gemm only against machine/gemm_peak of the same run: left out when the filter skipped that row.
void flop_counters(benchmark::State& state, double flops) { bench::set_flop_counters(state, flops, bench::gemm_peak()); }

// y = x W^T + b by linear_forward (the library's choice of kernel) or, with eigen = true, always by Eigen's GEMM.
void linear(benchmark::State& state, Index M, Index N, Index K, WeightType type, bool eigen) {
  set_num_threads(bench::threads());
  const Tensor<float> x = random_tensor<float>({M, K}, 1), w = random_tensor<float>({N, K}, 2), bias = random_tensor<float>({N}, 3);
  Tensor<float> y({M, N});
  const NarrowMatrix<float> narrow = type == WeightType::full ? NarrowMatrix<float>() : NarrowMatrix<float>(w.matrix(), type);
  for (auto _ : state) {
    if (eigen) {
      y.matrix().noalias() = x.matrix() * w.matrix().transpose();
      y.matrix().rowwise() += bias.vector().transpose();
    } else if (type == WeightType::full) {
      linear_forward<float>(x.matrix(), w.matrix(), bias.data(), y.matrix());
    } else {
      linear_forward<float>(x.matrix(), narrow, 0, N, bias.data(), y.matrix());
    }
    benchmark::DoNotOptimize(y.data());
  }
  flop_counters(state, 2.0 * M * N * K);
  const double bytes = type == WeightType::full ? 4.0 : type == WeightType::bf16 ? 2.0 : 1.0;
  state.counters["weight_GB/s"] = benchmark::Counter(bytes * N * K * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// The narrow product of `linear` on a given kernel of ops/linear_stream.hpp, as linear_forward runs it.
void linear_on_kernel(benchmark::State& state, Index M, Index N, Index K, WeightType type, detail::NarrowKernel kernel) {
  set_num_threads(bench::threads());
  const Tensor<float> x = random_tensor<float>({M, K}, 1), w = random_tensor<float>({N, K}, 2), bias = random_tensor<float>({N}, 3);
  Tensor<float> y({M, N});
  const NarrowMatrix<float> narrow(w.matrix(), type);
  for (auto _ : state) {
    if (type == WeightType::bf16)
      detail::linear_stream_on<float>(kernel, x.matrix(), narrow.bf16_data(), K, N, bias.data(), y.matrix(), nullptr, Accumulate::no);
    else
      detail::linear_stream_on<float>(kernel, x.matrix(), narrow.int8_data(), K, N, bias.data(), y.matrix(), narrow.scales(),
                                      Accumulate::no);
    benchmark::DoNotOptimize(y.data());
  }
  flop_counters(state, 2.0 * M * N * K);
  state.counters["weight_GB/s"] =
      benchmark::Counter((type == WeightType::bf16 ? 2.0 : 1.0) * N * K * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// The narrow kernels a portable build can run here (none to compare in a native build: it has one).
std::vector<detail::NarrowKernel> dispatchable_kernels() {
#if defined(EIGENFORMER_NARROW_DISPATCH)
  std::vector<detail::NarrowKernel> kernels{detail::NarrowKernel::portable};
  if (detail::narrow_kernel() != detail::NarrowKernel::portable) kernels.push_back(detail::NarrowKernel::avx2);
  if (detail::narrow_kernel() == detail::NarrowKernel::avx512) kernels.push_back(detail::NarrowKernel::avx512);
  return kernels;
#else
  return {};
#endif
}

void softmax(benchmark::State& state, Index R, Index S) {
  Tensor<float> x = random_tensor<float>({R, S}, 4);
  const Tensor<float> original = x;
  for (auto _ : state) {
    state.PauseTiming();
    x.matrix() = original.matrix();
    state.ResumeTiming();
    softmax_rows<float>(x.matrix());
    benchmark::DoNotOptimize(x.data());
  }
  state.counters["GB/s"] = benchmark::Counter(2.0 * R * S * 4 * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void layer_norm(benchmark::State& state, Index R, Index D) {
  const Tensor<float> x = random_tensor<float>({R, D}, 5), gamma = random_tensor<float>({D}, 6), beta = random_tensor<float>({D}, 7);
  Tensor<float> y({R, D});
  for (auto _ : state) {
    layer_norm_forward<float>(x.matrix(), gamma.vector(), beta.vector(), 1e-5f, y.matrix());
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GB/s"] = benchmark::Counter(2.0 * R * D * 4 * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void gelu(benchmark::State& state, Index R, Index F) {
  Tensor<float> x = random_tensor<float>({R, F}, 8);
  const Tensor<float> original = x;
  for (auto _ : state) {
    state.PauseTiming();
    x.matrix() = original.matrix();
    state.ResumeTiming();
    activation_forward<float>(Activation::gelu_tanh, x.matrix());
    benchmark::DoNotOptimize(x.data());
  }
  state.counters["GB/s"] = benchmark::Counter(2.0 * R * F * 4 * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

struct Shape3 {
  const char* model;
  const char* layer;
  Index N, K;
};

void register_all() {
  bench::register_gemm_peak();
  const Shape3 gpt2[] = {{"gpt2", "c_attn", 2304, 768}, {"gpt2", "attn.c_proj", 768, 768}, {"gpt2", "c_fc", 3072, 768},
                         {"gpt2", "mlp.c_proj", 768, 3072}, {"gpt2", "lm_head", 50257, 768}};
  const Shape3 translator[] = {{"translator", "in_proj", 1536, 512}, {"translator", "out_proj", 512, 512}, {"translator", "linear1", 512, 512},
                               {"translator", "generator", 10000, 512}};
  const auto add = [](const Shape3& s, Index M, WeightType type, bool eigen) {
    const std::string name = std::string(eigen ? "linear_eigen/" : "linear/") + s.model + "/" + s.layer + "/M:" + std::to_string(M) +
                             (eigen ? "" : std::string("/") + weight_type_name(type));
    benchmark::RegisterBenchmark(name.c_str(), linear, M, s.N, s.K, type, eigen)->UseRealTime()->Unit(benchmark::kMicrosecond);
  };
  for (const Shape3& s : gpt2) {
    for (Index M : {1, 8}) {
      for (WeightType type : {WeightType::full, WeightType::bf16, WeightType::int8}) add(s, M, type, false);
      add(s, M, WeightType::full, true);
    }
    for (Index M : {128, 512}) {
      add(s, M, WeightType::full, false);
      add(s, M, WeightType::full, true);
    }
    for (Index M : {1, 8})
      for (WeightType type : {WeightType::bf16, WeightType::int8})
        for (detail::NarrowKernel kernel : dispatchable_kernels()) {
          const std::string name = std::string("linear_kernel/gpt2/") + s.layer + "/M:" + std::to_string(M) + "/" + weight_type_name(type) +
                                   "/" + detail::narrow_kernel_name(kernel);
          benchmark::RegisterBenchmark(name.c_str(), linear_on_kernel, M, s.N, s.K, type, kernel)->UseRealTime()->Unit(benchmark::kMicrosecond);
        }
  }
  for (const Shape3& s : translator) {
    for (Index M : {1, 16}) {
      add(s, M, WeightType::full, false);
      add(s, M, WeightType::full, true);
    }
    add(s, 16 * 20, WeightType::full, false);
  }
  for (Index S : {128, 512, 1024}) {
    const std::string name = "softmax/R:" + std::to_string(12 * S) + "/S:" + std::to_string(S);
    benchmark::RegisterBenchmark(name.c_str(), softmax, 12 * S, S)->UseRealTime()->Unit(benchmark::kMicrosecond);
  }
  benchmark::RegisterBenchmark("layer_norm/R:512/D:768", layer_norm, 512, 768)->UseRealTime()->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("gelu_tanh/R:512/F:3072", gelu, 512, 3072)->UseRealTime()->Unit(benchmark::kMicrosecond);
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
