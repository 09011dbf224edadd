// tests/test_word_vocabulary.cpp: text/word_vocabulary.hpp. The order of the ids (torchtext's: count, then bytes), the
// specials where TransformerConfig expects them, encode/decode, and every refusal by its full message.
#include "eigenformer/text/word_vocabulary.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "eigenformer/models/transformer.hpp"
#include "support/temp_file.hpp"

using namespace eigenformer;

TEST_CASE("WordVocabulary: the specials are the tutorial's ids, which TransformerConfig defaults to") {
  const TransformerConfig config;
  CHECK(WordVocabulary::unk_id == 0);
  CHECK(WordVocabulary::pad_id == config.pad_id);
  CHECK(WordVocabulary::bos_id == config.bos_id);
  CHECK(WordVocabulary::eos_id == config.eos_id);
  const WordVocabulary v = WordVocabulary::build({});
  CHECK(v.words() == std::vector<std::string>{"<unk>", "<pad>", "<bos>", "<eos>"});
}

TEST_CASE("WordVocabulary.build: the most frequent word first, equal counts in byte order, whatever the order of the sentences") {
  // a: 3, c: 2, then b, é, z once each: "z" (0x7a) before "é" (0xc3 0xa9) in bytes.
  const WordVocabulary v = WordVocabulary::build({"b a c a", "c  a\té", "z"});
  CHECK(v.words() == std::vector<std::string>{"<unk>", "<pad>", "<bos>", "<eos>", "a", "c", "b", "z", "é"});
  CHECK(v.size() == 9);
  const WordVocabulary w = WordVocabulary::build({"z", "c  a\té", "b a c a"});
  CHECK(w.words() == v.words());
  CHECK(v.find("c") == 5);
  CHECK(v.find("<eos>") == 3);
  CHECK_FALSE(v.find("d").has_value());
  CHECK(v.word(8) == "é");
  CHECK_THROWS_WITH_AS(v.word(9), "WordVocabulary.word: token id 9 is outside the vocabulary [0, 9)", RangeError);
}

TEST_CASE("WordVocabulary.encode and decode: words between whitespace, specials left out of the text") {
  const WordVocabulary v = WordVocabulary::build({"el coche rojo", "los coches rojos"});
  // el, coche, rojo, los, coches, rojos once each: byte order.
  CHECK(v.words() == std::vector<std::string>{"<unk>", "<pad>", "<bos>", "<eos>", "coche", "coches", "el", "los", "rojo", "rojos"});
  CHECK(v.encode("los coches rojos") == std::vector<std::int64_t>{7, 5, 9});
  CHECK(v.encode("  el\tcoche \n rojo ") == std::vector<std::int64_t>{6, 4, 8});
  CHECK(v.encode("").empty());
  CHECK(v.decode({2, 7, 5, 9, 3, 1, 1}) == "los coches rojos");
  CHECK(v.decode({6, 0, 8}) == "el <unk> rojo");
  CHECK(v.decode(v.encode("el coche rojo")) == "el coche rojo");
}

TEST_CASE("WordVocabulary.encode: a word it does not hold is named with its position, never a silent <unk>") {
  const WordVocabulary v = WordVocabulary::build({"el coche rojo"});
  CHECK_THROWS_WITH_AS(v.encode("el coche azul rojo"), "WordVocabulary.encode: 'azul' (word 3 of 4) is not in the vocabulary (7 ids)", RangeError);
  CHECK_THROWS_WITH_AS(v.encode("el <unk>"), "WordVocabulary.encode: '<unk>' (word 2 of 2) is a special token; a sentence holds words only", RangeError);
  CHECK_THROWS_WITH_AS(v.encode("\x1b[31mel"), "WordVocabulary.encode: '\\u001b[31mel' (word 1 of 1) is not in the vocabulary (7 ids)", RangeError);
  CHECK_THROWS_WITH_AS(v.encode("el \xff"), "WordVocabulary.encode: '\\xff' (word 2 of 2) is not in the vocabulary (7 ids)", RangeError);
  CHECK_THROWS_WITH_AS(v.decode({4, 7}), "WordVocabulary.decode: token id 7 at position 1 is outside the vocabulary [0, 7)", RangeError);
  CHECK_THROWS_WITH_AS(v.decode({-1}), "WordVocabulary.decode: token id -1 at position 0 is outside the vocabulary [0, 7)", RangeError);
}

TEST_CASE("WordVocabulary.build: refuses text a vocabulary file cannot hold, and specials written as words") {
  CHECK_THROWS_WITH_AS(WordVocabulary::build({"ok", "caf\xe9"}),
                       "WordVocabulary.build: sentence 2 is not valid UTF-8: invalid UTF-8 at byte 3 (0xe9); the text ends inside a 3-byte sequence",
                       FormatError);
  CHECK_THROWS_WITH_AS(WordVocabulary::build({"a <bos> b"}),
                       "WordVocabulary.build: sentence 1 holds the special token '<bos>' (word 2); specials are not words", RangeError);
}

