// showcase: the building blocks of an encoder-decoder Transformer on a toy batch, step by step.
// Weights are random (seeded), so the numbers mean nothing; the shapes, masks and attention patterns are the
// point: padding, causal masking, cross-attention over a padded memory, and what a fully masked query yields.
//   build/bin/showcase [--seed N] [--threads N] [--d-model N] [--heads N]
#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdint>
#include <iomanip>
#include <iostream>
#include <string>
#include <vector>

#include <eigenformer/eigenformer.hpp>

using namespace eigenformer;
using Scalar = float;

namespace {

// Every parameter drawn from N(0, 0.3^2), LayerNorm gains around 1: enough to make the attention patterns visible.
template <typename Block>
void randomise(Block& block, Random& rng) {
  block.visit_parameters([&](const std::string& name, Tensor<Scalar>& t) {
    const bool gain = name.size() >= 6 && name.find("norm") != std::string::npos && name.compare(name.size() - 6, 6, "weight") == 0;
    fill_normal(t.view(), rng, gain ? 1.0 : 0.0, gain ? 0.1 : 0.3);
  });
}

void print_ids(const Tensor<std::int64_t>& ids, const std::vector<Index>& lengths) {
  for (Index b = 0; b < ids.dim(0); ++b) {
    std::cout << "     item " << b << ":";
    for (Index t = 0; t < ids.dim(1); ++t) {
      if (t < lengths[static_cast<std::size_t>(b)]) std::cout << std::setw(4) << ids.at(b, t);
      else std::cout << " pad";
    }
    std::cout << "   (length " << lengths[static_cast<std::size_t>(b)] << ")\n";
  }
}

// One head's [T, S] attention weights as a table; "  .  " where the weight is exactly zero (masked).
void print_weights(const Tensor<Scalar>& weights, Index b, Index h, const char* key_name) {
  const Index T = weights.dim(2), S = weights.dim(3);
  std::cout << "          ";
  for (Index s = 0; s < S; ++s) std::cout << std::setw(8) << (key_name + std::to_string(s));
  std::cout << std::setw(10) << "row sum" << "\n";
  for (Index t = 0; t < T; ++t) {
    std::cout << "     q" << t << "   ";
    double sum = 0;
    for (Index s = 0; s < S; ++s) {
      const Scalar w = weights.at(b, h, t, s);
      sum += w;
      if (w == 0) std::cout << std::setw(8) << ".";
      else std::cout << std::fixed << std::setprecision(3) << std::setw(8) << w;
    }
    std::cout << std::fixed << std::setprecision(3) << std::setw(10) << sum << "\n";
  }
}

int run(int argc, char** argv) {
  CLI::App app{"Eigenformer showcase: the Transformer's building blocks on a toy batch (random weights)."};
  std::uint64_t seed = 1;
  int threads = 0;
  Index d_model = 16, heads = 4;
  app.add_option("--seed", seed, "seed for the random weights and token ids")->capture_default_str();
  app.add_option("--threads", threads, "threads to use (default: all cores)")->check(CLI::Range(1, 1024));
  app.add_option("--d-model", d_model, "model width")->capture_default_str()->check(CLI::Range(2, 1024));
  app.add_option("--heads", heads, "attention heads (must divide --d-model)")->capture_default_str()->check(CLI::Range(1, 64));
  app.failure_message([](const CLI::App*, const CLI::Error& e) { return std::string("showcase: ") + e.what() + " (see --help)\n"; });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (d_model % heads != 0) throw RangeError("--d-model " + std::to_string(d_model) + " is not a multiple of --heads " + std::to_string(heads));
  if (threads > 0) set_num_threads(threads);

  const Index vocab = 20, B = 2, S = 6, T = 5, d_ff = 4 * d_model;
  Random rng(seed);
  std::cout << "Eigenformer showcase: an encoder-decoder Transformer's blocks on a toy batch\n"
            << "(random weights, seed " << seed << ", " << num_threads() << " thread(s), d_model " << d_model << ", " << heads
            << " heads, vocabulary " << vocab << ")\n\n";

  // 1. Token ids -> vectors.
  Tensor<std::int64_t> src({B, S}), tgt({B, T});
  for (Index i = 0; i < src.size(); ++i) src[i] = rng.integer(3, vocab);
  for (Index i = 0; i < tgt.size(); ++i) tgt[i] = rng.integer(3, vocab);
  const std::vector<Index> src_lengths = {6, 3}, tgt_lengths = {5, 3};
  std::cout << "1. Source and target token ids, a batch of two sequences of unequal length\n   source [B, S] = [2, 6]\n";
  print_ids(src, src_lengths);
  std::cout << "   target [B, T] = [2, 5]\n";
  print_ids(tgt, tgt_lengths);

  Embedding<Scalar> src_embedding(EmbeddingConfig{vocab, d_model}), tgt_embedding(EmbeddingConfig{vocab, d_model});
  randomise(src_embedding, rng);
  randomise(tgt_embedding, rng);
  const PositionalEncoding<Scalar> positions(PositionalEncodingConfig{PositionKind::sinusoidal, 64, d_model});
  auto embed = [&](const Embedding<Scalar>& embedding, const Tensor<std::int64_t>& ids) {
    Tensor<Scalar> x = embedding.forward(ids);
    x.matrix() *= std::sqrt(static_cast<Scalar>(d_model));  // the paper scales embeddings by sqrt(d_model)
    positions.add_to(x);
    return x;
  };
  const Tensor<Scalar> src_x = embed(src_embedding, src), tgt_x = embed(tgt_embedding, tgt);
  std::cout << "\n2. Embedding * sqrt(d_model) + sinusoidal PositionalEncoding\n   source " << src_x.shape().str() << ", target "
            << tgt_x.shape().str() << "  ([B, T, D])\n";

  // 2. Encoder: self-attention over the source, padding masked.
  EncoderLayer<Scalar> encoder(EncoderLayerConfig{d_model, heads, d_ff, Activation::relu, /*norm_first=*/false});
  randomise(encoder, rng);
  const Mask src_mask = Mask::key_padding(src_lengths, S);
  Tensor<Scalar> enc_weights;
  const Tensor<Scalar> memory = encoder.forward(src_x, {&src_mask, &enc_weights});
  std::cout << "\n3. EncoderLayer (post-norm, " << count_parameters(encoder) << " parameters) with Mask::key_padding({6, 3}, 6)\n"
            << "   memory " << memory.shape().str() << "; self-attention weights " << enc_weights.shape().str()
            << " ([B, H, T, S]). Item 1, head 0: keys 3-5 are padding\n";
  print_weights(enc_weights, 1, 0, "k");

  // 3. Decoder: causal self-attention with target padding, then cross-attention over the padded memory.
  DecoderLayer<Scalar> decoder(DecoderLayerConfig{d_model, heads, d_ff, Activation::gelu_erf, /*norm_first=*/true});
  randomise(decoder, rng);
  const Mask tgt_mask = Mask::causal(T, T) & Mask::key_padding(tgt_lengths, T);
  Tensor<Scalar> self_weights, cross_weights;
  DecoderLayerOptions<Scalar> options;
  options.self_mask = &tgt_mask;
  options.memory_mask = &src_mask;
  options.self_attention_weights = &self_weights;
  options.cross_attention_weights = &cross_weights;
  const Tensor<Scalar> decoded = decoder.forward(tgt_x, memory, options);
  std::cout << "\n4. DecoderLayer (pre-norm, GELU) with self mask Mask::causal(5, 5) & Mask::key_padding({5, 3}, 5)\n"
            << "   output " << decoded.shape().str() << ". Self-attention, item 0, head 0: query i sees keys 0..i\n";
  print_weights(self_weights, 0, 0, "k");
  std::cout << "   Cross-attention, item 1, head 0: every target position reads the 3 real source tokens\n";
  print_weights(cross_weights, 1, 0, "m");

  // 4. Output projection and the next-token distribution of the last real target position of item 0.
  Linear<Scalar> generator(LinearConfig{d_model, vocab});
  randomise(generator, rng);
  Tensor<Scalar> logits = generator.forward(decoded);  // [B, T, V]
  RowMatrix<Scalar> last = logits.slice(0).matrix().row(T - 1);
  softmax_rows<Scalar>(MatrixMap<Scalar>(last.data(), 1, vocab));
  Index best = 0;
  last.row(0).maxCoeff(&best);
  std::cout << "\n5. Linear to the vocabulary " << logits.shape().str() << ", softmax: item 0's next token would be " << best
            << " (p = " << std::setprecision(3) << last(0, best) << ")\n";

  // 5. A query that may attend to nothing.
  MultiHeadAttention<Scalar> attention(MultiHeadAttentionConfig{d_model, heads});
  randomise(attention, rng);
  Tensor<bool> allowed({T, T}, true);
  for (Index s = 0; s < T; ++s) allowed.at(2, s) = false;
  const Mask none_for_q2 = Mask::allowed(allowed);
  Tensor<Scalar> w;
  const Tensor<Scalar> y = attention.forward(tgt_x, {&none_for_q2, &w});
  std::cout << "\n6. A query with no allowed key (query 2 under Mask::allowed): PyTorch returns NaN there;\n"
            << "   Eigenformer gives it zero weights and a zero attention output, so the block outputs out_proj.bias.\n"
            << "   weights of query 2, item 0, head 0: " << w.slice(0).slice(0).matrix().row(2) << "\n"
            << "   every output finite: " << (y.matrix().allFinite() ? "yes" : "no") << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const Error& e) {
    std::cerr << "showcase: " << e.what() << "\n";
    return 1;
  }
}
