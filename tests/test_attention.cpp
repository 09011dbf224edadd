// The attention kernels (ops/attention.hpp). Reference: both head layouts give the same result, the thread count
// changes nothing, asking for the weights does not change the output. Flash-style: PyTorch's values under every
// mask with blocks from 1x1 up, and the reference kernel's on larger random cases with every mask kind. Values
// through the nn blocks are checked in test_scaled_dot_product_attention and test_multi_head_attention.
// Backward: both kernels' gradients against central differences under every mask kind (with rows that have no
// allowed key, T != S), and the flash backward against the reference backward with blocks small enough for many tiles.
#include "eigenformer/ops/attention.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "eigenformer/core/random.hpp"
#include "eigenformer/core/threading.hpp"
#include "support/fixtures.hpp"
#include "support/gradcheck.hpp"
#include "support/masks.hpp"

using namespace eigenformer;
using namespace eigenformer::testing;

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

namespace {
template <typename Scalar>
HeadsView<const Scalar> heads(const Tensor<Scalar>& t) { return HeadsView<const Scalar>::head_major(t); }
template <typename Scalar>
HeadsView<Scalar> heads(Tensor<Scalar>& t) { return HeadsView<Scalar>::head_major(t); }

// Gradients of one attention call: [B, H, T, Dh], [B, H, S, Dh], [B, H, S, Dv].
template <typename Scalar>
struct AttentionGrads {
  Tensor<Scalar> dq, dk, dv;
  AttentionGrads(const Tensor<Scalar>& q, const Tensor<Scalar>& k, const Tensor<Scalar>& v) : dq(q.shape()), dk(k.shape()), dv(v.shape()) {}
};

template <typename Scalar>
AttentionGrads<Scalar> reference_grads(const Tensor<Scalar>& q, const Tensor<Scalar>& k, const Tensor<Scalar>& v, const Mask* mask, Scalar scale,
                                       const Tensor<Scalar>& dout) {
  Tensor<Scalar> weights;
  run_reference<Scalar>(q, k, v, mask, scale, &weights);
  AttentionGrads<Scalar> g(q, k, v);
  attention_reference_backward<Scalar>(heads(q), heads(k), heads(v), weights.data(), scale, heads(dout), heads(g.dq), heads(g.dk), heads(g.dv));
  return g;
}

// The flash forward with its log-sum-exp, then the flash backward, both with `blocks`.
template <typename Scalar>
AttentionGrads<Scalar> flash_grads(const Tensor<Scalar>& q, const Tensor<Scalar>& k, const Tensor<Scalar>& v, const Mask* mask, Scalar scale,
                                   const Tensor<Scalar>& dout, FlashBlocks blocks) {
  Tensor<Scalar> out({q.dim(0), q.dim(1), q.dim(2), v.dim(3)}), lse({q.dim(0), q.dim(1), q.dim(2)});
  attention_flash<Scalar>(heads(q), heads(k), heads(v), mask, scale, heads(out), nullptr, blocks, lse.data());
  AttentionGrads<Scalar> g(q, k, v);
  attention_flash_backward<Scalar>(heads(q), heads(k), heads(v), mask, scale, heads(std::as_const(out)), lse.data(), heads(dout), heads(g.dq),
                                   heads(g.dk), heads(g.dv), Accumulate::yes, blocks);
  return g;
}

// Rows of [B, H, T, S] weights that are zero everywhere: queries with no allowed key.
std::vector<Index> empty_rows(const Tensor<double>& weights) {
  std::vector<Index> rows;
  const RowMatrix<double> w = weights.matrix(weights.size() / weights.dim(3), weights.dim(3));
  for (Index r = 0; r < w.rows(); ++r)
    if ((w.row(r).array() == 0).all()) rows.push_back(r);
  return rows;
}
}  // namespace

