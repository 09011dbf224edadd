// tests/test_bpe_trainer.cpp: text/bpe_trainer.hpp. What train_bpe writes loads in GPT2Tokenizer and gives every text
// back byte for byte; its merges are those of a naive trainer written here, which recounts every pair from scratch
// before each merge (the rule of the header's first lines, done the slow way), on tiny texts and on 300 KB of
// generated text; ties, the stop rule, "<|endoftext|>", the error messages; and GPT-2's own vocab.json and merges.txt
// come out of TrainedBPE byte for byte, so the format is GPT-2's.
#include "eigenformer/text/bpe_trainer.hpp"

#include <doctest/doctest.h>

#include "support/gpt2_tokenizer.hpp"
#include "support/temp_file.hpp"

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

using namespace eigenformer;

namespace {

using Merges = std::vector<std::pair<std::string, std::string>>;

using eigenformer::testing::gpt2_tokenizer_dir;
using eigenformer::testing::real_gpt2_tokenizer;
using eigenformer::testing::spelled;

GPT2Tokenizer load(const TrainedBPE& bpe) { return GPT2Tokenizer::from_text(bpe.vocab_json(), bpe.merges_txt()); }

TrainedBPE train(std::string_view text, std::int64_t vocab_size) {
  BPETrainerOptions options;
  options.vocab_size = vocab_size;
  return train_bpe(text, options);
}

// The naive trainer: the pieces of the text (split at each "<|endoftext|>", then GPT-2's pre-tokenizer), then, until the
// vocabulary is full, count every adjacent pair of every piece again, take the most frequent pair that occurs at least
// twice and does not spell an existing token, ties to the smallest (left bytes, right bytes), and merge it everywhere,
// left to right. Returns the merges as bytes.
std::vector<std::pair<std::string, std::string>> naive_merges(const std::string& text, std::int64_t vocab_size) {
  std::unordered_map<std::string, std::int64_t> count;
  const std::string eot(GPT2Tokenizer::end_of_text);
  std::size_t from = 0;
  while (true) {
    const std::size_t at = text.find(eot, from);
    for (const std::string_view piece : gpt2_pretokenize(std::string_view(text).substr(from, at == std::string::npos ? std::string::npos : at - from)))
      ++count[std::string(piece)];
    if (at == std::string::npos) break;
    from = at + eot.size();
  }
  std::vector<std::string> token_bytes;  // token -> bytes, 0..255 the bytes themselves
  for (int b = 0; b < 256; ++b) token_bytes.emplace_back(1, static_cast<char>(b));
  std::unordered_set<std::string> known(token_bytes.begin(), token_bytes.end());
  std::vector<std::pair<std::vector<int>, std::int64_t>> words;
  for (const auto& [piece, n] : count) {
    std::vector<int> symbols;
    for (const char b : piece) symbols.push_back(static_cast<unsigned char>(b));
    words.emplace_back(std::move(symbols), n);
  }
  std::vector<std::pair<std::string, std::string>> merges;
  while (257 + static_cast<std::int64_t>(merges.size()) < vocab_size) {
    std::unordered_map<std::uint64_t, std::int64_t> pair_count;
    for (const auto& [symbols, n] : words)
      for (std::size_t k = 0; k + 1 < symbols.size(); ++k) pair_count[std::uint64_t(symbols[k]) << 32 | std::uint64_t(symbols[k + 1])] += n;
    int best_left = -1, best_right = -1;
    std::int64_t best = 1;  // a pair must occur at least twice
    for (const auto& [key, n] : pair_count) {
      const int left = static_cast<int>(key >> 32), right = static_cast<int>(key & 0xFFFFFFFF);
      const std::string& l = token_bytes[static_cast<std::size_t>(left)];
      const std::string& r = token_bytes[static_cast<std::size_t>(right)];
      if (known.count(l + r)) continue;
      const bool smaller = best_left >= 0 && std::make_pair(l, r) < std::make_pair(token_bytes[static_cast<std::size_t>(best_left)],
                                                                                    token_bytes[static_cast<std::size_t>(best_right)]);
      if (n > best || (n == best && smaller)) {
        best = n;
        best_left = left;
        best_right = right;
      }
    }
    if (best_left < 0) break;
    const int merged = static_cast<int>(token_bytes.size());
    token_bytes.push_back(token_bytes[static_cast<std::size_t>(best_left)] + token_bytes[static_cast<std::size_t>(best_right)]);
    known.insert(token_bytes.back());
    merges.emplace_back(token_bytes[static_cast<std::size_t>(best_left)], token_bytes[static_cast<std::size_t>(best_right)]);
    for (auto& [symbols, n] : words) {
      std::vector<int> out;
      for (std::size_t k = 0; k < symbols.size(); ++k) {
        if (k + 1 < symbols.size() && symbols[k] == best_left && symbols[k + 1] == best_right) {
          out.push_back(merged);
          ++k;
        } else {
          out.push_back(symbols[k]);
        }
      }
      symbols = std::move(out);
    }
  }
  return merges;
}

Merges naive_spelled(const std::string& text, std::int64_t vocab_size) {
  Merges out;
  for (const auto& [l, r] : naive_merges(text, vocab_size)) out.emplace_back(spelled(l), spelled(r));
  return out;
}

// Text from a seeded generator: words of random syllables (some capitalised, some accented or CJK), numbers, punctuation,
// newlines and runs of spaces; about `bytes` long. Its words repeat (at most 2000 distinct, the first ones most), as a language's do.
std::string generated_text(std::size_t bytes, unsigned seed) {
  std::mt19937 rng(seed);  // its output is fixed by the standard; no std::*_distribution (those are not)
  const char* const syllables[] = {"ka", "to", "ri", "men", "sa", "lo", "qu", "ew", "th", "é", "ün", "中", "文", "ß", "ar", "on", "is"};
  const char* const gaps[] = {" ", " ", " ", " ", ", ", ". ", "\n", "  ", "   ", "!\n\n", "; ", " - ", "\t", "? "};
  std::vector<std::string> lexicon;
  for (int w = 0; w < 2000; ++w) {
    std::string word;
    const unsigned n = 1 + rng() % 4;
    for (unsigned k = 0; k < n; ++k) word += syllables[rng() % std::size(syllables)];
    if (rng() % 5 == 0) word[0] = static_cast<char>(word[0] >= 'a' && word[0] <= 'z' ? word[0] - 'a' + 'A' : word[0]);
    lexicon.push_back(word);
  }
  std::string text;
  while (text.size() < bytes) {
    const unsigned r = rng() % 40;
    if (r == 0) text += std::to_string(rng() % 2000);
    else text += lexicon[(rng() % lexicon.size()) * (rng() % lexicon.size()) / lexicon.size()];  // the first words more often
    text += gaps[rng() % std::size(gaps)];
  }
  return text;
}

const std::string sample =
    "Call me Ishmael. Some years ago—never mind how long precisely—having little or no money in my purse,\n"
    "and nothing particular to interest me on shore, I thought I would sail about a little and see the watery part\n"
    "of the world.    It is a way I have of driving off the spleen, and regulating the circulation (1851).\n"
    "Café déjà vu: naïve façade, Straße, 東京 and 東京タワー; numbers 1234567 and 3.14159; tabs\there\t\tand  there.\n\n"
    "Whenever I find myself growing grim about the mouth; whenever it is a damp, drizzly November in my soul...\n";

}  // namespace

