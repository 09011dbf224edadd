// core/json.hpp: parse errors and repeated keys named with the file, brief quotes of values for messages.
#include "eigenformer/core/json.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "support/temp_file.hpp"

using namespace eigenformer;

TEST_CASE("read_json_file: syntax errors and repeated fields name the file") {
  eigenformer::testing::TempFile f;
  f.write(R"({"n_layer": 2, "n_head": 4, "n_layer": 3})");
  CHECK_THROWS_WITH_AS(read_json_file(f.path()), (f.path() + ": field 'n_layer' appears twice").c_str(), FormatError);
  f.write(R"({"n_layer": 2,})");
  try {
    read_json_file(f.path());
    FAIL("no error");
  } catch (const FormatError& e) {
    CHECK(std::string(e.what()).rfind(f.path() + ": not valid JSON: parse error at line 1, column 15", 0) == 0);
  }
  CHECK_THROWS_WITH_AS(read_json_file("/nonexistent/config.json"), "/nonexistent/config.json: cannot open", IoError);
}

TEST_CASE("parse_json: a number too large for a double is a FormatError, not nlohmann's out_of_range (fuzz finding)") {
  // fuzz_gpt2_config, fuzz_translator_config, fuzz_safetensors and fuzz_tokenizer_files each found this first:
  // nlohmann reports "1e999" as out_of_range.406, which parse_json let escape.
  // The inputs as the two config targets saved them, then the same inside a config.
  CHECK_THROWS_WITH_AS(parse_json_file("2e644", "c.json"), "c.json: not valid JSON: number overflow parsing '2e644'", FormatError);
  CHECK_THROWS_WITH_AS(parse_json("6E600", "p: "), "p: number overflow parsing '6E600'", FormatError);
  CHECK_THROWS_WITH_AS(parse_json_file(R"({"n_layer": 1e999})", "c.json"), "c.json: not valid JSON: number overflow parsing '1e999'", FormatError);
}

TEST_CASE("detail::brief_json: compact, ASCII, cut to the length asked") {
  CHECK(detail::brief_json(nlohmann::json::parse(R"({"a": [1, 2.5, "x"], "b": null})")) == R"({"a":[1,2.5,"x"],"b":null})");
  CHECK(detail::brief_json(nlohmann::json("caf\xc3\xa9")) == R"("caf\u00e9")");
  CHECK(detail::brief_json(nlohmann::json(std::vector<int>(100, 7)), 20) == "[7,7,7,7,7,7,7,7,...");
}
