// DecoderLayer against torch.nn.TransformerDecoderLayer(batch_first=True): post- and pre-norm, ReLU and GELU, causal
// self-attention with target padding, memory padding, one head with d_model 7 and T = 1. Then the layers composed
// into torch.nn.Transformer (2 + 2 layers and the final norms) match it end to end.
#include "eigenformer/nn/decoder_layer.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

#include "eigenformer/nn/encoder_layer.hpp"
#include "eigenformer/nn/layer_norm.hpp"
#include "eigenformer/train/gradients.hpp"
#include "support/fixtures.hpp"
#include "support/gradcheck.hpp"

using namespace eigenformer;
using namespace eigenformer::testing;

namespace {
DecoderLayerConfig decoder_config(const Fixture& fx) {
  return DecoderLayerConfig{fx.meta_int("d_model"), fx.meta_int("heads"), fx.meta_int("d_ff"), activation_from_name(fx.meta("activation")),
                            fx.meta_bool("norm_first"), fx.meta_double("eps")};
}
}  // namespace

TEST_CASE_TEMPLATE("DecoderLayer: matches torch.nn.TransformerDecoderLayer", Scalar, float, double) {
  for (const char* name : {"decoder_layer_post_relu", "decoder_layer_post_gelu", "decoder_layer_pre_relu", "decoder_layer_pre_gelu",
                           "decoder_layer_odd"}) {
    CAPTURE(name);
    Fixture fx(name);
    DecoderLayer<Scalar> layer(decoder_config(fx));
    fx.load(layer);
    const Tensor<Scalar> x = fx.input<Scalar>("x"), memory = fx.input<Scalar>("memory");
    const Mask self_mask = fx.mask(x.dim(1), x.dim(1));
    const Mask memory_mask = fx.memory_mask(memory.dim(1));
    Tensor<Scalar> self_weights, cross_weights;
    DecoderLayerOptions<Scalar> options;
    options.self_mask = &self_mask;
    options.memory_mask = &memory_mask;
    options.self_attention_weights = &self_weights;
    options.cross_attention_weights = &cross_weights;
    check_close(layer.forward(x, memory, options), fx.output<double>("y"));
    CHECK(self_weights.shape() == Shape{x.dim(0), fx.meta_int("heads"), x.dim(1), x.dim(1)});
    CHECK(cross_weights.shape() == Shape{x.dim(0), fx.meta_int("heads"), x.dim(1), memory.dim(1)});
  }
}

TEST_CASE_TEMPLATE("EncoderLayer and DecoderLayer compose into torch.nn.Transformer", Scalar, float, double) {
  for (const char* name : {"transformer_post_relu", "transformer_pre_gelu"}) {
    CAPTURE(name);
    Fixture fx(name);
    const DecoderLayerConfig dc = decoder_config(fx);
    const EncoderLayerConfig ec{dc.d_model, dc.num_heads, dc.d_ff, dc.activation, dc.norm_first, dc.layer_norm_eps};
    std::vector<EncoderLayer<Scalar>> encoder;
    std::vector<DecoderLayer<Scalar>> decoder;
    for (Index i = 0; i < fx.meta_int("num_encoder_layers"); ++i) {
      encoder.emplace_back(ec);
      fx.load(encoder.back(), "encoder.layers." + std::to_string(i) + ".");
    }
    for (Index i = 0; i < fx.meta_int("num_decoder_layers"); ++i) {
      decoder.emplace_back(dc);
      fx.load(decoder.back(), "decoder.layers." + std::to_string(i) + ".");
    }
    LayerNorm<Scalar> encoder_norm(LayerNormConfig{dc.d_model, dc.layer_norm_eps}), decoder_norm(LayerNormConfig{dc.d_model, dc.layer_norm_eps});
    fx.load(encoder_norm, "encoder.norm.");
    fx.load(decoder_norm, "decoder.norm.");

    const Tensor<Scalar> src = fx.input<Scalar>("src"), tgt = fx.input<Scalar>("tgt");
    const Index S = src.dim(1), T = tgt.dim(1);
    const Mask src_mask = Mask::key_padding(fx.lengths("src_lengths"), S);  // encoder self-attention and cross-attention
    const Mask tgt_mask = Mask::causal(T, T) & Mask::key_padding(fx.lengths("tgt_lengths"), T);

    Tensor<Scalar> memory = src;
    for (const auto& layer : encoder) memory = layer.forward(memory, {&src_mask, nullptr});
    memory = encoder_norm.forward(memory);
    check_close(memory, fx.output<double>("memory"));

    DecoderLayerOptions<Scalar> options;
    options.self_mask = &tgt_mask;
    options.memory_mask = &src_mask;
    Tensor<Scalar> y = tgt;
    for (const auto& layer : decoder) y = layer.forward(y, memory, options);
    check_close(decoder_norm.forward(y), fx.output<double>("y"));
  }
}

TEST_CASE("DecoderLayer: refuses a memory from another batch or width") {
  DecoderLayer<float> layer(DecoderLayerConfig{12, 3, 20});
  CHECK_THROWS_WITH_AS(layer.forward(Tensor<float>({2, 4, 12}), Tensor<float>({3, 6, 12})),
                       "DecoderLayer.forward: memory has shape [3, 6, 12]; expected [2, S, 12] (batch of x, d_model)", ShapeError);
  CHECK_THROWS_WITH_AS(layer.forward(Tensor<float>({2, 4, 10}), Tensor<float>({2, 6, 12})),
                       "DecoderLayer.forward: x has shape [2, 4, 10]; expected [B, T, 12] (d_model)", ShapeError);
}

