// beam_search (generate/beam_search.hpp): with one beam it is greedy decoding, id for id, on the PyTorch tutorial
// fixtures; with a beam as wide as every sequence it finds the exact best sequence of an exhaustive search (every
// target of up to 3 tokens scored by teacher forcing); each source of a batch gets what it gets alone.
#include "eigenformer/generate/beam_search.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "eigenformer/generate/translate.hpp"
#include "eigenformer/io/pytorch_transformer.hpp"
#include "support/gradcheck.hpp"
#include "support/translator_fixture.hpp"

using namespace eigenformer;
using namespace eigenformer::testing;

namespace {
// log p(ids | source) by feeding BOS + ids one position at a time (ids may end in EOS).
double sequence_log_prob(const Transformer<double>& model, const std::vector<std::int64_t>& source, const std::vector<std::int64_t>& ids) {
  const TransformerConfig& c = model.config();
  Tensor<std::int64_t> src(Shape{1, Index(source.size())});
  std::copy(source.begin(), source.end(), src.data());
  const std::vector<Index> lengths{Index(source.size())};
  const Tensor<double> memory = model.encode(src, lengths);
  TransformerDecodeState<double> state;
  model.start(memory, lengths, Index(ids.size()) + 1, state);
  Tensor<std::int64_t> token(Shape{1}, c.bos_id);
  double total = 0;
  for (std::int64_t id : ids) {
    model.decode_step(token, state);
    const auto row = state.logits.matrix(1, c.tgt_vocab_size).row(0);
    const double m = row.maxCoeff();
    total += row(id) - (m + std::log((row.array() - m).exp().sum()));
    token[0] = id;
  }
  return total;
}
}  // namespace

TEST_CASE("beam_search: one beam is greedy decoding, id for id, on the tutorial fixtures") {
  for (const std::string& name : translator_fixture_names()) {
    CAPTURE(name);
    const Transformer<double> model = load_transformer<double>(translator_fixture_dir(name));
    const TranslatorReference ref(name);
    const std::vector<GenerationResult> greedy = translate(model, ref.sources());
    BeamSearchOptions options;
    options.beam = 1;
    const std::vector<BeamSearchResult> beam = beam_search(model, ref.sources(), options);
    REQUIRE(beam.size() == greedy.size());
    for (std::size_t b = 0; b < beam.size(); ++b) {
      CHECK(beam[b].ids == greedy[b].ids);
      CHECK(beam[b].stop == greedy[b].stop);
    }
  }
}

TEST_CASE("beam_search: a beam as wide as every sequence finds the best of an exhaustive search, for each length penalty") {
  TransformerConfig c;
  c.d_model = 8, c.num_heads = 2, c.num_encoder_layers = 1, c.num_decoder_layers = 1, c.d_ff = 16;
  c.src_vocab_size = 6, c.tgt_vocab_size = 5, c.max_len = 8;  // bos 2, eos 3, pad 1
  Transformer<double> model(c);
  randomize_parameters(model, 11, 1.0);
  const std::vector<std::vector<std::int64_t>> sources = {{2, 4, 5, 3}, {2, 0, 3}, {2, 5, 5, 4, 0, 3}};
  const Index limit = 3;
  for (double alpha : {0.0, 0.6, 2.0}) {
    CAPTURE(alpha);
    BeamSearchOptions options;
    options.beam = 125;  // 5^3: more than every sequence of up to 3 tokens
    options.length_penalty = alpha;
    options.max_new_tokens = limit;
    const std::vector<BeamSearchResult> beam = beam_search(model, sources, options);
    for (std::size_t b = 0; b < sources.size(); ++b) {
      CAPTURE(b);
      // Every output: up to 2 non-EOS tokens then EOS, or 3 non-EOS tokens cut by the limit.
      double best = -std::numeric_limits<double>::infinity();
      std::vector<std::int64_t> best_ids;
      std::vector<std::int64_t> words;
      const auto consider = [&](const std::vector<std::int64_t>& ids, bool eos) {
        std::vector<std::int64_t> fed = ids;
        if (eos) fed.push_back(c.eos_id);
        const double lp = sequence_log_prob(model, sources[b], fed);
        const double score = lp / std::pow((5.0 + double(fed.size())) / 6.0, alpha);
        if (score > best) best = score, best_ids = ids;
      };
      for (int n = 0; n <= 3; ++n) {
        std::vector<std::int64_t> ids(static_cast<std::size_t>(n));
        const std::vector<std::int64_t> others = {0, 1, 2, 4};
        int combos = 1;
        for (int k = 0; k < n; ++k) combos *= 4;
        for (int code = 0; code < combos; ++code) {
          int rest = code;
          for (int k = 0; k < n; ++k) ids[static_cast<std::size_t>(k)] = others[static_cast<std::size_t>(rest % 4)], rest /= 4;
          consider(ids, n < 3);
        }
      }
      CHECK(beam[b].ids == best_ids);
      CHECK(beam[b].score == doctest::Approx(best).epsilon(1e-9));
      std::vector<std::int64_t> fed = beam[b].ids;
      if (beam[b].stop == StopReason::eos) fed.push_back(c.eos_id);
      CHECK(beam[b].log_prob == doctest::Approx(sequence_log_prob(model, sources[b], fed)).epsilon(1e-9));
      // Alone, the same.
      const std::vector<BeamSearchResult> alone = beam_search(model, {sources[b]}, options);
      CHECK(alone[0].ids == beam[b].ids);
    }
  }
}

TEST_CASE("beam_search: bad options are refused with the option named") {
  TransformerConfig c;
  c.d_model = 8, c.num_heads = 2, c.num_encoder_layers = 1, c.num_decoder_layers = 1, c.d_ff = 16;
  c.src_vocab_size = 6, c.tgt_vocab_size = 5, c.max_len = 8;
  const Transformer<double> model(c);
  BeamSearchOptions o;
  o.beam = 0;
  CHECK_THROWS_WITH_AS(beam_search(model, {{2, 3}}, o), "beam_search: beam is 0; expected 1 to 1024", RangeError);
  o.beam = 2, o.length_penalty = -1;
  CHECK_THROWS_WITH_AS(beam_search(model, {{2, 3}}, o), "beam_search: length_penalty is -1; expected a finite value >= 0", RangeError);
  CHECK(beam_search(model, {}, BeamSearchOptions{}).empty());
}
