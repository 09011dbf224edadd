// io/hf_gpt2.hpp: the checkpoint adapter for Hugging Face GPT-2 directories (config.json + model.safetensors, as
// downloaded for openai-community/gpt2, -medium, -large, -xl, or written by save_pretrained). One table maps names:
//   ours                                  Hugging Face (optionally prefixed "transformer.")
//   wte.weight, wpe.weight, ln_f.*        the same
//   h.N.norm1.*, h.N.norm2.*              h.N.ln_1.*, h.N.ln_2.*
//   h.N.self_attn.in_proj.weight [3D, D]  h.N.attn.c_attn.weight [D, 3D]   Conv1D: stored [in, out], transposed on load
//   h.N.self_attn.out_proj.weight         h.N.attn.c_proj.weight            transposed
//   h.N.feed_forward.linear1.weight [F,D] h.N.mlp.c_fc.weight [D, F]        transposed
//   h.N.feed_forward.linear2.weight [D,F] h.N.mlp.c_proj.weight [F, D]      transposed
//   (biases map the same way, untransposed)
// Skipped: the causal-mask buffers h.N.attn.bias and h.N.attn.masked_bias; lm_head.weight, which must equal
// wte.weight (GPT-2 ties them). Any dtype the reader converts (F32, F16, BF16, F64) loads into Scalar.
// save_gpt2 writes the same layout (plain names, F32).
#pragma once

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
#include "eigenformer/models/gpt2.hpp"
#include "eigenformer/ops/activations.hpp"

