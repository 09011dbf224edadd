// io/pytorch_transformer.hpp: the checkpoint adapter for PyTorch's translation tutorial model ("Seq2SeqTransformer",
// an nn.Transformer with token embeddings, a sinusoidal buffer and a generator), saved as a directory holding
// config.json and model.safetensors (its state_dict under its own names). Loading maps our names to theirs with
// one table; saving writes the same layout, so PyTorch can load_state_dict(strict=True) what we write.
//   ours                               theirs (tutorial state_dict)
//   src_embedding.weight               src_tok_emb.embedding.weight
//   tgt_embedding.weight               tgt_tok_emb.embedding.weight
//   encoder.* / decoder.*              transformer.encoder.* / transformer.decoder.*, where inside a layer
//     self_attn.in_proj.weight/bias      self_attn.in_proj_weight/bias   (likewise cross_attn -> multihead_attn)
//     feed_forward.linear1/2.*           linear1/2.*
//   generator.*                        generator.*
//   (the fixed sinusoid table)         positional_encoding.pos_embedding [max_len, 1, D], a buffer: checked
//                                      to be the sinusoid, then used as stored (float32-rounded, as PyTorch
//                                      uses it); written on save
#pragma once

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "eigenformer/core/error.hpp"
#include "eigenformer/core/tensor.hpp"
#include "eigenformer/io/checkpoint.hpp"
#include "eigenformer/io/config_json.hpp"
#include "eigenformer/io/memory_budget.hpp"
#include "eigenformer/io/parameters.hpp"
#include "eigenformer/io/safetensors.hpp"
#include "eigenformer/models/transformer.hpp"
#include "eigenformer/ops/activations.hpp"

