// generate/translate.hpp: decoding for the encoder-decoder Transformer, as the PyTorch translation tutorial's
// greedy_decode does it: start from BOS, append the chosen token (greedy by default: the argmax of the last
// position's logits), stop at EOS or after a limit; by default the tutorial's (max_len = num_tokens + 5 target
// positions with BOS, so at most num_tokens + 4 new tokens, num_tokens counting the source's own BOS and EOS). Also
// stops when the target would pass the model's max_len positions (StopReason::context_full). A batch of sources of
// different lengths is encoded once, padded, and decoded together with KV caches (one position per step) in the loop
// of generate/decode_loop.hpp, which GPT-2's generate shares; each row stops on its own and gives the ids it would
// give alone. Nothing is allocated inside the per-token loop.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "eigenformer/core/error.hpp"
#include "eigenformer/core/tensor.hpp"
#include "eigenformer/generate/decode_loop.hpp"
#include "eigenformer/generate/sampling.hpp"
#include "eigenformer/models/transformer.hpp"

namespace eigenformer {

struct TranslateOptions {
  Index max_new_tokens = -1;  // per source; -1: the tutorial's limit, source length (with BOS and EOS) + 4
  SamplingOptions sampling = greedy();

  static SamplingOptions greedy() {
    SamplingOptions s;
    s.temperature = 0;
    return s;
  }
};

// sources: each the full source sequence the model was trained on (for the tutorial, BOS + ids + EOS).
template <typename Scalar>
std::vector<GenerationResult> translate(const Transformer<Scalar>& model, const std::vector<std::vector<std::int64_t>>& sources,
                                        const TranslateOptions& options = {}) {
  const TransformerConfig& c = model.config();
  const Index B = static_cast<Index>(sources.size());
  if (B == 0) return {};
  if (options.max_new_tokens < -1 || options.max_new_tokens == 0)
    throw RangeError("translate: max_new_tokens is " + std::to_string(options.max_new_tokens) + "; expected >= 1, or -1 for the default");
  options.sampling.validate("translate");

  // The padded source batch [B, S] and each row's limit.
  Index S = 1;
  for (const auto& s : sources) S = std::max<Index>(S, static_cast<Index>(s.size()));
  Tensor<std::int64_t> src(Shape{B, S}, c.pad_id);
  std::vector<Index> lengths(static_cast<std::size_t>(B)), limits(static_cast<std::size_t>(B));
  std::vector<Sampler> samplers;
  Index capacity = 0;
  for (Index b = 0; b < B; ++b) {
    const auto& s = sources[static_cast<std::size_t>(b)];
    std::copy(s.begin(), s.end(), src.data() + b * S);
    lengths[static_cast<std::size_t>(b)] = static_cast<Index>(s.size());
    const Index limit = options.max_new_tokens > 0 ? options.max_new_tokens : static_cast<Index>(s.size()) + 4;
    limits[static_cast<std::size_t>(b)] = limit;
    capacity = std::max(capacity, std::min(limit, c.max_len));  // each new token takes one position; at most max_len of them
    samplers.emplace_back(options.sampling, c.tgt_vocab_size);
  }

  const Tensor<Scalar> memory = model.encode(src, lengths);
  TransformerDecodeState<Scalar> state;
  model.start(memory, lengths, capacity, state);
  const Tensor<std::int64_t> bos(Shape{B}, c.bos_id);
  model.decode_step(bos, state);
  return decode_loop(model, state, samplers, limits, c.eos_id, /*stop_at_eos=*/true);
}

}  // namespace eigenformer
