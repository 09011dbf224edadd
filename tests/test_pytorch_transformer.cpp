// io/pytorch_transformer.hpp: loading and saving the PyTorch translation tutorial's model directory. What we save
// loads back bit for bit (and PyTorch loads it: tools/check_torch_loads_translator.py); every bad config field and
// checkpoint problem is refused with the file and field named.
#include "eigenformer/io/pytorch_transformer.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <utility>

#include "support/temp_file.hpp"
#include "support/translator_fixture.hpp"

using namespace eigenformer;
using namespace eigenformer::testing;

namespace {
// A copy of a fixture directory whose config.json has `from` replaced by `to`.
void copy_with_config_edit(const std::string& name, const TempDir& dir, const std::string& from, const std::string& to) {
  std::string config = read_text_file(translator_fixture_dir(name) + "/config.json");
  const std::size_t at = config.find(from);
  REQUIRE(at != std::string::npos);
  config.replace(at, from.size(), to);
  dir.write("config.json", config);
  std::filesystem::copy_file(translator_fixture_dir(name) + "/model.safetensors", dir.path() + "/model.safetensors");
}
}  // namespace

TEST_CASE("pytorch_transformer_name: our names map to the tutorial's state_dict names") {
  CHECK(pytorch_transformer_name("src_embedding.weight") == "src_tok_emb.embedding.weight");
  CHECK(pytorch_transformer_name("encoder.layers.1.self_attn.in_proj.weight") == "transformer.encoder.layers.1.self_attn.in_proj_weight");
  CHECK(pytorch_transformer_name("decoder.layers.0.cross_attn.out_proj.bias") == "transformer.decoder.layers.0.multihead_attn.out_proj.bias");
  CHECK(pytorch_transformer_name("decoder.layers.0.feed_forward.linear2.weight") == "transformer.decoder.layers.0.linear2.weight");
  CHECK(pytorch_transformer_name("decoder.norm.bias") == "transformer.decoder.norm.bias");
  CHECK(pytorch_transformer_name("generator.weight") == "generator.weight");
}

TEST_CASE("load_transformer / save_transformer: what we save loads back bit for bit, in the same layout") {
  for (const std::string& name : translator_fixture_names()) {
    CAPTURE(name);
    Transformer<float> model = load_transformer<float>(translator_fixture_dir(name));
    TempDir dir;
    save_transformer(model, dir.path());
    Transformer<float> again = load_transformer<float>(dir.path());
    std::vector<const Tensor<float>*> a;
    model.visit_parameters([&](const std::string&, Tensor<float>& t) { a.push_back(&t); });
    std::size_t i = 0;
    again.visit_parameters([&](const std::string& n, Tensor<float>& t) {
      CAPTURE(n);
      CHECK(t.matrix() == a[i++]->matrix());
    });
    CHECK(again.position_table().matrix() == model.position_table().matrix());
    // Same tensor names, shapes and dtypes as the PyTorch-written file.
    const SafeTensors theirs(translator_fixture_dir(name) + "/model.safetensors"), ours(dir.path() + "/model.safetensors");
    CHECK(ours.names() == theirs.names());
    for (const std::string& n : theirs.names()) {
      CAPTURE(n);
      CHECK(ours.info(n).shape == theirs.info(n).shape);
      CHECK(ours.info(n).dtype == DType::F32);
    }
    CHECK(read_transformer_config(dir.path() + "/config.json").d_model == model.config().d_model);
  }
}

TEST_CASE("read_transformer_config / save_transformer: the optional dropout (the tutorial's 0.1 when absent) is read, and written only "
          "when it is not that default") {
  const std::string name = "post_gelu_odd";
  REQUIRE(read_text_file(translator_fixture_dir(name) + "/config.json").find("dropout") == std::string::npos);
  Transformer<float> model = load_transformer<float>(translator_fixture_dir(name));
  CHECK(model.config().dropout == TransformerConfig{}.dropout);
  TempDir same;
  save_transformer(model, same.path());
  CHECK_FALSE(read_json_file(same.path() + "/config.json").contains("dropout"));  // PyTorch's checker wants the tutorial's fields
  TempDir edited;
  copy_with_config_edit(name, edited, "\"nhead\": 2,", "\"nhead\": 2, \"dropout\": 0.25,");
  Transformer<float> other = load_transformer<float>(edited.path());
  const nlohmann::json j = read_json_file(edited.path() + "/config.json");
  CHECK(other.config().dropout == j.at("dropout").get<double>());
  TempDir resaved;
  save_transformer(other, resaved.path());
  CHECK(read_json_file(resaved.path() + "/config.json").at("dropout").get<double>() == other.config().dropout);
  CHECK(read_transformer_config(resaved.path() + "/config.json").dropout == other.config().dropout);
}

