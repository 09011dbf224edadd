// MultiHeadAttention against torch.nn.MultiheadAttention(batch_first=True, need_weights=True,
// average_attn_weights=False): every mask kind, one head, d_model not a multiple of 8, T = 1; fused and separate
// projections; a fully masked row.
#include "eigenformer/nn/multi_head_attention.hpp"

#include <doctest/doctest.h>

#include <map>

#include "support/fixtures.hpp"

using namespace eigenformer;
using namespace eigenformer::testing;

namespace {
template <typename Scalar>
MultiHeadAttention<Scalar> load_mha(const Fixture& fx) {
  MultiHeadAttention<Scalar> mha(MultiHeadAttentionConfig{fx.meta_int("d_model"), fx.meta_int("heads")});
  fx.load(mha);
  return mha;
}
}  // namespace

TEST_CASE_TEMPLATE("MultiHeadAttention: self-attention output and per-head weights match PyTorch, with either kernel", Scalar, float,
                   double) {
  for (AttentionKernel kernel : {AttentionKernel::reference, AttentionKernel::flash})
  for (const char* name : {"mha_self", "mha_self_causal", "mha_self_padding", "mha_self_causal_padding", "mha_allowed", "mha_additive",
                           "mha_one_head_odd"}) {
    CAPTURE(name);
    CAPTURE(std::string(kernel_name(kernel)));
    Fixture fx(name);
    const MultiHeadAttention<Scalar> mha = load_mha<Scalar>(fx);
    const Tensor<Scalar> x = fx.input<Scalar>("x");
    const Mask mask = fx.mask(x.dim(1), x.dim(1));
    Tensor<Scalar> weights;
    check_close(mha.forward(x, {&mask, &weights, kernel}), fx.output<double>("y"));
    check_close(weights, fx.output<double>("weights"));
  }
}

TEST_CASE_TEMPLATE("MultiHeadAttention: separate q, k, v projections give what the fused one gives", Scalar, float, double) {
  Fixture fx("mha_self_causal_padding");
  const MultiHeadAttention<Scalar> fused = load_mha<Scalar>(fx);
  MultiHeadAttentionConfig config = fused.config();
  config.fused_qkv = false;
  MultiHeadAttention<Scalar> separate(config);
  // Split in_proj [3D, D] into q_proj, k_proj, v_proj [D, D] (rows q, then k, then v, as PyTorch stacks them).
  const Tensor<double> w = fx.file().get<double>("param.in_proj_weight"), b = fx.file().get<double>("param.in_proj_bias");
  const Tensor<double> out_w = fx.file().get<double>("param.out_proj.weight"), out_b = fx.file().get<double>("param.out_proj.bias");
  const Index D = config.d_model;
  const std::map<std::string, int> part = {{"q_proj", 0}, {"k_proj", 1}, {"v_proj", 2}};
  std::vector<std::string> names;
  separate.visit_parameters([&](const std::string& name, Tensor<Scalar>& t) {
    names.push_back(name);
    const std::string module = name.substr(0, name.find('.'));
    const bool is_weight = name.find(".weight") != std::string::npos;
    if (module == "out_proj") {
      t = (is_weight ? out_w : out_b).template cast<Scalar>();
    } else if (is_weight) {
      t.matrix() = w.matrix().middleRows(part.at(module) * D, D).template cast<Scalar>();
    } else {
      t.vector() = b.vector().segment(part.at(module) * D, D).template cast<Scalar>();
    }
  });
  CHECK(names == std::vector<std::string>{"q_proj.weight", "q_proj.bias", "k_proj.weight", "k_proj.bias", "v_proj.weight", "v_proj.bias",
                                          "out_proj.weight", "out_proj.bias"});
  const Tensor<Scalar> x = fx.input<Scalar>("x");
  const Mask mask = fx.mask(x.dim(1), x.dim(1));
  check_close(separate.forward(x, {&mask, nullptr}), fx.output<double>("y"));
}

TEST_CASE_TEMPLATE("MultiHeadAttention: a query with no allowed key outputs out_proj.bias", Scalar, float, double) {
  Fixture fx("mha_self");
  const MultiHeadAttention<Scalar> mha = load_mha<Scalar>(fx);
  const Tensor<Scalar> x = fx.input<Scalar>("x");
  const Index T = x.dim(1);
  Tensor<bool> allowed({T, T}, true);
  for (Index s = 0; s < T; ++s) allowed.at(2, s) = false;
  const Mask mask = Mask::allowed(allowed);
  Tensor<Scalar> weights;
  const Tensor<Scalar> y = mha.forward(x, {&mask, &weights});
  const Tensor<Scalar> out_bias = fx.file().get<Scalar>("param.out_proj.bias");
  CHECK(y.matrix().allFinite());
  for (Index b = 0; b < x.dim(0); ++b) {
    CHECK(y.slice(b).matrix().row(2) == out_bias.matrix());
    for (Index h = 0; h < mha.config().num_heads; ++h) CHECK(weights.slice(b).slice(h).matrix().row(2).isZero(0));
  }
}

TEST_CASE("MultiHeadAttention: wrong shapes and head counts are refused with both shapes named") {
  MultiHeadAttention<float> mha(MultiHeadAttentionConfig{512, 8});
  CHECK_THROWS_WITH_AS(mha.forward(Tensor<float>({2, 7, 64})),
                       "MultiHeadAttention.forward: query has shape [2, 7, 64]; expected [B, T, 512] (d_model)", ShapeError);
  CHECK_THROWS_WITH_AS(mha.forward(Tensor<float>({2, 7, 512}), Tensor<float>({3, 5, 512}), Tensor<float>({3, 5, 512})),
                       "MultiHeadAttention.forward: key has shape [3, 5, 512]; expected [2, S, 512] (batch of query, d_model)", ShapeError);
  CHECK_THROWS_WITH_AS(mha.forward(Tensor<float>({2, 7, 512}), Tensor<float>({2, 5, 512}), Tensor<float>({2, 4, 512})),
                       "MultiHeadAttention.forward: value has shape [2, 4, 512]; expected [2, 5, 512] (batch and length of key, d_model)", ShapeError);
  CHECK_THROWS_WITH_AS(MultiHeadAttention<float>(MultiHeadAttentionConfig{10, 3}),
                       "MultiHeadAttention: d_model 10 with 3 heads; expected d_model > 0 and a multiple of num_heads > 0", RangeError);
}