TEST_CASE("WordVocabulary.save and load: a JSON object {word: id} in id order, read back the same") {
  const WordVocabulary v = WordVocabulary::build({"la moto rápida", "la casa"});
  const testing::TempFile f;
  v.save(f.path());
  CHECK(f.read() == "{\n \"<unk>\": 0,\n \"<pad>\": 1,\n \"<bos>\": 2,\n \"<eos>\": 3,\n \"la\": 4,\n \"casa\": 5,\n \"moto\": 6,\n \"rápida\": 7\n}\n");
  const WordVocabulary w = WordVocabulary::load(f.path());
  CHECK(w.words() == v.words());
  CHECK(w.encode("la moto rápida") == std::vector<std::int64_t>{4, 6, 7});
  // A directory where the file goes: refused by name (harden-c).
  const testing::TempDir dir;
  CHECK_THROWS_WITH_AS(v.save(dir.path()), (dir.path() + ": is a directory, not a regular file; refusing to write over it").c_str(), IoError);
}

TEST_CASE("WordVocabulary.load: every malformed file is refused, naming the file") {
  const testing::TempFile f;
  const std::string p = f.path();
  const std::string specials = R"("<unk>": 0, "<pad>": 1, "<bos>": 2, "<eos>": 3)";
  auto error = [&](const std::string& text) {
    f.write(text);
    try {
      WordVocabulary::load(p);
    } catch (const FormatError& e) {
      return std::string(e.what());
    }
    return std::string("no FormatError");
  };
  CHECK(error("[1, 2]") == p + ": the top level is a JSON array; expected an object {word: id}");
  CHECK(error("{" + specials + ", \"a\": 4") == p + ": not valid JSON: parse error at line 1, column 56: syntax error while parsing object - unexpected end of input; expected '}'");
  CHECK(error("{" + specials + ", \"a\": 4, \"a\": 5}") == p + ": the word 'a' appears twice");
  CHECK(error("{" + specials + ", \"a\": \"4\"}") == p + ": the word 'a' has id \"4\"; expected an integer in [0, 5), the 5 words numbered 0..4 each once");
  CHECK(error("{" + specials + ", \"a\": 5}") == p + ": the word 'a' has id 5; expected an integer in [0, 5), the 5 words numbered 0..4 each once");
  CHECK(error("{" + specials + ", \"a\": 4.0}") == p + ": the word 'a' has id 4.0; expected an integer in [0, 5), the 5 words numbered 0..4 each once");
  // Ids beyond 64 bits, quoted as written (issue 13): 2^63 was wrapped into a negative id, 2^64 + 1 became 1.8446744073709552e+19.
  for (const std::string digits : {"9223372036854775808", "18446744073709551617", "-9223372036854775809"})
    CHECK(error("{" + specials + ", \"a\": " + digits + "}") ==
          p + ": the word 'a' has id " + digits + "; expected an integer in [0, 5), the 5 words numbered 0..4 each once");
  // An id beyond a double's range: the word it belongs to and the number as written (harden-c).
  const std::string huge = "{" + specials + ", \"a\": 1e400}";
  CHECK(error(huge) == p + ": not valid JSON: number overflow: field 'a' is 1e400 (at byte " + std::to_string(huge.find("1e400")) +
                           "), beyond the range of a double (about 1.8e308)");
  CHECK(error("{" + specials + ", \"a\": 3}") == p + ": the words '<eos>' and 'a' both have id 3; expected each id once");
  CHECK(error("{" + specials + ", \"a b\": 4}") == p + ": the word 'a b' (id 4) is empty or holds whitespace; a word cannot");
  CHECK(error("{" + specials + ", \"\": 4}") == p + ": the word '' (id 4) is empty or holds whitespace; a word cannot");
  CHECK(error(R"({"<pad>": 0, "<unk>": 1, "<bos>": 2, "<eos>": 3})") ==
        p + ": id 0 is '<pad>'; expected '<unk>' (the specials are <unk> = 0, <pad> = 1, <bos> = 2, <eos> = 3)");
  CHECK(error(R"({"<unk>": 0, "<pad>": 1})") == p + ": id 2 is missing; expected '<bos>' (the specials are <unk> = 0, <pad> = 1, <bos> = 2, <eos> = 3)");
  CHECK(error(R"({"<unk>": 0, "<pad>": 1, "<bos>": 2, "a": 3})") ==
        p + ": id 3 is 'a'; expected '<eos>' (the specials are <unk> = 0, <pad> = 1, <bos> = 2, <eos> = 3)");
  CHECK_THROWS_WITH_AS(WordVocabulary::load(p + ".missing"), (p + ".missing: cannot open: No such file or directory").c_str(), IoError);
  const testing::TempDir dir;
  CHECK_THROWS_WITH_AS(WordVocabulary::load(dir.path()), (dir.path() + ": is a directory, not a file").c_str(), IoError);
}
