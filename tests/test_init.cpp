// xavier_uniform_init (train/init.hpp): every matrix drawn within +-sqrt(6 / (fan_in + fan_out)) with the variance of
// that uniform distribution, a^2 / 3; biases and LayerNorm parameters as their blocks start them; one seed, one model.
#include "eigenformer/train/init.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <string>

#include "eigenformer/models/transformer.hpp"

using namespace eigenformer;

TEST_CASE("xavier_uniform_init: the tutorial's init of every matrix; vectors untouched; reproducible from the seed") {
  TransformerConfig c;
  c.d_model = 64, c.num_heads = 4, c.num_encoder_layers = 1, c.num_decoder_layers = 1, c.d_ff = 128;
  c.src_vocab_size = 50, c.tgt_vocab_size = 60, c.max_len = 16;
  Transformer<double> model(c), again(c), other(c);
  Random rng(7), rng2(7), rng3(8);
  xavier_uniform_init(model, rng);
  xavier_uniform_init(again, rng2);
  xavier_uniform_init(other, rng3);
  std::map<std::string, const Tensor<double>*> same, different;
  again.visit_parameters([&](const std::string& n, Tensor<double>& t) { same[n] = &t; });
  other.visit_parameters([&](const std::string& n, Tensor<double>& t) { different[n] = &t; });
  int matrices = 0;
  model.visit_parameters([&](const std::string& name, Tensor<double>& t) {
    CAPTURE(name);
    CHECK((t.vector() - same[name]->vector()).cwiseAbs().maxCoeff() == 0.0);
    if (t.rank() < 2) {
      const bool norm_weight = name.find("norm") != std::string::npos && name.size() > 6 && name.substr(name.size() - 6) == "weight";
      CHECK(t.vector().cwiseAbs().maxCoeff() == (norm_weight ? 1.0 : 0.0));
      CHECK(t.vector().cwiseAbs().minCoeff() == (norm_weight ? 1.0 : 0.0));
      return;
    }
    ++matrices;
    CHECK((t.vector() - different[name]->vector()).cwiseAbs().maxCoeff() > 0.0);
    const double a = std::sqrt(6.0 / double(t.dim(0) + t.dim(1)));
    CHECK(t.vector().cwiseAbs().maxCoeff() <= a);
    const double mean = t.vector().mean(), var = (t.vector().array() - mean).square().mean();
    const double n = double(t.size());
    CHECK(std::abs(mean) < 5 * a / std::sqrt(3 * n));           // 5 sigma of the mean of n draws
    CHECK(std::abs(var - a * a / 3) < 5 * a * a / std::sqrt(n));  // and of their variance (sd of (x^2) < a^2 / sqrt(n))
  });
  CHECK(matrices > 8);
}
