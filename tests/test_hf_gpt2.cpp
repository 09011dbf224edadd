// io/hf_gpt2.hpp: Hugging Face GPT-2 directories. The four published configs parse; every checkpoint variant loads
// (hub buffers skipped, "transformer." prefix, lm_head tied, F16, BF16); mismatches are listed in one message.
#include "eigenformer/io/hf_gpt2.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <utility>

#include "support/gpt2_fixture.hpp"
#include "support/temp_file.hpp"

using namespace eigenformer;
using namespace eigenformer::testing;

TEST_CASE("read_gpt2_config: the four published sizes parse, with the MLP 4x wide and tanh GELU") {
  for (const char* size : {"small", "medium", "large", "xl"}) {
    CAPTURE(size);
    const std::string path = std::string(EIGENFORMER_FIXTURE_DIR) + "/gpt2/gpt2_" + size + "_config.json";
    const nlohmann::json j = read_json_file(path);
    const GPT2Config c = read_gpt2_config(path);
    CHECK(c.n_layer == j.at("n_layer").get<Index>());
    CHECK(c.n_head == j.at("n_head").get<Index>());
    CHECK(c.n_embd == j.at("n_embd").get<Index>());
    CHECK(c.n_positions == j.at("n_positions").get<Index>());
    CHECK(c.vocab_size == j.at("vocab_size").get<Index>());
    CHECK(c.d_ff() == 4 * c.n_embd);
    CHECK(c.activation == Activation::gelu_tanh);
    CHECK(c.eos_token_id == j.at("eos_token_id").get<std::int64_t>());
    CHECK(c.embd_pdrop == j.at("embd_pdrop").get<double>());
    CHECK(c.resid_pdrop == j.at("resid_pdrop").get<double>());
    CHECK(c.attn_pdrop == j.at("attn_pdrop").get<double>());
  }
}

TEST_CASE("gpt2_config_from_json / save_gpt2: the three dropout rates are read (Hugging Face's defaults when absent) and written back") {
  nlohmann::json j = {{"n_layer", 1}, {"n_head", 2}, {"n_embd", 8}, {"n_positions", 4}, {"vocab_size", 10}, {"bos_token_id", 9}, {"eos_token_id", 9}};
  const GPT2Config defaults = gpt2_config_from_json(j, "config.json");
  CHECK(defaults.embd_pdrop == GPT2Config{}.embd_pdrop);
  CHECK(defaults.resid_pdrop == GPT2Config{}.resid_pdrop);
  CHECK(defaults.attn_pdrop == GPT2Config{}.attn_pdrop);
  j["embd_pdrop"] = 0.05, j["resid_pdrop"] = 0.25, j["attn_pdrop"] = 0.0;
  const GPT2Config c = gpt2_config_from_json(j, "config.json");
  CHECK(c.embd_pdrop == j.at("embd_pdrop").get<double>());
  CHECK(c.resid_pdrop == j.at("resid_pdrop").get<double>());
  CHECK(c.attn_pdrop == j.at("attn_pdrop").get<double>());
  GPT2<float> model(c);
  TempDir dir;
  save_gpt2(model, dir.path());
  const GPT2Config back = read_gpt2_config(dir.path() + "/config.json");
  CHECK(back.embd_pdrop == c.embd_pdrop);
  CHECK(back.resid_pdrop == c.resid_pdrop);
  CHECK(back.attn_pdrop == c.attn_pdrop);
  j["resid_pdrop"] = 1.5;
  CHECK_THROWS_WITH_AS(gpt2_config_from_json(j, "config.json"), "config.json: resid_pdrop is 1.5; expected 0 <= resid_pdrop < 1", RangeError);
  j["resid_pdrop"] = "0.1";
  CHECK_THROWS_WITH_AS(gpt2_config_from_json(j, "config.json"), "config.json: field 'resid_pdrop' is \"0.1\"; expected a number", FormatError);
}

