// inspect/observer.hpp: what the blocks and models show an observer. The attention weights it is shown equal PyTorch's
// (need_weights=True, average_attn_weights=False) on the MultiheadAttention fixtures, self- and cross-attention; q, k
// and v equal the projections computed here from the fixture's parameters; the scores, masked and put through a
// softmax here, give the weights; a forward with an observer returns bit for bit what it returns without; the sites
// are named as documented, and an observer is shown only what it wants.
#include "eigenformer/inspect/observer.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "eigenformer/inspect/recorder.hpp"
#include "eigenformer/io/hf_gpt2.hpp"
#include "eigenformer/models/gpt2.hpp"
#include "eigenformer/models/transformer.hpp"
#include "eigenformer/nn/cross_attention.hpp"
#include "eigenformer/nn/multi_head_attention.hpp"
#include "support/fixtures.hpp"
#include "support/gpt2_fixture.hpp"

using namespace eigenformer;
using namespace eigenformer::testing;

namespace {
// weights[b, h] = softmax(scores[b, h] + the mask's bias) in double, row by row; a row with no allowed key is zero.
Tensor<double> masked_softmax(const Tensor<double>& scores, const Mask* mask) {
  Tensor<double> w(scores.shape());
  const Index B = scores.dim(0), H = scores.dim(1), T = scores.dim(2), S = scores.dim(3);
  Tensor<double> bias(Shape{T, S});
  for (Index b = 0; b < B; ++b) {
    if (mask) mask->fill_bias<double>(b, bias.matrix());
    for (Index h = 0; h < H; ++h)
      for (Index t = 0; t < T; ++t) {
        const double* x = scores.data() + ((b * H + h) * T + t) * S;
        double* y = w.data() + ((b * H + h) * T + t) * S;
        double top = -std::numeric_limits<double>::infinity(), sum = 0;
        for (Index s = 0; s < S; ++s) top = std::max(top, x[s] + bias.data()[t * S + s]);
        if (top == -std::numeric_limits<double>::infinity()) continue;  // no allowed key: zeros
        for (Index s = 0; s < S; ++s) sum += std::exp(x[s] + bias.data()[t * S + s] - top);
        for (Index s = 0; s < S; ++s) y[s] = std::exp(x[s] + bias.data()[t * S + s] - top) / sum;
      }
  }
  return w;
}

// ids [1, n] from a list.
Tensor<std::int64_t> ids_of(std::initializer_list<std::int64_t> values) {
  Tensor<std::int64_t> t(Shape{1, static_cast<Index>(values.size())});
  std::copy(values.begin(), values.end(), t.data());
  return t;
}

// x [B, L, D] W^T + b for rows [part*D, (part+1)*D) of the fixture's in_proj: the q (0), k (1) or v (2) projection.
Tensor<double> projection(const Fixture& fx, const Tensor<double>& x, int part) {
  const Tensor<double> w = fx.file().get<double>("param.in_proj_weight"), bias = fx.file().get<double>("param.in_proj_bias");
  const Index D = x.dim(2);
  Tensor<double> y(x.shape());
  y.matrix() = x.matrix() * w.matrix().middleRows(part * D, D).transpose();
  y.matrix().rowwise() += bias.vector().segment(part * D, D).transpose();
  return y;
}

// The part of a forward's recording `full` that a decoding step at position t records under `name`, in the step's
// shape: k, v [B, L, D] are the first L positions; scores and weights [B, H, 1, L] are row t over the first L keys;
// everything else [B, 1, F] is position t.
Tensor<double> part_at(const Tensor<double>& full, const std::string& name, const Shape& step, Index t) {
  const auto ends_with = [&](const char* suffix) { return name.size() >= std::string(suffix).size() && name.rfind(suffix) == name.size() - std::string(suffix).size(); };
  Tensor<double> out(step);
  if (ends_with(".k") || ends_with(".v")) {
    for (Index b = 0; b < step[0]; ++b) out.slice(b).matrix() = full.slice(b).matrix().topRows(step[1]);
  } else if (ends_with(".scores") || ends_with(".weights")) {
    const Index H = full.dim(1), T = full.dim(2), S = full.dim(3), L = step[3];
    for (Index bh = 0; bh < step[0] * H; ++bh) std::copy_n(full.data() + (bh * T + t) * S, L, out.data() + bh * L);
  } else {
    for (Index b = 0; b < step[0]; ++b) out.slice(b).matrix() = full.slice(b).matrix().row(t);
  }
  return out;
}

// A Transformer of `config` with every parameter drawn from N(0, 0.3^2) by Random(seed).
Transformer<double> random_transformer(const TransformerConfig& config, std::uint64_t seed) {
  Transformer<double> model(config);
  Random rng(seed);
  model.visit_parameters([&](const std::string&, Tensor<double>& t) {
    for (Index i = 0; i < t.size(); ++i) t.data()[i] = rng.normal() * 0.3;
  });
  return model;
}

// An observer that counts what it is shown, by name, and says yes only to `wanted`.
struct Counter : Observer<double> {
  std::vector<Probe> wanted;
  std::map<std::string, int> seen;
  bool wants(Probe p) const override { return std::find(wanted.begin(), wanted.end(), p) != wanted.end(); }
  void record(const Site& site, Probe p, TensorView<const double>) override {
    CHECK(wants(p));
    ++seen[site.name()];
  }
};
}  // namespace

