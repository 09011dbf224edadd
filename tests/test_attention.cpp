// The reference attention kernel (ops/attention.hpp): both head layouts give the same result, the thread count
// changes nothing, and asking for the weights does not change the output. Values against PyTorch are checked
// through ScaledDotProductAttention and MultiHeadAttention.
#include "eigenformer/ops/attention.hpp"

#include <doctest/doctest.h>

#include "eigenformer/core/random.hpp"
#include "eigenformer/core/threading.hpp"

using namespace eigenformer;

namespace {
// [B, T, H*Dh] token-major -> [B, H, T, Dh] head-major, by index (the layout the kernel must not need).
Tensor<double> to_head_major(const Tensor<double>& x, Index H) {
  const Index B = x.dim(0), T = x.dim(1), Dh = x.dim(2) / H;
  Tensor<double> y({B, H, T, Dh});
  for (Index b = 0; b < B; ++b)
    for (Index t = 0; t < T; ++t)
      for (Index h = 0; h < H; ++h)
        for (Index d = 0; d < Dh; ++d) y.at(b, h, t, d) = x.at(b, t, h * Dh + d);
  return y;
}
}  // namespace

TEST_CASE("attention_forward: token-major and head-major layouts agree; weights optional; threads irrelevant") {
  const Index B = 2, H = 3, T = 5, S = 7, Dh = 4;
  const Tensor<double> q = random_tensor<double>({B, T, H * Dh}, 1), k = random_tensor<double>({B, S, H * Dh}, 2),
                       v = random_tensor<double>({B, S, H * Dh}, 3);
  const Mask mask = Mask::causal(T, S, 2) & Mask::key_padding({7, 4}, S);
  const double scale = 0.5;

  Tensor<double> out_tm({B, T, H * Dh}), weights({B, H, T, S});
  attention_forward<double>(HeadsView<const double>::token_major(q, H, Dh), HeadsView<const double>::token_major(k, H, Dh),
                            HeadsView<const double>::token_major(v, H, Dh), &mask, scale, HeadsView<double>::token_major(out_tm, H, Dh),
                            weights.data());

  const Tensor<double> qh = to_head_major(q, H), kh = to_head_major(k, H), vh = to_head_major(v, H);
  // Strided and contiguous maps take different Eigen product paths: equal up to rounding.
  Tensor<double> out_hm({B, H, T, Dh});
  attention_forward<double>(HeadsView<const double>::head_major(qh), HeadsView<const double>::head_major(kh),
                            HeadsView<const double>::head_major(vh), &mask, scale, HeadsView<double>::head_major(out_hm));
  CHECK((out_hm.matrix() - to_head_major(out_tm, H).matrix()).cwiseAbs().maxCoeff() < 1e-14);
  // The same call on 1 and 2 threads: bit for bit, with and without returning the weights.
  const int before = num_threads();
  for (int threads : {1, 2}) {
    CAPTURE(threads);
    set_num_threads(threads);
    Tensor<double> again({B, T, H * Dh});
    attention_forward<double>(HeadsView<const double>::token_major(q, H, Dh), HeadsView<const double>::token_major(k, H, Dh),
                              HeadsView<const double>::token_major(v, H, Dh), &mask, scale, HeadsView<double>::token_major(again, H, Dh));
    CHECK(again.matrix() == out_tm.matrix());
  }
  set_num_threads(before);
  // Rows of the weights sum to one; masked keys get exactly zero.
  for (Index b = 0; b < B; ++b)
    for (Index h = 0; h < H; ++h)
      for (Index t = 0; t < T; ++t) {
        double sum = 0;
        for (Index s = 0; s < S; ++s) {
          sum += weights.at(b, h, t, s);
          if (s > 2 + t || s >= (b == 0 ? 7 : 4)) CHECK(weights.at(b, h, t, s) == 0.0);
        }
        CHECK(sum == doctest::Approx(1.0).epsilon(1e-12));
      }
}
