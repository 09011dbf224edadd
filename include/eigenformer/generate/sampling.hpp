// generate/sampling.hpp: choosing the next token from a row of logits, in Hugging Face's order:
//   repetition penalty (CTRL, Keskar et al. 2019: a logit of a token already in the sequence is divided by the penalty
//   if positive, multiplied if negative) -> temperature (logits / T; T = 0 means greedy: the first argmax) -> top-k
//   (keep the k largest) -> top-p (keep the smallest set of most likely tokens whose probability reaches p) -> sample.
// The Sampler owns its buffers, sized once for the vocabulary, so choosing a token allocates nothing.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "eigenformer/core/error.hpp"
#include "eigenformer/core/random.hpp"
#include "eigenformer/core/tensor.hpp"

namespace eigenformer {

struct SamplingOptions {
  double temperature = 1.0;         // 0: greedy
  Index top_k = 0;                  // 0: no limit
  double top_p = 1.0;               // 1: no limit
  double repetition_penalty = 1.0;  // 1: none
  std::uint64_t seed = 0;

  void validate(const std::string& where = "SamplingOptions") const {
    if (!(temperature >= 0) || !std::isfinite(temperature))
      throw RangeError(where + ": temperature " + std::to_string(temperature) + "; expected >= 0 (0 is greedy)");
    if (top_k < 0) throw RangeError(where + ": top_k " + std::to_string(top_k) + "; expected >= 0 (0 is no limit)");
    if (!(top_p > 0 && top_p <= 1)) throw RangeError(where + ": top_p " + std::to_string(top_p) + "; expected 0 < top_p <= 1");
    if (!(repetition_penalty > 0) || !std::isfinite(repetition_penalty))
      throw RangeError(where + ": repetition_penalty " + std::to_string(repetition_penalty) + "; expected > 0 (1 is none)");
  }
  bool greedy() const { return temperature == 0; }
};

class Sampler {
 public:
  Sampler(const SamplingOptions& options, Index vocab_size)
      : options_((options.validate(), options)), rng_(options.seed), scores_(static_cast<std::size_t>(vocab_size)),
        order_(static_cast<std::size_t>(vocab_size)), seen_(static_cast<std::size_t>(vocab_size), 0) {}

  // Tokens already in the sequence (the prompt): they take the repetition penalty from now on.
  template <typename Ids>
  void observe(const Ids& ids) {
    for (std::int64_t id : ids) observe(id);
  }
  void observe(std::int64_t id) {
    if (id >= 0 && id < static_cast<std::int64_t>(seen_.size())) seen_[static_cast<std::size_t>(id)] = 1;
  }

  // The next token from one row of logits [V]; it is also observed. No allocation.
  template <typename Row>
  std::int64_t choose(const Row& logits) {
    const Index V = static_cast<Index>(scores_.size());
    EIGENFORMER_ASSERT(logits.size() == V, "a row of V logits");
    for (Index v = 0; v < V; ++v) {
      double s = static_cast<double>(logits(v));
      if (options_.repetition_penalty != 1.0 && seen_[static_cast<std::size_t>(v)])
        s = s > 0 ? s / options_.repetition_penalty : s * options_.repetition_penalty;
      scores_[static_cast<std::size_t>(v)] = s;
    }
    std::int64_t chosen = 0;
    if (options_.greedy()) {
      chosen = std::max_element(scores_.begin(), scores_.end()) - scores_.begin();  // the first maximum, as torch.argmax
    } else {
      chosen = sample();
    }
    observe(chosen);
    return chosen;
  }

 private:
  std::int64_t sample() {
    const std::size_t V = scores_.size();
    for (double& s : scores_) s /= options_.temperature;
    // Candidates by decreasing score; ties keep the lower id first, so the order is the same on every platform.
    std::iota(order_.begin(), order_.end(), 0);
    std::size_t keep = V;
    auto by_score = [&](std::int64_t a, std::int64_t b) {
      const double sa = scores_[static_cast<std::size_t>(a)], sb = scores_[static_cast<std::size_t>(b)];
      return sa > sb || (sa == sb && a < b);
    };
    if (options_.top_k > 0 && static_cast<std::size_t>(options_.top_k) < V) {
      keep = static_cast<std::size_t>(options_.top_k);
      std::partial_sort(order_.begin(), order_.begin() + static_cast<std::ptrdiff_t>(keep), order_.end(), by_score);
    } else {
      std::sort(order_.begin(), order_.end(), by_score);
    }
    // Softmax over the candidates (the largest first), then the nucleus: the shortest prefix reaching top_p.
    const double top = scores_[static_cast<std::size_t>(order_[0])];
    double total = 0;
    for (std::size_t i = 0; i < keep; ++i) total += std::exp(scores_[static_cast<std::size_t>(order_[i])] - top);
    if (options_.top_p < 1.0) {
      double cumulative = 0;
      std::size_t n = 0;
      while (n < keep) {
        cumulative += std::exp(scores_[static_cast<std::size_t>(order_[n])] - top) / total;
        ++n;
        if (cumulative >= options_.top_p) break;
      }
      keep = n;
      total = 0;
      for (std::size_t i = 0; i < keep; ++i) total += std::exp(scores_[static_cast<std::size_t>(order_[i])] - top);
    }
    double u = rng_.uniform() * total;
    for (std::size_t i = 0; i < keep; ++i) {
      u -= std::exp(scores_[static_cast<std::size_t>(order_[i])] - top);
      if (u < 0) return order_[i];
    }
    return order_[keep - 1];  // rounding left u at 0: the least likely candidate
  }

  SamplingOptions options_;
  Random rng_;
  std::vector<double> scores_;        // [V]
  std::vector<std::int64_t> order_;   // [V]
  std::vector<unsigned char> seen_;   // [V]: in the sequence already
};

}  // namespace eigenformer
