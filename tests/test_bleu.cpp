// corpus_bleu (train/bleu.hpp): exact properties of the formula. A perfect corpus scores 1; a hypothesis that is a
// prefix of its reference has every precision 1 and so scores its brevity penalty exp(1 - r / c) exactly; no shared
// 4-gram scores 0; counts are clipped by the reference; the score does not depend on what the tokens are.
#include "eigenformer/train/bleu.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

using namespace eigenformer;

namespace {
std::vector<std::string> words(const std::string& text) {
  std::vector<std::string> out;
  std::string w;
  for (char c : text + " ") {
    if (c == ' ') {
      if (!w.empty()) out.push_back(w);
      w.clear();
    } else {
      w += c;
    }
  }
  return out;
}
}  // namespace

TEST_CASE("corpus_bleu: a perfect corpus scores 1, a prefix scores its brevity penalty, no common 4-gram scores 0") {
  const std::vector<std::vector<std::string>> refs = {words("el perro grande come pan"), words("la casa roja es bonita y grande")};
  const BleuScore perfect = corpus_bleu(refs, refs);
  CHECK(perfect.bleu == 1.0);
  CHECK(perfect.brevity_penalty == 1.0);

  std::vector<std::vector<std::string>> prefixes = {words("el perro grande come"), words("la casa roja es bonita")};
  const BleuScore prefix = corpus_bleu(prefixes, refs);
  for (double p : prefix.precisions) CHECK(p == 1.0);
  const double c = 9, r = 12;
  CHECK(prefix.hypothesis_length == 9);
  CHECK(prefix.reference_length == 12);
  CHECK(prefix.bleu == doctest::Approx(std::exp(1 - r / c)).epsilon(1e-15));

  // Every word shared, no 4-gram: the reversed sentences.
  std::vector<std::vector<std::string>> reversed = refs;
  for (auto& s : reversed) std::reverse(s.begin(), s.end());
  const BleuScore none = corpus_bleu(reversed, refs);
  CHECK(none.precisions[0] == 1.0);
  CHECK(none.precisions[3] == 0.0);
  CHECK(none.bleu == 0.0);
}

TEST_CASE("corpus_bleu: a repeated word counts only as often as the reference has it; tokens may be ids") {
  const BleuScore s = corpus_bleu(std::vector<std::vector<std::string>>{words("el el el el")},
                                  std::vector<std::vector<std::string>>{words("el perro come el pan")});
  CHECK(s.precisions[0] == doctest::Approx(2.0 / 4.0).epsilon(1e-15));
  // The same corpus as ids scores the same.
  const std::vector<std::vector<std::string>> hyp = {words("a b c d e f"), words("x y z w")}, ref = {words("a b c x e f g"), words("x y z w v")};
  std::vector<std::vector<int>> hyp_ids, ref_ids;
  const auto id = [](const std::string& w) { return int(w[0]); };
  for (const auto& s : hyp) {
    hyp_ids.emplace_back();
    for (const auto& w : s) hyp_ids.back().push_back(id(w));
  }
  for (const auto& s : ref) {
    ref_ids.emplace_back();
    for (const auto& w : s) ref_ids.back().push_back(id(w));
  }
  CHECK(corpus_bleu(hyp_ids, ref_ids).bleu == corpus_bleu(hyp, ref).bleu);
  CHECK(corpus_bleu(hyp, ref).bleu > 0);
  CHECK_THROWS_AS(corpus_bleu(hyp, std::vector<std::vector<std::string>>{}), ShapeError);
}
