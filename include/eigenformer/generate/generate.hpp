// generate/generate.hpp: text generation with GPT-2: the prompts are processed at once (left-padded into one batch),
// then each new token costs one cached position, in the loop of generate/decode_loop.hpp. Every row chooses its
// tokens with its own Sampler (the same seed for each row, so a prompt gives the same tokens alone or in a batch)
// and stops on its own: at the end-of-text token, after max_new_tokens, or when the context (n_positions) is full.
// A per-token callback can stream the tokens and stop the whole run. Nothing is allocated inside the loop.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "eigenformer/core/error.hpp"
#include "eigenformer/core/tensor.hpp"
#include "eigenformer/generate/decode_loop.hpp"
#include "eigenformer/generate/sampling.hpp"
#include "eigenformer/models/gpt2.hpp"

namespace eigenformer {

struct GenerateOptions {
  Index max_new_tokens = 50;
  SamplingOptions sampling;  // temperature 0: greedy
  bool stop_at_eos = true;
  TokenCallback on_token;    // (row, token) for every new token, end-of-text included; false stops every row
};

template <typename Scalar>
std::vector<GenerationResult> generate(const GPT2<Scalar>& model, const std::vector<std::vector<std::int64_t>>& prompts,
                                       const GenerateOptions& options = {}) {
  const GPT2Config& c = model.config();
  const std::string where = "generate";
  options.sampling.validate(where);
  if (options.max_new_tokens < 1) throw RangeError(where + ": max_new_tokens is " + std::to_string(options.max_new_tokens) + "; expected >= 1");
  const Index B = static_cast<Index>(prompts.size());
  if (B == 0) return {};
  Index T = 0;
  for (Index b = 0; b < B; ++b) {
    const auto& p = prompts[static_cast<std::size_t>(b)];
    const std::string name = B > 1 ? "prompt " + std::to_string(b + 1) : "the prompt";
    if (p.empty()) throw RangeError(where + ": " + name + " is empty; expected at least one token");
    if (static_cast<Index>(p.size()) > c.n_positions)
      throw RangeError(where + ": " + name + " has " + std::to_string(p.size()) + " tokens; the context holds " + std::to_string(c.n_positions) +
                       " (n_positions)");
    for (std::size_t t = 0; t < p.size(); ++t)
      if (p[t] < 0 || p[t] >= c.vocab_size)
        throw RangeError(where + ": token id " + std::to_string(p[t]) + " at position " + std::to_string(t) + " of " + name +
                         " is outside the vocabulary [0, " + std::to_string(c.vocab_size) + ")");
    T = std::max<Index>(T, static_cast<Index>(p.size()));
  }

  // Left-padded batch: row b starts with T - len_b padding tokens (end-of-text, never attended to).
  Tensor<std::int64_t> batch(Shape{B, T}, c.eos_token_id);
  std::vector<Index> pads(static_cast<std::size_t>(B));
  std::vector<Sampler> samplers;
  for (Index b = 0; b < B; ++b) {
    const auto& p = prompts[static_cast<std::size_t>(b)];
    pads[static_cast<std::size_t>(b)] = T - static_cast<Index>(p.size());
    std::copy(p.begin(), p.end(), batch.data() + b * T + pads[static_cast<std::size_t>(b)]);
    samplers.emplace_back(options.sampling, c.vocab_size);
    samplers.back().observe(p);
  }
  // Room for every token that is fed back: the last one chosen never is. The loop stops a row when the context
  // (n_positions) is full.
  const Index capacity = std::min(c.n_positions, T + options.max_new_tokens - 1);
  GPT2DecodeState<Scalar> state;
  model.start(batch, pads, std::max(capacity, T), state);
  return decode_loop(model, state, samplers, std::vector<Index>(static_cast<std::size_t>(B), options.max_new_tokens), c.eos_token_id,
                     options.stop_at_eos, options.on_token);
}

}  // namespace eigenformer
