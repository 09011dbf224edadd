// inspect/observer.hpp: what a model lets an observer see on the way through a forward pass. The models and blocks
// know only this header; what is done with the tensors (keep them, dump them, draw them) lives in the rest of
// inspect/ (recorder.hpp, explain_page.hpp).
//   Observer<float> o;  model.forward(ids, {}, &o);   // o.record(site, probe, tensor) is called for every probe o.wants()
// A forward without an observer takes none of these paths: each is behind a null check, and bench/ measures that
// the checks cost nothing (docs/inspect.md).
// What is recorded, as [shapes]; names as Site::name() spells them (the full list: docs/inspect.md):
//   attention_weights  STACK.L.BLOCK.weights  [B, H, T, S]  softmax(scores) with the mask applied (PyTorch's
//                      need_weights=True, average_attn_weights=False); a row with no allowed key is all zero
//   attention_scores   STACK.L.BLOCK.scores   [B, H, T, S]  q k^T / sqrt(Dh), before the mask and the softmax
//   qkv                STACK.L.BLOCK.q|k|v    [B, T|S, D]   the projections, heads side by side (head h: columns h*Dh..)
//   residual           STACK.L.resid_pre|resid_mid|resid_post  [B, T, D]  the residual stream into a layer, after
//                      its (self-)attention sub-layer, out of it; a decoder layer also has resid_cross, after
//                      its cross-attention
//   mlp                STACK.L.FF.hidden      [B, T, F]     the feed-forward's hidden layer, after the activation
//   logits             logits                 [B, T, V]
// A decoding step (GPT2::decode_step, Transformer::decode_step) shows the same names for its one new position: T = 1
// in every shape above, and S = the positions it attends over (the cache so far, the new one included, or the
// memory); k and v are then the cached ones. GPT2::start shows what forward() does, with the last position's logits.
// GPT-2 uses Hugging Face's names: STACK "h", BLOCK "attn", FF "mlp". The Transformer uses its parameters' names:
// STACK "encoder.layers" or "decoder.layers", BLOCK "self_attn" or "cross_attn", FF "feed_forward".
#pragma once

#include <string>
#include <string_view>

#include "eigenformer/core/tensor.hpp"

namespace eigenformer {

enum class Probe { attention_weights, attention_scores, qkv, residual, mlp, logits };

// Where a tensor was recorded: layer `layer` of `stack`, sub-block `block`, tensor `what`. Model-level tensors have
// an empty stack and layer -1.
struct Site {
  std::string_view stack;
  Index layer = -1;
  std::string_view block;
  std::string_view what;

  // "h.3.attn.weights", "decoder.layers.0.resid_pre", "logits".
  std::string name() const {
    std::string n;
    const auto part = [&n](std::string_view p) {
      if (p.empty()) return;
      if (!n.empty()) n += '.';
      n += p;
    };
    part(stack);
    if (layer >= 0) part(std::to_string(layer));
    part(block);
    part(what);
    return n;
  }
};

template <typename Scalar>
class Observer {
 public:
  virtual ~Observer() = default;
  // Whether to compute and report this kind of tensor at all (the scores, say, cost a product of their own).
  virtual bool wants(Probe probe) const = 0;
  // value is valid only during the call: copy what you keep.
  virtual void record(const Site& site, Probe probe, TensorView<const Scalar> value) = 0;
};

// An observer and the place it is being called from, handed down from a model to its layers and their blocks; each
// level fills in its part of the site. Empty (no observer): wants() is false and nothing is recorded.
template <typename Scalar>
struct Watch {
  Observer<Scalar>* observer = nullptr;
  Site site;

  bool wants(Probe probe) const { return observer && observer->wants(probe); }
  void record(std::string_view what, Probe probe, TensorView<const Scalar> value) const {
    if (!wants(probe)) return;
    Site s = site;
    s.what = what;
    observer->record(s, probe, value);
  }
  Watch layer(std::string_view stack, Index index) const { return {observer, Site{stack, index, {}, {}}}; }
  Watch block(std::string_view name) const { return {observer, Site{site.stack, site.layer, name, {}}}; }
};

// A decoding step's logits [B, V] (the newest position only), shown as "logits" [B, 1, V], the shape forward's have
// for one position. Nothing to do without an observer.
template <typename Scalar>
void record_newest_logits(Observer<Scalar>* observer, const Tensor<Scalar>& logits) {
  if (!observer) return;
  const TensorView<const Scalar> view(logits.data(), Shape{logits.dim(0), 1, logits.dim(1)});
  Watch<Scalar>{observer, {}}.record("logits", Probe::logits, view);
}

}  // namespace eigenformer
