// ScaledDotProductAttention against softmax(q k^T / sqrt(Dh) + M) v computed by PyTorch, for every mask kind alone
// and combined; a fully masked row; T = 1.
#include "eigenformer/nn/scaled_dot_product_attention.hpp"

#include <doctest/doctest.h>

#include "eigenformer/core/random.hpp"
#include "eigenformer/train/gradients.hpp"
#include "support/fixtures.hpp"
#include "support/gradcheck.hpp"
#include "support/masks.hpp"

using namespace eigenformer;
using namespace eigenformer::testing;

TEST_CASE_TEMPLATE("ScaledDotProductAttention: output and weights match PyTorch under every mask, with either kernel", Scalar, float,
                   double) {
  for (AttentionKernel kernel : {AttentionKernel::reference, AttentionKernel::flash})
  for (const char* name : {"sdpa_none", "sdpa_causal_square", "sdpa_causal_offset", "sdpa_padding", "sdpa_allowed", "sdpa_allowed_batched",
                           "sdpa_additive", "sdpa_causal_padding", "sdpa_allowed_padding", "sdpa_additive_causal", "sdpa_t1"}) {
    CAPTURE(name);
    CAPTURE(std::string(kernel_name(kernel)));
    Fixture fx(name);
    const Tensor<Scalar> q = fx.input<Scalar>("q"), k = fx.input<Scalar>("k"), v = fx.input<Scalar>("v");
    const Mask mask = fx.mask(q.dim(2), k.dim(2));
    Tensor<Scalar> weights;
    ScaledDotProductAttention<Scalar> attention;
    check_close(attention.forward(q, k, v, {&mask, &weights, kernel}), fx.output<double>("out"));
    check_close(weights, fx.output<double>("weights"));
    check_close(attention.forward(q, k, v, {&mask, nullptr, kernel}), fx.output<double>("out"));
  }
}

TEST_CASE_TEMPLATE("ScaledDotProductAttention: a query row with no allowed key gives zero weights and a zero output", Scalar, float, double) {
  for (AttentionKernel kernel : {AttentionKernel::reference, AttentionKernel::flash}) {
  CAPTURE(std::string(kernel_name(kernel)));
  const Index B = 2, H = 2, T = 3, S = 4, Dh = 5;
  const Tensor<Scalar> q = random_tensor<Scalar>({B, H, T, Dh}, 1), k = random_tensor<Scalar>({B, H, S, Dh}, 2),
                       v = random_tensor<Scalar>({B, H, S, Dh}, 3);
  Tensor<bool> allowed({T, S}, true);
  for (Index s = 0; s < S; ++s) allowed.at(1, s) = false;  // query 1 may see nothing
  const Mask masked = Mask::allowed(allowed);
  Tensor<Scalar> weights, free_weights;
  ScaledDotProductAttention<Scalar> attention;
  const Tensor<Scalar> out = attention.forward(q, k, v, {&masked, &weights, kernel});
  const Tensor<Scalar> free = attention.forward(q, k, v, {nullptr, &free_weights, kernel});
  CHECK(out.matrix().allFinite());
  for (Index b = 0; b < B; ++b)
    for (Index h = 0; h < H; ++h)
      for (Index t = 0; t < T; ++t) {
        for (Index d = 0; d < Dh; ++d) CHECK(out.at(b, h, t, d) == (t == 1 ? Scalar(0) : free.at(b, h, t, d)));
        for (Index s = 0; s < S; ++s) CHECK(weights.at(b, h, t, s) == (t == 1 ? Scalar(0) : free_weights.at(b, h, t, s)));
      }
  }
}

TEST_CASE("ScaledDotProductAttention: shapes and mask sizes are checked") {
  ScaledDotProductAttention<float> attention;
  const Tensor<float> q({2, 3, 4, 5}), k({2, 3, 6, 5}), v({2, 3, 6, 5});
  CHECK_THROWS_WITH_AS(attention.forward(Tensor<float>({3, 4, 5}), k, v),
                       "ScaledDotProductAttention.forward: q has shape [3, 4, 5]; expected [B, H, T, Dh]", ShapeError);
  CHECK_THROWS_WITH_AS(attention.forward(q, Tensor<float>({2, 3, 6, 4}), v),
                       "ScaledDotProductAttention.forward: k has shape [2, 3, 6, 4]; expected [2, 3, S, 5] (B, H and Dh of q)", ShapeError);
  CHECK_THROWS_WITH_AS(attention.forward(q, k, Tensor<float>({2, 3, 5, 5})),
                       "ScaledDotProductAttention.forward: v has shape [2, 3, 5, 5]; expected [2, 3, 6, Dv] (B, H and S of k)", ShapeError);
  const Mask wrong = Mask::causal(4, 4);
  CHECK_THROWS_WITH_AS(attention.forward(q, k, v, {&wrong, nullptr}),
                       "ScaledDotProductAttention.forward: causal mask made for 4 queries, 4 keys; the attention has 2 batch items, 4 queries and 6 keys",
                       ShapeError);
}

TEST_CASE("ScaledDotProductAttention.backward: both kernels, every mask kind, agree with central differences for q, k and v") {
  const Index B = 2, H = 2, T = 4, S = 6, Dh = 3;
  Tensor<double> q = random_tensor<double>({B, H, T, Dh}, 81), k = random_tensor<double>({B, H, S, Dh}, 82), v = random_tensor<double>({B, H, S, Dh}, 83);
  const Tensor<double> dout = random_tensor<double>({B, H, T, Dh}, 84);
  ScaledDotProductAttention<double> sdpa;
  for (const auto& named : all_mask_kinds(T, S, 85))
    for (const AttentionKernel kernel : {AttentionKernel::flash, AttentionKernel::reference}) {
      const std::string name = named.first + ", " + kernel_name(kernel);
      CAPTURE(name);
      AttentionOptions<double> options;
      options.mask = &named.second;
      options.kernel = kernel;
      const auto heads = [](const Tensor<double>& t) { return HeadsView<const double>::head_major(t); };
      ScaledDotProductAttention<double>::Activations saved;
      Tensor<double> out({B, H, T, Dh});
      sdpa.forward(heads(q), heads(k), heads(v), HeadsView<double>::head_major(out), options, &saved);
      CHECK(out.vector() == sdpa.forward(q, k, v, options).vector());
      Tensor<double> dq({B, H, T, Dh}), dk({B, H, S, Dh}), dv({B, H, S, Dh});
      sdpa.backward(heads(q), heads(k), heads(v), heads(out), heads(dout), HeadsView<double>::head_major(dq), HeadsView<double>::head_major(dk),
                    HeadsView<double>::head_major(dv), saved, options);
      const auto loss = [&] { return dot(sdpa.forward(q, k, v, options), dout); };
      check_gradient("SDPA dq, " + name, q, dq, loss);
      check_gradient("SDPA dk, " + name, k, dk, loss);
      check_gradient("SDPA dv, " + name, v, dv, loss);
    }
}
