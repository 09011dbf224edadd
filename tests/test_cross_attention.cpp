// CrossAttention against torch.nn.MultiheadAttention with query from one sequence and key = value = memory,
// the memory padded to its own lengths; forward_accumulate and attend(..., Accumulate::yes) add onto y what the plain
// calls write.
#include "eigenformer/nn/cross_attention.hpp"

#include <doctest/doctest.h>

#include "eigenformer/core/random.hpp"
#include "eigenformer/train/gradients.hpp"
#include "support/accumulate.hpp"
#include "support/fixtures.hpp"
#include "support/gradcheck.hpp"

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

TEST_CASE_TEMPLATE("CrossAttention: forward_accumulate and attend with Accumulate::yes add the plain result onto y", Scalar, float, double) {
  const Index D = 12, S = 6;
  CrossAttention<Scalar> cross(MultiHeadAttentionConfig{D, 3});
  Random rng(61);
  cross.visit_parameters([&](const std::string&, Tensor<Scalar>& t) { fill_normal(t.view(), rng, 0.0, 0.3); });
  for (Index T : {1, 2, 3, 4, 5, 16, 17, 40}) {  // rows of out_proj: the streaming kernel up to 16, Eigen's GEMM beyond
    CAPTURE(T);
    const Tensor<Scalar> x = random_tensor<Scalar>({2, T, D}, 62 + T), memory = random_tensor<Scalar>({2, S, D}, 63 + T);
    const Tensor<Scalar> residual = random_tensor<Scalar>({2, T, D}, 64 + T);
    const Mask padding = Mask::key_padding({S, S - 2}, S);
    Tensor<Scalar> y = residual;
    cross.forward_accumulate(x, memory, y, {&padding, nullptr});
    check_accumulated(y.matrix(), residual.matrix(), cross.forward(x, memory, {&padding, nullptr}).matrix());
  }
  for (Index B : {1, 2, 3, 4, 5, 16, 17}) {  // decoding: one row per batch item
    CAPTURE(B);
    KVCache<Scalar> cache;
    cross.cache_memory(random_tensor<Scalar>({B, S, D}, 70), cache);
    AttentionStepWorkspace<Scalar> ws;
    ws.reserve(B, D, S);
    std::vector<Index> memory_lengths;
    for (Index b = 0; b < B; ++b) memory_lengths.push_back(1 + b % S);
    const Tensor<Scalar> x = random_tensor<Scalar>({B, 1, D}, 71), residual = random_tensor<Scalar>({B, 1, D}, 72);
    Tensor<Scalar> plain({B, 1, D}), y = residual;
    cross.attend(x, cache, memory_lengths, ws, plain);
    cross.attend(x, cache, memory_lengths, ws, y, Accumulate::yes);
    check_accumulated(y.matrix(), residual.matrix(), plain.matrix());
  }
}

TEST_CASE("CrossAttention.backward: dx, dmemory (keys and values both) and every projection agree with central differences") {
  const Index B = 2, T = 3, S = 5, D = 4;
  CrossAttention<double> cross(MultiHeadAttentionConfig{D, 2});
  randomize_parameters(cross, 101);
  allocate_gradients(cross);
  const Mask padding = Mask::key_padding({5, 2}, S);
  const AttentionOptions<double> options{&padding};
  Tensor<double> x = random_tensor<double>({B, T, D}, 102), memory = random_tensor<double>({B, S, D}, 103);
  const Tensor<double> dy = random_tensor<double>({B, T, D}, 104);
  CrossAttention<double>::Activations saved;
  cross.forward(x, memory, options, &saved);
  Tensor<double> dx({B, T, D}), dmemory({B, S, D});
  cross.backward(x, memory, dy, dx, dmemory, saved, options);
  const auto loss = [&] { return dot(cross.forward(x, memory, options), dy); };
  check_gradient("CrossAttention dx", x, dx, loss);
  check_gradient("CrossAttention dmemory", memory, dmemory, loss);
  check_parameter_gradients("CrossAttention", cross, loss);
}
