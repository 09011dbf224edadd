// MultiHeadAttention against torch.nn.MultiheadAttention(batch_first=True, need_weights=True,
// average_attn_weights=False): every mask kind, one head, d_model not a multiple of 8, T = 1; fused and separate
// projections; a fully masked row. forward_accumulate, and step() and attend() with Accumulate::yes, add onto y what
// the plain calls write.
#include "eigenformer/nn/multi_head_attention.hpp"

#include <doctest/doctest.h>

#include <map>

#include "eigenformer/core/random.hpp"
#include "eigenformer/train/gradients.hpp"
#include "support/accumulate.hpp"
#include "support/fixtures.hpp"
#include "support/gradcheck.hpp"
#include "support/masks.hpp"

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

TEST_CASE_TEMPLATE("MultiHeadAttention: forward_accumulate, step and attend with Accumulate::yes add the plain result onto y", Scalar, float,
                   double) {
  const Index D = 12, H = 3;
  for (WeightType type : {WeightType::full, WeightType::bf16, WeightType::int8}) {
    CAPTURE(weight_type_name(type));
    MultiHeadAttention<Scalar> mha(MultiHeadAttentionConfig{D, H});
    Random rng(41);
    mha.visit_parameters([&](const std::string&, Tensor<Scalar>& t) { fill_normal(t.view(), rng, 0.0, 0.3); });
    mha.narrow_weights(type);
    // The whole sequence at once: out_proj has T rows (the streaming kernel up to 16, Eigen's GEMM beyond).
    for (Index T : {1, 2, 3, 4, 5, 16, 17, 40}) {
      CAPTURE(T);
      const Tensor<Scalar> x = random_tensor<Scalar>({1, T, D}, 42 + T), memory = random_tensor<Scalar>({1, 7, D}, 43 + T);
      const Tensor<Scalar> residual = random_tensor<Scalar>({1, T, D}, 44 + T);
      const Mask causal = Mask::causal(T, T);
      const Tensor<Scalar> self = mha.forward(x, {&causal, nullptr});
      Tensor<Scalar> y = residual;
      mha.forward_accumulate(x, x, x, y, {&causal, nullptr});
      check_accumulated(y.matrix(), residual.matrix(), self.matrix());
      y = residual;
      mha.forward_accumulate(x, memory, memory, y);
      check_accumulated(y.matrix(), residual.matrix(), mha.forward(x, memory, memory).matrix());
      Tensor<Scalar> in_place = x;  // x += SelfAttn(x): q, k and v are projected before out_proj writes
      mha.forward_accumulate(in_place, in_place, in_place, in_place, {&causal, nullptr});
      check_accumulated(in_place.matrix(), x.matrix(), self.matrix());
    }
    // Decoding: out_proj has one row per batch item.
    for (Index B : {1, 2, 3, 4, 5, 16, 17}) {
      CAPTURE(B);
      KVCache<Scalar> plain_cache, accumulating_cache, memory_cache;
      plain_cache.reserve(B, 3, D);
      accumulating_cache.reserve(B, 3, D);
      AttentionStepWorkspace<Scalar> ws;
      ws.reserve(B, D, 8);
      for (Index position = 0; position < 3; ++position) {
        const Tensor<Scalar> x = random_tensor<Scalar>({B, 1, D}, 50 + position), residual = random_tensor<Scalar>({B, 1, D}, 53 + position);
        Tensor<Scalar> plain({B, 1, D}), y = residual;
        mha.step(x, plain_cache, ws, plain);
        mha.step(x, accumulating_cache, ws, y, nullptr, Accumulate::yes);
        check_accumulated(y.matrix(), residual.matrix(), plain.matrix());
      }
      mha.cache_memory(random_tensor<Scalar>({B, 6, D}, 56), memory_cache);
      std::vector<Index> memory_lengths;
      for (Index b = 0; b < B; ++b) memory_lengths.push_back(1 + b % 6);
      const Tensor<Scalar> x = random_tensor<Scalar>({B, 1, D}, 57), residual = random_tensor<Scalar>({B, 1, D}, 58);
      Tensor<Scalar> plain({B, 1, D}), y = residual;
      mha.attend(x, memory_cache, memory_lengths, ws, plain);
      mha.attend(x, memory_cache, memory_lengths, ws, y, Accumulate::yes);
      check_accumulated(y.matrix(), residual.matrix(), plain.matrix());
    }
  }
}

