// generate/decode_loop.hpp: the loop both models decode with, on a scripted model whose logits name one token per row
// and step: each row stops on its own (end token, its quota, the model's capacity), the callback stops them all, and
// finished rows feed back their last token.
#include "eigenformer/generate/decode_loop.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

using namespace eigenformer;

namespace {

struct ScriptedState {
  Tensor<double> logits;  // [B, V]
  Index length = 1, capacity = 0;
  Index step = 0;
};

// The logits of row b at step s put 1 on script[b][s] (token 0 past the script's end) and 0 elsewhere.
struct ScriptedModel {
  std::vector<std::vector<std::int64_t>> script;
  std::vector<std::vector<std::int64_t>>* fed = nullptr;  // the tokens of every decode_step, in order

  void show(ScriptedState& s) const {
    s.logits.fill(0.0);
    for (std::size_t b = 0; b < script.size(); ++b) {
      const std::size_t t = static_cast<std::size_t>(s.step);
      s.logits.at(static_cast<Index>(b), t < script[b].size() ? script[b][t] : 0) = 1.0;
    }
  }
  void decode_step(const Tensor<std::int64_t>& tokens, ScriptedState& s) const {
    fed->emplace_back(tokens.data(), tokens.data() + tokens.size());
    ++s.length;
    ++s.step;
    show(s);
  }
};

constexpr std::int64_t eos = 7;

std::vector<GenerationResult> run(const ScriptedModel& model, Index capacity, const std::vector<Index>& limits, bool stop_at_eos,
                                  const TokenCallback& on_token = {}) {
  ScriptedState state;
  state.logits = Tensor<double>(Shape{static_cast<Index>(model.script.size()), 8});
  state.capacity = capacity;
  model.show(state);
  SamplingOptions greedy;
  greedy.temperature = 0;
  std::vector<Sampler> samplers(model.script.size(), Sampler(greedy, 8));
  return decode_loop(model, state, samplers, limits, eos, stop_at_eos, on_token);
}

}  // namespace

TEST_CASE("decode_loop: each row stops on its own, at the end token, its quota or the capacity; done rows feed their last token") {
  std::vector<std::vector<std::int64_t>> fed;
  const ScriptedModel model{{{3, 4, 5, eos}, {1, 2, 6, 6}, {2, 2, 2, 2, 2, 2}}, &fed};
  const std::vector<GenerationResult> out = run(model, /*capacity=*/4, {10, 2, 10}, /*stop_at_eos=*/true);
  REQUIRE(out.size() == 3);
  CHECK(out[0].ids == std::vector<std::int64_t>{3, 4, 5});  // the end token is not kept
  CHECK(out[0].stop == StopReason::eos);
  CHECK(out[1].ids == std::vector<std::int64_t>{1, 2});
  CHECK(out[1].stop == StopReason::max_new_tokens);
  CHECK(out[2].ids == std::vector<std::int64_t>{2, 2, 2, 2});  // positions 1..4 fed: the fourth token has no room
  CHECK(out[2].stop == StopReason::context_full);
  CHECK(fed == std::vector<std::vector<std::int64_t>>{{3, 1, 2}, {4, 2, 2}, {5, 2, 2}});
}

TEST_CASE("decode_loop: the end token is kept and decoding goes on when it does not stop a row") {
  std::vector<std::vector<std::int64_t>> fed;
  const ScriptedModel model{{{3, eos, 5}}, &fed};
  const std::vector<GenerationResult> out = run(model, /*capacity=*/100, {3}, /*stop_at_eos=*/false);
  CHECK(out[0].ids == std::vector<std::int64_t>{3, eos, 5});
  CHECK(out[0].stop == StopReason::max_new_tokens);
}

TEST_CASE("decode_loop: a callback that returns false stops every row still running, then and there") {
  std::vector<std::vector<std::int64_t>> fed;
  const ScriptedModel model{{{3, 4, 5, eos}, {1, 2, 6, 6}, {2, 2, 2, 2}}, &fed};
  std::vector<std::pair<Index, std::int64_t>> seen;
  const std::vector<GenerationResult> out = run(model, 100, {10, 10, 10}, true, [&](Index row, std::int64_t token) {
    seen.emplace_back(row, token);
    return token != 4;
  });
  CHECK(seen == std::vector<std::pair<Index, std::int64_t>>{{0, 3}, {1, 1}, {2, 2}, {0, 4}});
  CHECK(out[0].ids == std::vector<std::int64_t>{3, 4});
  CHECK(out[1].ids == std::vector<std::int64_t>{1});
  CHECK(out[2].ids == std::vector<std::int64_t>{2});
  for (const GenerationResult& r : out) CHECK(r.stop == StopReason::callback);
  CHECK(fed.size() == 1);
  CHECK(std::string(stop_reason_name(StopReason::context_full)) == "context_full");
}
