// models/transformer.hpp: the encoder-decoder Transformer (Vaswani et al. 2017, section 3), composed of our blocks
// as PyTorch's translation tutorial composes nn.Transformer ("Seq2SeqTransformer"):
//   encode:  memory = encoder.norm(EncoderLayer^N(src_embedding(src) * sqrt(D) + PE))       src: [B, S] -> [B, S, D]
//   decode:  logits = generator(decoder.norm(DecoderLayer^N(tgt_embedding(tgt) * sqrt(D) + PE, memory)))
//                                                                                        tgt: [B, T] -> [B, T, V_tgt]
// Padding: explicit lengths (a source's keys past its length are masked in encoder self-attention and in
// cross-attention; a target's in decoder self-attention, which is also causal). nn.Transformer always ends each
// stack with a LayerNorm (encoder.norm, decoder.norm), post-norm or pre-norm alike; so do we.
// Incremental decoding: start() sizes every cache and buffer once; decode_step() then costs one position and
// allocates nothing.
// Dropout (the paper's 5.4; p = config.dropout, 0.1 as the tutorial): on embedding + positions (the tutorial's
// PositionalEncoding) and inside every layer (nn/encoder_layer.hpp, nn/decoder_layer.hpp). Only the training forward
// drops, and only when the caller names a generator: saved.rng = &rng (core/random.hpp). encode, decode and
// decode_step never drop.
// Inspection: encode(), decode() and decode_step() take an optional observer (inspect/observer.hpp) that is shown the
// residual stream, every attention's q, k, v, scores and weights, the feed-forward's hidden layer and the logits.
// Parameters: "src_embedding.weight" [V_src, D], "tgt_embedding.weight" [V_tgt, D],
// "encoder.layers.N.*", "encoder.norm.*", "decoder.layers.N.*", "decoder.norm.*", "generator.weight" [V_tgt, D]
// (absent when tied to the target embedding), "generator.bias" [V_tgt].
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "eigenformer/core/error.hpp"
#include "eigenformer/core/mask.hpp"
#include "eigenformer/core/random.hpp"
#include "eigenformer/core/tensor.hpp"
#include "eigenformer/core/visit.hpp"
#include "eigenformer/inspect/observer.hpp"
#include "eigenformer/nn/decoder_layer.hpp"
#include "eigenformer/nn/dropout.hpp"
#include "eigenformer/nn/embedding.hpp"
#include "eigenformer/nn/encoder_layer.hpp"
#include "eigenformer/nn/layer_norm.hpp"
#include "eigenformer/nn/linear.hpp"
#include "eigenformer/nn/positional_encoding.hpp"
#include "eigenformer/ops/activations.hpp"
#include "eigenformer/ops/linear.hpp"

namespace eigenformer {

struct TransformerConfig {
  Index d_model = 512;
  Index num_heads = 8;  // PyTorch: nhead
  Index num_encoder_layers = 6;
  Index num_decoder_layers = 6;
  Index d_ff = 2048;  // PyTorch: dim_feedforward
  Activation activation = Activation::relu;
  bool norm_first = false;  // false: post-norm (the paper); true: pre-norm
  double layer_norm_eps = 1e-5;
  Index src_vocab_size = 0;
  Index tgt_vocab_size = 0;
  Index max_len = 5000;  // positions in the sinusoid table: the longest source, and the longest target with BOS
  std::int64_t bos_id = 2, eos_id = 3, pad_id = 1;  // the PyTorch tutorial's special ids (UNK is 0)
  bool tie_target_embedding = false;                 // generator.weight is tgt_embedding.weight (the paper's 3.4)
  double dropout = 0.1;  // every dropout's p (nn.Transformer's and PositionalEncoding's); training with saved.rng only

