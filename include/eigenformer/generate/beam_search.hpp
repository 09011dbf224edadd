// generate/beam_search.hpp: beam search for the encoder-decoder Transformer: instead of the one most likely next token
// (translate.hpp's greedy), keep the K most likely partial translations (beams) and return the best finished one.
//   score(y) = log p(y | x) / lp(y),   log p(y | x) = sum over t of log softmax(logits_t)[y_t]   (EOS included)
//   lp(y)    = ((5 + |y|) / 6)^alpha   the length penalty of Wu et al. 2016 (GNMT), |y| counting the EOS;
//                                      alpha = 0 ranks by probability alone, which favours short outputs
// Each step, every beam of a source is extended by every token; the 2K best extensions by log p are taken in order:
// one ending in EOS becomes a finished hypothesis (scored as above), any other becomes a beam of the next step,
// until K beams are found. A source is done when it has K finished hypotheses and none of its beams scores better,
// at its present length, than the worst of them; or when it reaches its token limit or the model's max_len (its
// beams are then finished as they stand, with StopReason max_new_tokens or context_full).
// With K = 1 this is greedy decoding, token for token. A batch of sources is decoded together: the source memory is
// repeated K times ([B * K, S, D]) and every step reorders the self-attention caches by each new beam's parent.
// The beams, the candidates and the caches are sized before the loop; inside it, only a finished hypothesis (at most
// K per source that ranks among the best) copies its ids.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "eigenformer/core/error.hpp"
#include "eigenformer/core/tensor.hpp"
#include "eigenformer/generate/decode_loop.hpp"
#include "eigenformer/models/transformer.hpp"

