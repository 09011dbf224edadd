// train/bleu.hpp: corpus BLEU (Papineni et al. 2002), the score machine translation reports, with one reference per
// hypothesis, as sacrebleu's corpus_bleu computes it on already-tokenised text (tokenize='none', smooth_method='none',
// force=True), and as nltk's corpus_bleu with uniform weights:
//   p_n  = (sum over sentences of clipped n-gram matches) / (sum over sentences of hypothesis n-grams),  n = 1..4
//          clipped: an n-gram counts at most as often as it occurs in the reference
//   BP   = 1 if c > r, else exp(1 - r / c)            c, r: total hypothesis and reference lengths
//   BLEU = BP * exp(mean over n of log p_n)           0 when any p_n is 0 (no smoothing), as a fraction in [0, 1]
// Sentences are sequences of tokens (words, or token ids). Matches are summed over the corpus before dividing:
// corpus BLEU is not the mean of sentence BLEUs.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "eigenformer/core/error.hpp"

namespace eigenformer {

struct BleuScore {
  double bleu = 0;                      // BP * geometric mean of the precisions, in [0, 1]
  std::array<double, 4> precisions{};   // p_1 .. p_4
  double brevity_penalty = 0;
  std::size_t hypothesis_length = 0, reference_length = 0;
};

template <typename Token>
BleuScore corpus_bleu(const std::vector<std::vector<Token>>& hypotheses, const std::vector<std::vector<Token>>& references) {
  if (hypotheses.size() != references.size())
    throw ShapeError("corpus_bleu: " + std::to_string(hypotheses.size()) + " hypotheses and " + std::to_string(references.size()) +
                     " references; expected one reference per hypothesis");
  std::array<double, 4> matches{}, totals{};
  BleuScore score;
  for (std::size_t i = 0; i < hypotheses.size(); ++i) {
    const std::vector<Token>& hyp = hypotheses[i];
    const std::vector<Token>& ref = references[i];
    score.hypothesis_length += hyp.size();
    score.reference_length += ref.size();
    for (std::size_t n = 1; n <= 4; ++n) {
      if (hyp.size() < n) continue;
      std::map<std::vector<Token>, std::size_t> in_reference;
      for (std::size_t k = 0; k + n <= ref.size(); ++k) ++in_reference[std::vector<Token>(ref.begin() + long(k), ref.begin() + long(k + n))];
      std::map<std::vector<Token>, std::size_t> in_hypothesis;
      for (std::size_t k = 0; k + n <= hyp.size(); ++k) ++in_hypothesis[std::vector<Token>(hyp.begin() + long(k), hyp.begin() + long(k + n))];
      for (const auto& [gram, count] : in_hypothesis) {
        const auto it = in_reference.find(gram);
        if (it != in_reference.end()) matches[n - 1] += double(std::min(count, it->second));
      }
      totals[n - 1] += double(hyp.size() - n + 1);
    }
  }
  double log_sum = 0;
  bool zero = false;
  for (std::size_t n = 0; n < 4; ++n) {
    score.precisions[n] = totals[n] > 0 ? matches[n] / totals[n] : 0.0;
    if (score.precisions[n] == 0) zero = true;
    else log_sum += std::log(score.precisions[n]);
  }
  const double c = double(score.hypothesis_length), r = double(score.reference_length);
  score.brevity_penalty = c == 0 ? 0.0 : c > r ? 1.0 : std::exp(1.0 - r / c);
  score.bleu = zero ? 0.0 : score.brevity_penalty * std::exp(log_sum / 4.0);
  return score;
}

}  // namespace eigenformer