TEST_CASE("hf_gpt2_name: the adapter's table") {
  CHECK(hf_gpt2_name("h.3.self_attn.in_proj.weight") == "h.3.attn.c_attn.weight");
  CHECK(hf_gpt2_name("h.3.feed_forward.linear2.bias") == "h.3.mlp.c_proj.bias");
  CHECK(hf_gpt2_name("h.11.norm2.weight") == "h.11.ln_2.weight");
  CHECK(hf_gpt2_name("wte.weight") == "wte.weight");
  CHECK(hf_gpt2_transposed("h.0.self_attn.out_proj.weight"));
  CHECK_FALSE(hf_gpt2_transposed("h.0.self_attn.out_proj.bias"));
  CHECK_FALSE(hf_gpt2_transposed("h.0.norm1.weight"));
  CHECK_FALSE(hf_gpt2_transposed("wte.weight"));
  CHECK(hf_gpt2_is_mask_buffer("h.10.attn.bias"));
  CHECK(hf_gpt2_is_mask_buffer("h.0.attn.masked_bias"));
  CHECK_FALSE(hf_gpt2_is_mask_buffer("h.0.attn.c_attn.bias"));
  CHECK_FALSE(hf_gpt2_is_mask_buffer("h.attn.bias"));
}

TEST_CASE("load_gpt2: F16 and BF16 files load to the values PyTorch rounds them to") {
  // The F32 variant holds the unrounded weights; the narrow files must load to exactly their rounding.
  const GPT2<float> f32 = load_gpt2<float>(gpt2_fixture_dir("tiny_f32_hub"));
  for (const char* name : {"tiny_f16", "tiny_bf16"}) {
    CAPTURE(name);
    GPT2<float> narrow = load_gpt2<float>(gpt2_fixture_dir(name));
    GPT2<float> wide = f32;
    std::vector<Tensor<float>*> w;
    wide.visit_parameters([&](const std::string&, Tensor<float>& t) { w.push_back(&t); });
    std::size_t i = 0;
    const bool half = std::string(name) == "tiny_f16";
    narrow.visit_parameters([&](const std::string& n, Tensor<float>& t) {
      CAPTURE(n);
      const Tensor<float>& full = *w[i++];
      bool same = true;
      for (Index k = 0; k < t.size(); ++k) {
        const float rounded = half ? static_cast<float>(Eigen::half(full[k])) : static_cast<float>(Eigen::bfloat16(full[k]));
        same = same && rounded == t[k];
      }
      CHECK(same);
    });
  }
}

TEST_CASE("save_gpt2: what we save loads back bit for bit, with the names and shapes of the Hugging Face file") {
  GPT2<float> model = load_gpt2<float>(gpt2_fixture_dir("odd_shape"));
  TempDir dir;
  save_gpt2(model, dir.path());
  GPT2<float> again = load_gpt2<float>(dir.path());
  std::vector<Tensor<float>*> a;
  model.visit_parameters([&](const std::string&, Tensor<float>& t) { a.push_back(&t); });
  std::size_t i = 0;
  again.visit_parameters([&](const std::string& n, Tensor<float>& t) {
    CAPTURE(n);
    CHECK(t.matrix() == a[i++]->matrix());
  });
  const SafeTensors theirs(gpt2_fixture_dir("tiny_bf16") + "/model.safetensors");  // plain names, no buffers
  GPT2<float> tiny = load_gpt2<float>(gpt2_fixture_dir("tiny_bf16"));
  TempDir tiny_dir;
  save_gpt2(tiny, tiny_dir.path());
  const SafeTensors ours(tiny_dir.path() + "/model.safetensors");
  CHECK(ours.names() == theirs.names());
  for (const std::string& n : theirs.names()) CHECK(ours.info(n).shape == theirs.info(n).shape);
  CHECK(read_gpt2_config(tiny_dir.path() + "/config.json").n_embd == tiny.config().n_embd);
}

