// The exception hierarchy: everything the library throws on purpose is an eigenformer::Error.
#include "eigenformer/core/error.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace eigenformer;

TEST_CASE("errors: every kind is an eigenformer::Error and keeps its message") {
  CHECK_THROWS_WITH_AS(throw ShapeError("a"), "a", Error);
  CHECK_THROWS_WITH_AS(throw RangeError("b"), "b", Error);
  CHECK_THROWS_WITH_AS(throw FormatError("c"), "c", Error);
  CHECK_THROWS_WITH_AS(throw IoError("d"), "d", Error);
  CHECK_THROWS_WITH_AS(throw InternalError("e"), "e", std::runtime_error);
}

TEST_CASE("EIGENFORMER_ASSERT: active in tests, throws InternalError naming the condition") {
  const int three = 3;
  CHECK_NOTHROW(EIGENFORMER_ASSERT(three == 3, "three is three"));
  try {
    EIGENFORMER_ASSERT(three == 4, "three is four");
    FAIL("no exception");
  } catch (const InternalError& e) {
    const std::string what = e.what();
    CHECK(what.find("test_error.cpp") != std::string::npos);
    CHECK(what.find("internal check failed: three == 4; three is four") != std::string::npos);
  }
}

TEST_CASE("quote: outside text with control bytes, invalid UTF-8 and bidi overrides escaped, cut to 80 characters") {
  CHECK(quote("x") == "'x'");
  CHECK(quote("caf\xc3\xa9 \xe4\xb8\xad") == "'caf\xc3\xa9 \xe4\xb8\xad'");  // valid UTF-8 text shows as itself
  CHECK(quote("\x1b[31mred\x1b[0m") == "'\\u001b[31mred\\u001b[0m'");     // a terminal escape sequence
  CHECK(quote(std::string("a\0b", 3)) == "'a\\u0000b'");                    // NUL
  CHECK(quote("a\nb\tc\rd\x7f") == "'a\\nb\\tc\\rd\\u007f'");
  CHECK(quote("\xc2\x9b" "31m") == "'\\u009b31m'");                          // C1 CSI, as UTF-8
  CHECK(quote("\x9b" "31m\xff\xc3") == "'\\x9b31m\\xff\\xc3'");              // bytes that are not UTF-8
  CHECK(quote("\xed\xa0\x80") == "'\\xed\\xa0\\x80'");                        // a surrogate
  CHECK(quote("\xe2\x80\xae" "evil") == "'\\u202eevil'");                     // right-to-left override
  CHECK(quote("it's a\\b") == "'it\\'s a\\\\b'");
  // Long text keeps both ends, 80 characters in all.
  const std::string long_word = "start" + std::string(1000, 'x') + "end";
  const std::string q = quote(long_word);
  CHECK(q.size() == 82);
  CHECK(q == "'start" + std::string(34, 'x') + "..." + std::string(35, 'x') + "end'");
  CHECK(quote(std::string(80, 'a')) == "'" + std::string(80, 'a') + "'");
  CHECK(quote(std::string(81, 'a')) == "'" + std::string(39, 'a') + "..." + std::string(38, 'a') + "'");
  // An escape counts its length; it is never split.
  const auto times = [](const std::string& s, int n) {
    std::string out;
    for (int i = 0; i < n; ++i) out += s;
    return out;
  };
  CHECK(quote(std::string(100, '\x01')) == "'" + times("\\u0001", 6) + "..." + times("\\u0001", 6) + "'");
  // Ten megabytes cost what 80 characters cost: only the two ends are looked at.
  CHECK(quote(std::string(10000000, '\x1b') + "tail") == "'" + times("\\u001b", 6) + "..." + times("\\u001b", 5) + "tail'");
}

TEST_CASE("detail::printable and printable_message: the same escapes without quotes; a message is not cut") {
  CHECK(detail::printable("dir\x1b]0;title\x07/config.json") == "dir\\u001b]0;title\\u0007/config.json");
  CHECK(detail::printable("C:\\models\\it's") == "C:\\models\\it's");  // no quote: backslashes and quotes stay
  const std::string message = "f.json: field 'x' is " + std::string(300, 'y') + "\x1b[2J";
  CHECK(detail::printable_message(message) == "f.json: field 'x' is " + std::string(300, 'y') + "\\u001b[2J");
}
