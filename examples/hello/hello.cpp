// hello: the README's example. One encoder layer of the original Transformer on a padded batch.
#include <eigenformer/eigenformer.hpp>

#include <iostream>

int main() {
  using namespace eigenformer;
  EncoderLayer<float> layer(EncoderLayerConfig{});  // the paper's base sizes: d_model 512, 8 heads, d_ff 2048
  Random rng(42);
  layer.visit_parameters([&](const std::string&, Tensor<float>& p) { fill_normal(p.view(), rng, 0.0, 0.02); });
  // Or load trained weights: load_parameters(layer, SafeTensors("encoder_layer.safetensors"));

  const Tensor<float> x = random_tensor<float>({2, 10, 512}, /*seed=*/1);  // [B, T, D]
  const Mask padding = Mask::key_padding({10, 7}, /*keys=*/10);            // item 1: 7 tokens, then padding
  Tensor<float> weights;                                                   // receives [B, H, T, T]
  const Tensor<float> y = layer.forward(x, {&padding, &weights});
  std::cout << "y " << y.shape().str() << ", attention weights " << weights.shape().str() << "\n";
}