TEST_CASE("read_transformer_config: each bad field is named") {
  const std::string name = "post_gelu_odd";
  struct Case {
    std::string from, to, message;
  };
  const Case cases[] = {
      {"\"nhead\": 2,", "", "field 'nhead' is missing"},
      {"\"d_model\": 10", "\"d_model\": 10.5", "field 'd_model' is 10.5; expected an integer"},
      {"\"activation\": \"gelu\"", "\"activation\": \"swish\"", "field 'activation' is \"swish\"; expected \"relu\" or \"gelu\" (nn.Transformer's choices)"},
      {"\"activation\": \"gelu\"", "\"activation\": \"\\u001b[2J\"",  // escaped in the message (issue 13)
       "field 'activation' is \"\\u001b[2J\"; expected \"relu\" or \"gelu\" (nn.Transformer's choices)"},
      {"\"norm_first\": false", "\"norm_first\": 0", "field 'norm_first' is 0; expected true or false"},
      {"\"nhead\": 2", "\"nhead\": 3", "d_model 10 is not a multiple of nhead 3"},
      {"\"nhead\": 2,", "\"nhead\": 2, \"dropout\": 1.5,", "dropout is 1.5; expected 0 <= dropout < 1"},
      {"\"nhead\": 2,", "\"nhead\": 2, \"dropout\": null,", "field 'dropout' is null; expected a number"},
      {"\"eos_id\": 3", "\"eos_id\": 29", "eos_id 29 is outside the target vocabulary [0, 29)"},
      // Issue 13: the specials against the source vocabulary too (37 words in this fixture, cut to 3 and 2 here), and
      // integers beyond 64 bits quoted as written.
      {"\"src_vocab_size\": 37", "\"src_vocab_size\": 3", "eos_id 3 is outside the source vocabulary [0, 3); sources hold BOS, EOS and padding too"},
      {"\"src_vocab_size\": 37", "\"src_vocab_size\": 2", "bos_id 2 is outside the source vocabulary [0, 2); sources hold BOS, EOS and padding too"},
      {"\"pad_id\": 1", "\"pad_id\": 9223372036854775808", "field 'pad_id' is 9223372036854775808; expected an integer from -9223372036854775808 to 9223372036854775807"},
      {"\"bos_id\": 2", "\"bos_id\": -9223372036854775809", "field 'bos_id' is -9223372036854775809; expected an integer from -9223372036854775808 to 9223372036854775807"},
      {"\"num_decoder_layers\": 1", "\"num_decoder_layers\": 18446744073709551617",
       "field 'num_decoder_layers' is 18446744073709551617; expected an integer from -9223372036854775808 to 9223372036854775807"},
      {"{", "[", "not valid JSON: "},
  };
  for (const Case& c : cases) {
    CAPTURE(c.message);
    TempDir dir;
    copy_with_config_edit(name, dir, c.from, c.to);
    const std::string path = dir.path() + "/config.json";
    try {
      load_transformer<float>(dir.path());
      FAIL("no error");
    } catch (const Error& e) {
      const std::string what = e.what();
      CHECK(what.rfind(path + ": " + c.message, 0) == 0);
    }
  }
}

TEST_CASE("load_transformer: a checkpoint that does not fit the config lists every problem; a foreign position table is refused") {
  const std::string name = "pre_relu_2layers";
  const SafeTensors original(translator_fixture_dir(name) + "/model.safetensors");
  auto rewrite = [&](const TempDir& dir, const std::string& drop, const std::string& zero) {
    std::filesystem::copy_file(translator_fixture_dir(name) + "/config.json", dir.path() + "/config.json");
    SafeTensorsWriter w;
    for (const std::string& n : original.names()) {
      if (n == drop) continue;
      Tensor<float> t = original.get<float>(n);
      if (n == zero) t.set_zero();
      w.add(n, t);
    }
    w.add("extra.weight", Tensor<float>(Shape{2}));
    w.write(dir.path() + "/model.safetensors");
  };
  TempDir missing;
  rewrite(missing, "generator.bias", "");
  CHECK_THROWS_WITH_AS(load_transformer<float>(missing.path()),
                       (missing.path() + "/model.safetensors: 2 problems loading Seq2SeqTransformer: missing 'generator.bias'; unexpected 'extra.weight'").c_str(),
                       FormatError);
  TempDir foreign;
  rewrite(foreign, "", "positional_encoding.pos_embedding");
  {
    // Drop the extra tensor's complaint by loading through a copy without it: rewrite once more, keeping only the zeroed table.
    SafeTensorsWriter w;
    for (const std::string& n : original.names()) {
      Tensor<float> t = original.get<float>(n);
      if (n == "positional_encoding.pos_embedding") t.set_zero();
      w.add(n, t);
    }
    w.write(foreign.path() + "/model.safetensors");
  }
  try {
    load_transformer<float>(foreign.path());
    FAIL("no error");
  } catch (const FormatError& e) {
    const std::string what = e.what();
    CHECK(what.rfind(foreign.path() + "/model.safetensors: 'positional_encoding.pos_embedding' differs from the sinusoidal table at position 0, column 1", 0) == 0);
  }
}

