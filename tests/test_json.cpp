// core/json.hpp: parse errors and repeated keys named with the file, brief quotes of values for messages.
#include "eigenformer/core/json.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
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
  CHECK_THROWS_WITH_AS(read_json_file("/nonexistent/config.json"), "/nonexistent/config.json: cannot open: No such file or directory", IoError);
}

TEST_CASE("parse_json: a number too large for a double is a FormatError, not nlohmann's out_of_range (fuzz finding)") {
  // fuzz_gpt2_config, fuzz_translator_config, fuzz_safetensors and fuzz_tokenizer_files each found this first:
  // nlohmann reports "1e999" as out_of_range.406, which parse_json let escape.
  // The inputs as the two config targets saved them, then the same inside a config.
  CHECK_THROWS_WITH_AS(parse_json_file("2e644", "c.json"),
                       "c.json: not valid JSON: number overflow: 2e644 (at byte 0), beyond the range of a double (about 1.8e308)", FormatError);
  CHECK_THROWS_WITH_AS(parse_json("6E600", "p: "), "p: number overflow: 6E600 (at byte 0), beyond the range of a double (about 1.8e308)", FormatError);
  CHECK_THROWS_AS(parse_json_file(R"({"n_layer": 1e999})", "c.json"), FormatError);
}

namespace {
// The message parse_json gives for the number `number` at its first place in `text`, in field `field`.
std::string overflow_message(const std::string& text, const std::string& number, const std::string& field) {
  const std::size_t at = text.find(number);
  REQUIRE(at != std::string::npos);
  return "c.json: not valid JSON: number overflow: field " + quote(field) + " is " + detail::printable(number) + " (at byte " + std::to_string(at) +
         "), beyond the range of a double (about 1.8e308)";
}
}  // namespace

TEST_CASE("parse_json: a number beyond a double's range is named by its field and place, as written (harden-c)") {
  // nlohmann's own message, "number overflow parsing '1e999'", named neither the field nor the place.
  const std::string top = R"({"vocab_size": 300, "n_layer": 1e999})";
  CHECK_THROWS_WITH_AS(parse_json_file(top, "c.json"), overflow_message(top, "1e999", "n_layer").c_str(), FormatError);
  // In a safetensors header: the keys and indices from the top, as a JSON Pointer without its leading '/'.
  const std::string header = R"({"__metadata__": {"a": "b"}, "h.0.weight": {"dtype": "F32", "shape": [1, 2], "data_offsets": [0, -1E+400]}})";
  CHECK_THROWS_WITH_AS(parse_json_file(header, "c.json"), overflow_message(header, "-1E+400", "h.0.weight/data_offsets/1").c_str(), FormatError);
  // Array indices count the values before, containers included.
  const std::string array = R"({"x": [[1, 2], {"a": [3]}, "s", null, 1e400]})";
  CHECK_THROWS_WITH_AS(parse_json_file(array, "c.json"), overflow_message(array, "1e400", "x/4").c_str(), FormatError);
  // '/' and '~' in a key are escaped as a JSON Pointer escapes them; a control character as every quoted text is.
  const std::string odd = "{\"a/b~\": {\"\\u001b[2J\": 1e400}}";
  CHECK_THROWS_WITH_AS(parse_json_file(odd, "c.json"), overflow_message(odd, "1e400", "a~1b~0/\x1b[2J").c_str(), FormatError);
  // An integer literal of 400 digits (too long even for a double): quoted cut to 80 characters, both ends kept.
  const std::string digits = "1" + std::string(399, '0');
  const std::string long_number = R"({"n_embd": )" + digits + "}";
  const std::string message = overflow_message(long_number, digits, "n_embd");
  CHECK_THROWS_WITH_AS(parse_json_file(long_number, "c.json"), message.c_str(), FormatError);
  CHECK(message.size() < 200);
  // Deeper than 16 containers, the path ends in "/..."; the place still says where.
  const std::string deep = R"({"a": )" + std::string(20, '[') + "1e400" + std::string(20, ']') + "}";
  CHECK_THROWS_WITH_AS(parse_json_file(deep, "c.json"), overflow_message(deep, "1e400", "a/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/...").c_str(), FormatError);
  // A number that fits is read as before; one below the smallest double becomes 0, as in nlohmann and Python.
  CHECK(parse_json_file(R"({"x": 1e308, "y": 1e-400})", "c.json")["x"].get<double>() == 1e308);
}

TEST_CASE("detail::brief_json: compact, ASCII, cut to the length asked") {
  CHECK(detail::brief_json(nlohmann::json::parse(R"({"a": [1, 2.5, "x"], "b": null})")) == R"({"a":[1,2.5,"x"],"b":null})");
  CHECK(detail::brief_json(nlohmann::json("caf\xc3\xa9")) == R"("caf\u00e9")");
  CHECK(detail::brief_json(nlohmann::json(std::vector<int>(100, 7)), 20) == "[7,7,7,7,7,7,7,7,...");
}