  // Throws RangeError naming the first field that cannot work.
  void validate(const std::string& where = "TransformerConfig") const {
    check_config_size(where, "d_model", d_model);
    check_config_size(where, "nhead", num_heads);
    check_config_size(where, "num_encoder_layers", num_encoder_layers);
    check_config_size(where, "num_decoder_layers", num_decoder_layers);
    check_config_size(where, "dim_feedforward", d_ff);
    check_config_size(where, "src_vocab_size", src_vocab_size);
    check_config_size(where, "tgt_vocab_size", tgt_vocab_size);
    check_config_size(where, "max_len", max_len);
    if (d_model % num_heads != 0)
      throw RangeError(where + ": d_model " + std::to_string(d_model) + " is not a multiple of nhead " + std::to_string(num_heads));
    if (!(layer_norm_eps >= 0)) throw RangeError(where + ": layer_norm_eps is " + std::to_string(layer_norm_eps) + "; expected >= 0");
    if (!(dropout >= 0 && dropout < 1)) throw RangeError(where + ": dropout is " + detail::number_text(dropout) + "; expected 0 <= dropout < 1");
    // Both sides read the specials: a source is BOS, ids, EOS, padded with pad_id (translate, beam_search, Seq2SeqBatch),
    // and a target starts with BOS and ends at EOS. So each must be an id of both vocabularies.
    for (auto [id, name] : {std::pair{bos_id, "bos_id"}, std::pair{eos_id, "eos_id"}, std::pair{pad_id, "pad_id"}}) {
      if (id < 0 || id >= tgt_vocab_size)
        throw RangeError(where + ": " + name + " " + std::to_string(id) + " is outside the target vocabulary [0, " +
                         std::to_string(tgt_vocab_size) + ")");
      if (id >= src_vocab_size)
        throw RangeError(where + ": " + name + " " + std::to_string(id) + " is outside the source vocabulary [0, " +
                         std::to_string(src_vocab_size) + "); sources hold BOS, EOS and padding too");
    }
  }

  EncoderLayerConfig encoder_layer() const { return {d_model, num_heads, d_ff, activation, norm_first, layer_norm_eps, dropout}; }
  DecoderLayerConfig decoder_layer() const { return {d_model, num_heads, d_ff, activation, norm_first, layer_norm_eps, dropout}; }
};

// What Transformer::backward needs of a training forward: the inputs, the masks, and every layer's input and activations.
template <typename Scalar>
struct TransformerActivations {
  Random* rng = nullptr;  // set it to train with dropout (p = config.dropout): every mask is drawn from it; null: none
  Tensor<std::int64_t> src, tgt;                  // [B, S], [B, T]
  std::vector<Index> src_lengths, tgt_lengths;    // [B] each
  Mask src_padding, tgt_mask;                     // [S] keys of the source (encoder and cross-attention); causal & padding over [T, T]
  Tensor<Scalar> src_dropout, tgt_dropout;        // [B, S, D], [B, T, D]: the embeddings' dropout masks; empty if none
  std::vector<Tensor<Scalar>> encoder_inputs;     // per encoder layer: its input [B, S, D]
  std::vector<typename EncoderLayer<Scalar>::Activations> encoder;
  Tensor<Scalar> encoder_output;                  // [B, S, D]: the last encoder layer's output, encoder.norm's input
  typename LayerNorm<Scalar>::Activations encoder_norm;
  Tensor<Scalar> memory;                          // [B, S, D]
  std::vector<Tensor<Scalar>> decoder_inputs;     // per decoder layer: its input [B, T, D]
  std::vector<typename DecoderLayer<Scalar>::Activations> decoder;
  Tensor<Scalar> decoder_output;                  // [B, T, D]: decoder.norm's input
  typename LayerNorm<Scalar>::Activations decoder_norm;
  Tensor<Scalar> decoded;                         // [B, T, D]: the generator's input
};

// Everything one incremental decoding needs, sized once by Transformer::start().
template <typename Scalar>
struct TransformerDecodeState {
  std::vector<DecoderLayerCache<Scalar>> layers;  // per decoder layer: self cache [B, P, D], memory cache [B, S, D]
  LayerStepWorkspace<Scalar> workspace;
  Tensor<Scalar> x, y;                  // [B, 1, D]: the newest position, in and out of each layer
  Tensor<Scalar> logits;                // [B, V_tgt]: the newest position's logits, after decode_step()
  std::vector<Index> memory_lengths;    // [B]
  Index length = 0;                     // target positions decoded so far
  Index capacity = 0;                   // target positions reserved
};

template <typename Scalar>
class Transformer {
 public:
  explicit Transformer(const TransformerConfig& config)
      : config_((config.validate(), config)),
        src_embedding_(EmbeddingConfig{config.src_vocab_size, config.d_model}),
        tgt_embedding_(EmbeddingConfig{config.tgt_vocab_size, config.d_model}),
        positions_(PositionalEncodingConfig{PositionKind::sinusoidal, config.max_len, config.d_model}),
        encoder_norm_(LayerNormConfig{config.d_model, config.layer_norm_eps}),
        decoder_norm_(LayerNormConfig{config.d_model, config.layer_norm_eps}),
        generator_(LinearConfig{config.d_model, config.tgt_vocab_size}) {
    for (Index i = 0; i < config.num_encoder_layers; ++i) encoder_.emplace_back(config.encoder_layer());
    for (Index i = 0; i < config.num_decoder_layers; ++i) decoder_.emplace_back(config.decoder_layer());
  }

