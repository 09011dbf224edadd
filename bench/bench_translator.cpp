// bench/bench_translator.cpp: greedy translation throughput, in target tokens per second, for a model the size of
// PyTorch's translation tutorial (Seq2SeqTransformer: D = 512, H = 8, 3 + 3 layers, F = 512, V = 10000 each side,
// max_len 5000) with seeded random weights, or the model directory named by EIGENFORMER_BENCH_MODEL. Workload:
// B sources of 20 tokens (BOS + 18 ids + EOS), encode once, then exactly 20 greedy steps with the KV cache
// (translate, max_new_tokens = 20; generator.bias[eos_id] is set to -1e4 so EOS never stops a row early),
// at B = 1 and B = 16, on 2 threads. Timed: translate() as a user calls it (padding, encode, decode, argmax).
// The machine's GEMM rate and memory bandwidth are measured in the same run, for context.
// EIGENFORMER_BENCH_SAVE=DIR writes the model (save_transformer: DIR/config.json, DIR/model.safetensors) and
// DIR/bench_greedy.json (the sources and our greedy ids at B = 1 and B = 16) before the benchmarks run, so that
// bench/compare_torch.py runs PyTorch on the same weights and inputs. bench/report does all of it:
//   cmake -S . -B build-bench -DEIGENFORMER_BUILD_BENCHMARKS=ON -DEIGENFORMER_NATIVE=ON
//   cmake --build build-bench -j2 --target bench_translator && bench/report
#include "eigenformer/core/random.hpp"
#include "eigenformer/core/tensor.hpp"
#include "eigenformer/core/threading.hpp"
#include "eigenformer/generate/translate.hpp"
#include "eigenformer/io/pytorch_transformer.hpp"
#include "eigenformer/models/transformer.hpp"

#include "bench_machine.hpp"

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

using eigenformer::Index;
using eigenformer::Random;
using eigenformer::Shape;
using eigenformer::Tensor;
using eigenformer::Transformer;
using eigenformer::TransformerConfig;

