// inspect/explain.hpp: from recorded tensors to a page's parts. attention_view lays out item b's weights of every
// layer as [L][H][T][S], in layer order; residual_norms are the L2 norms of the recorded residual stream; the
// next-token steps sit at the positions asked for; explain_max_tokens is the largest T with maps * T^2 within the cap;
// labels that do not fit the tensors are refused.
#include "eigenformer/inspect/explain.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "eigenformer/core/random.hpp"

using namespace eigenformer;

namespace {
// A recorder shown [B, H, T, T] weights for `layers` layers of "h" and [B, T, D] residuals, filled with distinct values.
Recorder<float> recorded(Index B, Index layers, Index H, Index T, Index D) {
  Recorder<float> r;
  Random rng(3);
  const auto show = [&](const Site& site, Probe probe, const Shape& shape) {
    Tensor<float> t(shape);
    for (Index i = 0; i < t.size(); ++i) t.data()[i] = static_cast<float>(rng.uniform());
    r.record(site, probe, t);
  };
  for (Index l = 0; l < layers; ++l) {
    show(Site{"h", l, {}, "resid_pre"}, Probe::residual, Shape{B, T, D});
    show(Site{"h", l, "attn", "weights"}, Probe::attention_weights, Shape{B, H, T, T});
    show(Site{"h", l, {}, "resid_post"}, Probe::residual, Shape{B, T, D});
  }
  show(Site{{}, -1, {}, "logits"}, Probe::logits, Shape{B, T, 7});
  return r;
}
std::vector<std::string> labels(Index n) {
  std::vector<std::string> v;
  for (Index i = 0; i < n; ++i) v.push_back("t" + std::to_string(i));
  return v;
}
}  // namespace

TEST_CASE("attention_view: item b's weights of every layer, [L][H][T][S] in layer order") {
  const Index B = 2, L = 3, H = 2, T = 4;
  const Recorder<float> r = recorded(B, L, H, T, 5);
  const AttentionView v = attention_view(r, "self-attention", "h", L, "attn", labels(T), labels(T), 1);
  CHECK(v.layers == L);
  CHECK(v.heads == H);
  REQUIRE(v.weights.size() == static_cast<std::size_t>(L * H * T * T));
  for (Index l = 0; l < L; ++l) {
    const Tensor<float>& w = r.at("h." + std::to_string(l) + ".attn.weights");
    for (Index i = 0; i < H * T * T; ++i) CHECK(v.weights[static_cast<std::size_t>(l * H * T * T + i)] == w.data()[H * T * T + i]);
  }
  CHECK_THROWS_AS(attention_view(r, "x", "h", L, "attn", labels(T - 1), labels(T)), ShapeError);
  CHECK_THROWS_AS(attention_view(r, "x", "h", L, "attn", labels(T), labels(T), 2), ShapeError);
  CHECK_THROWS_WITH_AS(attention_view(r, "x", "h", L + 1, "attn", labels(T), labels(T)),
                       "Recorder.at: nothing was recorded as 'h.3.attn.weights' (10 tensors recorded)", RangeError);
}

TEST_CASE("residual_norms: the embeddings' norms, then each layer's output's, per token") {
  const Index B = 2, L = 2, T = 3, D = 4;
  const Recorder<float> r = recorded(B, L, 1, T, D);
  const ResidualNorms n = residual_norms(r, "h", L, labels(T), 1);
  CHECK(n.layers == std::vector<std::string>{"embed", "h.0", "h.1"});
  REQUIRE(n.norms.size() == 3);
  const std::string sites[] = {"h.0.resid_pre", "h.0.resid_post", "h.1.resid_post"};
  for (std::size_t row = 0; row < 3; ++row)
    for (Index t = 0; t < T; ++t) {
      double sum = 0;
      for (Index d = 0; d < D; ++d) sum += std::pow(static_cast<double>(r.at(sites[row]).data()[(T + t) * D + d]), 2);
      CHECK(n.norms[row][static_cast<std::size_t>(t)] == doctest::Approx(std::sqrt(sum)).epsilon(1e-6));
    }
  CHECK_THROWS_AS(residual_norms(r, "h", L, labels(T + 1)), ShapeError);
}

TEST_CASE("next_token_steps: one step per position asked for, with the chosen token named") {
  const Recorder<float> r = recorded(1, 1, 1, 4, 2);
  const auto label = [](std::int64_t id) { return "w" + std::to_string(id); };
  const std::vector<NextTokenStep> steps = next_token_steps(r.at("logits"), {{1, 5}, {3, -1}}, 3, default_temperatures(), label);
  REQUIRE(steps.size() == 2);
  CHECK(steps[0].position == 1);
  CHECK(steps[0].chosen == "w5");
  CHECK(steps[0].top.size() == 3);
  CHECK(steps[1].chosen.empty());
  CHECK_THROWS_AS(next_token_steps(r.at("logits"), {{4, 0}}, 3, default_temperatures(), label), RangeError);
}

TEST_CASE("explain_max_tokens: the largest T with maps x T^2 attention weights within the cap") {
  for (Index maps : {1, 16, 144, 256, 1200, 4194304, 5000000}) {
    CAPTURE(maps);
    const Index t = explain_max_tokens(maps);
    CHECK(maps * t * t <= explain_max_attention_weights);
    CHECK(maps * (t + 1) * (t + 1) > explain_max_attention_weights);
  }
}
