// translate (generate/translate.hpp): the ids PyTorch's tutorial greedy_decode gives, for a padded batch,
// in float and double; each row as it is alone; the max_new_tokens and max_len limits.
#include "eigenformer/generate/translate.hpp"

#include <doctest/doctest.h>

#include "eigenformer/core/random.hpp"
#include "eigenformer/core/threading.hpp"
#include "eigenformer/io/pytorch_transformer.hpp"
#include "support/translator_fixture.hpp"

using namespace eigenformer;
using namespace eigenformer::testing;

TEST_CASE_TEMPLATE("translate: a padded batch gives PyTorch's greedy ids for every source", Scalar, float, double) {
  for (const std::string& name : translator_fixture_names()) {
    CAPTURE(name);
    const Transformer<Scalar> model = load_transformer<Scalar>(translator_fixture_dir(name));
    const TranslatorReference ref(name);
    const std::vector<GenerationResult> out = translate(model, ref.sources());
    const std::vector<std::vector<std::int64_t>> expected = ref.greedy();
    const std::vector<Index> at_eos = ref.lengths("output.greedy_stopped_at_eos");
    REQUIRE(out.size() == expected.size());
    for (std::size_t b = 0; b < out.size(); ++b) {
      CAPTURE(b);
      CHECK(out[b].ids == expected[b]);
      CHECK(out[b].stop == (at_eos[b] ? StopReason::eos : StopReason::max_new_tokens));
    }
  }
}

TEST_CASE("translate: each source alone gives what it gives in the batch") {
  const std::string name = "pre_gelu_1layer";
  const Transformer<double> model = load_transformer<double>(translator_fixture_dir(name));
  const TranslatorReference ref(name);
  const std::vector<GenerationResult> batched = translate(model, ref.sources());
  for (std::size_t b = 0; b < batched.size(); ++b) CHECK(translate(model, {ref.sources()[b]})[0].ids == batched[b].ids);
}

TEST_CASE("translate: max_new_tokens and max_len cut the output to a prefix of the full one") {
  const std::string name = "post_relu_3layers";
  const Transformer<double> model = load_transformer<double>(translator_fixture_dir(name));
  const TranslatorReference ref(name);
  const std::vector<std::vector<std::int64_t>> expected = ref.greedy();
  TranslateOptions two;
  two.max_new_tokens = 2;
  const std::vector<GenerationResult> cut = translate(model, ref.sources(), two);
  for (std::size_t b = 0; b < cut.size(); ++b) {
    CAPTURE(b);
    const std::size_t n = std::min<std::size_t>(2, expected[b].size());
    CHECK(cut[b].ids == std::vector<std::int64_t>(expected[b].begin(), expected[b].begin() + static_cast<std::ptrdiff_t>(n)));
    if (expected[b].size() >= 2) CHECK(cut[b].stop == StopReason::max_new_tokens);
  }

  // The same weights with a 3-position table: decoding stops after 3 steps, reporting max_len.
  TransformerConfig short_config = model.config();
  short_config.max_len = 3;
  Transformer<double> short_model(short_config);
  Transformer<double> source_model = model;
  std::vector<Tensor<double>*> from;
  source_model.visit_parameters([&](const std::string&, Tensor<double>& t) { from.push_back(&t); });
  std::size_t i = 0;
  short_model.visit_parameters([&](const std::string&, Tensor<double>& t) { t = *from[i++]; });
  std::vector<std::vector<std::int64_t>> short_sources;
  for (const auto& s : ref.sources())
    if (static_cast<Index>(s.size()) <= 3) short_sources.push_back(s);
  short_sources.push_back({2, 3});  // BOS EOS: the empty sentence fits any table
  for (const GenerationResult& t : translate(short_model, short_sources)) {
    CHECK(t.ids.size() <= 3);
    if (t.stop != StopReason::eos) CHECK(t.stop == StopReason::context_full);
  }
  CHECK_THROWS_WITH_AS(translate(model, ref.sources(), TranslateOptions{0}),
                       "translate: max_new_tokens is 0; expected >= 1, or -1 for the default", RangeError);
}

// As for GPT-2 (test_gpt2.cpp): the thread count changes no bit, so greedy ids are the same on 1 and 2 threads. A model
// big enough that every parallel branch runs, random weights, a padded batch.
TEST_CASE("translate: the same ids on 1 and 2 threads") {
  TransformerConfig config;
  config.d_model = 128;
  config.num_heads = 4;
  config.num_encoder_layers = config.num_decoder_layers = 2;
  config.d_ff = 256;
  config.src_vocab_size = 500;
  config.tgt_vocab_size = 600;
  config.max_len = 64;
  Transformer<float> model(config);
  Random rng(8);
  model.visit_parameters([&](const std::string&, Tensor<float>& t) { fill_normal(t.view(), rng, 0.0, 0.2); });
  std::vector<std::vector<std::int64_t>> sources;
  for (Index length : {30, 12, 25, 7}) {
    std::vector<std::int64_t> source = {config.bos_id};
    for (Index i = 0; i < length; ++i) source.push_back(rng.integer(4, config.src_vocab_size));
    source.push_back(config.eos_id);
    sources.push_back(source);
  }
  const int before = num_threads();
  set_num_threads(1);
  const std::vector<GenerationResult> one = translate(model, sources);
  set_num_threads(2);
  const std::vector<GenerationResult> two = translate(model, sources);
  set_num_threads(before);
  for (std::size_t b = 0; b < sources.size(); ++b) {
    CAPTURE(b);
    CHECK(one[b].ids.size() > 5);
    CHECK(one[b].ids == two[b].ids);
  }
}