namespace {

const int kThreads = eigenformer::bench::threads();
constexpr Index kSourceTokens = 20;    // per source, BOS and EOS included
constexpr Index kNewTokens = 20;       // greedy steps per source, all of them counted
constexpr Index kMaxBatch = 16;
constexpr std::uint64_t kSeed = 20240501;
constexpr float kEosBias = -1e4f;      // generator.bias[eos_id]: EOS can never be the argmax

// The tutorial's model: Seq2SeqTransformer(3, 3, 512, 8, 10000, 10000, dim_feedforward=512), max_len 5000.
TransformerConfig tutorial_config() {
  TransformerConfig c;
  c.d_model = 512;
  c.num_heads = 8;
  c.num_encoder_layers = 3;
  c.num_decoder_layers = 3;
  c.d_ff = 512;
  c.src_vocab_size = 10000;
  c.tgt_vocab_size = 10000;
  c.max_len = 5000;
  return c;
}

// Random weights of the right scale: every weight matrix xavier-uniform as the tutorial initialises it
// (U(-a, a), a = sqrt(6 / (fan_in + fan_out))), LayerNorm weight 1 and bias 0, every other bias U(-1/sqrt(D), 1/sqrt(D))
// (nn.Linear's default). The token embeddings are N(0, 1), nn.Embedding's default, rather than the tutorial's xavier:
// with xavier's tiny embeddings the positions swamp the tokens and every source translates to one repeated id, which
// would make the greedy-ids comparison with PyTorch say little. Neither choice changes the work done.
void randomize(Transformer<float>& model, Random& rng) {
  const double bias_bound = 1.0 / std::sqrt(static_cast<double>(model.config().d_model));
  model.visit_parameters([&](const std::string& name, Tensor<float>& t) {
    const bool norm = name.find("norm") != std::string::npos;
    if (name == "src_embedding.weight" || name == "tgt_embedding.weight") {
      eigenformer::fill_normal(t.view(), rng);
    } else if (t.rank() == 2) {
      const double a = std::sqrt(6.0 / static_cast<double>(t.dim(0) + t.dim(1)));
      eigenformer::fill_uniform(t.view(), rng, -a, a);
    } else if (norm && name.size() >= 6 && name.compare(name.size() - 6, 6, "weight") == 0) {
      t.fill(1.0f);
    } else if (norm) {
      t.fill(0.0f);
    } else {
      eigenformer::fill_uniform(t.view(), rng, -bias_bound, bias_bound);
    }
  });
}

struct Workload {
  std::unique_ptr<Transformer<float>> model;
  std::vector<std::vector<std::int64_t>> sources;  // kMaxBatch sources of kSourceTokens ids
  std::string origin;                              // where the weights come from, for the label
};

Workload make_workload() {
  Workload w;
  Random rng(kSeed);
  if (const char* dir = std::getenv("EIGENFORMER_BENCH_MODEL"); dir && *dir) {
    w.model = std::make_unique<Transformer<float>>(eigenformer::load_transformer<float>(dir));
    w.origin = dir;
  } else {
    w.model = std::make_unique<Transformer<float>>(tutorial_config());
    randomize(*w.model, rng);
    w.origin = "random, seed " + std::to_string(kSeed);
  }
  const TransformerConfig& c = w.model->config();
  w.model->visit_parameters([&](const std::string& name, Tensor<float>& t) {
    if (name == "generator.bias") t[c.eos_id] = kEosBias;
  });
  Random ids(kSeed + 1);
  for (Index b = 0; b < kMaxBatch; ++b) {
    std::vector<std::int64_t> s{c.bos_id};
    while (static_cast<Index>(s.size()) < kSourceTokens - 1) s.push_back(ids.integer(4, c.src_vocab_size));  // 4: past UNK, PAD, BOS, EOS
    s.push_back(c.eos_id);
    w.sources.push_back(s);
  }
  return w;
}

Workload& workload() {
  static Workload w = make_workload();
  return w;
}

std::vector<std::vector<std::int64_t>> first_sources(Index batch) {
  const auto& all = workload().sources;
  return {all.begin(), all.begin() + batch};
}

eigenformer::TranslateOptions fixed_length() {
  eigenformer::TranslateOptions o;
  o.max_new_tokens = kNewTokens;
  return o;
}

// Bytes of weights one decode step reads at least once: per decoder layer the self-attention's in_proj [3D, D] and
// out_proj [D, D], the cross-attention's query and out projections [D, D] each (its keys and values of the memory
// are projected once, before the first step), linear1 [F, D] and linear2 [D, F]; then the generator [V_tgt, D].
double decode_step_weight_bytes(const TransformerConfig& c) {
  const double D = static_cast<double>(c.d_model), F = static_cast<double>(c.d_ff);
  const double per_layer = 6.0 * D * D + 2.0 * D * F;
  return sizeof(float) * (static_cast<double>(c.num_decoder_layers) * per_layer + static_cast<double>(c.tgt_vocab_size) * D);
}

// Encode B sources and decode exactly kNewTokens per source: state.range(0) = B.
void BM_TranslateGreedy(benchmark::State& state) {
  eigenformer::set_num_threads(kThreads);
  const Index B = state.range(0);
  const Transformer<float>& model = *workload().model;
  const auto sources = first_sources(B);
  const eigenformer::TranslateOptions options = fixed_length();
  for (const eigenformer::GenerationResult& t : eigenformer::translate(model, sources, options))
    if (static_cast<Index>(t.ids.size()) != kNewTokens || t.stop != eigenformer::StopReason::max_new_tokens) {
      state.SkipWithError(("a row stopped after " + std::to_string(t.ids.size()) + " tokens (" + eigenformer::stop_reason_name(t.stop) +
                           "); the workload needs exactly " + std::to_string(kNewTokens))
                              .c_str());
      return;
    }
  for (auto _ : state) {
    std::vector<eigenformer::GenerationResult> out = eigenformer::translate(model, sources, options);
    benchmark::DoNotOptimize(out.data());
  }
  const double b = static_cast<double>(B);
  state.counters["tgt_tok/s"] = benchmark::Counter(b * kNewTokens, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["src_tok/s"] = benchmark::Counter(b * kSourceTokens, benchmark::Counter::kIsIterationInvariantRate);
  // A lower bound on the weight traffic of the decode steps (each step reads its weights once, whatever B).
  state.counters["decode_weight_B/s"] = benchmark::Counter(kNewTokens * decode_step_weight_bytes(model.config()),
                                                           benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  state.counters["threads"] = kThreads;
  state.SetLabel(std::to_string(B) + " x " + std::to_string(kSourceTokens) + " source tokens, " + std::to_string(kNewTokens) +
                 " greedy steps each (KV cache), weights " + workload().origin);
}
BENCHMARK(BM_TranslateGreedy)->ArgNames({"B"})->Arg(1)->Arg(16)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

// Context: the GEMM rate this machine gives through Eigen on kThreads threads, [N, N] x [N, N], row-major.
void BM_Gemm_Peak(benchmark::State& state) {
  eigenformer::set_num_threads(kThreads);
  const Index N = state.range(0);
  eigenformer::bench::sgemm_loop(state, N);
  state.counters["FLOP/s"] = benchmark::Counter(2.0 * static_cast<double>(N) * static_cast<double>(N) * static_cast<double>(N),
                                                benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  state.counters["threads"] = kThreads;
}
BENCHMARK(BM_Gemm_Peak)->ArgNames({"N"})->Arg(1024)->Unit(benchmark::kMillisecond)->UseRealTime();

// Context: memory read bandwidth, a sum over 256 MB on 1 and on 2 threads. Batch-1 decoding reads every decoder and
// generator weight once per step, so this bounds it (less what the 32 MB L3 keeps between steps).
void BM_Memory_Read(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  eigenformer::set_num_threads(threads);
  eigenformer::bench::memory_read_loop(state, threads);
  state.counters["threads"] = threads;
  eigenformer::set_num_threads(kThreads);
}
BENCHMARK(BM_Memory_Read)->ArgNames({"threads"})->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

nlohmann::json ids_json(const std::vector<eigenformer::GenerationResult>& out) {
  nlohmann::json rows = nlohmann::json::array();
  for (const eigenformer::GenerationResult& t : out) rows.push_back(t.ids);
  return rows;
}

// EIGENFORMER_BENCH_SAVE=DIR: the model and the workload, for bench/compare_torch.py.
void save_workload(const std::string& dir) {
  Workload& w = workload();
  std::filesystem::create_directories(dir);
  eigenformer::save_transformer(*w.model, dir);
  eigenformer::set_num_threads(kThreads);
  const nlohmann::json j = {{"origin", w.origin},
                            {"source_tokens", kSourceTokens},
                            {"new_tokens", kNewTokens},
                            {"eos_bias", kEosBias},
                            {"threads", kThreads},
                            {"sources", w.sources},
                            {"greedy_batch_1", ids_json(eigenformer::translate(*w.model, first_sources(1), fixed_length()))},
                            {"greedy_batch_16", ids_json(eigenformer::translate(*w.model, first_sources(16), fixed_length()))}};
  const std::string path = dir + "/bench_greedy.json";
  std::ofstream f(path);
  if (!(f << j.dump() << "\n")) throw eigenformer::IoError(path + ": cannot write");
  std::cerr << "bench_translator: wrote the model (" << w.origin << ") and bench_greedy.json to " << dir << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  try {
    if (const char* dir = std::getenv("EIGENFORMER_BENCH_SAVE"); dir && *dir) save_workload(dir);
  } catch (const std::exception& e) {
    std::cerr << "bench_translator: " << e.what() << "\n";
    return 1;
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
