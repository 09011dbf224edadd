// io/config_json.hpp: typed config.json fields, with the file and field named in every error.
#include "eigenformer/io/config_json.hpp"

#include <doctest/doctest.h>

#include "support/temp_file.hpp"

using namespace eigenformer;

TEST_CASE("ConfigReader: typed fields, defaults for optional ones, errors naming file and field") {
  const nlohmann::json j = nlohmann::json::parse(R"({"n": 3, "x": 2.5, "s": "gelu", "b": true, "nul": null})");
  const ConfigReader r(j, "dir/config.json");
  CHECK(r.integer("n") == 3);
  CHECK(r.number("x") == 2.5);
  CHECK(r.number("n") == 3.0);
  CHECK(r.string("s") == "gelu");
  CHECK(r.boolean("b", false));
  CHECK(r.boolean("absent", true));
  CHECK(r.integer_or("nul", 7) == 7);
  CHECK(r.integer_or("absent", 8) == 8);
  CHECK(r.number_or("absent", 0.5) == 0.5);
  CHECK(r.string_or("absent", "relu") == "relu");
  CHECK_THROWS_WITH_AS(r.integer("missing"), "dir/config.json: field 'missing' is missing", FormatError);
  CHECK_THROWS_WITH_AS(r.integer("x"), "dir/config.json: field 'x' is 2.5; expected an integer", FormatError);
  CHECK_THROWS_WITH_AS(r.string("n"), "dir/config.json: field 'n' is 3; expected a string", FormatError);
  CHECK_THROWS_WITH_AS(r.boolean("n", false), "dir/config.json: field 'n' is 3; expected true or false", FormatError);
  CHECK_THROWS_WITH_AS(ConfigReader(nlohmann::json::array(), "c.json"), "c.json: the top level is not a JSON object", FormatError);
}

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