TEST_CASE("attention_flash: the optional log-sum-exp is log sum exp of each row's scaled, masked scores; -inf for an empty row") {
  const Index B = 2, H = 2, T = 5, S = 7;
  const Tensor<double> q = random_tensor<double>({B, H, T, 3}, 61), k = random_tensor<double>({B, H, S, 3}, 62), v = random_tensor<double>({B, H, S, 4}, 63);
  const double scale = 0.7;
  for (const auto& named : all_mask_kinds(T, S, 64))  // not a structured binding: CAPTURE's lambda could not name it
    for (const FlashBlocks& blocks : kBlockSizes) {
      const std::string& name = named.first;
      const Mask& mask = named.second;
      CAPTURE(name);
      CAPTURE(blocks.queries);
      CAPTURE(blocks.keys);
      Tensor<double> out({B, H, T, 4}), lse({B, H, T});
      attention_flash<double>(heads(q), heads(k), heads(v), &mask, scale, heads(out), nullptr, blocks, lse.data());
      // Asking for it changes no bit of the output.
      CHECK(run_flash<double>(q, k, v, &mask, scale, nullptr, blocks).matrix() == out.matrix());
      for (Index b = 0; b < B; ++b) {
        Tensor<double> bias({T, S});
        if (!mask.empty()) mask.fill_bias<double>(b, bias.matrix());
        for (Index h = 0; h < H; ++h)
          for (Index t = 0; t < T; ++t) {
            double sum = 0;
            for (Index s = 0; s < S; ++s) {
              double score = bias.at(t, s);
              for (Index d = 0; d < 3; ++d) score += scale * q.at(b, h, t, d) * k.at(b, h, s, d);
              sum += std::exp(score);  // exp(-inf) = 0
            }
            if (sum == 0)
              CHECK(lse.at(b, h, t) == -std::numeric_limits<double>::infinity());
            else
              CHECK(lse.at(b, h, t) == doctest::Approx(std::log(sum)).epsilon(1e-13));
          }
      }
    }
}

TEST_CASE("attention backward: both kernels agree with central differences for q, k and v under every mask kind; empty rows get zero") {
  const Index B = 2, H = 2, T = 5, S = 7, Dh = 3, Dv = 4;
  Tensor<double> q = random_tensor<double>({B, H, T, Dh}, 71), k = random_tensor<double>({B, H, S, Dh}, 72), v = random_tensor<double>({B, H, S, Dv}, 73);
  const Tensor<double> dout = random_tensor<double>({B, H, T, Dv}, 74);
  const double scale = 0.6;
  const FlashBlocks blocks{2, 3};  // several query and key tiles, ragged at the ends
  for (const auto& named : all_mask_kinds(T, S, 75)) {
    const std::string& name = named.first;
    const Mask& mask = named.second;
    CAPTURE(name);
    const Mask* m = &mask;
    Tensor<double> weights;
    run_reference<double>(q, k, v, m, scale, &weights);
    const std::vector<Index> empty = empty_rows(weights);
    if (name == "key padding" || name == "allowed" || name == "additive") CHECK(!empty.empty());
    const auto reference_loss = [&] { return dot(run_reference<double>(q, k, v, m, scale, nullptr), dout); };
    const auto flash_loss = [&] { return dot(run_flash<double>(q, k, v, m, scale, nullptr, blocks), dout); };
    const AttentionGrads<double> ref = reference_grads<double>(q, k, v, m, scale, dout);
    const AttentionGrads<double> flash = flash_grads<double>(q, k, v, m, scale, dout, blocks);
    check_gradient("attention_reference_backward dq, mask " + name, q, ref.dq, reference_loss);
    check_gradient("attention_reference_backward dk, mask " + name, k, ref.dk, reference_loss);
    check_gradient("attention_reference_backward dv, mask " + name, v, ref.dv, reference_loss);
    check_gradient("attention_flash_backward dq, mask " + name, q, flash.dq, flash_loss);
    check_gradient("attention_flash_backward dk, mask " + name, k, flash.dk, flash_loss);
    check_gradient("attention_flash_backward dv, mask " + name, v, flash.dv, flash_loss);
    for (const AttentionGrads<double>* g : {&ref, &flash}) {
      CHECK(g->dq.matrix().allFinite());
      CHECK(g->dk.matrix().allFinite());
      CHECK(g->dv.matrix().allFinite());
      const MatrixMap<const double> dq_rows(g->dq.data(), B * H * T, Dh);
      for (Index r : empty) {
        CAPTURE(r);
        CHECK((dq_rows.row(r).array() == 0).all());
      }
    }
  }
}

