// Random: the library's own generator. Same seed, same numbers; the distributions have the right moments.
#include "eigenformer/core/random.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

using namespace eigenformer;

TEST_CASE("Random: a seed fixes the sequence; different seeds differ") {
  Random a(42), b(42), c(43);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    const auto x = a.next();
    CHECK(x == b.next());
    differs = differs || x != c.next();
  }
  CHECK(differs);
  CHECK(random_tensor<double>({3, 4}, 7).matrix() == random_tensor<double>({3, 4}, 7).matrix());
}

TEST_CASE("Random: uniform, normal and integer draws have the expected moments and ranges") {
  Random rng(1);
  const int n = 200000;
  double su = 0, sn = 0, sn2 = 0, umin = 1, umax = 0;
  for (int i = 0; i < n; ++i) {
    const double u = rng.uniform();
    umin = std::min(umin, u);
    umax = std::max(umax, u);
    su += u;
    const double z = rng.normal();
    sn += z;
    sn2 += z * z;
  }
  CHECK(umin >= 0.0);
  CHECK(umax < 1.0);
  CHECK(su / n == doctest::Approx(0.5).epsilon(0.01));
  CHECK(std::abs(sn / n) < 0.01);
  CHECK(sn2 / n == doctest::Approx(1.0).epsilon(0.02));
  std::vector<int> seen(7, 0);
  int outside = 0;
  for (int i = 0; i < 7000; ++i) {
    const auto k = rng.integer(3, 10);
    if (k < 3 || k >= 10) ++outside;
    else ++seen[static_cast<std::size_t>(k - 3)];
  }
  CHECK(outside == 0);
  for (int count : seen) CHECK(count > 800);
  CHECK_THROWS_WITH_AS(rng.integer(5, 5), "Random.integer: empty range [5, 5)", RangeError);
}

TEST_CASE("Random: a saved state restored into another generator gives the same draws, a pending normal included") {
  for (int normals_before : {0, 1, 2, 5}) {  // odd counts leave Box-Muller's spare pending
    CAPTURE(normals_before);
    Random a(7);
    for (int i = 0; i < normals_before; ++i) (void)a.normal();
    (void)a.uniform();
    const RandomState saved = a.state();
    CHECK(saved.has_spare == (normals_before % 2 == 1));
    Random b(12345);  // another seed: everything it will draw comes from the restored state
    b.set_state(saved);
    for (int i = 0; i < 9; ++i) {
      CHECK(a.normal() == b.normal());
      CHECK(a.next() == b.next());
      CHECK(a.integer(0, 1000) == b.integer(0, 1000));
    }
  }
}

TEST_CASE("Random: set_state refuses the all-zero state, in which xoshiro256** would return zeros forever") {
  Random rng(3);
  CHECK_THROWS_WITH_AS(rng.set_state(RandomState{}), "Random.set_state: all four state words are zero; xoshiro256** never reaches that state",
                       RangeError);
  Random same(3);
  CHECK(rng.next() == same.next());  // left as it was
}