namespace eigenformer {

// The number of parameters of GPT2(c), as count_parameters gives once it is built, from a shape-only pass over the
// model (io/parameters.hpp). RangeError naming `where` if it passes 2^62.
inline std::uint64_t gpt2_parameter_count(const GPT2Config& c, const std::string& where = "GPT2Config") {
  c.validate(where);
  return parameter_count<GPT2<float>>(c, {&GPT2Config::n_layer},
                                      where + ": the parameter count of n_layer " + std::to_string(c.n_layer) + ", n_embd " +
                                          std::to_string(c.n_embd) + ", n_inner " + std::to_string(c.n_inner) + ", n_positions " +
                                          std::to_string(c.n_positions) + ", vocab_size " + std::to_string(c.vocab_size),
                                      [](const GPT2<float>&) { return std::vector<Shape>{}; });
}

// What GPT2<Scalar>(c) takes once loaded (weights) and generating `batch` sequences of `context` positions (KV cache:
// 2 x n_layer x batch x context x n_embd). context 0 means n_positions. RangeError for a batch or context out of range.
template <typename Scalar>
MemoryEstimate estimate_gpt2_memory(const GPT2Config& c, Index batch = 1, Index context = 0, const std::string& where = "estimate_gpt2_memory") {
  return detail::estimate_memory(gpt2_parameter_count(c, where), sizeof(Scalar), {2, c.n_layer, c.n_embd}, batch, context, c.n_positions,
                                 "n_positions", where);
}

// A Hugging Face GPT-2 config.json, already parsed (`where` names it in messages): every field used is checked, the
// others are ignored. Sizes whose parameter count passes 2^62 are refused here, before anything is allocated.
inline GPT2Config gpt2_config_from_json(const nlohmann::json& j, const std::string& where) {
  const ConfigReader r(j, where);
  GPT2Config c;
  c.n_layer = r.integer("n_layer");
  c.n_head = r.integer("n_head");
  c.n_embd = r.integer("n_embd");
  c.n_positions = r.integer("n_positions");
  c.vocab_size = r.integer("vocab_size");
  c.n_inner = r.integer_or("n_inner", 0);
  c.layer_norm_epsilon = r.number_or("layer_norm_epsilon", 1e-5);
  const std::string activation = r.string_or("activation_function", "gelu_new");
  try {
    c.activation = activation_from_name(activation);
  } catch (const RangeError& e) {
    throw FormatError(where + ": field 'activation_function': " + detail::printable(e.what(), 200));  // it quotes the file's text
  }
  c.bos_token_id = r.integer_or("bos_token_id", 50256);
  c.eos_token_id = r.integer_or("eos_token_id", 50256);
  c.embd_pdrop = r.number_or("embd_pdrop", 0.1);  // Hugging Face's defaults, all three
  c.resid_pdrop = r.number_or("resid_pdrop", 0.1);
  c.attn_pdrop = r.number_or("attn_pdrop", 0.1);
  c.validate(where);
  (void)gpt2_parameter_count(c, where);
  return c;
}

// Reads a Hugging Face GPT-2 config.json (see gpt2_config_from_json).
inline GPT2Config read_gpt2_config(const std::string& path) { return gpt2_config_from_json(read_json_file(path), path); }

// Our parameter name -> the Hugging Face name (without the optional "transformer." prefix).
inline std::string hf_gpt2_name(const std::string& ours) {
  const std::pair<const char*, const char*> table[] = {{".norm1.", ".ln_1."},
                                                       {".norm2.", ".ln_2."},
                                                       {".self_attn.in_proj.", ".attn.c_attn."},
                                                       {".self_attn.out_proj.", ".attn.c_proj."},
                                                       {".feed_forward.linear1.", ".mlp.c_fc."},
                                                       {".feed_forward.linear2.", ".mlp.c_proj."}};
  for (const auto& [from, to] : table) {
    const std::size_t at = ours.find(from);
    if (at != std::string::npos) return ours.substr(0, at) + to + ours.substr(at + std::string(from).size());
  }
  return ours;
}

// True for our weights that Hugging Face stores as Conv1D [in, out].
inline bool hf_gpt2_transposed(const std::string& ours) {
  const std::string suffix = ".weight";
  return ours.rfind("h.", 0) == 0 && ours.size() > suffix.size() && ours.compare(ours.size() - suffix.size(), suffix.size(), suffix) == 0 &&
         hf_gpt2_name(ours) != ours && ours.find(".norm") == std::string::npos;
}

// True for "h.N.attn.bias" and "h.N.attn.masked_bias": causal-mask buffers that hub files carry, not weights.
inline bool hf_gpt2_is_mask_buffer(const std::string& name) {
  if (name.rfind("h.", 0) != 0) return false;
  std::size_t i = 2;
  while (i < name.size() && name[i] >= '0' && name[i] <= '9') ++i;
  const std::string rest = name.substr(i);
  return i > 2 && (rest == ".attn.bias" || rest == ".attn.masked_bias");
}

// Loads DIR/config.json and DIR/model.safetensors. Before the model is allocated: a config describing more values than
// the file could hold is refused (FormatError), and so is a model whose weights and KV cache (for load.batch x
// load.context positions) exceed load.memory_budget (RangeError with both figures; checked before the file is mapped).
// Then every missing, unexpected and wrong-shape tensor is listed in one FormatError naming the file; a NaN or infinite
// weight is a RangeError naming its tensor; a model that the system cannot give memory for, an OutOfMemoryError with
// the same figures as the budget's.
// The name table: our name -> Hugging Face's (rename), the Conv1D weights (transposed), and the file's tensors that
// are not parameters (ignore): the mask buffers, and lm_head.weight, which load_gpt2 checks against wte.
inline LoadOptions hf_gpt2_names(const std::string& prefix = "") {
  LoadOptions names;
  names.prefix = prefix;
  names.rename = hf_gpt2_name;
  names.transposed = hf_gpt2_transposed;
  names.ignore = [prefix](const std::string& name) { return name == "lm_head.weight" || hf_gpt2_is_mask_buffer(name.substr(prefix.size())); };
  names.what = "GPT2";
  return names;
}

template <typename Scalar>
GPT2<Scalar> load_gpt2(const std::string& dir, const ModelLoadOptions& load = {}) {
  const std::string config_path = dir + "/config.json";
  const GPT2Config config = read_gpt2_config(config_path);
  CheckpointModel info;
  info.memory = estimate_gpt2_memory<Scalar>(config, load.batch, load.context, "load_gpt2");
  info.name = std::string("GPT-2 as ") + detail::scalar_name<Scalar>();
  check_memory_budget(info.memory, load, dir, info.name);  // from the config alone: before the file is even mapped
  const SafeTensors file = open_checkpoint(dir);
  info.values = gpt2_parameter_count(config, config_path);
  info.sizes = "n_layer " + std::to_string(config.n_layer) + ", n_embd " + std::to_string(config.n_embd) + ", n_positions " +
               std::to_string(config.n_positions) + " and vocab_size " + std::to_string(config.vocab_size);
  const std::string prefix = file.contains("transformer.wte.weight") ? "transformer." : "";
  GPT2<Scalar> model = load_checkpoint<GPT2<Scalar>>(dir, config_path, config, file, info, hf_gpt2_names(prefix), load);
  if (file.contains("lm_head.weight")) {
    // GPT-2 ties the output projection to wte; a file whose lm_head differs is another model.
    const Tensor<Scalar> lm_head = file.get<Scalar>("lm_head.weight", NonFinite::refuse);
    Tensor<Scalar>* wte = nullptr;
    model.visit_parameters([&](const std::string& n, Tensor<Scalar>& t) {
      if (n == "wte.weight") wte = &t;
    });
    if (lm_head.shape() != wte->shape() || !(lm_head.matrix() == wte->matrix()))
      throw FormatError(file.path() + ": 'lm_head.weight' differs from '" + prefix + "wte.weight'; GPT-2 ties them, and untied heads are not supported");
  }
  return model;
}

// Writes DIR/config.json and DIR/model.safetensors in the Hugging Face layout (plain names, Conv1D weights [in, out],
// F32, or BF16 (rounded to nearest even) at half the size), which load_gpt2 and Hugging Face's
// GPT2LMHeadModel.from_pretrained read. DIR must exist.
template <typename Scalar>
void save_gpt2(GPT2<Scalar>& model, const std::string& dir, DType dtype = DType::F32) {
  const GPT2Config& c = model.config();
  if (c.activation == Activation::relu) throw RangeError("save_gpt2: Hugging Face's GPT-2 has no relu activation; the model uses one");
  nlohmann::json j = {{"architectures", {"GPT2LMHeadModel"}},
                      {"model_type", "gpt2"},
                      {"activation_function", c.activation == Activation::gelu_tanh ? "gelu_new" : "gelu"},
                      {"n_layer", c.n_layer},
                      {"n_head", c.n_head},
                      {"n_embd", c.n_embd},
                      {"n_positions", c.n_positions},
                      {"n_ctx", c.n_positions},
                      {"vocab_size", c.vocab_size},
                      {"layer_norm_epsilon", c.layer_norm_epsilon},
                      {"bos_token_id", c.bos_token_id},
                      {"eos_token_id", c.eos_token_id},
                      {"embd_pdrop", c.embd_pdrop},
                      {"resid_pdrop", c.resid_pdrop},
                      {"attn_pdrop", c.attn_pdrop}};
  j["n_inner"] = c.n_inner > 0 ? nlohmann::json(c.n_inner) : nlohmann::json(nullptr);
  if (dtype != DType::F32 && dtype != DType::BF16 && dtype != DType::F16)
    throw RangeError("save_gpt2: weights are saved as F32, F16 or BF16, not " + std::string(detail::dtype_entry(dtype).name));
  j["torch_dtype"] = dtype == DType::F32 ? "float32" : dtype == DType::BF16 ? "bfloat16" : "float16";
  save_checkpoint(model, dir, j, hf_gpt2_names(), {}, dtype);
}

}  // namespace eigenformer
