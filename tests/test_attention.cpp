// The attention kernels (ops/attention.hpp). Reference: both head layouts give the same result, the thread count
// changes nothing, asking for the weights does not change the output. Flash-style: PyTorch's values under every
// mask with blocks from 1x1 up, and the reference kernel's on larger random cases with every mask kind. Values
// through the nn blocks are checked in test_scaled_dot_product_attention and test_multi_head_attention.
#include "eigenformer/ops/attention.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "eigenformer/core/random.hpp"
#include "eigenformer/core/threading.hpp"
#include "support/fixtures.hpp"

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

namespace {
// attention_flash with the given blocks, head-major tensors in and out.
template <typename Scalar>
Tensor<Scalar> run_flash(const Tensor<Scalar>& q, const Tensor<Scalar>& k, const Tensor<Scalar>& v, const Mask* mask, Scalar scale,
                         Tensor<Scalar>* weights, FlashBlocks blocks) {
  Tensor<Scalar> out({q.dim(0), q.dim(1), q.dim(2), v.dim(3)});
  if (weights) weights->resize(Shape{q.dim(0), q.dim(1), q.dim(2), k.dim(2)});
  attention_flash<Scalar>(HeadsView<const Scalar>::head_major(q), HeadsView<const Scalar>::head_major(k), HeadsView<const Scalar>::head_major(v),
                          mask, scale, HeadsView<Scalar>::head_major(out), weights ? weights->data() : nullptr, blocks);
  return out;
}

template <typename Scalar>
Tensor<Scalar> run_reference(const Tensor<Scalar>& q, const Tensor<Scalar>& k, const Tensor<Scalar>& v, const Mask* mask, Scalar scale,
                             Tensor<Scalar>* weights) {
  Tensor<Scalar> out({q.dim(0), q.dim(1), q.dim(2), v.dim(3)});
  if (weights) weights->resize(Shape{q.dim(0), q.dim(1), q.dim(2), k.dim(2)});
  attention_reference<Scalar>(HeadsView<const Scalar>::head_major(q), HeadsView<const Scalar>::head_major(k),
                              HeadsView<const Scalar>::head_major(v), mask, scale, HeadsView<Scalar>::head_major(out),
                              weights ? weights->data() : nullptr);
  return out;
}

const FlashBlocks kBlockSizes[] = {{1, 1}, {2, 3}, {3, 2}, {4, 4}, {5, 16}, {64, 128}};
}  // namespace

TEST_CASE("attention_flash: tiled over queries and keys, it still matches PyTorch under every mask, with and without weights") {
  for (const char* name : {"sdpa_none", "sdpa_causal_square", "sdpa_causal_offset", "sdpa_padding", "sdpa_allowed", "sdpa_allowed_batched",
                           "sdpa_additive", "sdpa_causal_padding", "sdpa_allowed_padding", "sdpa_additive_causal", "sdpa_t1"})
    for (const FlashBlocks& blocks : kBlockSizes) {
      CAPTURE(name);
      CAPTURE(blocks.queries);
      CAPTURE(blocks.keys);
      testing::Fixture fx(name);
      const Tensor<double> q = fx.input<double>("q"), k = fx.input<double>("k"), v = fx.input<double>("v");
      const Mask mask = fx.mask(q.dim(2), k.dim(2));
      const double scale = 1.0 / std::sqrt(static_cast<double>(q.dim(3)));
      Tensor<double> weights;
      const Tensor<double> with_weights = run_flash<double>(q, k, v, &mask, scale, &weights, blocks);
      testing::check_close(with_weights, fx.output<double>("out"));
      testing::check_close(weights, fx.output<double>("weights"));
      // Asking for the weights is a second pass: the output is the same bits without it.
      CHECK(run_flash<double>(q, k, v, &mask, scale, nullptr, blocks).matrix() == with_weights.matrix());
    }
}

