// nn/embedding.hpp: Embedding, a lookup table from token ids to rows, as torch.nn.Embedding.
// ids: [B, T] (or [T]) of std::int64_t -> [B, T, D] (or [T, D]). Parameter: "weight" [V, D].
// Every id is checked before anything is read: an id outside [0, V) is a RangeError naming the id and
// where it stands. (The paper's sqrt(d_model) scaling belongs to the model, not to this table.)
#pragma once

#include <cstdint>
#include <string>

#include "eigenformer/core/error.hpp"
#include "eigenformer/core/tensor.hpp"
#include "eigenformer/core/visit.hpp"
#include "eigenformer/nn/layer_weight.hpp"

namespace eigenformer {

struct EmbeddingConfig {
  Index vocab_size = 0;  // V
  Index d_model = 0;     // D
};

template <typename Scalar>
class Embedding {
 public:
  Embedding() = default;
  explicit Embedding(const EmbeddingConfig& config) : config_(config), weight_(Shape{config.vocab_size, config.d_model}) {
    if (config.vocab_size <= 0 || config.d_model <= 0)
      throw RangeError("Embedding: vocab_size " + std::to_string(config.vocab_size) + " and d_model " + std::to_string(config.d_model) +
                       "; expected both > 0");
  }

  Tensor<Scalar> forward(TensorView<const std::int64_t> ids) const {
    if (ids.rank() != 1 && ids.rank() != 2)
      throw ShapeError("Embedding.forward: ids have shape " + ids.shape().str() + "; expected [B, T] or [T]");
    check_ids(ids);  // before anything is allocated
    Tensor<Scalar> y(ids.shape().rank() == 2 ? Shape{ids.dim(0), ids.dim(1), config_.d_model} : Shape{ids.dim(0), config_.d_model});
    forward(ids, y);
    return y;
  }
  // The same into a caller-owned y of shape ids.shape() + [D] (no allocation).
  void forward(TensorView<const std::int64_t> ids, TensorView<Scalar> y) const {
    check_ids(ids);
    if (y.size() != ids.size() * config_.d_model || y.shape().back() != config_.d_model)
      throw ShapeError("Embedding.forward: y has shape " + y.shape().str() + "; expected " + ids.shape().str() + " + [" +
                       std::to_string(config_.d_model) + "]");
    MatrixMap<Scalar> ym = y.matrix();
    for (Index i = 0; i < ids.size(); ++i) weight_.row(ids[i], ym.row(i));
  }

  // Backward of forward(ids) -> y for dy = dL/dy (ids.shape() + [D]): row ids[i] of the table's gradient accumulates
  // scale * dy's row i (a token seen twice gets both; scale: what the caller multiplied the looked-up rows by, as the
  // Transformer's sqrt(D)). There is no input gradient: ids are not differentiable.
  void backward(TensorView<const std::int64_t> ids, TensorView<const Scalar> dy, Scalar scale = Scalar(1)) {
    check_ids(ids);
    if (dy.size() != ids.size() * config_.d_model || dy.shape().back() != config_.d_model)
      throw ShapeError("Embedding.backward: dy has shape " + dy.shape().str() + "; expected " + ids.shape().str() + " + [" +
                       std::to_string(config_.d_model) + "]");
    require_gradient(weight_grad_, weight_.tensor(), "Embedding.backward");
    const ConstMatrixMap<Scalar> d = dy.matrix();
    for (Index i = 0; i < ids.size(); ++i) weight_grad_.matrix().row(ids[i]) += scale * d.row(i);
  }

  // Inference only: keep the table in bf16 or int8 from now on (nn/layer_weight.hpp); rows are widened when looked up.
  void narrow_weights(WeightType type) { weight_.narrow(type, "Embedding.narrow_weights"); }
  // The table as a weight matrix, for a tied output projection (logits = x W^T).
  const LayerWeight<Scalar>& table() const { return weight_; }

  template <typename F>
  void visit_parameters(F&& f) {
    visit_parameter(f, "weight", weight_.visit("Embedding.visit_parameters"), weight_grad_);
  }

  const EmbeddingConfig& config() const { return config_; }
  // The full-width table [V, D] (empty once narrowed).
  Tensor<Scalar>& weight() { return weight_.tensor(); }
  const Tensor<Scalar>& weight() const { return weight_.tensor(); }
  Tensor<Scalar>& weight_grad() { return weight_grad_; }  // [V, D] once training starts

 private:
  void check_ids(const TensorView<const std::int64_t>& ids) const {
    const Index T = ids.rank() == 0 ? 1 : ids.shape().back();
    for (Index i = 0; i < ids.size(); ++i) {
      const std::int64_t id = ids[i];
      if (id >= 0 && id < config_.vocab_size) continue;
      const std::string at = ids.rank() == 2 ? "[" + std::to_string(i / T) + ", " + std::to_string(i % T) + "]" : "[" + std::to_string(i) + "]";
      throw RangeError("Embedding.forward: token id " + std::to_string(id) + " at " + at + " is outside the vocabulary [0, " +
                       std::to_string(config_.vocab_size) + ")");
    }
  }

  EmbeddingConfig config_;
  LayerWeight<Scalar> weight_;  // [V, D]
  Tensor<Scalar> weight_grad_;  // [V, D] once training starts (train/gradients.hpp)
};

}  // namespace eigenformer
