// io/config_json.hpp: typed config.json fields, with the file and field named in every error.
#include "eigenformer/io/config_json.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <limits>
#include <string>

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

TEST_CASE("ConfigReader: a deeply nested value is described briefly, without recursing through it (stack overflow)") {
  // dump() recursed once per level: a field holding a million '[' overflowed the stack while writing the message.
  const std::size_t depth = 1000000;
  const std::string text = "{\"n_layer\": " + std::string(depth, '[') + std::string(depth, ']') + "}";
  const nlohmann::json j = parse_json_file(text, "c.json");
  const ConfigReader r(j, "c.json");
  CHECK_THROWS_WITH_AS(r.integer("n_layer"), ("c.json: field 'n_layer' is " + std::string(16, '[') + "[...]" + std::string(16, ']') + "; expected an integer").c_str(),
                       FormatError);
}

TEST_CASE("ConfigReader: the file name in its messages is escaped (issue 13)") {
  const nlohmann::json empty = nlohmann::json::object();  // ConfigReader keeps a reference
  const ConfigReader r(empty, "dir\x1b[2J/config.json");
  CHECK_THROWS_WITH_AS(r.integer("n_layer"), "dir\\u001b[2J/config.json: field 'n_layer' is missing", FormatError);
  CHECK(r.path() == "dir\x1b[2J/config.json");  // the path itself is kept as given
}

TEST_CASE("ConfigReader: an integer beyond 64 bits is quoted as written, never wrapped or rounded (issue 13)") {
  // 2^63 came back as -9223372036854775808 (then "n_layer is -9223372036854775808; expected > 0"), 2^64 + 1 as
  // 1.8446744073709552e+19. Each literal from just past the edges of int64 outwards.
  const std::string beyond[] = {"9223372036854775808", "18446744073709551615", "18446744073709551616", "18446744073709551617",
                                "-9223372036854775809", "123456789012345678901234567890"};
  for (const std::string& digits : beyond) {
    CAPTURE(digits);
    const nlohmann::json j = parse_json_file(R"({"n_layer": )" + digits + R"(, "eps": )" + digits + "}", "dir/config.json");
    const ConfigReader r(j, "dir/config.json");
    CHECK_THROWS_WITH_AS(r.integer("n_layer"),
                         ("dir/config.json: field 'n_layer' is " + digits + "; expected an integer from -9223372036854775808 to 9223372036854775807").c_str(),
                         RangeError);
    CHECK_THROWS_WITH_AS(r.integer_or("n_layer", 1), ("dir/config.json: field 'n_layer' is " + digits + "; expected an integer from -9223372036854775808 to 9223372036854775807").c_str(),
                         RangeError);
    CHECK(r.number("eps") == std::strtod(digits.c_str(), nullptr));  // as a number, the nearest double, as before
  }
  const nlohmann::json edges = parse_json_file(R"({"max": 9223372036854775807, "min": -9223372036854775808})", "c.json");
  const ConfigReader r(edges, "c.json");
  CHECK(r.integer("max") == std::numeric_limits<Index>::max());
  CHECK(r.integer("min") == std::numeric_limits<Index>::min());
}