TEST_CASE("load_gpt2: a config that does not fit the checkpoint lists every problem; bad fields are named") {
  const std::string src = gpt2_fixture_dir("one_layer_one_head");
  const std::string config = read_text_file(src + "/config.json");
  auto with_config = [&](const TempDir& dir, const std::string& from, const std::string& to) {
    std::string edited = config;
    const std::size_t at = edited.find(from);
    REQUIRE(at != std::string::npos);
    edited.replace(at, from.size(), to);
    dir.write("config.json", edited);
    std::filesystem::copy_file(src + "/model.safetensors", dir.path() + "/model.safetensors");
  };
  {
    TempDir dir;
    with_config(dir, "\"n_layer\": 1", "\"n_layer\": 2");
    CHECK_THROWS_WITH_AS(load_gpt2<float>(dir.path()),
                         (dir.path() + "/model.safetensors: 12 problems loading GPT2: missing 'h.1.attn.c_attn.weight'; missing "
                                       "'h.1.attn.c_attn.bias'; missing 'h.1.attn.c_proj.weight'; missing 'h.1.attn.c_proj.bias'; missing "
                                       "'h.1.mlp.c_fc.weight'; missing 'h.1.mlp.c_fc.bias'; missing 'h.1.mlp.c_proj.weight'; missing "
                                       "'h.1.mlp.c_proj.bias'; missing 'h.1.ln_1.weight'; missing 'h.1.ln_1.bias'; and 2 more")
                             .c_str(),
                         FormatError);
  }
  {
    TempDir dir;
    with_config(dir, "\"n_positions\": 32", "\"n_positions\": 64");
    CHECK_THROWS_WITH_AS(load_gpt2<float>(dir.path()),
                         (dir.path() + "/model.safetensors: 1 problem loading GPT2: 'wpe.weight' is [32, 16], expected [64, 16]").c_str(), FormatError);
  }
  {
    TempDir dir;
    with_config(dir, "\"n_head\": 1", "\"n_head\": 3");
    CHECK_THROWS_WITH_AS(load_gpt2<float>(dir.path()), (dir.path() + "/config.json: n_embd 16 is not a multiple of n_head 3").c_str(), RangeError);
  }
  {
    TempDir dir;
    with_config(dir, "\"n_embd\": 16", "\"n_embd\": \"16\"");
    CHECK_THROWS_WITH_AS(load_gpt2<float>(dir.path()), (dir.path() + "/config.json: field 'n_embd' is \"16\"; expected an integer").c_str(),
                         FormatError);
  }
  CHECK_THROWS_WITH_AS(load_gpt2<float>("/nonexistent"), "/nonexistent/config.json: cannot open: No such file or directory", IoError);
}

TEST_CASE("gpt2_parameter_count: what count_parameters gives once the model is built, from the config alone") {
  for (const std::string& name : gpt2_fixture_names()) {
    CAPTURE(name);
    const GPT2Config c = read_gpt2_config(gpt2_fixture_dir(name) + "/config.json");
    GPT2<float> model(c);
    CHECK(gpt2_parameter_count(c) == static_cast<std::uint64_t>(count_parameters(model)));
  }
  GPT2Config wide;  // n_inner set: the MLP is not 4x wide
  wide.n_layer = 2;
  wide.n_embd = 24;
  wide.n_head = 3;
  wide.n_inner = 40;
  wide.n_positions = 16;
  wide.vocab_size = 50;
  wide.bos_token_id = wide.eos_token_id = 0;
  GPT2<float> model(wide);
  CHECK(gpt2_parameter_count(wide) == static_cast<std::uint64_t>(count_parameters(model)));
  // GPT-2 small: 124,439,808 parameters, as Hugging Face counts them.
  CHECK(gpt2_parameter_count(read_gpt2_config(std::string(EIGENFORMER_FIXTURE_DIR) + "/gpt2/gpt2_small_config.json")) == 124439808);
}

TEST_CASE("estimate_gpt2_memory: weights as the loaded scalar, and 2 x n_layer x batch x context x n_embd of KV cache") {
  const GPT2Config small = read_gpt2_config(std::string(EIGENFORMER_FIXTURE_DIR) + "/gpt2/gpt2_small_config.json");
  const MemoryEstimate f = estimate_gpt2_memory<float>(small);
  CHECK(f.weight_bytes == 124439808ull * 4);
  CHECK(f.cache_bytes == 2ull * 12 * 1 * 1024 * 768 * 4);
  CHECK(f.batch == 1);
  CHECK(f.context == 1024);
  const MemoryEstimate d = estimate_gpt2_memory<double>(small, 4, 100);
  CHECK(d.weight_bytes == 124439808ull * 8);
  CHECK(d.cache_bytes == 2ull * 12 * 4 * 100 * 768 * 8);
  CHECK(d.total_bytes() == d.weight_bytes + d.cache_bytes);
  CHECK_THROWS_WITH_AS(estimate_gpt2_memory<float>(small, 1, 1025), "estimate_gpt2_memory: context is 1025 positions; expected 1 to n_positions 1024",
                       RangeError);
  CHECK_THROWS_WITH_AS(estimate_gpt2_memory<float>(small, 0), "estimate_gpt2_memory: batch is 0; expected >= 1", RangeError);
}