TEST_CASE_TEMPLATE("attention_flash_backward agrees with attention_reference_backward: every mask kind, ragged blocks, 1 and 2 threads", Scalar,
                   float, double) {
  const Index B = 2, H = 3, T = 13, S = 19, Dh = 8, Dv = 6;
  const Tensor<Scalar> q = random_tensor<Scalar>({B, H, T, Dh}, 81), k = random_tensor<Scalar>({B, H, S, Dh}, 82),
                       v = random_tensor<Scalar>({B, H, S, Dv}, 83), dout = random_tensor<Scalar>({B, H, T, Dv}, 84);
  const Scalar scale = Scalar(0.35);
  // Relative to the largest gradient of the case.
  const double tolerance = std::is_same_v<Scalar, double> ? 1e-13 : 2e-6;
  const auto max_error = [](const Tensor<Scalar>& a, const Tensor<Scalar>& e) {
    const double scale_of_e = std::max(1e-30, static_cast<double>(e.matrix().cwiseAbs().maxCoeff()));
    return static_cast<double>((a.matrix() - e.matrix()).cwiseAbs().maxCoeff()) / scale_of_e;
  };
  for (const auto& named : all_mask_kinds(T, S, 85)) {
    const std::string& name = named.first;
    const Mask& mask = named.second;
    const AttentionGrads<Scalar> ref = reference_grads<Scalar>(q, k, v, &mask, scale, dout);
    for (const FlashBlocks& blocks : kBlockSizes) {
      CAPTURE(name);
      CAPTURE(blocks.queries);
      CAPTURE(blocks.keys);
      const AttentionGrads<Scalar> flash = flash_grads<Scalar>(q, k, v, &mask, scale, dout, blocks);
      CHECK(max_error(flash.dq, ref.dq) <= tolerance);
      CHECK(max_error(flash.dk, ref.dk) <= tolerance);
      CHECK(max_error(flash.dv, ref.dv) <= tolerance);
      CHECK(flash.dq.matrix().allFinite());
      CHECK(flash.dk.matrix().allFinite());
      CHECK(flash.dv.matrix().allFinite());
    }
  }
  // Each (item, head) is one thread's job: the thread count changes no bit, in either kernel. Large enough for the
  // kernels to go parallel (T * S * Dh > 4096).
  const Index T2 = 40, S2 = 50;
  const Tensor<Scalar> q2 = random_tensor<Scalar>({B, H, T2, Dh}, 86), k2 = random_tensor<Scalar>({B, H, S2, Dh}, 87),
                       v2 = random_tensor<Scalar>({B, H, S2, Dv}, 88), dout2 = random_tensor<Scalar>({B, H, T2, Dv}, 89);
  const Mask mask = Mask::causal(T2, S2, 3) & Mask::key_padding({47, 20}, S2);
  const int before = num_threads();
  std::vector<AttentionGrads<Scalar>> flash, reference;
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    flash.push_back(flash_grads<Scalar>(q2, k2, v2, &mask, scale, dout2, FlashBlocks{4, 8}));
    reference.push_back(reference_grads<Scalar>(q2, k2, v2, &mask, scale, dout2));
  }
  set_num_threads(before);
  for (const auto* pair : {&flash, &reference}) {
    CHECK((*pair)[0].dq.matrix() == (*pair)[1].dq.matrix());
    CHECK((*pair)[0].dk.matrix() == (*pair)[1].dk.matrix());
    CHECK((*pair)[0].dv.matrix() == (*pair)[1].dv.matrix());
  }
}