TEST_CASE("train_bpe: GPT2Tokenizer loads what it learned and gives back every text byte for byte") {
  std::string text;
  for (int k = 0; k < 8; ++k) text += sample;
  const TrainedBPE bpe = train(text, 500);
  REQUIRE(bpe.tokens.size() == 500);  // enough text for every merge asked
  CHECK(bpe.merges.size() == 500 - 257);
  const GPT2Tokenizer tok = load(bpe);
  CHECK(tok.vocab_size() == 500);
  CHECK(tok.eos_id() == 499);
  CHECK(tok.token(tok.eos_id()) == "<|endoftext|>");
  for (std::size_t id = 0; id < bpe.tokens.size(); ++id) CHECK(tok.token(static_cast<std::int64_t>(id)) == bpe.tokens[id]);

  const std::vector<std::int64_t> ids = tok.encode(text);
  CHECK(tok.decode_bytes(ids) == text);
  CHECK(ids.size() * 3 < text.size());  // the merges learned this text: fewer than a third of its bytes as ids

  // Text it never saw, with characters and bytes it never saw (control characters, CRLF, an emoji, Greek).
  const std::string unseen = "Ἀλφα βήτα \x01\x7f and 🐳 whales,\r\n\r\n   spouting 42 times — \"Thar she blows!\" <|endoftext|> the end";
  CHECK(tok.decode_bytes(tok.encode(unseen)) == unseen);
  CHECK(tok.decode_bytes(tok.encode(sample)) == sample);

  SUBCASE("save() writes the same two files, and from_directory reads them") {
    const testing::TempDir dir;
    bpe.save(dir.path());
    CHECK(eigenformer::testing::read_text_file(dir.path() + "/vocab.json") == bpe.vocab_json());
    CHECK(eigenformer::testing::read_text_file(dir.path() + "/merges.txt") == bpe.merges_txt());
    CHECK(GPT2Tokenizer::from_directory(dir.path()).encode(unseen) == tok.encode(unseen));
  }
}

