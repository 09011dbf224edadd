// generate/decode_loop.hpp: the one loop of autoregressive decoding, shared by GPT-2 (generate/generate.hpp) and the
// encoder-decoder Transformer (generate/translate.hpp). Each step, every row still running chooses its next token
// from the newest logits with its own Sampler (temperature 0 is greedy: the first argmax), and stops on its own:
//   eos             it chose the end token (which is not kept in its ids)
//   max_new_tokens  it has its quota of new tokens
//   context_full    the model has no position left for it to feed the token back (n_positions, max_len)
//   callback        on_token returned false, which stops every row
// Then the chosen tokens go through the model's decode_step, one position per row; rows that are done feed their
// last token, whose output nobody reads. Nothing is allocated inside the loop. What the loop needs of the model:
//   state.logits [B, V]     the newest position's logits
//   state.length, .capacity positions fed so far, and room for
//   model.decode_step(tokens [B], state)
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <vector>

#include "eigenformer/core/error.hpp"
#include "eigenformer/core/tensor.hpp"
#include "eigenformer/generate/sampling.hpp"

namespace eigenformer {

enum class StopReason { eos, max_new_tokens, context_full, callback };

inline const char* stop_reason_name(StopReason s) {
  switch (s) {
    case StopReason::eos: return "eos";
    case StopReason::max_new_tokens: return "max_new_tokens";
    case StopReason::context_full: return "context_full";
    case StopReason::callback: return "callback";
  }
  return "?";
}

// One row's output.
struct GenerationResult {
  std::vector<std::int64_t> ids;  // the new tokens, without the end token that stopped them
  StopReason stop = StopReason::max_new_tokens;
};

// Called with (row, token) for every new token, the end token included; returning false stops every row.
using TokenCallback = std::function<bool(Index, std::int64_t)>;

// Runs the loop from a state whose logits are ready (the model has been started and fed its first position).
// samplers[b] and max_new_tokens[b] are row b's; stop_at_eos: whether eos_id ends a row.
template <typename Model, typename State>
std::vector<GenerationResult> decode_loop(const Model& model, State& state, std::vector<Sampler>& samplers,
                                          const std::vector<Index>& max_new_tokens, std::int64_t eos_id, bool stop_at_eos,
                                          const TokenCallback& on_token = {}) {
  const Index B = static_cast<Index>(samplers.size());
  EIGENFORMER_ASSERT(static_cast<Index>(max_new_tokens.size()) == B && state.logits.dim(0) == B, "a sampler and a limit per row");
  std::vector<GenerationResult> out(static_cast<std::size_t>(B));
  const Index room = state.capacity - state.length + 1;  // the most tokens a row can choose: each but the last is fed back
  for (Index b = 0; b < B; ++b)
    out[static_cast<std::size_t>(b)].ids.reserve(static_cast<std::size_t>(std::min(max_new_tokens[static_cast<std::size_t>(b)], room)));
  std::vector<char> done(static_cast<std::size_t>(B), 0);
  Tensor<std::int64_t> tokens(Shape{B}, eos_id);
  Index remaining = B;
  while (remaining > 0) {
    for (Index b = 0; b < B && remaining > 0; ++b) {
      const std::size_t i = static_cast<std::size_t>(b);
      if (done[i]) continue;
      const std::int64_t next = samplers[i].choose(state.logits.matrix().row(b));
      tokens[b] = next;
      GenerationResult& r = out[i];
      const bool eos = stop_at_eos && next == eos_id;
      if (!eos) r.ids.push_back(next);
      bool stop = true;
      if (eos) r.stop = StopReason::eos;
      else if (static_cast<Index>(r.ids.size()) >= max_new_tokens[i]) r.stop = StopReason::max_new_tokens;
      else if (state.length >= state.capacity) r.stop = StopReason::context_full;
      else stop = false;
      if (stop) {
        done[i] = 1;
        --remaining;
      }
      if (on_token && !on_token(b, next)) {
        for (Index k = 0; k < B; ++k)
          if (!done[static_cast<std::size_t>(k)]) {
            done[static_cast<std::size_t>(k)] = 1;
            out[static_cast<std::size_t>(k)].stop = StopReason::callback;
          }
        remaining = 0;
      }
    }
    if (remaining == 0) break;
    model.decode_step(tokens, state);
  }
  return out;
}

}  // namespace eigenformer