  // src: [B, S] ids, src_lengths[b] <= S real tokens each (the rest padding) -> memory [B, S, D].
  // observer, if given, is shown what it asks for on the way (inspect/observer.hpp), as in decode().
  Tensor<Scalar> encode(TensorView<const std::int64_t> src, const std::vector<Index>& src_lengths, Observer<Scalar>* observer = nullptr) const {
    check_ids("Transformer.encode", "src", src, src_lengths);
    const Mask padding = Mask::key_padding(src_lengths, src.dim(1));
    Tensor<Scalar> x = embed(src_embedding_, src, 0);
    AttentionOptions<Scalar> options;
    options.mask = &padding;
    for (std::size_t l = 0; l < encoder_.size(); ++l) {
      options.watch = Watch<Scalar>{observer, {}}.layer("encoder.layers", static_cast<Index>(l));
      x = encoder_[l].forward(x, options);
    }
    encoder_norm_.forward(x, x);
    return x;
  }

  // Teacher forcing: tgt [B, T] (BOS first), tgt_lengths, and the memory of encode() -> logits [B, T, V_tgt];
  // position t sees target positions 0..t.
  Tensor<Scalar> decode(TensorView<const std::int64_t> tgt, const std::vector<Index>& tgt_lengths, TensorView<const Scalar> memory,
                        const std::vector<Index>& src_lengths, Observer<Scalar>* observer = nullptr) const {
    check_ids("Transformer.decode", "tgt", tgt, tgt_lengths);
    check_shape("Transformer.decode", "memory", memory.shape(), {tgt.dim(0), "S", config_.d_model}, "batch of tgt, d_model");
    const Index T = tgt.dim(1), S = memory.dim(1);
    const Mask self_mask = Mask::causal(T, T) & Mask::key_padding(tgt_lengths, T);
    const Mask memory_mask = Mask::key_padding(src_lengths, S);
    DecoderLayerOptions<Scalar> options;
    options.self_mask = &self_mask;
    options.memory_mask = &memory_mask;
    Tensor<Scalar> x = embed(tgt_embedding_, tgt, 0);
    for (std::size_t l = 0; l < decoder_.size(); ++l) {
      options.watch = Watch<Scalar>{observer, {}}.layer("decoder.layers", static_cast<Index>(l));
      x = decoder_[l].forward(x, memory, options);
    }
    decoder_norm_.forward(x, x);
    auto logits = Tensor<Scalar>::uninitialized(Shape{tgt.dim(0), T, config_.tgt_vocab_size});
    generate_logits(x, logits);
    Watch<Scalar>{observer, {}}.record("logits", Probe::logits, logits);
    return logits;
  }

