// EncoderLayer against torch.nn.TransformerEncoderLayer(batch_first=True): post- and pre-norm, ReLU and GELU,
// padding and causal masks, one head with d_model 7 and T = 1; a padded batch equals each sequence alone.
#include "eigenformer/nn/encoder_layer.hpp"

#include <doctest/doctest.h>

#include <cstdint>

#include "eigenformer/train/gradients.hpp"
#include "support/fixtures.hpp"
#include "support/gradcheck.hpp"

using namespace eigenformer;
using namespace eigenformer::testing;

namespace {
template <typename Scalar>
EncoderLayer<Scalar> load_encoder_layer(const Fixture& fx) {
  EncoderLayer<Scalar> layer(EncoderLayerConfig{fx.meta_int("d_model"), fx.meta_int("heads"), fx.meta_int("d_ff"),
                                                activation_from_name(fx.meta("activation")), fx.meta_bool("norm_first"), fx.meta_double("eps")});
  fx.load(layer);
  return layer;
}
}  // namespace

TEST_CASE_TEMPLATE("EncoderLayer: matches torch.nn.TransformerEncoderLayer", Scalar, float, double) {
  for (const char* name : {"encoder_layer_post_relu", "encoder_layer_post_gelu", "encoder_layer_pre_relu", "encoder_layer_pre_gelu",
                           "encoder_layer_causal", "encoder_layer_odd"}) {
    CAPTURE(name);
    Fixture fx(name);
    const EncoderLayer<Scalar> layer = load_encoder_layer<Scalar>(fx);
    const Tensor<Scalar> x = fx.input<Scalar>("x");
    const Mask mask = fx.mask(x.dim(1), x.dim(1));
    check_close(layer.forward(x, {&mask, nullptr}), fx.output<double>("y"));
  }
}

TEST_CASE("EncoderLayer: in a padded batch, each sequence's real positions equal the sequence run alone") {
  for (const char* name : {"encoder_layer_post_relu", "encoder_layer_pre_gelu"}) {
    CAPTURE(name);
    Fixture fx(name);
    const EncoderLayer<double> layer = load_encoder_layer<double>(fx);
    const Tensor<double> x = fx.input<double>("x");
    const std::vector<Index> lengths = fx.lengths("lengths");
    const Mask mask = Mask::key_padding(lengths, x.dim(1));
    const Tensor<double> batched = layer.forward(x, {&mask, nullptr});
    for (Index b = 0; b < x.dim(0); ++b) {
      const Index len = lengths[static_cast<std::size_t>(b)];
      const Tensor<double> alone_in = Tensor<double>::copy_of(x.slice(b).reshaped({1, x.dim(1), x.dim(2)}));
      Tensor<double> trimmed({1, len, x.dim(2)});
      trimmed.matrix() = alone_in.matrix().topRows(len);
      const Tensor<double> alone = layer.forward(trimmed);
      CHECK((batched.slice(b).matrix().topRows(len) - alone.matrix()).cwiseAbs().maxCoeff() < 1e-12);
    }
  }
}

TEST_CASE("EncoderLayer: returns the self-attention weights and refuses the wrong width") {
  Fixture fx("encoder_layer_post_relu");
  const EncoderLayer<double> layer = load_encoder_layer<double>(fx);
  const Tensor<double> x = fx.input<double>("x");
  Tensor<double> weights;
  layer.forward(x, {nullptr, &weights});
  CHECK(weights.shape() == Shape{x.dim(0), fx.meta_int("heads"), x.dim(1), x.dim(1)});
  CHECK_THROWS_WITH_AS(layer.forward(Tensor<double>({2, 5, 8})), "EncoderLayer.forward: x has shape [2, 5, 8]; expected [B, T, 12] (d_model)",
                       ShapeError);
}