namespace eigenformer {

struct BeamSearchOptions {
  Index beam = 4;                // K
  double length_penalty = 0.6;   // alpha of lp(y); GNMT uses 0.6 to 1.0
  Index max_new_tokens = -1;     // per source, EOS included; -1: as translate(), source length (with BOS and EOS) + 4
};

struct BeamSearchResult : GenerationResult {
  double score = 0;     // log p / lp of the ids and their EOS (or of the ids alone, when no EOS ended them)
  double log_prob = 0;  // log p(y | x)
};

namespace detail {
// Copies each row's first `length` positions of a [R, capacity, D] cache from row parents[r] into `scratch` and
// swaps the two: afterwards row r holds what row parents[r] held.
template <typename Scalar>
void reorder_rows(Tensor<Scalar>& cache, Tensor<Scalar>& scratch, const std::vector<Index>& parents, Index length) {
  const Index capacity = cache.dim(1), D = cache.dim(2);
  for (std::size_t r = 0; r < parents.size(); ++r)
    std::copy_n(cache.data() + parents[r] * capacity * D, length * D, scratch.data() + static_cast<Index>(r) * capacity * D);
  std::swap(cache, scratch);
}
}  // namespace detail

// sources: each the full source sequence (BOS + ids + EOS for the tutorial's models). One result per source.
template <typename Scalar>
std::vector<BeamSearchResult> beam_search(const Transformer<Scalar>& model, const std::vector<std::vector<std::int64_t>>& sources,
                                          const BeamSearchOptions& options = {}) {
  const TransformerConfig& c = model.config();
  const Index B = static_cast<Index>(sources.size()), K = options.beam, V = c.tgt_vocab_size;
  if (K < 1 || K > 1024) throw RangeError("beam_search: beam is " + std::to_string(K) + "; expected 1 to 1024");
  if (!(std::isfinite(options.length_penalty) && options.length_penalty >= 0))
    throw RangeError("beam_search: length_penalty is " + detail::number_text(options.length_penalty) + "; expected a finite value >= 0");
  if (options.max_new_tokens < -1 || options.max_new_tokens == 0)
    throw RangeError("beam_search: max_new_tokens is " + std::to_string(options.max_new_tokens) + "; expected >= 1, or -1 for the default");
  if (B == 0) return {};

  // The padded sources, each repeated K times: row b * K + k is beam k of source b.
  Index S = 1;
  for (const auto& s : sources) S = std::max<Index>(S, static_cast<Index>(s.size()));
  Tensor<std::int64_t> src(Shape{B, S}, c.pad_id);
  std::vector<Index> lengths(static_cast<std::size_t>(B)), limits(static_cast<std::size_t>(B)), row_lengths;
  Index capacity = 0;
  for (Index b = 0; b < B; ++b) {
    const auto& s = sources[static_cast<std::size_t>(b)];
    std::copy(s.begin(), s.end(), src.data() + b * S);
    lengths[static_cast<std::size_t>(b)] = static_cast<Index>(s.size());
    limits[static_cast<std::size_t>(b)] = options.max_new_tokens > 0 ? options.max_new_tokens : static_cast<Index>(s.size()) + 4;
    capacity = std::max(capacity, std::min(limits[static_cast<std::size_t>(b)], c.max_len));
    for (Index k = 0; k < K; ++k) row_lengths.push_back(lengths[static_cast<std::size_t>(b)]);
  }
  const Tensor<Scalar> memory = model.encode(src, lengths);
  const Index D = c.d_model;
  Tensor<Scalar> repeated(Shape{B * K, S, D});
  for (Index r = 0; r < B * K; ++r) std::copy_n(memory.data() + (r / K) * S * D, S * D, repeated.data() + r * S * D);
  TransformerDecodeState<Scalar> state;
  model.start(repeated, row_lengths, capacity, state);

  // Everything the loop touches, sized once.
  const Index R = B * K;
  std::vector<std::vector<std::int64_t>> beams(static_cast<std::size_t>(R)), next_beams(static_cast<std::size_t>(R));
  for (auto& v : beams) v.reserve(static_cast<std::size_t>(capacity + 1));
  for (auto& v : next_beams) v.reserve(static_cast<std::size_t>(capacity + 1));
  std::vector<double> scores(static_cast<std::size_t>(R), -std::numeric_limits<double>::infinity()), next_scores(scores);
  for (Index b = 0; b < B; ++b) scores[static_cast<std::size_t>(b * K)] = 0;  // one live beam to start: no duplicates
  std::vector<Index> parents(static_cast<std::size_t>(R), 0);
  std::vector<std::vector<BeamSearchResult>> finished(static_cast<std::size_t>(B));
  for (auto& f : finished) f.reserve(static_cast<std::size_t>(K) + 1);
  std::vector<char> done(static_cast<std::size_t>(B), 0);
  struct Candidate {
    double log_prob;
    Index row;
    std::int64_t token;
  };
  std::vector<Candidate> candidates(static_cast<std::size_t>(K * V));
  std::vector<double> log_z(static_cast<std::size_t>(R));
  Tensor<std::int64_t> tokens(Shape{R}, c.bos_id);
  Tensor<Scalar> scratch_keys, scratch_values;
  if (!state.layers.empty()) scratch_keys = Tensor<Scalar>(state.layers[0].self.keys.shape()), scratch_values = Tensor<Scalar>(state.layers[0].self.values.shape());
  const auto penalty = [&](Index n) { return std::pow((5.0 + double(n)) / 6.0, options.length_penalty); };
  // Adds a hypothesis to source b's finished list, which keeps its K best.
  const auto finish = [&](Index b, const std::vector<std::int64_t>& ids, double log_prob, Index n, StopReason stop) {
    auto& list = finished[static_cast<std::size_t>(b)];
    const double score = log_prob / penalty(n);
    if (static_cast<Index>(list.size()) == K && score <= list.back().score) return;
    if (static_cast<Index>(list.size()) == K) list.pop_back();
    BeamSearchResult result;
    result.ids = ids;
    result.stop = stop;
    result.score = score;
    result.log_prob = log_prob;
    const auto at = std::find_if(list.begin(), list.end(), [&](const BeamSearchResult& f) { return f.score < score; });
    list.insert(at, std::move(result));
  };

  model.decode_step(tokens, state);
  for (Index step = 1;; ++step) {  // step: the number of tokens each beam will hold after this iteration, EOS included
    // log Z of every live row, in double: log softmax(x)_v = x_v - log Z.
    for (Index r = 0; r < R; ++r) {
      if (!std::isfinite(scores[static_cast<std::size_t>(r)])) continue;
      const Scalar* x = state.logits.data() + r * V;
      const Scalar m = *std::max_element(x, x + V);
      double sum = 0;
      for (Index v = 0; v < V; ++v) sum += std::exp(double(x[v] - m));
      log_z[static_cast<std::size_t>(r)] = double(m) + std::log(sum);
    }
    bool all_done = true;
    for (Index b = 0; b < B; ++b) {
      if (done[static_cast<std::size_t>(b)]) {  // keep its rows fed with something; nobody reads them
        for (Index k = 0; k < K; ++k) {
          const std::size_t r = static_cast<std::size_t>(b * K + k);
          parents[r] = static_cast<Index>(r), next_scores[r] = -std::numeric_limits<double>::infinity();
        }
        continue;
      }
      // Every extension of every live beam of source b, best first (only the 2K best are needed in order).
      Index n = 0;
      for (Index k = 0; k < K; ++k) {
        const Index r = b * K + k;
        const double base = scores[static_cast<std::size_t>(r)];
        if (!std::isfinite(base)) continue;
        const Scalar* x = state.logits.data() + r * V;
        for (Index v = 0; v < V; ++v) candidates[static_cast<std::size_t>(n++)] = {base + double(x[v]) - log_z[static_cast<std::size_t>(r)], r, v};
      }
      const Index keep = std::min<Index>(n, 2 * K);
      std::partial_sort(candidates.begin(), candidates.begin() + keep, candidates.begin() + n, [](const Candidate& a, const Candidate& b2) {
        return a.log_prob > b2.log_prob || (a.log_prob == b2.log_prob && (a.row < b2.row || (a.row == b2.row && a.token < b2.token)));
      });
      Index taken = 0;
      for (Index i = 0; i < keep && taken < K; ++i) {
        const Candidate& cand = candidates[static_cast<std::size_t>(i)];
        const auto& parent = beams[static_cast<std::size_t>(cand.row)];
        if (cand.token == c.eos_id) {
          finish(b, parent, cand.log_prob, step, StopReason::eos);
          continue;
        }
        const std::size_t r = static_cast<std::size_t>(b * K + taken++);
        next_beams[r].assign(parent.begin(), parent.end());
        next_beams[r].push_back(cand.token);
        next_scores[r] = cand.log_prob;
        parents[r] = cand.row;
        tokens[static_cast<Index>(r)] = cand.token;
      }
      for (Index k = taken; k < K; ++k) {  // fewer live beams than K (tiny vocabularies): the rest stay empty
        const std::size_t r = static_cast<std::size_t>(b * K + k);
        next_scores[r] = -std::numeric_limits<double>::infinity(), parents[r] = static_cast<Index>(r);
      }
      // Done: K finished and no beam better than the worst of them at its present length; or out of tokens or room.
      const auto& list = finished[static_cast<std::size_t>(b)];
      double best_live = -std::numeric_limits<double>::infinity();
      for (Index k = 0; k < taken; ++k) best_live = std::max(best_live, next_scores[static_cast<std::size_t>(b * K + k)] / penalty(step));
      const bool full = static_cast<Index>(list.size()) == K && best_live <= list.back().score;
      const bool out_of_tokens = step >= limits[static_cast<std::size_t>(b)], out_of_room = state.length >= state.capacity;
      if (taken == 0 || full) {
        done[static_cast<std::size_t>(b)] = 1;
      } else if (out_of_tokens || out_of_room) {
        for (Index k = 0; k < taken; ++k) {
          const std::size_t r = static_cast<std::size_t>(b * K + k);
          finish(b, next_beams[r], next_scores[r], step, out_of_tokens ? StopReason::max_new_tokens : StopReason::context_full);
        }
        done[static_cast<std::size_t>(b)] = 1;
      }
      all_done = all_done && done[static_cast<std::size_t>(b)];
    }
    if (all_done) break;
    std::swap(beams, next_beams);
    std::swap(scores, next_scores);
    for (auto& layer : state.layers) {
      detail::reorder_rows(layer.self.keys, scratch_keys, parents, state.length);
      detail::reorder_rows(layer.self.values, scratch_values, parents, state.length);
    }
    model.decode_step(tokens, state);
  }
  std::vector<BeamSearchResult> out(static_cast<std::size_t>(B));
  for (Index b = 0; b < B; ++b) out[static_cast<std::size_t>(b)] = finished[static_cast<std::size_t>(b)].front();
  return out;
}

}  // namespace eigenformer
