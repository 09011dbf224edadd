// Embedding against torch.nn.Embedding; every id is checked before anything is read.
#include "eigenformer/nn/embedding.hpp"

#include <doctest/doctest.h>

#include "eigenformer/train/gradients.hpp"
#include "support/fixtures.hpp"
#include "support/gradcheck.hpp"

using namespace eigenformer;
using namespace eigenformer::testing;

TEST_CASE_TEMPLATE("Embedding: matches torch.nn.Embedding, for [B, T] and [T] ids", Scalar, float, double) {
  Fixture fx("embedding");
  Embedding<Scalar> embedding(EmbeddingConfig{fx.meta_int("vocab_size"), fx.meta_int("d_model")});
  fx.load(embedding);
  const Tensor<std::int64_t> ids = fx.input<std::int64_t>("ids");
  const Tensor<double> y = fx.output<double>("y");
  check_close(embedding.forward(ids), y);
  check_close<Scalar, double>(embedding.forward(ids.slice(1)).view(), y.slice(1));
}

TEST_CASE("Embedding: an id outside the vocabulary names the id and its place") {
  Embedding<float> embedding(EmbeddingConfig{50257, 4});
  Tensor<std::int64_t> ids({2, 13});
  ids.at(0, 12) = 50257;
  CHECK_THROWS_WITH_AS(embedding.forward(ids), "Embedding.forward: token id 50257 at [0, 12] is outside the vocabulary [0, 50257)", RangeError);
  ids.at(0, 12) = 0;
  ids.at(1, 0) = -1;
  CHECK_THROWS_WITH_AS(embedding.forward(ids), "Embedding.forward: token id -1 at [1, 0] is outside the vocabulary [0, 50257)", RangeError);
  CHECK_THROWS_WITH_AS(embedding.forward(Tensor<std::int64_t>({1, 2, 3})), "Embedding.forward: ids have shape [1, 2, 3]; expected [B, T] or [T]",
                       ShapeError);
}

TEST_CASE("Embedding.backward: each id's row of the gradient gathers scale * dy of every position that looked it up") {
  Embedding<double> table(EmbeddingConfig{5, 3});
  randomize_parameters(table, 51);
  allocate_gradients(table);
  Tensor<std::int64_t> ids({2, 3});
  const std::int64_t values[] = {4, 1, 4, 0, 4, 2};  // id 4 three times, id 3 never
  std::copy(values, values + 6, ids.data());
  const Tensor<double> dy = random_tensor<double>({2, 3, 3}, 52);
  const double scale = 2.5;
  table.backward(ids, dy, scale);
  const auto loss = [&] {
    Tensor<double> y = table.forward(ids);
    y.vector() *= scale;
    return dot(y, dy);
  };
  check_parameter_gradients("Embedding", table, loss);
  CHECK(table.weight_grad().matrix().row(3).isZero());
  CHECK_THROWS_AS(table.backward(ids, Tensor<double>({2, 3, 4}), 1.0), ShapeError);
}
