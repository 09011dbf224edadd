// tests/test_utf8.cpp: text/utf8.hpp. Arbitrary bytes against the WHATWG TextDecoder (the "utf8_cases"
// of tests/fixtures/tokenizer/cases.json, written by tools/make_tokenizer_cases.mjs), then the error
// message for each kind of ill-formed sequence.
#include "eigenformer/text/utf8.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cstddef>
#include <fstream>
#include <string>

using namespace eigenformer;

namespace {

const nlohmann::json& utf8_cases() {
  static const nlohmann::json cases = [] {
    std::ifstream in(std::string(EIGENFORMER_FIXTURE_DIR) + "/tokenizer/cases.json", std::ios::binary);
    return nlohmann::json::parse(in).at("utf8_cases");
  }();
  return cases;
}

std::string bytes_of(const nlohmann::json& c) {
  std::string s;
  for (const auto& b : c.at("bytes")) s += static_cast<char>(b.get<int>());
  return s;
}

}  // namespace

TEST_CASE("utf8: replacing invalid bytes matches TextDecoder on every case") {
  REQUIRE(utf8_cases().size() >= 100);
  int mismatches = 0;
  for (const auto& c : utf8_cases()) {
    const std::string bytes = bytes_of(c);
    const std::string want = c.at("text").get<std::string>();
    if (utf8_replacing_invalid(bytes) != want) ++mismatches;
    CHECK_MESSAGE(utf8_replacing_invalid(bytes) == want, "bytes " << c.at("bytes").dump());
    CHECK((find_invalid_utf8(bytes) == bytes.size()) == c.at("valid").get<bool>());
    if (mismatches > 10) break;  // enough to see the pattern
  }
}

TEST_CASE("utf8: streamed in pieces of every size, the text is the same and every piece is valid") {
  for (const auto& c : utf8_cases()) {
    const std::string bytes = bytes_of(c);
    for (std::size_t chunk = 1; chunk <= 4; ++chunk) {
      std::string pending;
      std::string text;
      for (std::size_t pos = 0; pos < bytes.size(); pos += chunk) {
        pending += bytes.substr(pos, chunk);
        std::string out;
        const std::size_t keep = append_utf8_replacing(pending, out, /*final=*/false);
        CHECK(keep <= 3);
        CHECK(find_invalid_utf8(out) == out.size());
        pending.erase(0, pending.size() - keep);
        text += out;
      }
      append_utf8_replacing(pending, text, /*final=*/true);
      CHECK_MESSAGE(text == c.at("text").get<std::string>(), "bytes " << c.at("bytes").dump() << " in pieces of " << chunk);
    }
  }
}

TEST_CASE("utf8: the first ill-formed sequence is found, and the bytes before it are valid") {
  for (const auto& c : utf8_cases()) {
    const std::string bytes = bytes_of(c);
    const std::size_t bad = find_invalid_utf8(bytes);
    CHECK(find_invalid_utf8(bytes.substr(0, bad)) == bad);
    if (bad < bytes.size()) CHECK(utf8_step(bytes, bad).kind != Utf8Step::Kind::code_point);
  }
}

TEST_CASE("utf8: the error message names the byte, its value and what is wrong") {
  CHECK(utf8_error_message("ab\xff", 2) == "invalid UTF-8 at byte 2 (0xff); 0xff never occurs in UTF-8");
  CHECK(utf8_error_message("\xc1\xbf", 0) == "invalid UTF-8 at byte 0 (0xc1); 0xc1 never occurs in UTF-8");
  CHECK(utf8_error_message("a\x80", 1) == "invalid UTF-8 at byte 1 (0x80); a continuation byte with no lead byte before it");
  CHECK(utf8_error_message("\xe2\x82", 0) == "invalid UTF-8 at byte 0 (0xe2); the text ends inside a 3-byte sequence");
  CHECK(utf8_error_message("\xe2\x82" "A", 0) ==
        "invalid UTF-8 at byte 0 (0xe2); expected a continuation byte (0x80..0xbf) at byte 2, found 0x41");
  CHECK(utf8_error_message("\xe0\x80\xaf", 0) == "invalid UTF-8 at byte 0 (0xe0); an overlong encoding (0xe0 0x80)");
  CHECK(utf8_error_message("\xf0\x8f\xbf\xbf", 0) == "invalid UTF-8 at byte 0 (0xf0); an overlong encoding (0xf0 0x8f)");
  CHECK(utf8_error_message("\xed\xa0\x80", 0) == "invalid UTF-8 at byte 0 (0xed); encodes a UTF-16 surrogate (0xed 0xa0)");
  CHECK(utf8_error_message("\xf4\x90\x80\x80", 0) == "invalid UTF-8 at byte 0 (0xf4); encodes a code point above U+10FFFF (0xf4 0x90)");
  CHECK(utf8_error_message("x\xc3(", 1, /*base=*/100) ==
        "invalid UTF-8 at byte 101 (0xc3); expected a continuation byte (0x80..0xbf) at byte 102, found 0x28");
}

TEST_CASE("utf8: utf8_step reads each length and stops at the end") {
  const std::string s = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";  // a é € 😀
  std::size_t pos = 0;
  for (const char32_t want : {U'a', U'\u00e9', U'\u20ac', U'\U0001F600'}) {
    const Utf8Step step = utf8_step(s, pos);
    REQUIRE(step.kind == Utf8Step::Kind::code_point);
    CHECK(step.code_point == want);
    pos += step.length;
  }
  CHECK(pos == s.size());
  const Utf8Step cut = utf8_step(std::string_view(s).substr(0, 9), 6);  // 3 of the emoji's 4 bytes
  CHECK(cut.kind == Utf8Step::Kind::incomplete);
  CHECK(cut.length == 3);
}
