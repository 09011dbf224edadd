// bench/bench_json.cpp: parse time of the JSON documents we read (core/json.hpp's parse_json), as the member count
// of the top-level object grows: 10k, 40k, 160k. Linear growth shows in a flat "per_member" column. Two shapes: a
// safetensors header (each member an object: the shape the old repeated-key check made quadratic) and a vocab.json
// ({token: id}); then a whole SafeTensors header validated (from_bytes). One thread: parsing is serial.
//   cmake -S . -B build -DEIGENFORMER_BUILD_BENCHMARKS=ON && cmake --build build -j2 --target bench_json
//   build/bin/bench_json
#include "eigenformer/core/json.hpp"
#include "eigenformer/io/safetensors.hpp"

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace {

// {"t0":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}, ...}: `n` one-byte tensors tiling n bytes.
std::string safetensors_header(std::size_t n) {
  std::string s = "{";
  for (std::size_t i = 0; i < n; ++i) {
    if (i) s += ',';
    s += "\"t" + std::to_string(i) + R"(":{"dtype":"U8","shape":[1],"data_offsets":[)" + std::to_string(i) + "," + std::to_string(i + 1) + "]}";
  }
  return s + "}";
}

// {"tok0":0, "tok1":1, ...}
std::string vocab_json(std::size_t n) {
  std::string s = "{";
  for (std::size_t i = 0; i < n; ++i) s += (i ? ",\"tok" : "\"tok") + std::to_string(i) + "\":" + std::to_string(i);
  return s + "}";
}

void finish(benchmark::State& state, const std::string& text) {
  const double members = static_cast<double>(state.range(0));
  state.counters["members"] = members;
  // Time per member: the same figure at every size when parsing is linear.
  state.counters["per_member"] = benchmark::Counter(members, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(text.size()));
}

void BM_ParseJson_SafetensorsHeader(benchmark::State& state) {
  const std::string text = safetensors_header(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    std::string duplicate;
    benchmark::DoNotOptimize(eigenformer::parse_json(text, "bench: ", &duplicate));
  }
  finish(state, text);
}

void BM_ParseJson_VocabJson(benchmark::State& state) {
  const std::string text = vocab_json(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    std::string duplicate;
    benchmark::DoNotOptimize(eigenformer::parse_json(text, "bench: ", &duplicate));
  }
  finish(state, text);
}

void BM_SafeTensors_FromBytes(benchmark::State& state) {
  const std::size_t n = static_cast<std::size_t>(state.range(0));
  const std::string header = safetensors_header(n);
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[static_cast<std::size_t>(i)] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  bytes += header + std::string(n, '\x07');
  for (auto _ : state) benchmark::DoNotOptimize(eigenformer::SafeTensors::from_bytes(bytes.data(), bytes.size()).data_bytes());
  finish(state, header);
}

BENCHMARK(BM_ParseJson_SafetensorsHeader)->ArgNames({"members"})->Arg(10000)->Arg(40000)->Arg(160000)->Threads(1)->MinTime(1.0)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ParseJson_VocabJson)->ArgNames({"members"})->Arg(10000)->Arg(40000)->Arg(160000)->Threads(1)->MinTime(1.0)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SafeTensors_FromBytes)->ArgNames({"members"})->Arg(10000)->Arg(40000)->Arg(160000)->Threads(1)->MinTime(1.0)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