TEST_CASE("train_bpe: ids 0..255 are the bytes in GPT-2's order, and the vocabulary ends with <|endoftext|>") {
  const TrainedBPE bpe = train("hello hello world", 260);
  REQUIRE(bpe.tokens.size() >= 257);
  for (std::int64_t id = 0; id < 256; ++id) CHECK(bpe.tokens[static_cast<std::size_t>(id)] == real_gpt2_tokenizer().token(id));
  CHECK(bpe.tokens.back() == real_gpt2_tokenizer().token(real_gpt2_tokenizer().eos_id()));
}

TEST_CASE("train_bpe: the first merges are those of a brute-force recount") {
  const std::string text = "low lower lowest newer newest wider widest, low low lower! newer newest 22 222 2222 üü üü";
  const TrainedBPE bpe = train(text, 257 + 12);
  CHECK(bpe.merges == naive_spelled(text, 257 + 12));
  CHECK(bpe.merges.size() == 12);
}

TEST_CASE("train_bpe: to exhaustion, it stops when no pair occurs twice, with the merges of the brute-force recount") {
  const std::string text = sample + sample.substr(0, 300);
  const TrainedBPE bpe = train(text, 100000);
  CHECK(bpe.merges == naive_spelled(text, 100000));
  CHECK(bpe.merges.size() < 100000 - 257);
  CHECK(bpe.tokens.size() == 257 + bpe.merges.size());
  CHECK(load(bpe).vocab_size() == static_cast<std::int64_t>(bpe.tokens.size()));

  SUBCASE("a text with no pair twice learns nothing") {
    const TrainedBPE none = train("abcdefg", 1000);
    CHECK(none.merges.empty());
    CHECK(none.tokens.size() == 257);
  }
}

TEST_CASE("train_bpe: 300 KB of generated text gives the merges of the brute-force recount") {
  const std::string text = generated_text(300000, 12345);
  const std::int64_t vocab_size = 257 + 500;
  const TrainedBPE bpe = train(text, vocab_size);
  REQUIRE(bpe.merges.size() == 500);
  const Merges naive = naive_spelled(text, vocab_size);
  REQUIRE(naive.size() == bpe.merges.size());
  std::size_t first_difference = 0;
  while (first_difference < naive.size() && naive[first_difference] == bpe.merges[first_difference]) ++first_difference;
  CHECK_MESSAGE(first_difference == naive.size(), "merge " << first_difference << " differs");
  const GPT2Tokenizer tok = load(bpe);
  CHECK(tok.decode_bytes(tok.encode(text)) == text);
}