  // Training, teacher forcing: encode(src) and decode(tgt) in one forward that keeps in `saved` what backward needs
  // -> logits [B, T, V_tgt]. With saved.rng null (or config.dropout 0), bit for bit decode(tgt, ..., encode(src, ...),
  // ...); with a generator, dropout draws its masks from it: source embeddings, encoder layers, target embeddings,
  // decoder layers, in that order.
  Tensor<Scalar> forward(TensorView<const std::int64_t> src, const std::vector<Index>& src_lengths, TensorView<const std::int64_t> tgt,
                         const std::vector<Index>& tgt_lengths, TransformerActivations<Scalar>& saved) const {
    check_ids("Transformer.forward", "src", src, src_lengths);
    check_ids("Transformer.forward", "tgt", tgt, tgt_lengths);
    if (tgt.dim(0) != src.dim(0))
      throw ShapeError("Transformer.forward: tgt has shape " + tgt.shape().str() + ", src " + src.shape().str() + "; expected the same batch");
    const Index S = src.dim(1), T = tgt.dim(1);
    saved.src = Tensor<std::int64_t>::copy_of(src), saved.tgt = Tensor<std::int64_t>::copy_of(tgt);
    saved.src_lengths = src_lengths, saved.tgt_lengths = tgt_lengths;
    saved.src_padding = Mask::key_padding(src_lengths, S);
    saved.tgt_mask = Mask::causal(T, T) & Mask::key_padding(tgt_lengths, T);
    Tensor<Scalar> x = embed(src_embedding_, src, 0);
    dropout_.apply(x, saved.rng, saved.src_dropout);
    saved.encoder_inputs.resize(encoder_.size());
    saved.encoder.resize(encoder_.size());
    for (std::size_t l = 0; l < encoder_.size(); ++l) {
      saved.encoder_inputs[l] = std::move(x);
      saved.encoder[l].rng = saved.rng;
      x = encoder_[l].forward(saved.encoder_inputs[l], {&saved.src_padding}, &saved.encoder[l]);
    }
    saved.encoder_output = std::move(x);
    saved.memory = encoder_norm_.forward(saved.encoder_output, &saved.encoder_norm);
    const DecoderLayerOptions<Scalar> options = decoder_options(saved);
    x = embed(tgt_embedding_, tgt, 0);
    dropout_.apply(x, saved.rng, saved.tgt_dropout);
    saved.decoder_inputs.resize(decoder_.size());
    saved.decoder.resize(decoder_.size());
    for (std::size_t l = 0; l < decoder_.size(); ++l) {
      saved.decoder_inputs[l] = std::move(x);
      saved.decoder[l].rng = saved.rng;
      x = decoder_[l].forward(saved.decoder_inputs[l], saved.memory, options, &saved.decoder[l]);
    }
    saved.decoder_output = std::move(x);
    saved.decoded = decoder_norm_.forward(saved.decoder_output, &saved.decoder_norm);
    auto logits = Tensor<Scalar>::uninitialized(Shape{tgt.dim(0), T, config_.tgt_vocab_size});
    generate_logits(saved.decoded, logits);
    return logits;
  }

