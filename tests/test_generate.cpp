// generate(): PyTorch's greedy continuations for a left-padded batch; sampled continuations reproducible and the same
// alone or batched; the token limit, the context limit and the callback stop it; no allocation per token.
#include "eigenformer/generate/generate.hpp"

#include <doctest/doctest.h>

#include "eigenformer/io/hf_gpt2.hpp"
#include "support/allocations.hpp"
#include "support/gpt2_fixture.hpp"

using namespace eigenformer;
using namespace eigenformer::testing;

namespace {
std::vector<std::vector<std::int64_t>> prompts_of(const GPT2Reference& ref) {
  const Tensor<std::int64_t> ids = ref.file.get<std::int64_t>("input.prompt_ids");
  const std::vector<Index> pads = ref.left_pads();
  std::vector<std::vector<std::int64_t>> prompts;
  for (Index b = 0; b < ids.dim(0); ++b) prompts.emplace_back(ids.data() + b * ids.dim(1) + pads[static_cast<std::size_t>(b)], ids.data() + (b + 1) * ids.dim(1));
  return prompts;
}
}  // namespace

TEST_CASE_TEMPLATE("generate: greedy continuations of a batch of prompts equal PyTorch's", Scalar, float, double) {
  for (const std::string& name : gpt2_fixture_names()) {
    CAPTURE(name);
    const GPT2<Scalar> model = load_gpt2<Scalar>(gpt2_fixture_dir(name));
    const GPT2Reference ref(name);
    const Tensor<std::int64_t> greedy = ref.file.get<std::int64_t>("output.greedy_ids");
    GenerateOptions o;
    o.max_new_tokens = greedy.dim(1);
    o.sampling.temperature = 0;
    const std::vector<GenerationResult> out = generate(model, prompts_of(ref), o);
    for (Index b = 0; b < greedy.dim(0); ++b) {
      CAPTURE(b);
      CHECK(out[static_cast<std::size_t>(b)].ids == std::vector<std::int64_t>(greedy.data() + b * greedy.dim(1), greedy.data() + (b + 1) * greedy.dim(1)));
      CHECK(out[static_cast<std::size_t>(b)].stop == StopReason::max_new_tokens);
    }
  }
}

TEST_CASE("generate: sampling is reproducible with a seed, and each prompt gives the same tokens alone") {
  const GPT2<double> model = load_gpt2<double>(gpt2_fixture_dir("odd_shape"));
  const GPT2Reference ref("odd_shape");
  const auto prompts = prompts_of(ref);
  GenerateOptions o;
  o.max_new_tokens = 12;
  o.sampling.temperature = 0.9;
  o.sampling.top_k = 40;
  o.sampling.top_p = 0.95;
  o.sampling.repetition_penalty = 1.2;
  o.sampling.seed = 7;
  const auto batched = generate(model, prompts, o);
  CHECK(generate(model, prompts, o)[1].ids == batched[1].ids);
  for (std::size_t b = 0; b < prompts.size(); ++b) CHECK(generate(model, {prompts[b]}, o)[0].ids == batched[b].ids);
  o.sampling.seed = 8;
  CHECK(generate(model, prompts, o)[0].ids != batched[0].ids);
}

TEST_CASE("generate: the context limit, the callback and end-of-text stop it; nothing is allocated per token") {
  const GPT2<float> model = load_gpt2<float>(gpt2_fixture_dir("one_layer_one_head"));
  const GPT2Reference ref("one_layer_one_head");
  const auto prompts = prompts_of(ref);
  const Index n_positions = model.config().n_positions;
  GenerateOptions o;
  o.max_new_tokens = 1000;
  o.sampling.temperature = 0;
  const auto full = generate(model, prompts, o);
  for (std::size_t b = 0; b < prompts.size(); ++b) {
    CHECK(full[b].stop == StopReason::context_full);
    // The batch shares one context: the longest prompt fills it first, and every row stops there.
    CHECK(static_cast<Index>(full[b].ids.size()) == n_positions - static_cast<Index>(ref.file.info("input.prompt_ids").shape[1]) + 1);
  }

  long long first = -1, last = -1;
  int calls = 0;
  o.max_new_tokens = 10;
  o.on_token = [&](Index, std::int64_t) {
    if (first < 0) first = allocation_count();
    last = allocation_count();
    return ++calls < 3 * 6;  // stop after six tokens of each row
  };
  const auto stopped = generate(model, prompts, o);
  CHECK(calls == 18);
  CHECK(last - first == 0);
  for (const GenerationResult& r : stopped) CHECK(r.stop == StopReason::callback);
  CHECK(stopped[0].ids.size() == 6);

  // With end-of-text set to the first greedy token, every row that produces it stops there.
  GPT2Config c = model.config();
  c.eos_token_id = full[0].ids[0];
  GPT2<float> eos_model(c);
  GPT2<float> source = model;
  std::vector<Tensor<float>*> from;
  source.visit_parameters([&](const std::string&, Tensor<float>& t) { from.push_back(&t); });
  std::size_t i = 0;
  eos_model.visit_parameters([&](const std::string&, Tensor<float>& t) { t = *from[i++]; });
  GenerateOptions e;
  e.sampling.temperature = 0;
  const auto out = generate(eos_model, {prompts[0]}, e);
  CHECK(out[0].stop == StopReason::eos);
  CHECK(out[0].ids.empty());
}

TEST_CASE("generate: bad prompts are named") {
  const GPT2<float> model = load_gpt2<float>(gpt2_fixture_dir("one_layer_one_head"));
  CHECK_THROWS_WITH_AS(generate(model, {{1, 2}, {}}), "generate: prompt 2 is empty; expected at least one token", RangeError);
  CHECK_THROWS_WITH_AS(generate(model, {{1, 100}}), "generate: token id 100 at position 1 of the prompt is outside the vocabulary [0, 100)", RangeError);
  CHECK_THROWS_WITH_AS(generate(model, {std::vector<std::int64_t>(33, 1)}), "generate: the prompt has 33 tokens; the context holds 32 (n_positions)",
                       RangeError);
}
