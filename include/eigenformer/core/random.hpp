// core/random.hpp: the library's own seeded random numbers (xoshiro256** seeded through splitmix64),
// so that a seed gives the same numbers on every platform and compiler. std::rand, std::*_distribution
// and Eigen::Random differ between implementations and are never used.
// state() and set_state() save and restore everything the next draws depend on (the four xoshiro words and
// Box-Muller's spare value), so that a training run resumed from a checkpoint draws the numbers it would have drawn.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

#include "eigenformer/core/error.hpp"
#include "eigenformer/core/tensor.hpp"

namespace eigenformer {

// Everything a Random's next draws depend on.
struct RandomState {
  std::uint64_t words[4] = {0, 0, 0, 0};  // xoshiro256**'s state; never all zero
  double spare = 0.0;                     // the second normal of the last Box-Muller pair,
  bool has_spare = false;                 // returned by the next normal() when has_spare
};

class Random {
 public:
  explicit Random(std::uint64_t seed = 0) {
    for (auto& s : s_) s = splitmix64(seed);
  }

  // 64 uniformly distributed bits (xoshiro256**, Blackman & Vigna 2018).
  std::uint64_t next() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, 1), 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Uniform integer in [lo, hi) (hi > lo), without modulo bias.
  std::int64_t integer(std::int64_t lo, std::int64_t hi) {
    if (hi <= lo) throw RangeError("Random.integer: empty range [" + std::to_string(lo) + ", " + std::to_string(hi) + ")");
    const std::uint64_t span = static_cast<std::uint64_t>(hi - lo);
    const std::uint64_t limit = ~std::uint64_t(0) - (~std::uint64_t(0) % span);
    std::uint64_t r;
    do r = next(); while (r >= limit);
    return lo + static_cast<std::int64_t>(r % span);
  }
  // Standard normal (Box-Muller; the second value of each pair is kept for the next call).
  double normal() {
    if (has_spare_) { has_spare_ = false; return spare_; }
    double u1;
    do u1 = uniform(); while (u1 <= 0.0);
    const double u2 = uniform();
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double two_pi = 6.283185307179586476925286766559;
    spare_ = r * std::sin(two_pi * u2);
    has_spare_ = true;
    return r * std::cos(two_pi * u2);
  }
  double normal(double mean, double stddev) { return mean + stddev * normal(); }

  RandomState state() const {
    RandomState st;
    for (int i = 0; i < 4; ++i) st.words[i] = s_[i];
    st.spare = spare_;
    st.has_spare = has_spare_;
    return st;
  }
  // Throws RangeError for a state no generator can be in (all four words zero: xoshiro would return zeros forever).
  void set_state(const RandomState& st) {
    if ((st.words[0] | st.words[1] | st.words[2] | st.words[3]) == 0)
      throw RangeError("Random.set_state: all four state words are zero; xoshiro256** never reaches that state");
    for (int i = 0; i < 4; ++i) s_[i] = st.words[i];
    spare_ = st.spare;
    has_spare_ = st.has_spare;
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static std::uint64_t splitmix64(std::uint64_t& x) {
    std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  std::uint64_t s_[4];
  double spare_ = 0.0;
  bool has_spare_ = false;
};

template <typename Scalar>
void fill_normal(TensorView<Scalar> t, Random& rng, double mean = 0.0, double stddev = 1.0) {
  for (Index i = 0; i < t.size(); ++i) t[i] = static_cast<Scalar>(rng.normal(mean, stddev));
}
template <typename Scalar>
void fill_uniform(TensorView<Scalar> t, Random& rng, double lo, double hi) {
  for (Index i = 0; i < t.size(); ++i) t[i] = static_cast<Scalar>(rng.uniform(lo, hi));
}
// A tensor of standard normal values; the same seed gives the same tensor everywhere.
template <typename Scalar>
Tensor<Scalar> random_tensor(const Shape& shape, std::uint64_t seed, double stddev = 1.0) {
  Tensor<Scalar> t(shape);
  Random rng(seed);
  fill_normal(t.view(), rng, 0.0, stddev);
  return t;
}

}  // namespace eigenformer