TEST_CASE("transformer_value_count: count_parameters plus the sinusoid table, from the config alone") {
  for (const std::string& name : translator_fixture_names()) {
    CAPTURE(name);
    TransformerConfig c = read_transformer_config(translator_fixture_dir(name) + "/config.json");
    for (const bool tied : {false, true}) {
      CAPTURE(tied);
      c.tie_target_embedding = tied;
      Transformer<float> model(c);
      CHECK(transformer_value_count(c) == static_cast<std::uint64_t>(count_parameters(model) + model.position_table().size()));
    }
  }
}

TEST_CASE("load_transformer: a memory budget refuses, before loading, a model that needs more, with both figures") {
  const std::string dir = translator_fixture_dir("post_gelu_odd");
  const TransformerConfig c = read_transformer_config(dir + "/config.json");
  const MemoryEstimate need = estimate_transformer_memory<float>(c, 8);
  CHECK(need.weight_bytes == transformer_value_count(c) * 4);
  CHECK(need.cache_bytes == 4ull * 1 * 8 * 64 * 10 * 4);  // self- and cross-attention keys and values, 1 decoder layer
  ModelLoadOptions load;
  load.batch = 8;
  load.memory_budget = need.total_bytes() - 1;
  try {
    load_transformer<float>(dir, load);
    FAIL("no error");
  } catch (const RangeError& e) {
    CHECK(std::string(e.what()).rfind(dir + ": loading the Seq2SeqTransformer as float needs ", 0) == 0);
    CHECK(std::string(e.what()).find("(batch 8 x 64 positions); more than the memory budget of ") != std::string::npos);
  }
  load.memory_budget = need.total_bytes();
  CHECK(load_transformer<float>(dir, load).config().d_model == 10);
}

TEST_CASE("load_transformer: a config describing far more than its checkpoint holds is refused before the model is allocated") {
  TempDir dir;
  copy_with_config_edit("post_gelu_odd", dir, "\"max_len\": 64", "\"max_len\": 1000000000");
  CHECK_THROWS_WITH_AS(load_transformer<float>(dir.path()),
                       (dir.path() + "/config.json: d_model 10, dim_feedforward 14, 2 + 1 layers, vocabularies 37 and 29 and max_len 1000000000 make "
                                     "10000003831 values, more than the 17884 bytes of data in " + dir.path() +
                                     "/model.safetensors could hold; the config does not describe this checkpoint")
                           .c_str(),
                       FormatError);
  TempDir huge;
  copy_with_config_edit("post_gelu_odd", huge, "\"num_decoder_layers\": 1", "\"num_decoder_layers\": 4611686018427387904");
  CHECK_THROWS_WITH_AS(read_transformer_config(huge.path() + "/config.json"),
                       (huge.path() + "/config.json: num_decoder_layers is 4611686018427387904; expected at most 1073741824").c_str(), RangeError);
  // Sizes within the bounds whose values together pass 2^62: refused by the count, naming every size.
  TempDir wide;
  copy_with_config_edit("post_gelu_odd", wide, "\"d_model\": 10", "\"d_model\": 1073741824");
  try {
    read_transformer_config(wide.path() + "/config.json");
    FAIL("no error");
  } catch (const RangeError& e) {
    const std::string what = e.what();
    CHECK(what.rfind(wide.path() + "/config.json: the size of d_model 1073741824, dim_feedforward 14, num_encoder_layers 2, ", 0) == 0);
    CHECK(what.substr(what.size() - 16) == ", more than 2^62");
  }
}

TEST_CASE("load_transformer: a NaN or infinite weight, or one in the sinusoid table, is refused with the tensor's name (issue 13)") {
  const std::string name = "post_gelu_odd";
  const SafeTensors original(translator_fixture_dir(name) + "/model.safetensors");
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  for (DType dtype : {DType::F32, DType::F16, DType::BF16, DType::F64}) {
    for (const std::string bad : {"src_tok_emb.embedding.weight", "transformer.decoder.layers.0.multihead_attn.in_proj_weight", "generator.bias",
                                  "positional_encoding.pos_embedding"}) {
      for (const auto& [value, text] : {std::pair<double, std::string>{nan, "nan"}, {-inf, "-inf"}}) {
        CAPTURE(dtype_name(dtype));
        CAPTURE(bad);
        CAPTURE(text);
        TempDir dir;
        std::filesystem::copy_file(translator_fixture_dir(name) + "/config.json", dir.path() + "/config.json");
        SafeTensorsWriter w;
        for (const std::string& n : original.names()) {
          Tensor<double> t = original.get<double>(n);
          if (n == bad) t[7] = value;
          w.add(n, t, dtype);
        }
        w.write(dir.path() + "/model.safetensors");
        CHECK_THROWS_WITH_AS(load_transformer<float>(dir.path()),
                             (dir.path() + "/model.safetensors: tensor '" + bad + "' element 7 is " + text + "; expected a finite number").c_str(), RangeError);
      }
    }
  }
}