TEST_CASE("attention backward: token-major gradients equal head-major ones; Accumulate::yes adds, Accumulate::no writes") {
  const Index B = 2, H = 3, T = 6, S = 9, Dh = 4;
  const Tensor<double> q = random_tensor<double>({B, T, H * Dh}, 91), k = random_tensor<double>({B, S, H * Dh}, 92),
                       v = random_tensor<double>({B, S, H * Dh}, 93), dout = random_tensor<double>({B, T, H * Dh}, 94);
  const Mask mask = Mask::causal(T, S, S - T) & Mask::left_padding({0, 3}, S);
  const double scale = 0.5;
  const auto tm = [&](const Tensor<double>& t) { return HeadsView<const double>::token_major(t, H, Dh); };
  const auto tm_out = [&](Tensor<double>& t) { return HeadsView<double>::token_major(t, H, Dh); };
  const AttentionGrads<double> expected =
      reference_grads<double>(to_head_major(q, H), to_head_major(k, H), to_head_major(v, H), &mask, scale, to_head_major(dout, H));

  Tensor<double> out({B, T, H * Dh}), weights({B, H, T, S}), lse({B, H, T});
  attention_reference<double>(tm(q), tm(k), tm(v), &mask, scale, tm_out(out), weights.data());
  // The garbage already in the buffers stays under Accumulate::yes and is overwritten under Accumulate::no.
  const Tensor<double> garbage_q = random_tensor<double>(q.shape(), 95), garbage_kv = random_tensor<double>(k.shape(), 96);
  for (Accumulate accumulate : {Accumulate::yes, Accumulate::no}) {
    CAPTURE(accumulate == Accumulate::yes);
    const double kept = accumulate == Accumulate::yes ? 1.0 : 0.0;
    Tensor<double> dq = garbage_q, dk = garbage_kv, dv = garbage_kv;
    attention_reference_backward<double>(tm(q), tm(k), tm(v), weights.data(), scale, tm(dout), tm_out(dq), tm_out(dk), tm_out(dv), accumulate);
    CHECK((to_head_major(dq, H).matrix() - to_head_major(garbage_q, H).matrix() * kept - expected.dq.matrix()).cwiseAbs().maxCoeff() < 1e-13);
    CHECK((to_head_major(dk, H).matrix() - to_head_major(garbage_kv, H).matrix() * kept - expected.dk.matrix()).cwiseAbs().maxCoeff() < 1e-13);
    CHECK((to_head_major(dv, H).matrix() - to_head_major(garbage_kv, H).matrix() * kept - expected.dv.matrix()).cwiseAbs().maxCoeff() < 1e-13);

    Tensor<double> flash_out({B, T, H * Dh});
    attention_flash<double>(tm(q), tm(k), tm(v), &mask, scale, tm_out(flash_out), nullptr, FlashBlocks{2, 4}, lse.data());
    dq = garbage_q;
    dk = garbage_kv;
    dv = garbage_kv;
    attention_flash_backward<double>(tm(q), tm(k), tm(v), &mask, scale, tm(flash_out), lse.data(), tm(dout), tm_out(dq), tm_out(dk), tm_out(dv),
                                     accumulate, FlashBlocks{2, 4});
    CHECK((to_head_major(dq, H).matrix() - to_head_major(garbage_q, H).matrix() * kept - expected.dq.matrix()).cwiseAbs().maxCoeff() < 1e-13);
    CHECK((to_head_major(dk, H).matrix() - to_head_major(garbage_kv, H).matrix() * kept - expected.dk.matrix()).cwiseAbs().maxCoeff() < 1e-13);
    CHECK((to_head_major(dv, H).matrix() - to_head_major(garbage_kv, H).matrix() * kept - expected.dv.matrix()).cwiseAbs().maxCoeff() < 1e-13);
  }
}