namespace eigenformer {

// A name inside one of our encoder or decoder layers -> PyTorch's nn.TransformerEncoderLayer / DecoderLayer name.
inline std::string pytorch_layer_name(std::string name) {
  const std::pair<const char*, const char*> table[] = {
      {"in_proj.weight", "in_proj_weight"}, {"in_proj.bias", "in_proj_bias"}, {"feed_forward.", ""}, {"cross_attn.", "multihead_attn."}};
  for (const auto& [from, to] : table)
    for (std::size_t at = name.find(from); at != std::string::npos; at = name.find(from, at + std::string(to).size()))
      name.replace(at, std::string(from).size(), to);
  return name;
}

// A Transformer parameter name -> the tutorial's state_dict name.
inline std::string pytorch_transformer_name(const std::string& ours) {
  const std::pair<const char*, const char*> prefixes[] = {{"src_embedding.", "src_tok_emb.embedding."},
                                                           {"tgt_embedding.", "tgt_tok_emb.embedding."},
                                                           {"encoder.", "transformer.encoder."},
                                                           {"decoder.", "transformer.decoder."}};
  for (const auto& [from, to] : prefixes)
    if (ours.rfind(from, 0) == 0) return to + pytorch_layer_name(ours.substr(std::string(from).size()));
  return ours;  // generator.*
}

inline const char* pytorch_position_buffer() { return "positional_encoding.pos_embedding"; }

// The name table: our name -> the tutorial's (rename); the sinusoid buffer is not a parameter (ignore), and is
// checked and written on its own.
inline LoadOptions pytorch_transformer_names() {
  LoadOptions names;
  names.rename = pytorch_transformer_name;
  names.ignore = [](const std::string& name) { return name == pytorch_position_buffer(); };
  names.what = "Seq2SeqTransformer";
  return names;
}

// The values Transformer<Scalar>(c) holds once built: count_parameters plus the sinusoid table (max_len x D), from a
// shape-only pass over the model (io/parameters.hpp). RangeError naming `where` if it passes 2^62.
inline std::uint64_t transformer_value_count(const TransformerConfig& c, const std::string& where = "TransformerConfig") {
  c.validate(where);
  return parameter_count<Transformer<float>>(
      c, {&TransformerConfig::num_encoder_layers, &TransformerConfig::num_decoder_layers},
      where + ": the size of d_model " + std::to_string(c.d_model) + ", dim_feedforward " + std::to_string(c.d_ff) + ", num_encoder_layers " +
          std::to_string(c.num_encoder_layers) + ", num_decoder_layers " + std::to_string(c.num_decoder_layers) + ", src_vocab_size " +
          std::to_string(c.src_vocab_size) + ", tgt_vocab_size " + std::to_string(c.tgt_vocab_size) + ", max_len " + std::to_string(c.max_len),
      [](const Transformer<float>& m) { return std::vector<Shape>{m.position_table().shape()}; });
}

// What Transformer<Scalar>(c) takes once loaded (weights and the sinusoid table) and translating `batch` sources at
// once with up to `context` positions each (0: max_len). The KV cache is each decoder layer's self-attention keys and
// values (2 x batch x context x D) and its cross-attention keys and values of the source (as many again).
template <typename Scalar>
MemoryEstimate estimate_transformer_memory(const TransformerConfig& c, Index batch = 1, Index context = 0, const std::string& where = "estimate_transformer_memory") {
  // Each decoder layer caches the keys and values of its self-attention and of its cross-attention's memory.
  return detail::estimate_memory(transformer_value_count(c, where), sizeof(Scalar), {4, c.num_decoder_layers, c.d_model}, batch, context,
                                 c.max_len, "max_len", where);
}

// The tutorial model's config.json, already parsed (`where` names it in messages). Fields: d_model, nhead,
// num_encoder_layers, num_decoder_layers, dim_feedforward, activation, norm_first, layer_norm_eps, src_vocab_size,
// tgt_vocab_size, bos_id, eos_id, pad_id, max_len; optional tie_target_embedding, and dropout (the training p, absent:
// the tutorial's 0.1). Throws FormatError / RangeError
// naming the file and field; sizes whose value count passes 2^62 are refused here, before anything is allocated.
inline TransformerConfig transformer_config_from_json(const nlohmann::json& j, const std::string& path) {
  const ConfigReader r(j, path);
  TransformerConfig c;
  c.d_model = r.integer("d_model");
  c.num_heads = r.integer("nhead");
  c.num_encoder_layers = r.integer("num_encoder_layers");
  c.num_decoder_layers = r.integer("num_decoder_layers");
  c.d_ff = r.integer("dim_feedforward");
  const std::string activation = r.string("activation");
  if (activation != "relu" && activation != "gelu")
    throw FormatError(path + ": field 'activation' is " + detail::escape_text(activation, 80, '"') + "; expected \"relu\" or \"gelu\" (nn.Transformer's choices)");
  c.activation = activation_from_name(activation);
  c.norm_first = r.boolean("norm_first", false);
  c.layer_norm_eps = r.number("layer_norm_eps");
  c.src_vocab_size = r.integer("src_vocab_size");
  c.tgt_vocab_size = r.integer("tgt_vocab_size");
  c.bos_id = r.integer("bos_id");
  c.eos_id = r.integer("eos_id");
  c.pad_id = r.integer("pad_id");
  c.max_len = r.integer("max_len");
  c.tie_target_embedding = r.boolean("tie_target_embedding", false);
  c.dropout = r.number_or("dropout", 0.1);
  c.validate(path);
  (void)transformer_value_count(c, path);
  return c;
}

// Reads the tutorial model's config.json (see transformer_config_from_json).
inline TransformerConfig read_transformer_config(const std::string& path) { return transformer_config_from_json(read_json_file(path), path); }

// Loads DIR/config.json and DIR/model.safetensors (F32, F16, BF16 or F64) into a Transformer<Scalar>. Before the model
// is allocated: a config describing more values than the file could hold is refused (FormatError), and so is a model
// whose weights and KV cache (load.batch sources of load.context positions) exceed load.memory_budget (RangeError with
// both figures; checked before the file is mapped). Every missing, unexpected and wrong-shape tensor is reported in one
// message; a NaN or infinite value (a weight or the sinusoid buffer) is a RangeError naming its tensor; the sinusoid
// buffer must match ours; a model that the system cannot give memory for is an OutOfMemoryError with the figures.
template <typename Scalar>
Transformer<Scalar> load_transformer(const std::string& dir, const ModelLoadOptions& load = {}) {
  const std::string config_path = dir + "/config.json";
  const TransformerConfig config = read_transformer_config(config_path);
  CheckpointModel info;
  info.memory = estimate_transformer_memory<Scalar>(config, load.batch, load.context, "load_transformer");
  info.name = std::string("the Seq2SeqTransformer as ") + detail::scalar_name<Scalar>();
  check_memory_budget(info.memory, load, dir, info.name);  // from the config alone: before the file is even mapped
  const SafeTensors file = open_checkpoint(dir);
  info.values = transformer_value_count(config, config_path);
  info.sizes = "d_model " + std::to_string(config.d_model) + ", dim_feedforward " + std::to_string(config.d_ff) + ", " +
               std::to_string(config.num_encoder_layers) + " + " + std::to_string(config.num_decoder_layers) + " layers, vocabularies " +
               std::to_string(config.src_vocab_size) + " and " + std::to_string(config.tgt_vocab_size) + " and max_len " +
               std::to_string(config.max_len);
  Transformer<Scalar> model = load_checkpoint<Transformer<Scalar>>(dir, config_path, config, file, info, pytorch_transformer_names(), load);

  // The tutorial keeps its sinusoid table in the state dict; a model trained with another table would decode
  // garbage here, so it must be ours (to float32 rounding), and as long as max_len says.
  const std::string buffer = pytorch_position_buffer();
  if (!file.contains(buffer)) throw FormatError(file.path() + ": missing '" + buffer + "' (the sinusoid table)");
  const Tensor<double> table = file.get<double>(buffer, NonFinite::refuse);
  check_shape(file.path() + ": tensor '" + buffer + "'", "it", table.shape(), {config.max_len, 1, config.d_model}, "max_len, 1, d_model");
  const Tensor<Scalar>& ours = model.position_table();
  for (Index i = 0; i < ours.size(); ++i)
    if (!(std::abs(table[i] - static_cast<double>(ours[i])) <= 1e-5))
      throw FormatError(file.path() + ": '" + buffer + "' differs from the sinusoidal table at position " + std::to_string(i / config.d_model) +
                        ", column " + std::to_string(i % config.d_model) + " (" + std::to_string(table[i]) + " vs " +
                        std::to_string(static_cast<double>(ours[i])) + "); only the standard sinusoid is supported");
  // Then use the stored values themselves, rounded as PyTorch uses them.
  Tensor<Scalar> stored = table.template cast<Scalar>();
  stored.reshape(Shape{config.max_len, config.d_model});
  model.set_position_table(stored);
  return model;
}

// Writes DIR/config.json and DIR/model.safetensors (F32, the tutorial's names) so that PyTorch loads them
// strictly. DIR must exist. dropout is written only when it is not the tutorial's 0.1, so that a model with the
// default keeps exactly the fields tools/check_torch_loads_translator.py expects.
template <typename Scalar>
void save_transformer(Transformer<Scalar>& model, const std::string& dir) {
  const TransformerConfig& c = model.config();
  nlohmann::json j = {{"d_model", c.d_model},
                      {"nhead", c.num_heads},
                      {"num_encoder_layers", c.num_encoder_layers},
                      {"num_decoder_layers", c.num_decoder_layers},
                      {"dim_feedforward", c.d_ff},
                      {"activation", c.activation == Activation::relu ? "relu" : "gelu"},
                      {"norm_first", c.norm_first},
                      {"layer_norm_eps", c.layer_norm_eps},
                      {"src_vocab_size", c.src_vocab_size},
                      {"tgt_vocab_size", c.tgt_vocab_size},
                      {"bos_id", c.bos_id},
                      {"eos_id", c.eos_id},
                      {"pad_id", c.pad_id},
                      {"max_len", c.max_len}};
  if (c.activation == Activation::gelu_tanh) throw RangeError("save_transformer: nn.Transformer has no tanh GELU; the model uses one");
  if (c.tie_target_embedding) j["tie_target_embedding"] = true;
  if (c.dropout != 0.1) j["dropout"] = c.dropout;
  save_checkpoint(model, dir, j, pytorch_transformer_names(), [&](SafeTensorsWriter& writer) {
    if (c.tie_target_embedding) {  // the tutorial has no tying: write the shared matrix under both names
      Tensor<Scalar> copy;
      model.visit_parameters([&](const std::string& name, Tensor<Scalar>& t) {
        if (name == "tgt_embedding.weight") copy = t;
      });
      writer.add("generator.weight", copy, DType::F32);
    }
    Tensor<Scalar> table = model.position_table();
    table.reshape(Shape{c.max_len, 1, c.d_model});
    writer.add(pytorch_position_buffer(), table, DType::F32);
  });
}

}  // namespace eigenformer