TEST_CASE_TEMPLATE("attention_flash agrees with attention_reference: every mask kind, ragged blocks, empty rows, 1 and 2 threads", Scalar, float,
                   double) {
  const Index B = 3, H = 2, T = 37, S = 45, Dh = 8, Dv = 6;
  const Tensor<Scalar> q = random_tensor<Scalar>({B, H, T, Dh}, 11), k = random_tensor<Scalar>({B, H, S, Dh}, 12),
                       v = random_tensor<Scalar>({B, H, S, Dv}, 13);
  Tensor<bool> allowed({B, T, S});
  Tensor<Scalar> additive({T, S});
  Random rng(14);
  for (Index i = 0; i < allowed.size(); ++i) allowed[i] = rng.uniform() < 0.7;
  for (Index s = 0; s < S; ++s) allowed.at(1, 5, s) = false;  // a row with no allowed key
  for (Index i = 0; i < additive.size(); ++i) additive[i] = rng.uniform() < 0.1 ? -std::numeric_limits<Scalar>::infinity() : Scalar(rng.normal());
  const std::vector<std::pair<const char*, Mask>> masks = {
      {"none", Mask()},
      {"causal", Mask::causal(T, S, 0)},
      {"causal offset", Mask::causal(T, S, S - T)},
      {"key padding", Mask::key_padding({45, 20, 0}, S)},  // item 2: no key at all
      {"left padding", Mask::left_padding({0, 13, 44}, S)},
      {"allowed", Mask::allowed(allowed)},
      {"additive", Mask::additive(additive)},
      {"causal & key padding & additive", Mask::causal(T, S, 3) & Mask::key_padding({40, 17, 30}, S) & Mask::additive(additive)},
      {"left padding & causal", Mask::left_padding({2, 30, 9}, S) & Mask::causal(T, S, S - T)},
  };
  const Scalar scale = Scalar(0.3);
  const double tolerance = std::is_same_v<Scalar, double> ? 1e-13 : 2e-6;
  for (const auto& [name, mask] : masks) {
    Tensor<Scalar> ref_weights;
    const Tensor<Scalar> ref = run_reference<Scalar>(q, k, v, &mask, scale, &ref_weights);
    for (const FlashBlocks& blocks : kBlockSizes) {
      CAPTURE(name);
      CAPTURE(blocks.queries);
      CAPTURE(blocks.keys);
      Tensor<Scalar> weights;
      const Tensor<Scalar> out = run_flash<Scalar>(q, k, v, &mask, scale, &weights, blocks);
      CHECK((out.matrix() - ref.matrix()).cwiseAbs().maxCoeff() <= tolerance);
      CHECK((weights.matrix() - ref_weights.matrix()).cwiseAbs().maxCoeff() <= tolerance);
      CHECK(out.matrix().allFinite());
      // Masked keys get exactly zero weight, as in the reference kernel.
      CHECK(((ref_weights.matrix().array() == 0) == (weights.matrix().array() == 0)).all());
    }
  }
  // Each (item, head, query block) is one thread's job from start to end: the thread count changes no bit.
  const Mask mask = Mask::causal(T, S, 3) & Mask::key_padding({40, 17, 30}, S);
  const int before = num_threads();
  set_num_threads(1);
  const Tensor<Scalar> one = run_flash<Scalar>(q, k, v, &mask, scale, nullptr, FlashBlocks{4, 8});
  set_num_threads(2);
  const Tensor<Scalar> two = run_flash<Scalar>(q, k, v, &mask, scale, nullptr, FlashBlocks{4, 8});
  set_num_threads(before);
  CHECK(one.matrix() == two.matrix());
}

TEST_CASE("attention_forward: the default kernel is flash") {
  // The two kernels round differently, so which one ran shows in the last bits.
  const Tensor<float> q = random_tensor<float>({1, 2, 8, 16}, 1), k = random_tensor<float>({1, 2, 300, 16}, 2), v = random_tensor<float>({1, 2, 300, 16}, 3);
  Tensor<float> by_default({1, 2, 8, 16}), flash({1, 2, 8, 16});
  const auto view = [](const Tensor<float>& t) { return HeadsView<const float>::head_major(t); };
  attention_forward<float>(view(q), view(k), view(v), nullptr, 0.25f, HeadsView<float>::head_major(by_default));
  attention_forward<float>(view(q), view(k), view(v), nullptr, 0.25f, HeadsView<float>::head_major(flash), nullptr, AttentionKernel::flash);
  const Tensor<float> reference = run_reference<float>(q, k, v, nullptr, 0.25f, nullptr);
  CHECK(by_default.matrix() == flash.matrix());
  CHECK(by_default.matrix() != reference.matrix());
}
