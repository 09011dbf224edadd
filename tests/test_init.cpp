// xavier_uniform_init (train/init.hpp): every matrix drawn within +-sqrt(6 / (fan_in + fan_out)) with the variance of
// that uniform distribution, a^2 / 3; biases and LayerNorm parameters as their blocks start them; one seed, one model.
#include "eigenformer/train/init.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <string>

#include "eigenformer/io/hf_gpt2.hpp"
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

TEST_CASE("gpt2_normal_init: N(0, 0.02) matrices, 0.02 / sqrt(2 n_layer) on the two residual ends, LayerNorms 1 and 0, biases 0") {
  GPT2Config c;
  c.n_layer = 3, c.n_head = 4, c.n_embd = 64, c.n_positions = 32, c.vocab_size = 300, c.bos_token_id = c.eos_token_id = 299;
  GPT2<double> model(c), again(c);
  Random rng(5), rng2(5);
  gpt2_normal_init(model, rng);
  gpt2_normal_init(again, rng2);
  std::map<std::string, const Tensor<double>*> same;
  again.visit_parameters([&](const std::string& n, Tensor<double>& t) { same[n] = &t; });
  int residual_ends = 0, matrices = 0;
  model.visit_parameters([&](const std::string& name, Tensor<double>& t) {
    CAPTURE(name);
    CHECK((t.vector() - same[name]->vector()).cwiseAbs().maxCoeff() == 0.0);  // one seed, one model
    const std::string hf = hf_gpt2_name(name);
    if (t.rank() < 2) {
      const bool norm_weight = (hf.find(".ln_") != std::string::npos || hf.rfind("ln_f", 0) == 0) && hf.substr(hf.size() - 6) == "weight";
      CHECK(t.vector().minCoeff() == (norm_weight ? 1.0 : 0.0));
      CHECK(t.vector().maxCoeff() == (norm_weight ? 1.0 : 0.0));
      return;
    }
    ++matrices;
    const bool residual_end = hf.find("c_proj.weight") != std::string::npos;  // attn.c_proj and mlp.c_proj (Hugging Face's names)
    residual_ends += residual_end;
    const double sd = residual_end ? 0.02 / std::sqrt(2.0 * 3) : 0.02, n = double(t.size());
    const double mean = t.vector().mean(), var = (t.vector().array() - mean).square().mean();
    CHECK(std::abs(mean) < 5 * sd / std::sqrt(n));                          // 5 sigma of the mean of n normal draws
    CHECK(std::abs(var - sd * sd) < 5 * sd * sd * std::sqrt(2.0 / n));      // and of their variance
  });
  CHECK(residual_ends == 2 * 3);
  CHECK(matrices == 2 + 4 * 3);  // wte, wpe; c_attn, attn.c_proj, c_fc, mlp.c_proj per layer
}