TEST_CASE("EncoderLayer.backward: post-norm and pre-norm, both kernels: dx and every parameter agree with central differences") {
  const Index B = 2, T = 5, D = 6;
  const Mask mask = Mask::key_padding({5, 3}, T);
  for (const bool norm_first : {false, true})
    for (const AttentionKernel kernel : {AttentionKernel::flash, AttentionKernel::reference}) {
      CAPTURE(norm_first);
      CAPTURE(kernel_name(kernel));
      EncoderLayer<double> layer(EncoderLayerConfig{D, 2, 8, Activation::gelu_erf, norm_first, 1e-5});
      randomize_parameters(layer, 111);
      allocate_gradients(layer);
      AttentionOptions<double> options{&mask};
      options.kernel = kernel;
      Tensor<double> x = random_tensor<double>({B, T, D}, 112);
      const Tensor<double> dy = random_tensor<double>({B, T, D}, 113);
      EncoderLayer<double>::Activations saved;
      CHECK(layer.forward(x, options, &saved).vector() == layer.forward(x, options).vector());
      const Tensor<double> dx = layer.backward(x, dy, saved, options);
      const auto loss = [&] { return dot(layer.forward(x, options), dy); };
      check_gradient("EncoderLayer dx", x, dx, loss);
      check_parameter_gradients("EncoderLayer", layer, loss);
    }
}

TEST_CASE("EncoderLayer: dropout in training only (after self-attention, inside and after the feed-forward); with the masks held fixed, "
          "backward agrees with central differences") {
  const Index B = 2, T = 5, D = 6;
  const Mask mask = Mask::key_padding({5, 3}, T);
  const AttentionOptions<double> options{&mask};
  for (const bool norm_first : {false, true}) {
    CAPTURE(norm_first);
    EncoderLayer<double> layer(EncoderLayerConfig{D, 2, 8, Activation::relu, norm_first, 1e-5, 0.3});
    EncoderLayer<double> no_dropout(EncoderLayerConfig{D, 2, 8, Activation::relu, norm_first, 1e-5, 0.0});
    randomize_parameters(layer, 121);
    randomize_parameters(no_dropout, 121);
    allocate_gradients(layer);
    Tensor<double> x = random_tensor<double>({B, T, D}, 122);
    const Tensor<double> dy = random_tensor<double>({B, T, D}, 123);
    const auto train = [&](const EncoderLayer<double>& l, EncoderLayer<double>::Activations& saved, std::uint64_t seed) {
      Random rng(seed);
      saved.rng = &rng;
      Tensor<double> y = l.forward(x, options, &saved);
      saved.rng = nullptr;
      return y;
    };
    // p = 0 with a generator, and p = 0.3 without one: the inference forward bit for bit.
    EncoderLayer<double>::Activations saved;
    CHECK(train(no_dropout, saved, 124).vector() == no_dropout.forward(x, options).vector());
    CHECK(layer.forward(x, options, &saved).vector() == layer.forward(x, options).vector());
    // p = 0.3: three masks (attention output, hidden layer, feed-forward output); seeds decide them.
    const Tensor<double> y = train(layer, saved, 124);
    CHECK(saved.attention_residual.dropout.shape() == Shape{B, T, D});
    CHECK(saved.feed_forward.dropout.shape() == Shape{B, T, 8});
    CHECK(saved.feed_forward_residual.dropout.shape() == Shape{B, T, D});
    CHECK(y.vector() != layer.forward(x, options).vector());
    EncoderLayer<double>::Activations again;
    CHECK(train(layer, again, 124).vector() == y.vector());
    CHECK(train(layer, again, 125).vector() != y.vector());
    const Tensor<double> dx = layer.backward(x, dy, saved, options);
    const auto loss = [&] {
      EncoderLayer<double>::Activations s;
      return dot(train(layer, s, 124), dy);
    };
    check_gradient("EncoderLayer+dropout dx", x, dx, loss);
    check_parameter_gradients("EncoderLayer+dropout", layer, loss);
  }
}