TEST_CASE("MultiHeadAttention: forward_accumulate refuses a y of another shape") {
  MultiHeadAttention<float> mha(MultiHeadAttentionConfig{12, 3});
  const Tensor<float> x({2, 4, 12});
  Tensor<float> y({2, 5, 12});
  CHECK_THROWS_WITH_AS(mha.forward_accumulate(x, x, x, y),
                       "MultiHeadAttention.forward_accumulate: y has shape [2, 5, 12]; expected [2, 4, 12] (query's shape)", ShapeError);
}

TEST_CASE("MultiHeadAttention.backward: self and cross inputs, fused and separate projections, both kernels, every mask kind") {
  const Index B = 2, T = 4, S = 6, D = 6;
  const auto masks = all_mask_kinds(T, S, 91);
  for (const bool fused : {true, false})
    for (const AttentionKernel kernel : {AttentionKernel::flash, AttentionKernel::reference})
      for (std::size_t m = 0; m < masks.size(); ++m) {
        const std::string name = masks[m].first + ", " + kernel_name(kernel) + (fused ? ", fused" : ", separate");
        CAPTURE(name);
        MultiHeadAttention<double> mha(MultiHeadAttentionConfig{D, 2, true, fused});
        randomize_parameters(mha, 92 + m);
        allocate_gradients(mha);
        AttentionOptions<double> options;
        options.mask = &masks[m].second;
        options.kernel = kernel;
        Tensor<double> query = random_tensor<double>({B, T, D}, 93), key = random_tensor<double>({B, S, D}, 94), value = random_tensor<double>({B, S, D}, 95);
        const Tensor<double> dy = random_tensor<double>({B, T, D}, 96);
        MultiHeadAttention<double>::Activations saved;
        CHECK(mha.forward(query, key, value, options, "test", nullptr, &saved).vector() == mha.forward(query, key, value, options).vector());
        Tensor<double> dquery({B, T, D}), dkey({B, S, D}), dvalue({B, S, D});
        mha.backward(query, key, value, dy, dquery, dkey, dvalue, saved, options);
        const auto loss = [&] { return dot(mha.forward(query, key, value, options), dy); };
        check_gradient("MHA dquery, " + name, query, dquery, loss);
        check_gradient("MHA dkey, " + name, key, dkey, loss);
        check_gradient("MHA dvalue, " + name, value, dvalue, loss);
        if (m < 3) check_parameter_gradients("MHA " + name, mha, loss);  // the parameters' paths do not depend on the mask kind
      }
}

TEST_CASE("MultiHeadAttention.backward: self-attention sums the three paths into one dx") {
  const Index B = 2, T = 5, D = 4;
  MultiHeadAttention<double> mha(MultiHeadAttentionConfig{D, 2});
  randomize_parameters(mha, 97);
  allocate_gradients(mha);
  const Mask causal = Mask::causal(T, T);
  const AttentionOptions<double> options{&causal};
  Tensor<double> x = random_tensor<double>({B, T, D}, 98);
  const Tensor<double> dy = random_tensor<double>({B, T, D}, 99);
  MultiHeadAttention<double>::Activations saved;
  mha.forward(x, options, &saved);
  Tensor<double> dx({B, T, D});
  mha.backward(x, x, x, dy, dx, dx, dx, saved, options);
  check_gradient("MHA self dx", x, dx, [&] { return dot(mha.forward(x, options), dy); });
}