TEST_CASE("load_gpt2: a memory budget refuses, before loading, a model that needs more, with both figures") {
  const std::string dir = gpt2_fixture_dir("tiny_f32_hub");  // 2 layers, n_embd 24, 64 positions, vocabulary 300
  ModelLoadOptions load;
  load.memory_budget = 100000;
  // weights: 23,232 parameters x 4 bytes; KV cache: 2 x 2 layers x 1 x 64 positions x 24 x 4 bytes.
  CHECK_THROWS_WITH_AS(load_gpt2<float>(dir, load),
                       (dir + ": loading GPT-2 as float needs 114.8 KiB (117504 bytes): 90.8 KiB (92928 bytes) of weights and 24.0 KiB (24576 bytes) "
                              "of KV cache (batch 1 x 64 positions); more than the memory budget of 97.7 KiB (100000 bytes)")
                           .c_str(),
                       RangeError);
  load.context = 16;  // a shorter generation fits
  CHECK(load_gpt2<float>(dir, load).config().n_embd == 24);
  load.memory_budget = 0;  // no limit
  load.context = 0;
  load.batch = 1000;
  CHECK(load_gpt2<double>(dir, load).config().n_layer == 2);
}

TEST_CASE("load_gpt2: a config describing far more than its checkpoint holds is refused before the model is allocated") {
  const std::string src = gpt2_fixture_dir("one_layer_one_head");  // 21,696 bytes of data
  TempDir dir;
  std::string config = read_text_file(src + "/config.json");
  config.replace(config.find("\"n_layer\": 1"), 12, "\"n_layer\": 100000");
  config.replace(config.find("\"n_embd\": 16"), 12, "\"n_embd\": 4096");
  dir.write("config.json", config);
  std::filesystem::copy_file(src + "/model.safetensors", dir.path() + "/model.safetensors");
  // 100,000 layers of width 4096 would be 20 TB of floats: refused on the numbers, not by running out of memory.
  CHECK_THROWS_WITH_AS(load_gpt2<float>(dir.path()),
                       (dir.path() + "/config.json: n_layer 100000, n_embd 4096, n_positions 32 and vocab_size 100 make 20137984548864 values, more "
                                     "than the 21696 bytes of data in " + dir.path() + "/model.safetensors could hold; the config does not describe "
                                     "this checkpoint")
                           .c_str(),
                       FormatError);
}

TEST_CASE("read_gpt2_config: sizes whose parameter count overflows are refused (fuzz finding: 4 * n_embd overflowed)") {
  // fuzz_gpt2_config saved tests/fixtures/fuzz/gpt2_config_dff_overflow.json: GPT-2 small with n_embd
  // 4223372036854775808 (a multiple of n_head 12), for which GPT2Config::d_ff() computed 4 * n_embd, a signed overflow
  // (undefined behaviour, reported by UBSan) before anything could refuse it. Every size is now bounded first
  // (kMaxConfigSize), so that the shape-only pass that counts the parameters never forms such a product.
  const std::string found = std::string(EIGENFORMER_FIXTURE_DIR) + "/fuzz/gpt2_config_dff_overflow.json";
  CHECK_THROWS_WITH_AS(read_gpt2_config(found), (found + ": n_embd is 4223372036854775808; expected at most 1073741824").c_str(), RangeError);
  TempDir dir;
  dir.write("config.json", R"({"n_layer": 1, "n_head": 1, "n_embd": 1048576, "n_inner": 4611686018427387904, "n_positions": 1, "vocab_size": 1})");
  CHECK_THROWS_AS(read_gpt2_config(dir.path() + "/config.json"), RangeError);
  // Sizes within the bounds whose parameters together pass 2^62: refused by the count, naming every size.
  dir.write("config.json", R"({"n_layer": 12, "n_head": 1, "n_embd": 1073741824, "n_positions": 1024, "vocab_size": 50257})");
  try {
    read_gpt2_config(dir.path() + "/config.json");
    FAIL("no error");
  } catch (const RangeError& e) {
    const std::string what = e.what();
    CHECK(what.rfind(dir.path() + "/config.json: the parameter count of n_layer 12, n_embd 1073741824, n_inner 0, n_positions 1024, "
                                  "vocab_size 50257 is about ", 0) == 0);
    CHECK(what.size() > 16);
    CHECK(what.substr(what.size() - 16) == ", more than 2^62");
  }
}

TEST_CASE("gpt2_config_from_json: an unknown activation_function is quoted escaped and cut (issue 13)") {
  nlohmann::json j = read_json_file(std::string(EIGENFORMER_FIXTURE_DIR) + "/gpt2/gpt2_small_config.json");
  j["activation_function"] = "\x1b[2J" + std::string(1000, 'g');
  try {
    gpt2_config_from_json(j, "c.json");
    FAIL("no error");
  } catch (const FormatError& e) {
    const std::string what = e.what();
    CHECK(what.rfind("c.json: field 'activation_function': activation '\\u001b[2Jggg", 0) == 0);
    CHECK(what.find('\x1b') == std::string::npos);
    CHECK(what.size() <= 240);
  }
}