TEST_CASE("DecoderLayer.backward: post-norm and pre-norm, both kernels: dx, dmemory and every parameter agree with central differences") {
  const Index B = 2, T = 4, S = 5, D = 6;
  const Mask self_mask = Mask::causal(T, T) & Mask::key_padding({4, 3}, T);
  const Mask memory_mask = Mask::key_padding({5, 2}, S);
  for (const bool norm_first : {false, true})
    for (const AttentionKernel kernel : {AttentionKernel::flash, AttentionKernel::reference}) {
      CAPTURE(norm_first);
      CAPTURE(kernel_name(kernel));
      DecoderLayer<double> layer(DecoderLayerConfig{D, 2, 8, Activation::relu, norm_first, 1e-5});
      randomize_parameters(layer, 121);
      allocate_gradients(layer);
      DecoderLayerOptions<double> options;
      options.self_mask = &self_mask;
      options.memory_mask = &memory_mask;
      options.kernel = kernel;
      Tensor<double> x = random_tensor<double>({B, T, D}, 122), memory = random_tensor<double>({B, S, D}, 123);
      const Tensor<double> dy = random_tensor<double>({B, T, D}, 124);
      DecoderLayer<double>::Activations saved;
      CHECK(layer.forward(x, memory, options, &saved).vector() == layer.forward(x, memory, options).vector());
      Tensor<double> dmemory({B, S, D});
      const Tensor<double> dx = layer.backward(x, memory, dy, dmemory, saved, options);
      const auto loss = [&] { return dot(layer.forward(x, memory, options), dy); };
      check_gradient("DecoderLayer dx", x, dx, loss);
      check_gradient("DecoderLayer dmemory", memory, dmemory, loss);
      check_parameter_gradients("DecoderLayer", layer, loss);
    }
}

TEST_CASE("DecoderLayer: dropout in training only (after self-attention, after cross-attention, inside and after the feed-forward); "
          "with the masks held fixed, dx, dmemory and every parameter agree with central differences") {
  const Index B = 2, T = 4, S = 5, D = 6;
  const Mask self_mask = Mask::causal(T, T) & Mask::key_padding({4, 3}, T);
  const Mask memory_mask = Mask::key_padding({5, 2}, S);
  DecoderLayerOptions<double> options;
  options.self_mask = &self_mask;
  options.memory_mask = &memory_mask;
  for (const bool norm_first : {false, true}) {
    CAPTURE(norm_first);
    DecoderLayer<double> layer(DecoderLayerConfig{D, 2, 8, Activation::gelu_erf, norm_first, 1e-5, 0.3});
    DecoderLayer<double> no_dropout(DecoderLayerConfig{D, 2, 8, Activation::gelu_erf, norm_first, 1e-5, 0.0});
    randomize_parameters(layer, 131);
    randomize_parameters(no_dropout, 131);
    allocate_gradients(layer);
    Tensor<double> x = random_tensor<double>({B, T, D}, 132), memory = random_tensor<double>({B, S, D}, 133);
    const Tensor<double> dy = random_tensor<double>({B, T, D}, 134);
    const auto train = [&](const DecoderLayer<double>& l, DecoderLayer<double>::Activations& saved, std::uint64_t seed) {
      Random rng(seed);
      saved.rng = &rng;
      Tensor<double> y = l.forward(x, memory, options, &saved);
      saved.rng = nullptr;
      return y;
    };
    // p = 0 with a generator, and p = 0.3 without one: the inference forward bit for bit.
    DecoderLayer<double>::Activations saved;
    CHECK(train(no_dropout, saved, 135).vector() == no_dropout.forward(x, memory, options).vector());
    CHECK(layer.forward(x, memory, options, &saved).vector() == layer.forward(x, memory, options).vector());
    // p = 0.3: four masks; seeds decide them.
    const Tensor<double> y = train(layer, saved, 135);
    for (const Tensor<double>* m : {&saved.self_residual.dropout, &saved.cross_residual.dropout, &saved.feed_forward_residual.dropout})
      CHECK(m->shape() == Shape{B, T, D});
    CHECK(saved.feed_forward.dropout.shape() == Shape{B, T, 8});
    CHECK(y.vector() != layer.forward(x, memory, options).vector());
    DecoderLayer<double>::Activations again;
    CHECK(train(layer, again, 135).vector() == y.vector());
    CHECK(train(layer, again, 136).vector() != y.vector());
    Tensor<double> dmemory({B, S, D});
    const Tensor<double> dx = layer.backward(x, memory, dy, dmemory, saved, options);
    const auto loss = [&] {
      DecoderLayer<double>::Activations s;
      return dot(train(layer, s, 135), dy);
    };
    check_gradient("DecoderLayer+dropout dx", x, dx, loss);
    check_gradient("DecoderLayer+dropout dmemory", memory, dmemory, loss);
    check_parameter_gradients("DecoderLayer+dropout", layer, loss);
  }
}
