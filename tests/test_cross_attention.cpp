// CrossAttention against torch.nn.MultiheadAttention with query from one sequence and key = value = memory,
// the memory padded to its own lengths.
#include "eigenformer/nn/cross_attention.hpp"

#include <doctest/doctest.h>

#include "support/fixtures.hpp"

using namespace eigenformer;
using namespace eigenformer::testing;

TEST_CASE_TEMPLATE("CrossAttention: matches PyTorch with memory padding", Scalar, float, double) {
  Fixture fx("mha_cross");
  CrossAttention<Scalar> cross(MultiHeadAttentionConfig{fx.meta_int("d_model"), fx.meta_int("heads")});
  fx.load(cross);
  const Tensor<Scalar> x = fx.input<Scalar>("x"), memory = fx.input<Scalar>("memory");
  const Mask mask = fx.memory_mask(memory.dim(1));
  Tensor<Scalar> weights;
  check_close(cross.forward(x, memory, {&mask, &weights}), fx.output<double>("y"));
  check_close(weights, fx.output<double>("weights"));
}

TEST_CASE("CrossAttention: errors name CrossAttention and the memory's shape") {
  CrossAttention<float> cross(MultiHeadAttentionConfig{12, 3});
  CHECK_THROWS_WITH_AS(cross.forward(Tensor<float>({2, 4, 12}), Tensor<float>({2, 6, 8})),
                       "CrossAttention.forward: key has shape [2, 6, 8]; expected [2, S, 12] (batch of query, d_model)", ShapeError);
  const Mask padding = Mask::key_padding({5, 3}, 5);
  CHECK_THROWS_WITH_AS(cross.forward(Tensor<float>({2, 4, 12}), Tensor<float>({2, 6, 12}), {&padding, nullptr}),
                       "CrossAttention.forward: key padding mask made for 2 batch items, 5 keys; the attention has 2 batch items, 4 queries and 6 keys",
                       ShapeError);
}