TEST_CASE("gpt2_config_from_json: an integer beyond 64 bits is named as written, not wrapped into a negative size (issue 13)") {
  // 2^63 wrapped to -9223372036854775808 ("n_layer is -9223372036854775808; expected > 0"); 2^64 + 1 became a double.
  const std::string config = read_text_file(std::string(EIGENFORMER_FIXTURE_DIR) + "/gpt2/gpt2_small_config.json");
  for (const char* field : {"n_layer", "n_head", "n_embd", "n_positions", "vocab_size", "bos_token_id", "eos_token_id"}) {
    for (const std::string digits : {"9223372036854775808", "18446744073709551617", "-9223372036854775809"}) {
      CAPTURE(field);
      CAPTURE(digits);
      nlohmann::json j = nlohmann::json::parse(config);
      j.erase(field);
      std::string text = j.dump();
      text.insert(1, "\"" + std::string(field) + "\": " + digits + ", ");
      CHECK_THROWS_WITH_AS(gpt2_config_from_json(parse_json_file(text, "dir/config.json"), "dir/config.json"),
                           ("dir/config.json: field '" + std::string(field) + "' is " + digits +
                            "; expected an integer from -9223372036854775808 to 9223372036854775807")
                               .c_str(),
                           RangeError);
    }
  }
}

namespace {
// DIR with one_layer_one_head's config and its weights stored as `dtype`; element `at` of tensor `bad` set to `value`.
// With lm_head, the file also holds lm_head.weight, wte.weight's copy (as hub files do), and `bad` may name it.
void write_gpt2_with_value(const TempDir& dir, DType dtype, const std::string& bad, Index at, double value, bool lm_head = false) {
  const std::string src = gpt2_fixture_dir("one_layer_one_head");
  std::filesystem::copy_file(src + "/config.json", dir.path() + "/config.json");
  const SafeTensors original(src + "/model.safetensors");
  SafeTensorsWriter w;
  for (const std::string& name : original.names()) {
    Tensor<double> t = original.get<double>(name);
    if (name == bad) t[at] = value;
    if (name == "wte.weight" && lm_head) {
      Tensor<double> head = t;
      if (bad == "lm_head.weight") head[at] = value;
      w.add("lm_head.weight", head, dtype);
    }
    w.add(name, t, dtype);
  }
  w.write(dir.path() + "/model.safetensors");
}
}  // namespace

TEST_CASE("load_gpt2: a NaN or infinite weight is refused with the tensor's name, in every float dtype (issue 13)") {
  // It loaded, and greedy decoding then emitted token 0 forever. wte is read in place, c_fc (a Conv1D, transposed) through
  // a copy, ln_f.bias is the last parameter, lm_head is compared with wte after loading.
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  for (DType dtype : {DType::F32, DType::F16, DType::BF16, DType::F64}) {
    for (const auto& [bad, at] : {std::pair<std::string, Index>{"wte.weight", 17}, {"h.0.mlp.c_fc.weight", 100}, {"ln_f.bias", 15}, {"lm_head.weight", 3}}) {
      for (const auto& [value, text] : {std::pair<double, std::string>{nan, "nan"}, {inf, "inf"}, {-inf, "-inf"}}) {
        CAPTURE(dtype_name(dtype));
        CAPTURE(bad);
        CAPTURE(text);
        TempDir dir;
        write_gpt2_with_value(dir, dtype, bad, at, value, /*lm_head=*/true);
        const std::string message =
            dir.path() + "/model.safetensors: tensor '" + bad + "' element " + std::to_string(at) + " is " + text + "; expected a finite number";
        CHECK_THROWS_WITH_AS(load_gpt2<float>(dir.path()), message.c_str(), RangeError);
        CHECK_THROWS_WITH_AS(load_gpt2<double>(dir.path()), message.c_str(), RangeError);
      }
    }
  }
  // The same files with finite values load (the check refuses only what it should).
  TempDir fine;
  write_gpt2_with_value(fine, DType::BF16, "wte.weight", 17, -3.5, /*lm_head=*/true);
  CHECK(load_gpt2<float>(fine.path()).config().n_layer == 1);
}
