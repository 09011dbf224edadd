// bench/bench_tokenizer.cpp: GPT2Tokenizer throughput, in bytes of UTF-8 text per second, on the long
// texts of tests/fixtures/tokenizer/cases.json (English prose and code, a multilingual mixture, a
// 5 KB piece of Chinese without spaces), with the piece cache warm, cold (emptied before each encode)
// and off; and decoding, whole and id by id. Needs ./setup.sh's .deps/gpt2. BM_TrainBPE: train_bpe on the text file
// EIGENFORMER_BPE_TEXT names (skipped without it), e.g. Moby-Dick, 1.2 MB (docs/bpe_trainer.md says where to get it):
//   EIGENFORMER_BPE_TEXT=/tmp/mdk/package/data/data.txt build/bin/bench_tokenizer --benchmark_filter=TrainBPE
//   cmake -S . -B build -DEIGENFORMER_BUILD_BENCHMARKS=ON -DEIGENFORMER_NATIVE=ON && cmake --build build -j2 --target bench_tokenizer
//   build/bin/bench_tokenizer
#include "eigenformer/text/bpe_trainer.hpp"
#include "eigenformer/text/gpt2_tokenizer.hpp"

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

using eigenformer::GPT2Tokenizer;
using eigenformer::GPT2TokenizerOptions;

namespace {

const char* const text_names[] = {"long gpt-tokenizer README.md", "long mixture 0", "long gpt-tokenizer BytePairEncodingCore.ts",
                                  "long chinese run"};

struct Inputs {
  GPT2Tokenizer cached, uncached;
  std::vector<std::string> texts;  // in the order of text_names
};

GPT2Tokenizer load(std::size_t cache_capacity) {
  GPT2TokenizerOptions options;
  options.cache_capacity = cache_capacity;
  return GPT2Tokenizer::from_directory(EIGENFORMER_GPT2_TOKENIZER_DIR, options);
}

const Inputs& inputs() {
  static const Inputs in = [] {
    Inputs r{load(GPT2TokenizerOptions{}.cache_capacity), load(0), {}};
    std::ifstream f(std::string(EIGENFORMER_FIXTURE_DIR) + "/tokenizer/cases.json", std::ios::binary);
    const nlohmann::json cases = nlohmann::json::parse(f).at("cases");
    for (const char* name : text_names) {
      bool found = false;
      for (const auto& c : cases)
        if (c.at("name") == name) {
          r.texts.push_back(c.at("text").get<std::string>());
          found = true;
        }
      if (!found) throw std::runtime_error(std::string("bench_tokenizer: no case '") + name + "' in cases.json");
    }
    return r;
  }();
  return in;
}

void finish(benchmark::State& state, const std::string& text) {
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(text.size()));
  state.SetLabel(std::string(text_names[state.range(0)]) + ", " + std::to_string(text.size()) + " bytes");
}

void BM_Encode_WarmCache(benchmark::State& state) {
  const Inputs& in = inputs();
  const std::string& text = in.texts[static_cast<std::size_t>(state.range(0))];
  benchmark::DoNotOptimize(in.cached.encode(text));  // fills the cache
  for (auto _ : state) benchmark::DoNotOptimize(in.cached.encode(text));
  finish(state, text);
}

void BM_Encode_ColdCache(benchmark::State& state) {
  const Inputs& in = inputs();
  const std::string& text = in.texts[static_cast<std::size_t>(state.range(0))];
  for (auto _ : state) {
    in.cached.clear_cache();
    benchmark::DoNotOptimize(in.cached.encode(text));
  }
  finish(state, text);
}

void BM_Encode_NoCache(benchmark::State& state) {
  const Inputs& in = inputs();
  const std::string& text = in.texts[static_cast<std::size_t>(state.range(0))];
  for (auto _ : state) benchmark::DoNotOptimize(in.uncached.encode(text));
  finish(state, text);
}

void BM_Decode(benchmark::State& state) {
  const Inputs& in = inputs();
  const std::string& text = in.texts[static_cast<std::size_t>(state.range(0))];
  const std::vector<std::int64_t> ids = in.cached.encode(text);
  for (auto _ : state) benchmark::DoNotOptimize(in.cached.decode(ids));
  finish(state, text);
}

void BM_Decode_Streaming(benchmark::State& state) {
  const Inputs& in = inputs();
  const std::string& text = in.texts[static_cast<std::size_t>(state.range(0))];
  const std::vector<std::int64_t> ids = in.cached.encode(text);
  for (auto _ : state) {
    eigenformer::StreamingDecoder stream(in.cached);
    for (const std::int64_t id : ids) benchmark::DoNotOptimize(stream.push(id));
    benchmark::DoNotOptimize(stream.flush());
  }
  finish(state, text);
}

// Learning vocab_size - 257 merges from the whole file, pre-tokenization included (vocab_size 257: that alone); bytes/s
// are the file's bytes.
void BM_TrainBPE(benchmark::State& state) {
  const char* path = std::getenv("EIGENFORMER_BPE_TEXT");
  if (!path) {
    state.SkipWithError("set EIGENFORMER_BPE_TEXT to a UTF-8 text file to train on");
    return;
  }
  std::ifstream f(path, std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (text.empty()) {
    state.SkipWithError((std::string(path) + ": cannot read, or empty").c_str());
    return;
  }
  eigenformer::BPETrainerOptions options;
  options.vocab_size = state.range(0);
  std::size_t merges = 0;
  for (auto _ : state) {
    const eigenformer::TrainedBPE bpe = eigenformer::train_bpe(text, options);
    merges = bpe.merges.size();
    benchmark::DoNotOptimize(bpe.tokens.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(text.size()));
  state.SetLabel(std::to_string(text.size()) + " bytes, " + std::to_string(merges) + " merges");
}

// One thread unless said otherwise; the warm cache also with two threads sharing one tokenizer (2 cores).
BENCHMARK(BM_Encode_WarmCache)->ArgNames({"text"})->DenseRange(0, 3)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_Encode_ColdCache)->ArgNames({"text"})->DenseRange(0, 3)->Threads(1);
BENCHMARK(BM_Encode_NoCache)->ArgNames({"text"})->DenseRange(0, 3)->Threads(1);
BENCHMARK(BM_Decode)->ArgNames({"text"})->DenseRange(0, 3)->Threads(1);
BENCHMARK(BM_Decode_Streaming)->ArgNames({"text"})->DenseRange(0, 3)->Threads(1);
BENCHMARK(BM_TrainBPE)->ArgNames({"vocab_size"})->Arg(257)->Arg(1024)->Arg(4096)->Arg(16384)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