TEST_CASE("Site: names join stack, layer, block and what with dots, skipping what is empty") {
  CHECK(Site{"h", 3, "attn", "weights"}.name() == "h.3.attn.weights");
  CHECK(Site{"decoder.layers", 0, "", "resid_pre"}.name() == "decoder.layers.0.resid_pre");
  CHECK(Site{"", -1, "", "logits"}.name() == "logits");
  CHECK(Watch<float>{}.layer("h", 2).block("mlp").site.name() == "h.2.mlp");
  CHECK_FALSE(Watch<float>{}.wants(Probe::logits));
}

TEST_CASE_TEMPLATE("Observer: self-attention weights, q, k, v and scores as PyTorch's, output unchanged", Scalar, float, double) {
  for (const std::string name : {"mha_self", "mha_self_causal_padding", "mha_one_head_odd"})
    for (AttentionKernel kernel : {AttentionKernel::reference, AttentionKernel::flash}) {
      CAPTURE(name);
      CAPTURE(std::string(kernel_name(kernel)));
      Fixture fx(name);
      MultiHeadAttention<Scalar> mha(MultiHeadAttentionConfig{fx.meta_int("d_model"), fx.meta_int("heads")});
      fx.load(mha);
      const Tensor<Scalar> x = fx.input<Scalar>("x");
      const Mask mask = fx.mask(x.dim(1), x.dim(1));
      Recorder<Scalar> seen;
      AttentionOptions<Scalar> options;
      options.mask = &mask;
      options.kernel = kernel;
      const Tensor<Scalar> plain = mha.forward(x, options);
      options.watch = Watch<Scalar>{&seen, {}}.layer("layers", 0).block("self_attn");
      const Tensor<Scalar> observed = mha.forward(x, options);
      CHECK(observed.shape() == plain.shape());
      CHECK(std::equal(observed.data(), observed.data() + observed.size(), plain.data()));

      CHECK(seen.names() == std::vector<std::string>{"layers.0.self_attn.q", "layers.0.self_attn.k", "layers.0.self_attn.v",
                                                     "layers.0.self_attn.scores", "layers.0.self_attn.weights"});
      check_close(seen.at("layers.0.self_attn.weights"), fx.output<double>("weights"));
      const Tensor<double> x64 = fx.input<double>("x");
      check_close(seen.at("layers.0.self_attn.q"), projection(fx, x64, 0));
      check_close(seen.at("layers.0.self_attn.k"), projection(fx, x64, 1));
      check_close(seen.at("layers.0.self_attn.v"), projection(fx, x64, 2));
      const Tensor<double> scores = seen.at("layers.0.self_attn.scores").template cast<double>();
      check_close(masked_softmax(scores, mask.empty() ? nullptr : &mask), fx.output<double>("weights"), tolerance<Scalar>());
    }
}

TEST_CASE_TEMPLATE("Observer: cross-attention weights as PyTorch's, and the weights options.weights asked for are the ones shown",
                   Scalar, float, double) {
  Fixture fx("mha_cross");
  CrossAttention<Scalar> cross(MultiHeadAttentionConfig{fx.meta_int("d_model"), fx.meta_int("heads")});
  fx.load(cross);
  const Tensor<Scalar> x = fx.input<Scalar>("x"), memory = fx.input<Scalar>("memory");
  const Mask mask = fx.memory_mask(memory.dim(1));
  Recorder<Scalar> seen({Probe::attention_weights});
  Tensor<Scalar> returned;
  AttentionOptions<Scalar> options;
  options.mask = &mask;
  options.weights = &returned;
  options.watch = Watch<Scalar>{&seen, {}}.layer("decoder.layers", 1).block("cross_attn");
  check_close(cross.forward(x, memory, options), fx.output<double>("y"));
  CHECK(seen.names() == std::vector<std::string>{"decoder.layers.1.cross_attn.weights"});
  const Tensor<Scalar>& shown = seen.at("decoder.layers.1.cross_attn.weights");
  CHECK(shown.shape() == returned.shape());
  CHECK(std::equal(shown.data(), shown.data() + shown.size(), returned.data()));
  check_close(shown, fx.output<double>("weights"));
}

