// tests/support/masks.hpp: one Mask of every kind (and of combined kinds) over [T, S], for the attention tests.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "eigenformer/core/mask.hpp"
#include "eigenformer/core/random.hpp"
#include "eigenformer/core/tensor.hpp"

namespace eigenformer::testing {

// Every mask kind and some combinations, for B = 2 items, T queries and S keys (S >= T + 2). Each list has rows with
// no allowed key: item 1 of "key padding" has no key at all; "allowed" and "additive" each empty one row.
inline std::vector<std::pair<std::string, Mask>> all_mask_kinds(Index T, Index S, std::uint64_t seed) {
  Tensor<bool> allowed({2, T, S});
  Tensor<double> additive({T, S});
  Random rng(seed);
  for (Index i = 0; i < allowed.size(); ++i) allowed[i] = rng.uniform() < 0.6;
  for (Index s = 0; s < S; ++s) allowed.at(1, 2, s) = false;
  for (Index i = 0; i < additive.size(); ++i) additive[i] = rng.uniform() < 0.2 ? -std::numeric_limits<double>::infinity() : rng.normal();
  for (Index s = 0; s < S; ++s) additive.at(T - 1, s) = -std::numeric_limits<double>::infinity();
  return {
      {"none", Mask()},
      {"causal", Mask::causal(T, S, 0)},
      {"causal offset", Mask::causal(T, S, S - T)},
      {"key padding", Mask::key_padding({S - 1, 0}, S)},
      {"left padding", Mask::left_padding({1, S - 2}, S)},
      {"allowed", Mask::allowed(allowed)},
      {"additive", Mask::additive(additive)},
      {"causal & key padding & additive", Mask::causal(T, S, 1) & Mask::key_padding({S, 3}, S) & Mask::additive(additive)},
      {"left padding & causal & allowed", Mask::left_padding({2, 4}, S) & Mask::causal(T, S, S - T) & Mask::allowed(allowed)},
  };
}

}  // namespace eigenformer::testing
