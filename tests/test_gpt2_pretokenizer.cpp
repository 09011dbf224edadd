// tests/test_gpt2_pretokenizer.cpp: text/gpt2_pretokenizer.hpp against the JavaScript regex of the
// references: the pieces node's String.matchAll gives for every short case of
// tests/fixtures/tokenizer/cases.json, and node's class (\s, \p{L}, \p{N}) of every code point.
#include "eigenformer/text/gpt2_pretokenizer.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cstddef>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

using namespace eigenformer;

namespace {

const nlohmann::json& pretokenizer_fixture() {
  static const nlohmann::json j = [] {
    std::ifstream in(std::string(EIGENFORMER_FIXTURE_DIR) + "/tokenizer/cases.json", std::ios::binary);
    return nlohmann::json::parse(in);
  }();
  return j;
}

char class_letter(Gpt2CharClass c) {
  switch (c) {
    case Gpt2CharClass::letter: return 'L';
    case Gpt2CharClass::number: return 'N';
    case Gpt2CharClass::space: return 'S';
    case Gpt2CharClass::other: return 'O';
  }
  return '?';
}

}  // namespace

TEST_CASE("gpt2_pretokenize: the pieces of JavaScript's matchAll, on every short case") {
  int checked = 0;
  int failures = 0;
  for (const auto& c : pretokenizer_fixture().at("cases")) {
    if (!c.contains("pieces")) continue;
    const std::string text = c.at("text").get<std::string>();
    std::vector<std::size_t> got;
    for (const std::string_view piece : gpt2_pretokenize(text)) got.push_back(piece.size());
    const auto want = c.at("pieces").get<std::vector<std::size_t>>();
    ++checked;
    if (got != want && ++failures <= 10) FAIL_CHECK(c.at("name").get<std::string>() << ": pieces " << nlohmann::json(got).dump() << ", expected " << c.at("pieces").dump());
  }
  CHECK(failures == 0);
  CHECK(checked > 2000);
}

TEST_CASE("gpt2_pretokenize: the pieces concatenate to the text and are never empty") {
  for (const auto& c : pretokenizer_fixture().at("cases")) {
    const std::string text = c.at("text").get<std::string>();
    std::string joined;
    bool empty_piece = false;
    gpt2_pretokenize(text, [&](std::string_view piece) {
      empty_piece = empty_piece || piece.empty();
      joined.append(piece.data(), piece.size());
    });
    CHECK_MESSAGE(joined == text, c.at("name").get<std::string>());
    CHECK_FALSE(empty_piece);
  }
}

TEST_CASE("gpt2_char_class: node's class of every code point (bar those Unicode 15.0 and node's version disagree on)") {
  const auto& ranges = pretokenizer_fixture().at("class_ranges");
  REQUIRE(ranges.size() > 100);
  int failures = 0;
  for (std::size_t r = 0; r < ranges.size(); ++r) {
    const auto first = ranges[r][0].get<char32_t>();
    const auto last = r + 1 < ranges.size() ? ranges[r + 1][0].get<char32_t>() - 1 : char32_t{0x10FFFF};
    const char want = ranges[r][1].get<std::string>()[0];
    if (want == 'X') continue;  // a surrogate, or a code point whose class changed after Unicode 15.0
    for (char32_t cp = first; cp <= last; ++cp) {
      const char got = class_letter(gpt2_char_class(cp));
      if (got != want && ++failures <= 10) FAIL_CHECK("U+" << std::hex << static_cast<unsigned>(cp) << ": class " << got << ", node says " << want);
    }
  }
  CHECK(failures == 0);
}

TEST_CASE("gpt2_pretokenize: invalid UTF-8 is refused, naming the byte") {
  CHECK_THROWS_WITH_AS(gpt2_pretokenize(std::string_view("ok \xff")),
                       "gpt2_pretokenize: invalid UTF-8 at byte 3 (0xff); 0xff never occurs in UTF-8", FormatError);
  CHECK_THROWS_WITH_AS(gpt2_pretokenize(std::string_view("caf\xc3")),
                       "gpt2_pretokenize: invalid UTF-8 at byte 3 (0xc3); the text ends inside a 2-byte sequence", FormatError);
}

TEST_CASE("gpt2_pretokenize: the empty text has no pieces") { CHECK(gpt2_pretokenize(std::string_view()).empty()); }
