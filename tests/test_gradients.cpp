// allocate_gradients / zero_gradients: every parameter of a model gets a gradient of its shape, by name.
#include "eigenformer/train/gradients.hpp"

#include <doctest/doctest.h>

#include <string>

#include "eigenformer/models/gpt2.hpp"
#include "eigenformer/models/transformer.hpp"

using namespace eigenformer;

TEST_CASE("allocate_gradients: each parameter of both models gets a zeroed gradient of its own shape; zero_gradients clears them") {
  TransformerConfig c;
  c.d_model = 8, c.num_heads = 2, c.num_encoder_layers = 1, c.num_decoder_layers = 2, c.d_ff = 16;
  c.src_vocab_size = 11, c.tgt_vocab_size = 13, c.max_len = 20, c.tie_target_embedding = true;
  Transformer<double> model(c);
  int before = 0;
  model.visit_parameters([&](const std::string&, Tensor<double>&, Tensor<double>& grad) { before += grad.size() > 0; });
  CHECK(before == 0);  // inference costs no gradient memory
  allocate_gradients(model);
  Index values = 0, grads = 0;
  model.visit_parameters([&](const std::string& name, Tensor<double>& value, Tensor<double>& grad) {
    CHECK_MESSAGE(grad.shape() == value.shape(), name);
    CHECK(grad.vector().isZero());
    values += value.size();
    grads += grad.size();
    grad.fill(1.0);
  });
  CHECK(grads == values);
  zero_gradients(model);
  model.visit_parameters([&](const std::string&, Tensor<double>&, Tensor<double>& grad) { CHECK(grad.vector().isZero()); });

  GPT2Config g;
  g.n_layer = 1, g.n_embd = 8, g.n_head = 2, g.n_positions = 16, g.vocab_size = 20, g.bos_token_id = g.eos_token_id = 0;
  GPT2<float> gpt(g);
  CHECK_THROWS_WITH_AS(zero_gradients(gpt), doctest::Contains("gradient of wte.weight has shape [0]"), ShapeError);
  allocate_gradients(gpt);
  zero_gradients(gpt);
}
