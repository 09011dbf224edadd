// nn/positional_encoding.hpp: adds a position's vector to each token: y[b, t] = x[b, t] + pe[offset + t].
//   sinusoidal (Vaswani et al. 3.5): pe[p, 2i] = sin(p / 10000^(2i/D)), pe[p, 2i+1] = cos(p / 10000^(2i/D)),
//     computed as the PyTorch translation tutorial does (p * exp(-2i ln(10000) / D)) in double, then rounded;
//     a fixed table, no parameters (odd D works: the last column is a sine).
//   learned (GPT-2's wpe): parameter "weight" [max_len, D].
// x: [B, T, D]; `offset` is the position of x's first token (P cached positions when decoding).
// The tutorial's PositionalEncoding also applies dropout to the sum in training; the models do that after add_to
// (models/transformer.hpp, models/gpt2.hpp, with nn/dropout.hpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>
#include <string>

#include "eigenformer/core/error.hpp"
#include "eigenformer/core/shape.hpp"
#include "eigenformer/core/tensor.hpp"
#include "eigenformer/core/visit.hpp"

namespace eigenformer {

enum class PositionKind { sinusoidal, learned };

struct PositionalEncodingConfig {
  PositionKind kind = PositionKind::sinusoidal;
  Index max_len = 5000;  // HF GPT-2: n_positions
  Index d_model = 512;
};

template <typename Scalar>
class PositionalEncoding {
 public:
  PositionalEncoding() = default;
  explicit PositionalEncoding(const PositionalEncodingConfig& config) : config_(config) {
    if (config.max_len <= 0 || config.d_model <= 0)
      throw RangeError("PositionalEncoding: max_len " + std::to_string(config.max_len) + " and d_model " +
                       std::to_string(config.d_model) + "; expected both > 0");
    table_ = Tensor<Scalar>(Shape{config.max_len, config.d_model});
    if (config.kind == PositionKind::sinusoidal && table_.data()) fill_sinusoidal();  // no data: a ShapeOnly pass
  }

  Tensor<Scalar> forward(TensorView<const Scalar> x, Index offset = 0) const {
    Tensor<Scalar> y = Tensor<Scalar>::copy_of(x);
    add_to(y, offset);
    return y;
  }
  // In place: x += pe[offset : offset + T]. With left_pads (prompts padded on the left, as for generation), item
  // b's token t is at position offset + t - left_pads[b]; padding tokens get position 0 (they are never attended to).
  void add_to(TensorView<Scalar> x, Index offset = 0, const std::vector<Index>* left_pads = nullptr) const {
    check_shape("PositionalEncoding.forward", "x", x.shape(), {"B", "T", config_.d_model}, "d_model");
    const Index B = x.dim(0), T = x.dim(1);
    if (offset < 0 || offset + T > config_.max_len)
      throw RangeError("PositionalEncoding.forward: positions [" + std::to_string(offset) + ", " + std::to_string(offset + T) +
                       ") go past max_len " + std::to_string(config_.max_len));
    if (left_pads && static_cast<Index>(left_pads->size()) != B)
      throw ShapeError("PositionalEncoding.forward: " + std::to_string(left_pads->size()) + " left paddings for a batch of " + std::to_string(B));
    for (Index b = 0; b < B; ++b) {
      const Index shift = left_pads ? (*left_pads)[static_cast<std::size_t>(b)] : 0;
      if (shift == 0) {
        x.slice(b).matrix() += table_.matrix().middleRows(offset, T);
        continue;
      }
      for (Index t = 0; t < T; ++t) x.slice(b).matrix().row(t) += table_.matrix().row(std::max<Index>(offset + t - shift, 0));
    }
  }

  // Backward of add_to(x, offset) for dy = dL/dy [B, T, D] (dL/dx is dy itself: the caller's residual path keeps it).
  // Learned: row offset + t of the table's gradient accumulates dy[b, t] over the batch; sinusoidal: nothing to learn.
  void backward(TensorView<const Scalar> dy, Index offset = 0) {
    check_shape("PositionalEncoding.backward", "dy", dy.shape(), {"B", "T", config_.d_model}, "d_model");
    if (config_.kind != PositionKind::learned) return;
    const Index B = dy.dim(0), T = dy.dim(1);
    if (offset < 0 || offset + T > config_.max_len)
      throw RangeError("PositionalEncoding.backward: positions [" + std::to_string(offset) + ", " + std::to_string(offset + T) +
                       ") go past max_len " + std::to_string(config_.max_len));
    require_gradient(table_grad_, table_, "PositionalEncoding.backward");
    for (Index b = 0; b < B; ++b) table_grad_.matrix().middleRows(offset, T) += dy.slice(b).matrix();
  }

  template <typename F>
  void visit_parameters(F&& f) {
    if (config_.kind == PositionKind::learned) visit_parameter(f, "weight", table_, table_grad_);
  }

  // Replace the table by one a checkpoint stores ([max_len, D]): PyTorch models keep their sinusoid as a float32
  // buffer, and matching them to the last bit means using those rounded values.
  void set_table(const Tensor<Scalar>& table) {
    check_shape("PositionalEncoding.set_table", "table", table.shape(), {config_.max_len, config_.d_model}, "max_len, d_model");
    table_ = table;
  }

  const PositionalEncodingConfig& config() const { return config_; }
  // [max_len, D]: the sinusoid table, or the learned weight.
  const Tensor<Scalar>& table() const { return table_; }

 private:
  void fill_sinusoidal() {
    const double D = static_cast<double>(config_.d_model);
    const double log_base = std::log(10000.0);
    for (Index p = 0; p < config_.max_len; ++p)
      for (Index j = 0; j < config_.d_model; ++j) {
        const double angle = static_cast<double>(p) * std::exp(static_cast<double>(j - j % 2) * (-log_base / D));
        table_.at(p, j) = static_cast<Scalar>(j % 2 == 0 ? std::sin(angle) : std::cos(angle));
      }
  }

  PositionalEncodingConfig config_;
  Tensor<Scalar> table_;  // [max_len, D]
  Tensor<Scalar> table_grad_;  // learned: [max_len, D] once training starts (train/gradients.hpp)
};

}  // namespace eigenformer