TEST_CASE("train_bpe: ties go to the smallest (left bytes, right bytes), bytes and not their spelling") {
  // (a, b) and (space, x) occur twice each: by bytes the space (0x20) comes first; spelled, it is 'Ġ' (U+0120), after 'a'.
  const std::string text = "ab\nab\n x x";
  std::unordered_map<std::string, std::int64_t> pair_count;  // "left\0right" -> count, over the pieces
  for (const std::string_view piece : gpt2_pretokenize(text))
    for (std::size_t k = 0; k + 1 < piece.size(); ++k) ++pair_count[std::string(1, piece[k]) + '\0' + piece[k + 1]];
  std::int64_t top = 0;
  for (const auto& [pair, n] : pair_count) top = std::max(top, n);
  std::vector<std::pair<std::string, std::string>> tied;
  for (const auto& [pair, n] : pair_count)
    if (n == top) tied.emplace_back(pair.substr(0, 1), pair.substr(2, 1));
  REQUIRE(tied.size() >= 2);
  const auto by_bytes = *std::min_element(tied.begin(), tied.end());
  const auto by_spelling = *std::min_element(tied.begin(), tied.end(), [](const auto& x, const auto& y) {
    return std::make_pair(spelled(x.first), spelled(x.second)) < std::make_pair(spelled(y.first), spelled(y.second));
  });
  REQUIRE(by_bytes != by_spelling);  // so the case tells the two rules apart

  const TrainedBPE bpe = train(text, 258);
  REQUIRE(bpe.merges.size() == 1);
  CHECK(bpe.merges[0] == std::make_pair(spelled(by_bytes.first), spelled(by_bytes.second)));

  SUBCASE("the same pieces in another order give the same merges") {
    const std::string words = "ab\nab\nac\nac\nbc\nbc\nabc\n";
    const std::string reversed = "abc\nbc\nbc\nac\nac\nab\nab\n";
    CHECK(train(words, 300).merges == train(reversed, 300).merges);
    CHECK(train(words, 300).merges == naive_spelled(words, 300));
  }
}

TEST_CASE("train_bpe: vocab_size 257 learns no merge: the 256 bytes and <|endoftext|>") {
  const TrainedBPE bpe = train(sample, 257);
  CHECK(bpe.merges.empty());
  CHECK(bpe.tokens.size() == 257);
  CHECK(bpe.merges_txt() == "#version: 0.2\n");
  const GPT2Tokenizer tok = load(bpe);
  CHECK(tok.vocab_size() == 257);
  CHECK(tok.eos_id() == 256);
  const std::vector<std::int64_t> ids = tok.encode(sample);
  CHECK(ids.size() == sample.size());  // one id per byte
  CHECK(tok.decode_bytes(ids) == sample);
}

TEST_CASE("train_bpe: a literal <|endoftext|> is one token and never merged into") {
  std::string text;
  for (int k = 0; k < 20; ++k) text += "the cat sat<|endoftext|>on the mat <|endoftext|>";
  const TrainedBPE bpe = train(text, 300);
  CHECK(bpe.merges == naive_spelled(text, 300));
  for (std::size_t id = 256; id + 1 < bpe.tokens.size(); ++id) {  // no learned token holds a byte of the literal's marks
    CAPTURE(bpe.tokens[id]);
    CHECK(bpe.tokens[id].find_first_of("<|>") == std::string::npos);
  }
  const GPT2Tokenizer tok = load(bpe);
  CHECK(tok.encode("<|endoftext|>") == std::vector<std::int64_t>{tok.eos_id()});
  const std::vector<std::int64_t> ids = tok.encode(text);
  CHECK(std::count(ids.begin(), ids.end(), tok.eos_id()) == 40);
  CHECK(tok.decode_bytes(ids) == text);
}

