// Sampler: greedy is the first argmax; sampling follows the softmax of logits / temperature; top-k and top-p keep
// only their candidates; the repetition penalty lowers tokens already seen; a seed fixes the draws.
#include "eigenformer/generate/sampling.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <set>
#include <vector>

using namespace eigenformer;

namespace {
Eigen::VectorXd logits_of(std::initializer_list<double> v) {
  Eigen::VectorXd x(static_cast<Index>(v.size()));
  Index i = 0;
  for (double d : v) x(i++) = d;
  return x;
}
}  // namespace

TEST_CASE("Sampler: temperature 0 is the first argmax; top_k 1 and a tiny top_p are greedy too") {
  const Eigen::VectorXd x = logits_of({0.5, 2.0, -1.0, 2.0, 1.5});
  SamplingOptions greedy;
  greedy.temperature = 0;
  CHECK(Sampler(greedy, 5).choose(x) == 1);
  SamplingOptions k1;
  k1.top_k = 1;
  SamplingOptions p;
  p.top_p = 1e-6;
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    k1.seed = p.seed = seed;
    CHECK(Sampler(k1, 5).choose(x) == 1);
    CHECK(Sampler(p, 5).choose(x) == 1);
  }
}

TEST_CASE("Sampler: draws follow softmax(logits / temperature)") {
  const Eigen::VectorXd x = logits_of({1.0, 0.0, -0.5, 0.7});
  for (double temperature : {1.0, 0.5, 2.0}) {
    CAPTURE(temperature);
    SamplingOptions o;
    o.temperature = temperature;
    o.seed = 11;
    Sampler s(o, 4);
    std::vector<double> counts(4, 0);
    const int n = 40000;
    for (int i = 0; i < n; ++i) counts[static_cast<std::size_t>(s.choose(x))] += 1;
    const Eigen::ArrayXd e = (x.array() / temperature).exp();
    const Eigen::ArrayXd probs = e / e.sum();
    for (Index v = 0; v < 4; ++v) CHECK(counts[static_cast<std::size_t>(v)] / n == doctest::Approx(probs(v)).epsilon(0.03));
  }
}

TEST_CASE("Sampler: top-k and top-p never leave their candidate sets; the same seed gives the same draws") {
  Random rng(5);
  Eigen::VectorXd x(50);
  for (Index v = 0; v < 50; ++v) x(v) = rng.normal();
  std::vector<Index> order(50);
  for (Index v = 0; v < 50; ++v) order[static_cast<std::size_t>(v)] = v;
  std::sort(order.begin(), order.end(), [&](Index a, Index b) { return x(a) > x(b); });
  // The nucleus for p = 0.6, computed here from its definition.
  const Eigen::ArrayXd e = (x.array() - x.maxCoeff()).exp();
  std::set<Index> nucleus;
  double cumulative = 0;
  for (Index v : order) {
    nucleus.insert(v);
    cumulative += e(v) / e.sum();
    if (cumulative >= 0.6) break;
  }
  const std::set<Index> top5(order.begin(), order.begin() + 5);
  SamplingOptions k;
  k.top_k = 5;
  SamplingOptions p;
  p.top_p = 0.6;
  Sampler sk(k, 50), sp(p, 50);
  std::set<Index> seen_k, seen_p;
  for (int i = 0; i < 2000; ++i) {
    seen_k.insert(sk.choose(x));
    seen_p.insert(sp.choose(x));
  }
  CHECK(seen_k == top5);
  CHECK(std::includes(nucleus.begin(), nucleus.end(), seen_p.begin(), seen_p.end()));
  CHECK(seen_p.size() == nucleus.size());
  SamplingOptions seeded;
  seeded.seed = 42;
  Sampler a(seeded, 50), b(seeded, 50);
  for (int i = 0; i < 100; ++i) CHECK(a.choose(x) == b.choose(x));
}

TEST_CASE("Sampler: the repetition penalty divides positive and multiplies negative logits of seen tokens") {
  const Eigen::VectorXd x = logits_of({3.0, 2.5, -1.0, -1.2});
  SamplingOptions o;
  o.temperature = 0;
  o.repetition_penalty = 1.5;
  Sampler s(o, 4);
  s.observe(std::vector<std::int64_t>{0});
  CHECK(s.choose(x) == 1);  // 3.0 / 1.5 = 2.0 < 2.5
  Sampler t(o, 4);
  t.observe(std::vector<std::int64_t>{0, 1});
  CHECK(t.choose(x) == 0);  // 2.0 vs 2.5 / 1.5
  const Eigen::VectorXd negative = logits_of({-1.0, -1.2});
  Sampler u(o, 2);
  u.observe(std::vector<std::int64_t>{0});
  CHECK(u.choose(negative) == 1);  // -1.5 < -1.2
}

TEST_CASE("SamplingOptions: out-of-range values are refused") {
  SamplingOptions o;
  o.temperature = -1;
  CHECK_THROWS_WITH_AS(o.validate(), "SamplingOptions: temperature -1.000000; expected >= 0 (0 is greedy)", RangeError);
  o.temperature = 1;
  o.top_p = 0;
  CHECK_THROWS_WITH_AS(o.validate(), "SamplingOptions: top_p 0.000000; expected 0 < top_p <= 1", RangeError);
  o.top_p = 1;
  o.top_k = -2;
  CHECK_THROWS_WITH_AS(o.validate(), "SamplingOptions: top_k -2; expected >= 0 (0 is no limit)", RangeError);
  o.top_k = 0;
  o.repetition_penalty = 0;
  CHECK_THROWS_WITH_AS(o.validate(), "SamplingOptions: repetition_penalty 0.000000; expected > 0 (1 is none)", RangeError);
}