TEST_CASE("Observer: GPT-2 shows each block's tensors under Hugging Face's names, in forward order, and the same logits") {
  const GPT2<double> model = load_gpt2<double>(gpt2_fixture_dir("tiny_f32_hub"));
  const GPT2Reference ref("tiny_f32_hub");
  const Tensor<std::int64_t> ids = ref.file.get<std::int64_t>("input.prompt_ids");
  const std::vector<Index> pads = ref.left_pads();
  const Tensor<double> plain = model.forward(ids, pads);
  Recorder<double> seen;
  const Tensor<double> logits = model.forward(ids, pads, &seen);
  CHECK(std::equal(logits.data(), logits.data() + logits.size(), plain.data()));
  CHECK(std::equal(seen.at("logits").data(), seen.at("logits").data() + logits.size(), plain.data()));

  const GPT2Config& c = model.config();
  std::vector<std::string> expected;
  for (Index l = 0; l < c.n_layer; ++l) {
    const std::string h = "h." + std::to_string(l) + ".";
    for (const char* n : {"resid_pre", "attn.q", "attn.k", "attn.v", "attn.scores", "attn.weights", "resid_mid", "mlp.hidden", "resid_post"})
      expected.push_back(h + n);
  }
  expected.push_back("logits");
  CHECK(seen.names() == expected);

  const Index B = ids.dim(0), T = ids.dim(1), H = c.n_head, D = c.n_embd;
  Mask mask = Mask::causal(T, T) & Mask::left_padding(pads, T);
  for (Index l = 0; l < c.n_layer; ++l) {
    const std::string h = "h." + std::to_string(l) + ".";
    CHECK(seen.at(h + "attn.weights").shape() == Shape{B, H, T, T});
    CHECK(seen.at(h + "mlp.hidden").shape() == Shape{B, T, c.d_ff()});
    check_close(masked_softmax(seen.at(h + "attn.scores"), &mask), seen.at(h + "attn.weights"));
    if (l + 1 < c.n_layer) CHECK(seen.at(h + "resid_post").vector() == seen.at("h." + std::to_string(l + 1) + ".resid_pre").vector());
    CHECK(seen.at(h + "resid_pre").shape() == Shape{B, T, D});
  }
}

TEST_CASE("Observer: the Transformer shows encoder, decoder and cross-attention tensors; only what the observer wants") {
  TransformerConfig config;
  config.src_vocab_size = 11, config.tgt_vocab_size = 13, config.d_model = 8, config.num_heads = 2, config.d_ff = 16;
  config.num_encoder_layers = 2, config.num_decoder_layers = 1, config.max_len = 16;
  const Transformer<double> model = random_transformer(config, 7);
  const Tensor<std::int64_t> src = ids_of({3, 4, 5, 6, 7}), tgt = ids_of({1, 8, 9});
  Counter counter;
  counter.wanted = {Probe::attention_weights, Probe::logits};
  const Tensor<double> memory = model.encode(src, {4}, &counter);
  const Tensor<double> logits = model.decode(tgt, {3}, memory, {4}, &counter);
  CHECK(counter.seen == std::map<std::string, int>{{"encoder.layers.0.self_attn.weights", 1},
                                                   {"encoder.layers.1.self_attn.weights", 1},
                                                   {"decoder.layers.0.self_attn.weights", 1},
                                                   {"decoder.layers.0.cross_attn.weights", 1},
                                                   {"logits", 1}});
  const Tensor<double> plain = model.decode(tgt, {3}, model.encode(src, {4}), {4});
  CHECK(std::equal(logits.data(), logits.data() + logits.size(), plain.data()));

  Recorder<double> all;
  model.decode(tgt, {3}, memory, {4}, &all);
  const Tensor<double>& cross = all.at("decoder.layers.0.cross_attn.weights");
  CHECK(cross.shape() == Shape{1, 2, 3, 5});
  for (Index row = 0; row < 2 * 3; ++row) {
    const double* w = cross.data() + row * 5;
    CHECK(w[0] + w[1] + w[2] + w[3] == doctest::Approx(1.0));
    CHECK(w[4] == 0.0);  // the source's padding position
  }
  CHECK(all.contains("decoder.layers.0.resid_cross"));
  CHECK(all.contains("decoder.layers.0.feed_forward.hidden"));
}