TEST_CASE("train_bpe: on_progress sees every merge, out of vocab_size - 257") {
  std::vector<std::pair<std::int64_t, std::int64_t>> calls;
  BPETrainerOptions options;
  options.vocab_size = 280;
  options.on_progress = [&](std::int64_t done, std::int64_t total) { calls.emplace_back(done, total); };
  const TrainedBPE bpe = train_bpe(sample, options);
  REQUIRE(calls.size() == bpe.merges.size());
  for (std::size_t k = 0; k < calls.size(); ++k) CHECK(calls[k] == std::make_pair(static_cast<std::int64_t>(k + 1), std::int64_t(280 - 257)));
}

TEST_CASE("train_bpe: bad input, each with its full message") {
  CHECK_THROWS_WITH_AS(train("some text", 256), "train_bpe: vocab_size is 256; expected at least 257 (the 256 bytes and \"<|endoftext|>\")",
                       RangeError);
  CHECK_THROWS_WITH_AS(train("some text", -1), "train_bpe: vocab_size is -1; expected at least 257 (the 256 bytes and \"<|endoftext|>\")",
                       RangeError);
  CHECK_THROWS_WITH_AS(train("some text", std::int64_t(1) << 31), "train_bpe: vocab_size is 2147483648; expected at most 2147483647", RangeError);
  CHECK_THROWS_WITH_AS(train("", 300), "train_bpe: the text is empty; expected UTF-8 text to learn merges from", FormatError);
  CHECK_THROWS_WITH_AS(train("naïve \xff text", 300), "train_bpe: invalid UTF-8 at byte 7 (0xff); 0xff never occurs in UTF-8", FormatError);
  CHECK_THROWS_WITH_AS(train("ends inside \xe6\x9d", 300), "train_bpe: invalid UTF-8 at byte 12 (0xe6); the text ends inside a 3-byte sequence",
                       FormatError);
  const testing::TempDir dir;
  const std::string missing = dir.path() + "/no/such/dir";
  CHECK_THROWS_WITH_AS(train("ab ab", 300).save(missing), (missing + "/vocab.json: cannot open for writing: No such file or directory").c_str(),
                       IoError);
  // merges.txt a directory: refused by name before vocab.json is written either (harden-c).
  std::filesystem::create_directory(dir.path() + "/merges.txt");
  CHECK_THROWS_WITH_AS(train("ab ab", 300).save(dir.path()),
                       (dir.path() + "/merges.txt: is a directory, not a regular file; refusing to write over it").c_str(), IoError);
  CHECK_FALSE(std::filesystem::exists(dir.path() + "/vocab.json"));
}

TEST_CASE("TrainedBPE: GPT-2's own tokens and merges come out as GPT-2's vocab.json and merges.txt, byte for byte") {
  const GPT2Tokenizer& tok = real_gpt2_tokenizer();
  TrainedBPE bpe;
  for (std::int64_t id = 0; id < tok.vocab_size(); ++id) bpe.tokens.push_back(tok.token(id));
  const std::string merges_txt = eigenformer::testing::read_text_file(gpt2_tokenizer_dir + "/merges.txt");
  for (std::size_t pos = merges_txt.find('\n') + 1; pos < merges_txt.size();) {
    const std::size_t end = merges_txt.find('\n', pos), space = merges_txt.find(' ', pos);
    bpe.merges.emplace_back(merges_txt.substr(pos, space - pos), merges_txt.substr(space + 1, end - space - 1));
    pos = end + 1;
  }
  CHECK(bpe.merges.size() == 50000);
  CHECK(bpe.vocab_json() == eigenformer::testing::read_text_file(gpt2_tokenizer_dir + "/vocab.json"));
  CHECK(bpe.merges_txt() == merges_txt);
}
