// bench_gpt2: GPT-2 124M-shaped (random weights, seeded) prompt processing and cached decoding, against the machine's
// own limits measured in the same run: a large float GEMM (GFLOP/s) and a memory copy (GB/s).
//   build/bin/bench_gpt2 [--benchmark_filter=...]      threads: EIGENFORMER_BENCH_THREADS (default 2)
// Counters: tokens_per_s; for prompts, GFLOP/s of the model's matrix products (2 x parameters x tokens, plus the
// attention scores), to set against BM_Machine_GEMM's; for decoding, GB/s of weights streamed (every weight once per
// step; bf16 and int8 weights count 2 and 1 bytes), to set against BM_Machine_Copy's; peak_rss_MB of the process so far.
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <cstdint>
#include <initializer_list>
#include <memory>

#include <eigenformer/core/random.hpp>
#include <eigenformer/core/threading.hpp>
#include <eigenformer/inspect/recorder.hpp>
#include <eigenformer/io/parameters.hpp>
#include <eigenformer/models/gpt2.hpp>

#include "bench_machine.hpp"

using namespace eigenformer;

namespace {

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

std::unique_ptr<GPT2<float>> make_model(WeightType type) {
  set_num_threads(bench::threads());
  auto g = std::make_unique<GPT2<float>>(GPT2Config{});  // GPT-2 small: 12 layers, 12 heads, 768 wide, 50257 tokens
  Random rng(1);
  g->visit_parameters([&](const std::string&, Tensor<float>& t) { fill_normal(t.view(), rng, 0.0, 0.02); });
  g->narrow_weights(type);
  return g;
}
const GPT2<float>& model(WeightType type = WeightType::full) {
  static std::unique_ptr<GPT2<float>> models[3];
  std::unique_ptr<GPT2<float>>& m = models[static_cast<int>(type)];
  if (!m) m = make_model(type);
  return *m;
}
Index parameters() {
  static const Index n = [] {
    GPT2<float>& m = const_cast<GPT2<float>&>(model());
    return count_parameters(m);
  }();
  return n;
}

void BM_Machine_GEMM(benchmark::State& state) {
  set_num_threads(bench::threads());
  const Index n = state.range(0);
  bench::sgemm_loop(state, n);
  state.counters["GFLOP_s"] = benchmark::Counter(2.0 * n * n * n * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Machine_GEMM)->Arg(1024)->ArgNames({"n"})->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_Machine_Copy(benchmark::State& state) {
  bench::memcpy_loop(state);
  // A copy reads and writes every byte.
  state.counters["GB_s"] = benchmark::Counter(2.0 * static_cast<double>(bench::kMemoryBytes) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Machine_Copy)->UseRealTime()->Unit(benchmark::kMillisecond);

// The whole prompt at once, logits at every position (as the PyTorch comparison computes them).
void BM_GPT2_Prompt(benchmark::State& state) {
  const GPT2<float>& m = model();
  const Index T = state.range(0);
  Tensor<std::int64_t> ids(Shape{1, T});
  Random rng(2);
  for (Index i = 0; i < T; ++i) ids[i] = rng.integer(0, 50257);
  for (auto _ : state) {
    Tensor<float> logits = m.forward(ids);
    benchmark::DoNotOptimize(logits.data());
  }
  const GPT2Config& c = m.config();
  // Matrix products: 2 flops per parameter per token (wte used as the output projection, wpe not multiplied), plus
  // the attention scores and weighted sums, 2 x 2 x T^2 / 2 x D per layer under the causal mask (we form them fully).
  const double flops = 2.0 * static_cast<double>(parameters() - c.n_positions * c.n_embd) * T + 4.0 * c.n_layer * static_cast<double>(T) * T * c.n_embd;
  state.counters["tokens_per_s"] = benchmark::Counter(static_cast<double>(T), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP_s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["peak_rss_MB"] = peak_rss_mb();
}
BENCHMARK(BM_GPT2_Prompt)->Arg(128)->Arg(512)->ArgNames({"T"})->UseRealTime()->Unit(benchmark::kMillisecond);

// The prompt pass watched by an observer (eigenformer/inspect/), to set against BM_GPT2_Prompt/T:128 of the same run:
// 0: an observer that wants nothing (every hook asks and is told no), 1: what `gpt2 --explain` records (attention
// weights, residual stream, logits), 2: everything (q, k, v, scores, MLP too: what --dump-activations writes).
void BM_Observed_GPT2_Prompt(benchmark::State& state) {
  const GPT2<float>& m = model();
  const Index T = 128;
  Tensor<std::int64_t> ids(Shape{1, T});
  Random rng(2);
  for (Index i = 0; i < T; ++i) ids[i] = rng.integer(0, 50257);
  Recorder<float> nothing(std::initializer_list<Probe>{}), page({Probe::attention_weights, Probe::residual, Probe::logits}), everything;
  Recorder<float>* observers[] = {&nothing, &page, &everything};
  Recorder<float>& observer = *observers[state.range(0)];
  for (auto _ : state) {
    Tensor<float> logits = m.forward(ids, {}, &observer);
    benchmark::DoNotOptimize(logits.data());
  }
  state.counters["tokens_per_s"] = benchmark::Counter(static_cast<double>(T), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["peak_rss_MB"] = peak_rss_mb();
}
BENCHMARK(BM_Observed_GPT2_Prompt)->DenseRange(0, 2)->ArgNames({"recorded"})->UseRealTime()->Unit(benchmark::kMillisecond);

// Cached decoding after a 16-token prompt: 32 steps per iteration, each one position for each of B items. The second
// argument is the weights' type: 0 float32, 1 bf16, 2 int8 (nn/layer_weight.hpp).
void BM_GPT2_Decode(benchmark::State& state) {
  const WeightType type = static_cast<WeightType>(state.range(1));
  const GPT2<float>& m = model(type);
  const Index B = state.range(0), prompt = 16, steps = 32;
  Tensor<std::int64_t> ids(Shape{B, prompt}), tokens(Shape{B});
  Random rng(3);
  for (Index i = 0; i < ids.size(); ++i) ids[i] = rng.integer(0, 50257);
  GPT2DecodeState<float> decode;
  for (auto _ : state) {
    state.PauseTiming();
    m.start(ids, {}, prompt + steps, decode);
    state.ResumeTiming();
    for (Index s = 0; s < steps; ++s) {
      for (Index b = 0; b < B; ++b) {
        Index next = 0;
        decode.logits.matrix().row(b).maxCoeff(&next);
        tokens[b] = next;
      }
      m.decode_step(tokens, decode);
    }
    benchmark::DoNotOptimize(decode.logits.data());
  }
  const double bytes_per_weight = type == WeightType::full ? 4.0 : type == WeightType::bf16 ? 2.0 : 1.0;
  const double weight_bytes = bytes_per_weight * static_cast<double>(parameters() - m.config().n_positions * m.config().n_embd);
  state.counters["tokens_per_s"] = benchmark::Counter(static_cast<double>(B * steps), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["weight_GB_s"] = benchmark::Counter(weight_bytes * steps * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["peak_rss_MB"] = peak_rss_mb();
}
BENCHMARK(BM_GPT2_Decode)->ArgsProduct({{1, 8}, {0, 1, 2}})->ArgNames({"B", "dtype"})->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