TEST_CASE("Observer: a GPT-2 decoding step shows its position's part of what forward shows, and decodes the same") {
  const GPT2<double> model = load_gpt2<double>(gpt2_fixture_dir("tiny_f32_hub"));
  const GPT2Reference ref("tiny_f32_hub");
  const Tensor<std::int64_t> prompts = ref.file.get<std::int64_t>("input.prompt_ids");  // a left-padded batch
  const std::vector<Index> pads = ref.left_pads();
  // Start on the P prompt positions, then step through three more tokens (the prompt's last three, reversed).
  const Index B = prompts.dim(0), P = prompts.dim(1), T = P + 3;
  Tensor<std::int64_t> ids(Shape{B, T});
  for (Index b = 0; b < B; ++b)
    for (Index t = 0; t < T; ++t) ids.data()[b * T + t] = prompts.data()[b * P + (t < P ? t : 2 * P - 1 - t)];
  Recorder<double> full;
  model.forward(ids, pads, &full);

  GPT2DecodeState<double> watched, plain;
  Recorder<double> at_start;
  model.start(prompts, pads, T, watched, &at_start);
  model.start(prompts, pads, T, plain);
  CHECK(at_start.names() == full.names());
  CHECK(at_start.at("logits").shape() == Shape{B, 1, model.config().vocab_size});
  check_close(at_start.at("logits"), part_at(full.at("logits"), "logits", at_start.at("logits").shape(), P - 1));

  for (Index t = P; t < T; ++t) {
    Tensor<std::int64_t> tokens(Shape{B});
    for (Index b = 0; b < B; ++b) tokens.data()[b] = ids.data()[b * T + t];
    Recorder<double> step;
    model.decode_step(tokens, watched, &step);
    model.decode_step(tokens, plain);
    CHECK(std::equal(watched.logits.data(), watched.logits.data() + watched.logits.size(), plain.logits.data()));
    CHECK(step.names() == full.names());
    for (const std::string& name : step.names()) {
      CAPTURE(name);
      CAPTURE(t);
      check_close(step.at(name), part_at(full.at(name), name, step.at(name).shape(), t));
    }
    CHECK(step.at("h.0.attn.weights").shape() == Shape{B, model.config().n_head, 1, t + 1});
  }
}

TEST_CASE("Observer: a Transformer decoding step shows self- and cross-attention for its position, as decode does") {
  TransformerConfig config;
  config.src_vocab_size = 11, config.tgt_vocab_size = 13, config.d_model = 8, config.num_heads = 2, config.d_ff = 16;
  config.num_encoder_layers = 1, config.num_decoder_layers = 2, config.max_len = 16;
  const Transformer<double> model = random_transformer(config, 11);
  Tensor<std::int64_t> src(Shape{2, 5}), tgt(Shape{2, 3});
  const std::vector<std::int64_t> src_ids{3, 4, 5, 6, 7, 8, 9, 10, 0, 0}, tgt_ids{1, 8, 9, 1, 12, 2};
  std::copy(src_ids.begin(), src_ids.end(), src.data());
  std::copy(tgt_ids.begin(), tgt_ids.end(), tgt.data());
  const std::vector<Index> src_lengths{5, 3};
  const Tensor<double> memory = model.encode(src, src_lengths);
  Recorder<double> full;
  model.decode(tgt, {3, 3}, memory, src_lengths, &full);

  TransformerDecodeState<double> state;
  model.start(memory, src_lengths, 3, state);
  for (Index t = 0; t < 3; ++t) {
    Tensor<std::int64_t> tokens(Shape{2});
    tokens.data()[0] = tgt_ids[static_cast<std::size_t>(t)], tokens.data()[1] = tgt_ids[static_cast<std::size_t>(3 + t)];
    Recorder<double> step;
    model.decode_step(tokens, state, &step);
    CHECK(step.names() == full.names());
    for (const std::string& name : step.names()) {
      CAPTURE(name);
      CAPTURE(t);
      check_close(step.at(name), part_at(full.at(name), name, step.at(name).shape(), t));
    }
    CHECK(step.at("decoder.layers.1.cross_attn.weights").shape() == Shape{2, 2, 1, 5});
    CHECK(step.at("decoder.layers.1.self_attn.weights").shape() == Shape{2, 2, 1, t + 1});
  }
}