TEST_CASE("parse_json: a repeated key is noted at the top level only, and the last value wins as in nlohmann") {
  std::string duplicate;
  const nlohmann::json j = parse_json(R"({"a": {"x": 1, "x": 2}, "b": [{"y": 1, "y": 2}], "c": 3})", "p: ", &duplicate);
  CHECK(duplicate.empty());
  CHECK(j["a"]["x"] == 2);
  CHECK(parse_json(R"({"a": 1, "b": 2, "a": 3, "b": 4})", "p: ", &duplicate)["a"] == 3);
  CHECK(duplicate == "a");  // the first one repeated
  CHECK(parse_json(R"([{"a": 1, "a": 2}])", "p: ", &duplicate).size() == 1);
  CHECK(duplicate.empty());
}

TEST_CASE("parse_json: 100,000 members, each an object, parse (the old repeated-key check was quadratic)") {
  // The callback parser used before rescanned the parent object after every member that is a container.
  std::string text = "{";
  for (int i = 0; i < 100000; ++i) text += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":{\"v\":[" + std::to_string(i) + "]}";
  text += ",\"k7\":{}}";
  std::string duplicate;
  const nlohmann::json j = parse_json(text, "p: ", &duplicate);
  CHECK(j.size() == 100000);
  CHECK(duplicate == "k7");
  CHECK(j["k99999"]["v"][0] == 99999);
}

TEST_CASE("parse_json: JsonTopLevel stops the parse one member past max_members") {
  JsonTopLevel top;
  top.max_members = 2;
  CHECK(parse_json(R"({"a": 1, "b": {"c": 1, "d": 2, "e": 3}})", "p: ", top).size() == 2);
  CHECK(top.members == 2);
  CHECK_FALSE(top.stopped());
  JsonTopLevel few;
  few.max_members = 2;
  CHECK(parse_json(R"({"a": 1, "b": 2, "c": 3, "d": 4 this is never read)", "p: ", few).is_null());
  CHECK(few.members == 3);
  CHECK(few.stopped());
}

TEST_CASE("parse_json_file: a repeated key, a file name and nlohmann's quote of a raw byte are escaped (issue 13)") {
  CHECK_THROWS_WITH_AS(parse_json_file(R"({"a\u0007\u001b[0m": 1, "a\u0007\u001b[0m": 2})", "dir\x1b[8m/c.json"),
                       "dir\\u001b[8m/c.json: field 'a\\u0007\\u001b[0m' appears twice", FormatError);
  // nlohmann quotes the bytes it could not read as they are; 0x9B alone is a CSI to some terminals.
  CHECK_THROWS_WITH_AS(parse_json_file("\x9b" "2J", "c.json"),
                       "c.json: not valid JSON: parse error at line 1, column 1: syntax error while parsing value - invalid literal; last read: '\\x9b'",
                       FormatError);
}

TEST_CASE("parse_json: an integer beyond 64 bits is kept as written, not rounded to a double (issue 13)") {
  // nlohmann makes 18446744073709551617 (2^64 + 1) a double, 1.8446744073709552e19: the digits a message must quote
  // were lost. The literals from the edges of int64 and uint64 outwards, each inside an object and an array.
  const std::string beyond[] = {"18446744073709551616", "18446744073709551617", "-9223372036854775809", "123456789012345678901234567890",
                                "-99999999999999999999999"};
  for (const std::string& digits : beyond) {
    CAPTURE(digits);
    const nlohmann::json j = parse_json_file(R"({"n": )" + digits + R"(, "a": [1, )" + digits + "]}", "c.json");
    CHECK(json_integer_beyond_int64(j["n"]) == digits);
    CHECK(json_integer_beyond_int64(j["a"][1]) == digits);
    CHECK_FALSE(j["n"].is_number());  // a reader that wants a number or an integer refuses it by its type
    CHECK(detail::brief_json(j, 200) == R"({"a":[1,)" + digits + R"(],"n":)" + digits + "}");
  }
  // Those int64 or uint64 hold stay numbers; past 2^63 - 1, json_integer_beyond_int64 gives the unsigned digits.
  const nlohmann::json edges = parse_json(R"([9223372036854775807, -9223372036854775808, 9223372036854775808, 18446744073709551615, 1.5e3, -0])", "p: ");
  CHECK(edges[0].get<std::int64_t>() == std::numeric_limits<std::int64_t>::max());
  CHECK(edges[1].get<std::int64_t>() == std::numeric_limits<std::int64_t>::min());
  CHECK(json_integer_beyond_int64(edges[0]).empty());
  CHECK(json_integer_beyond_int64(edges[1]).empty());
  CHECK(json_integer_beyond_int64(edges[2]) == "9223372036854775808");
  CHECK(json_integer_beyond_int64(edges[3]) == "18446744073709551615");
  CHECK(edges[4].get<double>() == 1500.0);  // a fraction or exponent stays a double
  CHECK(json_integer_beyond_int64(edges[4]).empty());
  CHECK(json_integer_beyond_int64(edges[5]).empty());
  // A quote of a long one is cut like any other value.
  const std::string long_digits(300, '7');  // 7.8e299: within a double, so nlohmann parses it
  CHECK(detail::brief_json(parse_json("[" + long_digits + "]", "p: ")[0], 40) == std::string(37, '7') + "...");
}