  // Backward of that forward for dlogits = dL/dlogits [B, T, V_tgt]: every parameter's gradient accumulates
  // (allocate_gradients first, zero_gradients before each step). The graph, backwards:
  //   generator -> decoder.norm -> decoder layers (each also adding to dmemory) -> dropout -> target embedding * sqrt(D)
  //   dmemory -> encoder.norm -> encoder layers -> dropout -> source embedding * sqrt(D)    (the sinusoid is fixed)
  void backward(TensorView<const Scalar> dlogits, const TransformerActivations<Scalar>& saved) {
    check_shape("Transformer.backward", "dlogits", dlogits.shape(), {saved.tgt.dim(0), saved.tgt.dim(1), config_.tgt_vocab_size},
                "the forward's batch and target length, tgt_vocab_size");
    const bool tied = config_.tie_target_embedding;
    Tensor<Scalar>& w = tied ? tgt_embedding_.weight() : generator_.weight();
    Tensor<Scalar>& dw = tied ? tgt_embedding_.weight_grad() : generator_.weight_grad();
    require_gradient(dw, w, "Transformer.backward");
    Tensor<Scalar> ddecoded(saved.decoded.shape());
    linear_backward<Scalar>(saved.decoded.matrix(), std::as_const(w).matrix(), dlogits.matrix(), ddecoded.matrix(), dw.matrix(),
                            generator_.bias_grad().data(), Accumulate::no);
    Tensor<Scalar> dx(saved.decoder_output.shape());
    decoder_norm_.backward(saved.decoder_output, ddecoded, dx, saved.decoder_norm, Accumulate::no);
    Tensor<Scalar> dmemory(saved.memory.shape());
    const DecoderLayerOptions<Scalar> options = decoder_options(saved);
    for (std::size_t l = decoder_.size(); l-- > 0;) dx = decoder_[l].backward(saved.decoder_inputs[l], saved.memory, dx, dmemory, saved.decoder[l], options);
    Dropout<Scalar>::backward(dx, saved.tgt_dropout);
    tgt_embedding_.backward(saved.tgt, dx, embedding_scale());
    dx.resize(saved.encoder_output.shape());
    encoder_norm_.backward(saved.encoder_output, dmemory, dx, saved.encoder_norm, Accumulate::no);
    for (std::size_t l = encoder_.size(); l-- > 0;) dx = encoder_[l].backward(saved.encoder_inputs[l], dx, saved.encoder[l], {&saved.src_padding});
    Dropout<Scalar>::backward(dx, saved.src_dropout);
    src_embedding_.backward(saved.src, dx, embedding_scale());
  }

  // Incremental decoding, once per batch of sources: sizes `state` for up to `capacity` target positions (BOS
  // included; at most max_len) and projects the memory into every layer's cross-attention cache.
  void start(TensorView<const Scalar> memory, const std::vector<Index>& src_lengths, Index capacity,
             TransformerDecodeState<Scalar>& state) const {
    check_shape("Transformer.start", "memory", memory.shape(), {"B", "S", config_.d_model}, "d_model");
    const Index B = memory.dim(0), S = memory.dim(1);
    if (capacity < 1 || capacity > config_.max_len)
      throw RangeError("Transformer.start: " + std::to_string(capacity) + " target positions; expected 1 to max_len " +
                       std::to_string(config_.max_len));
    if (static_cast<Index>(src_lengths.size()) != B)
      throw ShapeError("Transformer.start: " + std::to_string(src_lengths.size()) + " source lengths for a batch of " + std::to_string(B));
    state.layers.resize(decoder_.size());
    for (std::size_t l = 0; l < decoder_.size(); ++l) decoder_[l].start(memory, capacity, state.layers[l]);
    state.workspace.reserve(B, config_.d_model, config_.d_ff, std::max(S, capacity));
    state.x.resize(Shape{B, 1, config_.d_model});
    state.y.resize(Shape{B, 1, config_.d_model});
    state.logits.resize(Shape{B, config_.tgt_vocab_size});
    state.memory_lengths = src_lengths;
    state.length = 0;
    state.capacity = capacity;
  }

  // One target position per batch item: tokens [B] (BOS at the first step) -> state.logits [B, V_tgt]. Equal to
  // the last position of decode() on the whole prefix. No allocation. observer, if given, is shown this position's part
  // of what decode() shows (as GPT2::decode_step: [B, 1, .] per position, k, v, scores and weights over the cached
  // positions or the memory, logits [B, 1, V_tgt]).
  void decode_step(TensorView<const std::int64_t> tokens, TransformerDecodeState<Scalar>& state, Observer<Scalar>* observer = nullptr) const {
    if (state.length >= state.capacity)
      throw RangeError("Transformer.decode_step: all " + std::to_string(state.capacity) + " reserved target positions are used");
    check_shape("Transformer.decode_step", "tokens", tokens.shape(), {state.x.dim(0)}, "one token per batch item");
    tgt_embedding_.forward(tokens, state.x);
    state.x.matrix() *= embedding_scale();
    positions_.add_to(state.x, state.length);
    for (std::size_t l = 0; l < decoder_.size(); ++l) {
      decoder_[l].step(state.x, state.layers[l], state.memory_lengths, state.workspace, state.y,
                       Watch<Scalar>{observer, {}}.layer("decoder.layers", static_cast<Index>(l)));
      std::swap(state.x, state.y);
    }
    decoder_norm_.forward(state.x, state.y);
    generate_logits(state.y, state.logits);
    ++state.length;
    record_newest_logits(observer, state.logits);
  }

