// generate/translate.hpp: greedy decoding for the encoder-decoder Transformer, as the PyTorch translation tutorial's
// greedy_decode does it: start from BOS, append the argmax of the last position's logits, stop at EOS or after a
// limit; by default the tutorial's (max_len = num_tokens + 5 target positions with BOS, so at most
// num_tokens + 4 new tokens, num_tokens counting the source's own BOS and EOS). Also stops when the target would
// pass the model's max_len positions. A batch of sources of different lengths is encoded once, padded, and
// decoded together with KV caches (one position per step); each row stops on its own and gives the ids it would
// give alone. Nothing is allocated inside the per-token loop.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "eigenformer/core/error.hpp"
#include "eigenformer/core/tensor.hpp"
#include "eigenformer/models/transformer.hpp"

namespace eigenformer {

enum class StopReason { eos, max_new_tokens, max_len };

inline const char* stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::eos: return "eos";
    case StopReason::max_new_tokens: return "max_new_tokens";
    case StopReason::max_len: return "max_len";
  }
  return "?";
}

struct Translation {
  std::vector<std::int64_t> ids;  // generated ids, without BOS and without the final EOS
  StopReason stop = StopReason::eos;
};

struct TranslateOptions {
  Index max_new_tokens = -1;  // per source; -1: the tutorial's limit, source length (with BOS and EOS) + 4
};

// sources: each the full source sequence the model was trained on (for the tutorial, BOS + ids + EOS).
template <typename Scalar>
std::vector<Translation> translate_greedy(const Transformer<Scalar>& model, const std::vector<std::vector<std::int64_t>>& sources,
                                          const TranslateOptions& options = {}) {
  const TransformerConfig& c = model.config();
  const Index B = static_cast<Index>(sources.size());
  if (B == 0) return {};
  if (options.max_new_tokens < -1 || options.max_new_tokens == 0)
    throw RangeError("translate_greedy: max_new_tokens is " + std::to_string(options.max_new_tokens) + "; expected >= 1, or -1 for the default");

  // The padded source batch [B, S] and each row's limit.
  Index S = 1;
  for (const auto& s : sources) S = std::max<Index>(S, static_cast<Index>(s.size()));
  Tensor<std::int64_t> src(Shape{B, S}, c.pad_id);
  std::vector<Index> lengths(static_cast<std::size_t>(B)), limits(static_cast<std::size_t>(B));
  Index steps = 0;
  for (Index b = 0; b < B; ++b) {
    const auto& s = sources[static_cast<std::size_t>(b)];
    std::copy(s.begin(), s.end(), src.data() + b * S);
    lengths[static_cast<std::size_t>(b)] = static_cast<Index>(s.size());
    const Index limit = options.max_new_tokens > 0 ? options.max_new_tokens : static_cast<Index>(s.size()) + 4;
    limits[static_cast<std::size_t>(b)] = limit;
    steps = std::max(steps, std::min(limit, c.max_len));  // each step decodes one position; at most max_len of them
  }

  const Tensor<Scalar> memory = model.encode(src, lengths);
  TransformerDecodeState<Scalar> state;
  model.start_decoding(memory, lengths, steps, state);

  std::vector<Translation> out(static_cast<std::size_t>(B));
  for (Index b = 0; b < B; ++b) out[static_cast<std::size_t>(b)].ids.reserve(static_cast<std::size_t>(std::min(limits[static_cast<std::size_t>(b)], steps)));
  std::vector<char> done(static_cast<std::size_t>(B), 0);
  Tensor<std::int64_t> tokens(Shape{B}, c.bos_id);
  Index remaining = B;
  for (Index step = 0; step < steps && remaining > 0; ++step) {
    model.decode_step(tokens, state);
    for (Index b = 0; b < B; ++b) {
      const std::size_t i = static_cast<std::size_t>(b);
      if (done[i]) {
        tokens[b] = c.eos_id;  // finished rows keep decoding something valid; their output is ignored
        continue;
      }
      Index next = 0;
      state.logits.matrix().row(b).maxCoeff(&next);  // the first maximum, as torch.max
      tokens[b] = next;
      Translation& t = out[i];
      if (next == c.eos_id) t.stop = StopReason::eos;
      else t.ids.push_back(next);
      if (next != c.eos_id && static_cast<Index>(t.ids.size()) >= limits[i]) t.stop = StopReason::max_new_tokens;
      else if (next != c.eos_id && step + 1 >= c.max_len) t.stop = StopReason::max_len;
      else if (next != c.eos_id) continue;
      done[i] = 1;
      --remaining;
    }
  }
  return out;
}

}  // namespace eigenformer
