// inspect/explain.hpp: from what a Recorder kept of one forward pass (inspect/recorder.hpp) to the parts of an
// explainer page (inspect/explain_page.hpp), for any model whose sites follow inspect/observer.hpp's names:
//   attention_view   every layer's and head's weights of one attention block, [layers][heads][T][S], batch item b
//   residual_norms   the L2 norm of the residual stream at every token: into the first layer, then out of each
//   next_token_steps the next-token distribution at the given positions of the logits
// The gpt2 and translator examples (--explain) compose them; docs/inspect.md shows the page.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "eigenformer/core/error.hpp"
#include "eigenformer/core/tensor.hpp"
#include "eigenformer/inspect/explain_page.hpp"
#include "eigenformer/inspect/recorder.hpp"

namespace eigenformer {

// The most attention weights one page holds, over all its maps (layers x heads x queries x keys): 2^22, at most about
// 9 MB of the page (about 2 characters each; causal maps half that). GPT-2 small (144 maps) fits 170 tokens.
inline constexpr Index explain_max_attention_weights = Index(1) << 22;
// The most tokens a page of `maps` square attention maps holds.
inline Index explain_max_tokens(Index maps) {
  Index t = static_cast<Index>(std::sqrt(static_cast<double>(explain_max_attention_weights) / static_cast<double>(std::max<Index>(maps, 1))));
  while (maps * (t + 1) * (t + 1) <= explain_max_attention_weights) ++t;
  while (t > 0 && maps * t * t > explain_max_attention_weights) --t;
  return t;
}

// The weights recorded as STACK.L.BLOCK.weights [B, H, T, S] for L = 0 .. layers - 1, batch item b, as one view.
// queries and keys label the rows and columns (T and S of them).
template <typename Scalar>
AttentionView attention_view(const Recorder<Scalar>& recorded, std::string name, std::string_view stack, Index layers, std::string_view block,
                             std::vector<std::string> queries, std::vector<std::string> keys, Index b = 0) {
  AttentionView view;
  view.name = std::move(name);
  view.layers = layers;
  for (Index l = 0; l < layers; ++l) {
    const Tensor<Scalar>& w = recorded.at(Site{stack, l, block, "weights"}.name());
    const Index H = w.dim(1), T = w.dim(2), S = w.dim(3);
    if (l == 0) {
      view.heads = H;
      if (static_cast<Index>(queries.size()) != T || static_cast<Index>(keys.size()) != S || b < 0 || b >= w.dim(0))
        throw ShapeError("attention_view: " + std::to_string(queries.size()) + " query and " + std::to_string(keys.size()) + " key labels, item " +
                         std::to_string(b) + ", for weights " + w.shape().str());
    }
    const Scalar* item = w.data() + b * H * T * S;
    view.weights.insert(view.weights.end(), item, item + H * T * S);
  }
  view.queries = std::move(queries);
  view.keys = std::move(keys);
  return view;
}

// Rows: "embed" (STACK.0.resid_pre, the embeddings) and STACK.L (STACK.L.resid_post); columns: the T tokens of item b.
template <typename Scalar>
ResidualNorms residual_norms(const Recorder<Scalar>& recorded, std::string_view stack, Index layers, std::vector<std::string> tokens, Index b = 0) {
  ResidualNorms r;
  const auto norms = [&](const std::string& site) {
    const Tensor<Scalar>& x = recorded.at(site);  // [B, T, D]
    std::vector<double> n;
    for (Index t = 0; t < x.dim(1); ++t) n.push_back(static_cast<double>(x.slice(b).matrix().row(t).template cast<double>().norm()));
    return n;
  };
  r.layers.push_back("embed");
  r.norms.push_back(norms(Site{stack, 0, {}, "resid_pre"}.name()));
  for (Index l = 0; l < layers; ++l) {
    r.layers.push_back(std::string(stack) + "." + std::to_string(l));
    r.norms.push_back(norms(Site{stack, l, {}, "resid_post"}.name()));
  }
  if (r.norms[0].size() != tokens.size())
    throw ShapeError("residual_norms: " + std::to_string(tokens.size()) + " token labels for " + std::to_string(r.norms[0].size()) + " positions");
  r.tokens = std::move(tokens);
  return r;
}

// For each (position, chosen id): the top-k of logits [B, T, V] at that position of item b, with the probabilities
// at every temperature; label(id) names a token.
template <typename Scalar>
std::vector<NextTokenStep> next_token_steps(const Tensor<Scalar>& logits, const std::vector<std::pair<Index, std::int64_t>>& positions, Index k,
                                            const std::vector<double>& temperatures, const std::function<std::string(std::int64_t)>& label,
                                            Index b = 0) {
  const Index T = logits.dim(1), V = logits.dim(2);
  std::vector<NextTokenStep> steps;
  for (const auto& [t, chosen] : positions) {
    if (t < 0 || t >= T) throw RangeError("next_token_steps: position " + std::to_string(t) + " is outside the " + std::to_string(T) + " positions");
    NextTokenStep step = next_token_step<Scalar>(logits.data() + (b * T + t) * V, V, k, temperatures, label);
    step.position = t;
    step.chosen_id = chosen;
    step.chosen = chosen >= 0 ? label(chosen) : std::string();
    steps.push_back(std::move(step));
  }
  return steps;
}

}  // namespace eigenformer