  template <typename F>
  void visit_parameters(F&& f) {
    visit_child(src_embedding_, "src_embedding", f);
    visit_child(tgt_embedding_, "tgt_embedding", f);
    for (std::size_t i = 0; i < encoder_.size(); ++i) visit_child(encoder_[i], "encoder.layers." + std::to_string(i), f);
    visit_child(encoder_norm_, "encoder.norm", f);
    for (std::size_t i = 0; i < decoder_.size(); ++i) visit_child(decoder_[i], "decoder.layers." + std::to_string(i), f);
    visit_child(decoder_norm_, "decoder.norm", f);
    if (!config_.tie_target_embedding)
      visit_child(generator_, "generator", f);
    else
      visit_parameter(f, "generator.bias", generator_.bias(), generator_.bias_grad());
  }

  const TransformerConfig& config() const { return config_; }
  // The sinusoid table [max_len, D] (PyTorch's positional_encoding.pos_embedding, without its middle axis).
  const Tensor<Scalar>& position_table() const { return positions_.table(); }
  // Use a checkpoint's stored table (checked to be the sinusoid by the loader): see PositionalEncoding::set_table.
  void set_position_table(const Tensor<Scalar>& table) { positions_.set_table(table); }

 private:
  Scalar embedding_scale() const { return static_cast<Scalar>(std::sqrt(static_cast<double>(config_.d_model))); }

  void check_ids(const char* where, const char* what, const TensorView<const std::int64_t>& ids, const std::vector<Index>& lengths) const {
    check_shape(where, what, ids.shape(), {"B", "T"});
    if (ids.dim(1) > config_.max_len)
      throw RangeError(std::string(where) + ": " + what + " has " + std::to_string(ids.dim(1)) + " positions, more than max_len " +
                       std::to_string(config_.max_len));
    if (static_cast<Index>(lengths.size()) != ids.dim(0))
      throw ShapeError(std::string(where) + ": " + std::to_string(lengths.size()) + " lengths for " + what + " of shape " + ids.shape().str());
  }

  static DecoderLayerOptions<Scalar> decoder_options(const TransformerActivations<Scalar>& saved) {
    DecoderLayerOptions<Scalar> options;
    options.self_mask = &saved.tgt_mask;
    options.memory_mask = &saved.src_padding;
    return options;
  }

  // ids [B, T] -> embedding * sqrt(D) + PE[offset:], [B, T, D] (the training forward drops out the result)
  Tensor<Scalar> embed(const Embedding<Scalar>& embedding, const TensorView<const std::int64_t>& ids, Index offset) const {
    Tensor<Scalar> x = embedding.forward(ids);
    x.matrix() *= embedding_scale();
    positions_.add_to(x, offset);
    return x;
  }

  // x [..., D] -> logits [..., V_tgt] through the generator (or the tied target embedding).
  void generate_logits(TensorView<const Scalar> x, TensorView<Scalar> logits) const {
    const Tensor<Scalar>& w = config_.tie_target_embedding ? tgt_embedding_.weight() : generator_.weight();
    linear_forward<Scalar>(x.matrix(), w.matrix(), generator_.bias().data(), logits.matrix());
  }

  TransformerConfig config_;
  Embedding<Scalar> src_embedding_, tgt_embedding_;  // [V_src, D], [V_tgt, D]
  PositionalEncoding<Scalar> positions_;             // [max_len, D], fixed
  Dropout<Scalar> dropout_{config_.dropout};         // on embedding + positions (the paper's 5.4), training only
  std::vector<EncoderLayer<Scalar>> encoder_;
  LayerNorm<Scalar> encoder_norm_;
  std::vector<DecoderLayer<Scalar>> decoder_;
  LayerNorm<Scalar> decoder_norm_;
  Linear<Scalar> generator_;  // [V_tgt, D]
};

}  // namespace eigenformer
