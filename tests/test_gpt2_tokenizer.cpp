// tests/test_gpt2_tokenizer.cpp: text/gpt2_tokenizer.hpp. The real GPT-2 files (./setup.sh installs them
// into .deps/gpt2) against the ids of the npm reference gpt-3-encoder for every case of
// tests/fixtures/tokenizer/cases.json (tools/make_tokenizer_cases.mjs), decoding and streaming against
// TextDecoder, then every bad input and bad file, each on the full text of its message.
#include "eigenformer/text/gpt2_tokenizer.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "support/allocations.hpp"
#include "support/gpt2_tokenizer.hpp"
#include "support/temp_file.hpp"

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

using namespace eigenformer;

namespace {

using eigenformer::testing::TempFile;
using Ids = std::vector<std::int64_t>;

using eigenformer::testing::gpt2_tokenizer_dir;
using eigenformer::testing::real_gpt2_tokenizer;
using eigenformer::testing::spelled;

const nlohmann::json& tokenizer_fixture() {
  static const nlohmann::json j = [] {
    std::ifstream in(std::string(EIGENFORMER_FIXTURE_DIR) + "/tokenizer/cases.json", std::ios::binary);
    return nlohmann::json::parse(in);
  }();
  return j;
}
const nlohmann::json& cases() { return tokenizer_fixture().at("cases"); }

const nlohmann::json& named_case(const std::string& name) {
  for (const auto& c : cases())
    if (c.at("name") == name) return c;
  FAIL("no case named '" << name << "' in cases.json");
  return cases()[0];
}

std::string str(const Ids& ids) { return nlohmann::json(ids).dump(); }

// Where two id lists part, for a readable failure on a long text.
std::string first_difference(const Ids& got, const Ids& want) {
  std::size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  const std::size_t from = i < 3 ? 0 : i - 3;
  const auto slice = [&](const Ids& v) { return str(Ids(v.begin() + static_cast<std::ptrdiff_t>(std::min(from, v.size())),
                                                      v.begin() + static_cast<std::ptrdiff_t>(std::min(i + 5, v.size())))); };
  return "first difference at id " + std::to_string(i) + " of " + std::to_string(want.size()) + ": got ..." + slice(got) +
         ", expected ..." + slice(want);
}

// Checks `got(case) == want(case)` on every case, reporting at most 10 failures.
template <typename Got, typename Want>
void check_every_case(Got&& got, Want&& want) {
  int failures = 0;
  for (const auto& c : cases()) {
    const Ids g = got(c);
    const Ids w = want(c);
    if (g != w && ++failures <= 10) FAIL_CHECK(c.at("name").get<std::string>() << ": " << first_difference(g, w));
  }
  CHECK(failures == 0);
}

Ids ids_of(const nlohmann::json& c) { return c.at("ids").get<Ids>(); }
Ids plain_ids_of(const nlohmann::json& c) { return c.contains("ids_plain") ? c.at("ids_plain").get<Ids>() : ids_of(c); }

EncodeOptions plain() {
  EncodeOptions o;
  o.special_tokens = false;
  return o;
}

// A small vocabulary: the 256 byte tokens (ids 0..255 in byte order), then `extra` tokens in order, then
// "<|endoftext|>"; tokens are spelled as in vocab.json ("Ġ" for a space).
nlohmann::json tiny_vocab(const std::vector<std::string>& extra) {
  nlohmann::json v = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) v[spelled(std::string(1, static_cast<char>(b)))] = b;
  int id = 256;
  for (const auto& t : extra) v[spelled(t)] = id++;
  v["<|endoftext|>"] = id;
  return v;
}

}  // namespace

TEST_CASE("GPT2Tokenizer: the real files have GPT-2's size and end-of-text id") {
  const GPT2Tokenizer& tok = real_gpt2_tokenizer();
  CHECK(tok.vocab_size() == 50257);
  CHECK(tok.eos_id() == 50256);
  CHECK(tok.token(50256) == "<|endoftext|>");
  CHECK(tok.token_id("<|endoftext|>") == std::optional<std::int64_t>(50256));
  CHECK_FALSE(tok.token_id("not a token").has_value());
  for (std::int64_t id = 0; id < tok.vocab_size(); id += 97) CHECK(spelled(tok.token_bytes(id)) == tok.token(id));
}

TEST_CASE("GPT2Tokenizer: the examples of REFERENCE.md, as the reference script wrote them") {
  const GPT2Tokenizer& tok = real_gpt2_tokenizer();
  for (const char* name : {"reference: Hello world", "reference: Hello, world!", "reference: a <|endoftext|> b"}) {
    CAPTURE(name);
    const auto& c = named_case(name);
    CHECK(str(tok.encode(c.at("text").get<std::string>())) == str(ids_of(c)));
  }
}

TEST_CASE("GPT2Tokenizer: encode gives gpt-3-encoder's ids on every case") {
  const GPT2Tokenizer& tok = real_gpt2_tokenizer();
  REQUIRE(cases().size() > 2000);
  check_every_case([&](const nlohmann::json& c) { return tok.encode(c.at("text").get<std::string>()); }, ids_of);
}

TEST_CASE("GPT2Tokenizer: with special_tokens = false, <|endoftext|> is plain text, as in gpt-3-encoder") {
  const GPT2Tokenizer& tok = real_gpt2_tokenizer();
  check_every_case([&](const nlohmann::json& c) { return tok.encode(c.at("text").get<std::string>(), plain()); }, plain_ids_of);
}

TEST_CASE("GPT2Tokenizer: the special-token option both ways on 'a <|endoftext|> b'") {
  const GPT2Tokenizer& tok = real_gpt2_tokenizer();
  const auto& c = named_case("reference: a <|endoftext|> b");
  const std::string text = c.at("text").get<std::string>();
  const Ids split = tok.encode(text);
  const Ids as_text = tok.encode(text, plain());
  CHECK(str(split) == str(ids_of(c)));
  CHECK(str(as_text) == str(c.at("ids_plain").get<Ids>()));
  CHECK(std::count(split.begin(), split.end(), tok.eos_id()) == 1);
  CHECK(std::count(as_text.begin(), as_text.end(), tok.eos_id()) == 0);
  CHECK(tok.decode(split) == text);
  CHECK(tok.decode(as_text) == text);
}

TEST_CASE("GPT2Tokenizer: the cache changes nothing: off, cold and warm give the same ids") {
  GPT2TokenizerOptions no_cache;
  no_cache.cache_capacity = 0;
  const GPT2Tokenizer uncached = GPT2Tokenizer::from_directory(gpt2_tokenizer_dir, no_cache);
  const GPT2Tokenizer& cached = real_gpt2_tokenizer();
  cached.clear_cache();
  check_every_case([&](const nlohmann::json& c) { return uncached.encode(c.at("text").get<std::string>()); }, ids_of);
  CHECK(uncached.cache_size() == 0);
  check_every_case([&](const nlohmann::json& c) { return cached.encode(c.at("text").get<std::string>()); }, ids_of);
  CHECK(cached.cache_size() > 1000);
  check_every_case([&](const nlohmann::json& c) { return cached.encode(c.at("text").get<std::string>()); }, ids_of);
}

TEST_CASE("GPT2Tokenizer: a full cache stops growing and still encodes right") {
  GPT2TokenizerOptions small;
  small.cache_capacity = 10;
  const GPT2Tokenizer tok = GPT2Tokenizer::from_directory(gpt2_tokenizer_dir, small);
  check_every_case([&](const nlohmann::json& c) { return tok.encode(c.at("text").get<std::string>()); }, ids_of);
  CHECK(tok.cache_size() == 10);
}

TEST_CASE("GPT2Tokenizer: one tokenizer encodes from four threads at once") {
  const GPT2Tokenizer& tok = real_gpt2_tokenizer();
  tok.clear_cache();  // the threads fill it together
  std::vector<std::string> texts;
  std::vector<Ids> want;
  for (const auto& c : cases()) {
    texts.push_back(c.at("text").get<std::string>());
    want.push_back(ids_of(c));
  }
  std::vector<int> wrong(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 2; ++round)
        for (std::size_t i = static_cast<std::size_t>(t); i < texts.size() + static_cast<std::size_t>(t); ++i) {
          const std::size_t k = i % texts.size();  // each thread starts elsewhere
          if (tok.encode(texts[k]) != want[k]) ++wrong[static_cast<std::size_t>(t)];
        }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(wrong == std::vector<int>(4, 0));
}

TEST_CASE("GPT2Tokenizer: decode(encode(text)) == text, and decode of the reference ids too") {
  const GPT2Tokenizer& tok = real_gpt2_tokenizer();
  int failures = 0;
  for (const auto& c : cases()) {
    const std::string text = c.at("text").get<std::string>();
    const bool ok = tok.decode(tok.encode(text)) == text && tok.decode(ids_of(c)) == text && tok.decode(plain_ids_of(c)) == text &&
                    tok.decode_bytes(ids_of(c)) == text;
    if (!ok && ++failures <= 10) FAIL_CHECK(c.at("name").get<std::string>() << ": does not decode back to its text");
  }
  CHECK(failures == 0);
}

TEST_CASE("StreamingDecoder: id by id, every case comes out whole, in valid UTF-8 pieces") {
  const GPT2Tokenizer& tok = real_gpt2_tokenizer();
  int failures = 0;
  std::size_t held_back = 0;  // how often a character had to wait for a later id
  for (const auto& c : cases()) {
    StreamingDecoder stream(tok);
    std::string text;
    bool valid = true;
    for (const std::int64_t id : ids_of(c)) {
      const std::string piece = stream.push(id);
      valid = valid && find_invalid_utf8(piece) == piece.size() && stream.pending_bytes() <= 3;
      held_back += stream.pending_bytes() > 0 ? 1 : 0;
      text += piece;
    }
    text += stream.flush();
    const bool ok = valid && text == c.at("text").get<std::string>();
    if (!ok && ++failures <= 10) FAIL_CHECK(c.at("name").get<std::string>() << (valid ? ": text differs" : ": a piece is not valid UTF-8"));
  }
  CHECK(failures == 0);
  CHECK(held_back > 100);  // the corpus does split characters across ids
}

TEST_CASE("GPT2Tokenizer: decode of ids that cut characters matches gpt-3-encoder (U+FFFD per maximal subpart)") {
  const GPT2Tokenizer& tok = real_gpt2_tokenizer();
  const auto& decode_cases = tokenizer_fixture().at("decode_cases");
  REQUIRE(decode_cases.size() > 100);
  for (const auto& c : decode_cases) {
    CAPTURE(c.at("name").get<std::string>());
    CHECK(tok.decode(c.at("ids").get<Ids>()) == c.at("text").get<std::string>());
  }
}

TEST_CASE("StreamingDecoder: after each id, exactly what TextDecoder's stream mode gives") {
  const GPT2Tokenizer& tok = real_gpt2_tokenizer();
  StreamingDecoder stream(tok);  // one decoder for all cases: flush() starts each anew
  for (const auto& c : tokenizer_fixture().at("decode_cases")) {
    CAPTURE(c.at("name").get<std::string>());
    const auto ids = c.at("ids").get<Ids>();
    const auto chunks = c.at("chunks").get<std::vector<std::string>>();
    REQUIRE(chunks.size() == ids.size() + 1);
    for (std::size_t i = 0; i < ids.size(); ++i) CHECK(stream.push(ids[i]) == chunks[i]);
    CHECK(stream.flush() == chunks.back());
    CHECK(stream.pending_bytes() == 0);
  }
}

TEST_CASE("GPT2Tokenizer: invalid UTF-8 is refused, naming the byte") {
  const GPT2Tokenizer& tok = real_gpt2_tokenizer();
  const std::string where = "GPT2Tokenizer.encode: invalid UTF-8 at byte ";
  CHECK_THROWS_WITH_AS(tok.encode("Hello, world!\n\xff\xfe"), (where + "14 (0xff); 0xff never occurs in UTF-8").c_str(), FormatError);
  CHECK_THROWS_WITH_AS(tok.encode("caf\xc3"), (where + "3 (0xc3); the text ends inside a 2-byte sequence").c_str(), FormatError);
  CHECK_THROWS_WITH_AS(tok.encode("x\x80y"), (where + "1 (0x80); a continuation byte with no lead byte before it").c_str(), FormatError);
  CHECK_THROWS_WITH_AS(tok.encode("\xe2\x82 euro"),
                       (where + "0 (0xe2); expected a continuation byte (0x80..0xbf) at byte 2, found 0x20").c_str(), FormatError);
  CHECK_THROWS_WITH_AS(tok.encode("\xc0\xaf"), (where + "0 (0xc0); 0xc0 never occurs in UTF-8").c_str(), FormatError);
  CHECK_THROWS_WITH_AS(tok.encode("ab\xe0\x80\xaf"), (where + "2 (0xe0); an overlong encoding (0xe0 0x80)").c_str(), FormatError);
  CHECK_THROWS_WITH_AS(tok.encode("\xed\xa0\x80"), (where + "0 (0xed); encodes a UTF-16 surrogate (0xed 0xa0)").c_str(), FormatError);
  CHECK_THROWS_WITH_AS(tok.encode("\xf4\x90\x80\x80"), (where + "0 (0xf4); encodes a code point above U+10FFFF (0xf4 0x90)").c_str(),
                       FormatError);
  // Offsets count from the start of the whole text, across special tokens, in both modes.
  CHECK_THROWS_WITH_AS(tok.encode("<|endoftext|>ok\xff"), (where + "15 (0xff); 0xff never occurs in UTF-8").c_str(), FormatError);
  CHECK_THROWS_WITH_AS(tok.encode("<|endoftext|>ok\xff", plain()), (where + "15 (0xff); 0xff never occurs in UTF-8").c_str(), FormatError);
  CHECK_THROWS_WITH_AS(tok.encode("\xe2<|endoftext|>"),
                       (where + "0 (0xe2); expected a continuation byte (0x80..0xbf) at byte 1, found 0x3c").c_str(), FormatError);
}

TEST_CASE("GPT2Tokenizer: an id outside the vocabulary is refused, naming it and its position") {
  const GPT2Tokenizer& tok = real_gpt2_tokenizer();
  CHECK_THROWS_WITH_AS(tok.decode({15496, 995, 50257}),
                       "GPT2Tokenizer.decode: token id 50257 at position 2 is outside the vocabulary [0, 50257)", RangeError);
  CHECK_THROWS_WITH_AS(tok.decode({-1}), "GPT2Tokenizer.decode: token id -1 at position 0 is outside the vocabulary [0, 50257)",
                       RangeError);
  CHECK_THROWS_WITH_AS(tok.decode_bytes({0, 70000}),
                       "GPT2Tokenizer.decode: token id 70000 at position 1 is outside the vocabulary [0, 50257)", RangeError);
  CHECK_THROWS_WITH_AS(tok.token(50257), "GPT2Tokenizer.token: token id 50257 is outside the vocabulary [0, 50257)", RangeError);
  CHECK_THROWS_WITH_AS(tok.token_bytes(-5), "GPT2Tokenizer.token_bytes: token id -5 is outside the vocabulary [0, 50257)", RangeError);
  StreamingDecoder stream(tok);
  stream.push(15496);
  stream.push(995);
  CHECK_THROWS_WITH_AS(stream.push(123456), "StreamingDecoder.push: token id 123456 at position 2 is outside the vocabulary [0, 50257)",
                       RangeError);
  CHECK(stream.flush().empty());
  CHECK_THROWS_WITH_AS(stream.push(50257), "StreamingDecoder.push: token id 50257 at position 0 is outside the vocabulary [0, 50257)",
                       RangeError);
}

TEST_CASE("GPT2Tokenizer: merges follow encoder.py on a small vocabulary: lowest rank first, all its pairs left to right") {
  // encoder.py on "ababa" with merges "ab a" (rank 0), "a b" (rank 1): only (a, b) has a rank, so both
  // of its pairs merge -> [ab, ab, a]; then (ab, a) -> [ab, aba]. Merging one pair at a time would make
  // (ab, a) first and end with [aba, b, a] instead.
  TempFile vocab(tiny_vocab({"aa", "ab", "aba"}).dump());
  TempFile merges("#version: 0.2\na a\nab a\na b\n");
  const GPT2Tokenizer tok = GPT2Tokenizer::load(vocab.path(), merges.path());
  const std::int64_t a = 'a', aa = 256, ab = 257, aba = 258;
  CHECK(tok.vocab_size() == 260);
  CHECK(tok.eos_id() == 259);
  CHECK(tok.encode("aaa") == Ids{aa, a});  // left to right, without overlaps
  CHECK(tok.encode("aaaa") == Ids{aa, aa});
  CHECK(tok.encode("aaaaa") == Ids{aa, aa, a});
  CHECK(tok.encode("ababa") == Ids{ab, aba});
  CHECK(tok.encode("a<|endoftext|>") == Ids{a, 259});
  // A file saved with CRLF line ends reads the same.
  TempFile merges_crlf("#version: 0.2\r\na a\r\nab a\r\na b\r\n");
  CHECK(GPT2Tokenizer::load(vocab.path(), merges_crlf.path()).encode("ababa") == Ids{ab, aba});
  // No newline at the end: the last line still counts.
  TempFile merges_no_eol("#version: 0.2\na a\nab a\na b");
  CHECK(GPT2Tokenizer::load(vocab.path(), merges_no_eol.path()).encode("ababa") == Ids{ab, aba});
}

TEST_CASE("GPT2Tokenizer.load: a missing or unreadable file is an IoError naming it") {
  TempFile merges("#version: 0.2\n");
  TempFile vocab(tiny_vocab({}).dump());
  const std::string nowhere = vocab.path() + ".missing";
  CHECK_THROWS_WITH_AS(GPT2Tokenizer::load(nowhere, merges.path()), (nowhere + ": cannot open: No such file or directory").c_str(), IoError);
  CHECK_THROWS_WITH_AS(GPT2Tokenizer::load(vocab.path(), nowhere), (nowhere + ": cannot open: No such file or directory").c_str(), IoError);
  const std::string dir = std::filesystem::temp_directory_path().string();
  CHECK_THROWS_WITH_AS(GPT2Tokenizer::load(dir, merges.path()), (dir + ": is a directory, not a file").c_str(), IoError);
  CHECK_THROWS_WITH_AS(GPT2Tokenizer::from_directory(nowhere), (nowhere + "/vocab.json: cannot open: No such file or directory").c_str(),
                       IoError);
}

TEST_CASE("GPT2Tokenizer.load: each kind of bad vocab.json is a FormatError naming the file") {
  TempFile merges("#version: 0.2\n");
  const auto check_rejected = [&](const std::string& vocab_text, const std::string& message) {
    TempFile vocab(vocab_text);
    CHECK_THROWS_WITH_AS(GPT2Tokenizer::load(vocab.path(), merges.path()), (vocab.path() + ": " + message).c_str(), FormatError);
  };
  const std::string good = tiny_vocab({"ab"}).dump();
  const std::string body = good.substr(1, good.size() - 2);  // the entries, without the braces
  check_rejected("{\"a\": 0,\n\"b\": 1,\n", "not valid JSON: parse error at line 3, column 1: syntax error while parsing object key - "
                                           "unexpected end of input; expected string literal");
  check_rejected("[1, 2]", "the top level is a JSON array; expected an object {token: id}");
  check_rejected("{" + body + ",\"xyz\":\"7\"}", "token \"xyz\" has id \"7\"; expected a non-negative integer");
  check_rejected("{" + body + ",\"xyz\":-1}", "token \"xyz\" has id -1; expected a non-negative integer");
  check_rejected("{" + body + ",\"xyz\":2.5}", "token \"xyz\" has id 2.5; expected a non-negative integer");
  // Ids beyond 64 bits, quoted as written, not wrapped or rounded (issue 13).
  for (const std::string digits : {"9223372036854775808", "18446744073709551617", "-9223372036854775809"})
    check_rejected("{" + body + ",\"xyz\":" + digits + "}", "token \"xyz\" has id " + digits + "; expected a non-negative integer");
  check_rejected("{" + body + ",\"ab\":300}", "token \"ab\" appears twice");
  check_rejected("{" + body + ",\"xyz\":256}", "tokens \"ab\" and \"xyz\" both have id 256; expected each id once");
  check_rejected("{" + body + ",\"xyz\":400}",
                 "token \"xyz\" has id 400, but there are 259 tokens; expected the ids 0..258 each once (no token has id 258)");
  check_rejected("{" + body + ",\"\":258}", "token \"\" (id 258) is empty");
  check_rejected("{" + body + ",\"a b\":258}", "token \"a b\" (id 258) holds U+0020, which is not one of the 256 characters that stand for bytes");
  check_rejected("{" + body + ",\"\xe2\x82\xac\":258}",
                 "token \"\xe2\x82\xac\" (id 258) holds U+20AC, which is not one of the 256 characters that stand for bytes");
  nlohmann::json no_newline = tiny_vocab({});
  no_newline.erase(spelled("\n"));
  no_newline[spelled("ab")] = 10;
  check_rejected(no_newline.dump(), "no token for the byte 0x0a (\"\xc4\x8a\"); expected one for each of the 256 bytes");
  nlohmann::json no_eos = tiny_vocab({});
  no_eos.erase("<|endoftext|>");
  check_rejected(no_eos.dump(), "no token \"<|endoftext|>\"; GPT-2 ends its vocabulary with it (id 50256)");
}

TEST_CASE("GPT2Tokenizer.from_text: the files' contents in memory load the same tokenizer, named in messages") {
  std::ifstream vocab(gpt2_tokenizer_dir + "/vocab.json", std::ios::binary), merges(gpt2_tokenizer_dir + "/merges.txt", std::ios::binary);
  const std::string vocab_text((std::istreambuf_iterator<char>(vocab)), std::istreambuf_iterator<char>());
  const std::string merges_text((std::istreambuf_iterator<char>(merges)), std::istreambuf_iterator<char>());
  const GPT2Tokenizer tok = GPT2Tokenizer::from_text(vocab_text, merges_text);
  CHECK(tok.vocab_size() == real_gpt2_tokenizer().vocab_size());
  CHECK(tok.eos_id() == real_gpt2_tokenizer().eos_id());
  for (const auto& c : cases()) CHECK(tok.encode(c.at("text").get<std::string>()) == real_gpt2_tokenizer().encode(c.at("text").get<std::string>()));
  CHECK_THROWS_WITH_AS(GPT2Tokenizer::from_text("[]", merges_text, {}, "mem/vocab.json"),
                       "mem/vocab.json: the top level is a JSON array; expected an object {token: id}", FormatError);
  CHECK_THROWS_WITH_AS(GPT2Tokenizer::from_text(vocab_text, "", {}, "v", "mem/merges.txt"),
                       "mem/merges.txt:1: the file is empty; expected the header \"#version: 0.2\"", FormatError);
}

TEST_CASE("GPT2Tokenizer.from_text: what fuzz_tokenizer_files found in vocab.json is a FormatError") {
  // A number too large for a double escaped as nlohmann's out_of_range; an id nested a million levels deep
  // overflowed the stack while the message was written.
  CHECK_THROWS_WITH_AS(GPT2Tokenizer::from_text("1e77772D**", "#version: 0.2\n"),  // the input as the fuzzer saved it
                       "vocab.json: not valid JSON: number overflow: 1e77772 (at byte 0), beyond the range of a double (about 1.8e308)", FormatError);
  // A token's id beyond a double: the message names the token (harden-c).
  const std::string vocab = R"({"a": 0, "b": 1e400})";
  CHECK_THROWS_WITH_AS(GPT2Tokenizer::from_text(vocab, "#version: 0.2\n"),
                       ("vocab.json: not valid JSON: number overflow: field 'b' is 1e400 (at byte " + std::to_string(vocab.find("1e400")) +
                        "), beyond the range of a double (about 1.8e308)")
                           .c_str(),
                       FormatError);
  const std::size_t depth = 1000000;
  CHECK_THROWS_WITH_AS(GPT2Tokenizer::from_text("{\"a\": " + std::string(depth, '[') + std::string(depth, ']') + "}", "#version: 0.2\n"),
                       ("vocab.json: token \"a\" has id " + std::string(16, '[') + "[...]" + std::string(16, ']') + "; expected a non-negative integer").c_str(),
                       FormatError);
}

TEST_CASE("GPT2Tokenizer.load: each kind of bad merges.txt is a FormatError naming the file and line") {
  TempFile vocab(tiny_vocab({"ab", "abc"}).dump());
  const auto check_rejected = [&](const std::string& merges_text, const std::string& message) {
    TempFile merges(merges_text);
    CHECK_THROWS_WITH_AS(GPT2Tokenizer::load(vocab.path(), merges.path()), (merges.path() + message).c_str(), FormatError);
  };
  check_rejected("", ":1: the file is empty; expected the header \"#version: 0.2\"");
  check_rejected("a b\n", ":1: the first line is \"a b\"; expected the header \"#version: 0.2\"");
  check_rejected("#version: 0.2\na b\n\nab c\n", ":3: the line is empty; expected two tokens separated by one space");
  check_rejected("#version: 0.2\na b c\n", ":2: \"a b c\" is not two tokens separated by one space");
  check_rejected("#version: 0.2\nab\n", ":2: \"ab\" is not two tokens separated by one space");
  check_rejected("#version: 0.2\na  b\n", ":2: \"a  b\" is not two tokens separated by one space");
  check_rejected("#version: 0.2\na b\nab x\n", ":3: the merge of \"ab\" and \"x\", \"abx\", is not in the vocabulary " + vocab.path());
  check_rejected("#version: 0.2\na b\na xy\n", ":3: token \"xy\" is not in the vocabulary " + vocab.path());
  check_rejected("#version: 0.2\na b\nxy z\n", ":3: token \"xy\" is not in the vocabulary " + vocab.path());
  check_rejected("#version: 0.2\na b\nab c\na b\n", ":4: the merge \"a b\" repeats line 2");
}

TEST_CASE("GPT2Tokenizer: copies share the vocabulary, and a decoder outlives its tokenizer") {
  std::optional<StreamingDecoder> stream;
  Ids ids;
  {
    const GPT2Tokenizer copy = real_gpt2_tokenizer();
    ids = copy.encode("caf\xc3\xa9 \xf0\x9f\x98\x80");  // "café 😀"
    stream.emplace(copy);
  }
  std::string text;
  for (const std::int64_t id : ids) text += stream->push(id);
  text += stream->flush();
  CHECK(text == "caf\xc3\xa9 \xf0\x9f\x98\x80");
}

TEST_CASE("GPT2Tokenizer: tokens, lines and file names quoted in messages are escaped and cut (issue 13)") {
  const std::string good = tiny_vocab({"ab"}).dump();
  const std::string body = good.substr(1, good.size() - 2);
  // A C1 control (U+009B, a CSI to some terminals) and a right-to-left override went through as they were.
  CHECK_THROWS_WITH_AS(GPT2Tokenizer::from_text("{" + body + ",\"\\u009b31m\":-1}", "#version: 0.2\n"),
                       "vocab.json: token \"\\u009b31m\" has id -1; expected a non-negative integer", FormatError);
  CHECK_THROWS_WITH_AS(GPT2Tokenizer::from_text("{" + body + ",\"\\u202e\\u001b\":-1}", "#version: 0.2\n"),
                       "vocab.json: token \"\\u202e\\u001b\" has id -1; expected a non-negative integer", FormatError);
  // A 100,000-character token: its two ends, 80 characters in all.
  const std::string long_token = "A" + std::string(100000, 'b') + "Z";
  CHECK_THROWS_WITH_AS(GPT2Tokenizer::from_text("{" + body + ",\"" + long_token + "\":-1}", "#version: 0.2\n"),
                       ("vocab.json: token \"A" + std::string(38, 'b') + "..." + std::string(37, 'b') + "Z\" has id -1; expected a non-negative integer").c_str(),
                       FormatError);
  // A merges.txt line with an escape sequence and a file name with one.
  CHECK_THROWS_WITH_AS(GPT2Tokenizer::from_text(good, "#version: 0.2\n\x1b[2J\x1b[H x y\n", {}, "v", "dir\x1b]0;x\x07/merges.txt"),
                       "dir\\u001b]0;x\\u0007/merges.txt:2: \"\\u001b[2J\\u001b[H x y\" is not two tokens separated by one space", FormatError);
}

// Issue 13, item 7: one long piece (10 MB of letters without a space) took about 100 bytes of memory per byte in the
// BPE. Pieces over detail::gpt2_heap_bpe_max_bytes now go through detail::bpe_long_piece, in linear memory.
namespace {

// The real files' rules, read again: the detail functions take a Gpt2Vocabulary.
const detail::Gpt2Vocabulary& real_vocabulary() {
  static const detail::Gpt2Vocabulary v = [] {
    (void)real_gpt2_tokenizer();  // fails the test, with what to do, if the files are missing
    const auto read = [](const std::string& path) {
      std::ifstream in(path, std::ios::binary);
      return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    };
    detail::Gpt2Vocabulary r;
    detail::parse_gpt2_vocab(read(gpt2_tokenizer_dir + "/vocab.json"), "vocab.json", r);
    detail::parse_gpt2_merges(read(gpt2_tokenizer_dir + "/merges.txt"), "merges.txt", "vocab.json", r);
    return r;
  }();
  return v;
}

Ids heap_bpe(const detail::Gpt2Vocabulary& v, std::string_view piece) {
  detail::Gpt2EncodeScratch s;
  Ids out;
  detail::bpe_piece(v, piece, s, out);
  return out;
}
Ids long_bpe(const detail::Gpt2Vocabulary& v, std::string_view piece) {
  detail::Gpt2LongPieceScratch s;
  Ids out;
  detail::bpe_long_piece(v, piece, s, out);
  return out;
}

// Words longer than the heap's limit, each one piece: a run of one letter, random letters, random CJK ideographs,
// digits, punctuation, and white space at the end of the text.
std::vector<std::string> long_words(std::size_t bytes) {
  std::uint32_t state = 12345;
  const auto next = [&] { return state = state * 1664525u + 1013904223u; };  // a fixed sequence, no <random> needed
  std::vector<std::string> words(6);
  words[0].assign(bytes, 'a');
  while (words[1].size() < bytes) words[1] += static_cast<char>('a' + (next() >> 8) % 26);
  while (words[2].size() < bytes) words[2] += detail::utf8_encode(0x4E00 + (next() >> 8) % 0x5000);
  while (words[3].size() < bytes) words[3] += static_cast<char>('0' + (next() >> 8) % 10);
  while (words[4].size() < bytes) words[4] += "!?.,;:-()"[(next() >> 8) % 9];
  words[5].assign(bytes, ' ');
  return words;
}

}  // namespace

TEST_CASE("bpe_long_piece: gpt-3-encoder's ids on every case, piece by piece (issue 13)") {
  const detail::Gpt2Vocabulary& v = real_vocabulary();
  check_every_case(
      [&](const nlohmann::json& c) {
        const std::string text = c.at("text").get<std::string>();
        Ids ids;
        for (const std::string_view piece : gpt2_pretokenize(text)) {
          const Ids p = long_bpe(v, piece);
          ids.insert(ids.end(), p.begin(), p.end());
        }
        return ids;
      },
      plain_ids_of);  // "<|endoftext|>" as plain text, as gpt2_pretokenize cuts it
}

TEST_CASE("GPT2Tokenizer: a word longer than the heap's limit has bpe_piece's ids and decodes back (issue 13)") {
  const detail::Gpt2Vocabulary& v = real_vocabulary();
  const GPT2Tokenizer& tok = real_gpt2_tokenizer();
  for (const std::string& word : long_words(detail::gpt2_heap_bpe_max_bytes + 1001)) {
    const std::string start = word.substr(0, 12);
    CAPTURE(start);
    REQUIRE(gpt2_pretokenize(word).size() == 1);
    const Ids ids = tok.encode(word);
    CHECK(ids == heap_bpe(v, word));  // bpe_piece: gpt-3-encoder's ids on every case above
    CHECK(tok.decode(ids) == word);
  }
  // Short runs of one byte, where left-to-right without overlaps matters most: both ways agree at every length.
  for (const char c : {'a', ' ', '!', '0', '\n'})
    for (std::size_t n = 1; n <= 200; ++n) {
      const std::string run(n, c);
      CHECK(long_bpe(v, run) == heap_bpe(v, run));
    }
}

TEST_CASE("bpe_long_piece: merges follow encoder.py on a small vocabulary, out-of-order rules too (issue 13)") {
  // As "merges follow encoder.py" above: "a a" (rank 0), "ab a" (rank 1, listed before the rule that makes "ab"),
  // "a b" (rank 2). Both ways, and through encode() on a run longer than the heap's limit.
  TempFile vocab(tiny_vocab({"aa", "ab", "aba"}).dump());
  TempFile merges("#version: 0.2\na a\nab a\na b\n");
  const GPT2Tokenizer tok = GPT2Tokenizer::load(vocab.path(), merges.path());
  detail::Gpt2Vocabulary v;
  detail::parse_gpt2_vocab(tiny_vocab({"aa", "ab", "aba"}).dump(), "vocab.json", v);
  detail::parse_gpt2_merges("#version: 0.2\na a\nab a\na b\n", "merges.txt", "vocab.json", v);
  const std::int64_t a = 'a', aa = 256, ab = 257, aba = 258;
  CHECK(long_bpe(v, "aaa") == Ids{aa, a});
  CHECK(long_bpe(v, "aaaaa") == Ids{aa, aa, a});
  CHECK(long_bpe(v, "ababa") == Ids{ab, aba});  // every (a, b) first, then (ab, a)
  const std::size_t n = detail::gpt2_heap_bpe_max_bytes + 1;  // odd: pairs from the left, one "a" left over
  Ids want(n / 2, aa);
  want.push_back(a);
  CHECK(tok.encode(std::string(n, 'a')) == want);
  std::string abab;
  while (abab.size() < n) abab += "ababa";
  CHECK(tok.encode(abab) == heap_bpe(v, abab));
}

TEST_CASE("GPT2Tokenizer: one long word takes a few bytes of memory per byte, not about 100 (issue 13)") {
  if (eigenformer::testing::new_bytes_in_use() < 0) return;  // no malloc_usable_size: nothing to measure with
  const GPT2Tokenizer& tok = real_gpt2_tokenizer();
  // The worst case of the old BPE: one repeated letter (101 bytes per byte at 1 MiB); and random letters.
  for (const std::size_t bytes : {std::size_t(1) << 20, std::size_t(1) << 18}) {
    const std::string word = bytes == (std::size_t(1) << 20) ? std::string(bytes, 'a') : long_words(bytes)[1];
    const long long before = eigenformer::testing::new_bytes_in_use();
    eigenformer::testing::reset_peak_new_bytes();
    const Ids ids = tok.encode(word);
    const double per_byte = static_cast<double>(eigenformer::testing::peak_new_bytes() - before) / static_cast<double>(bytes);
    CAPTURE(bytes);
    CAPTURE(per_byte);
    CHECK(per_byte < 32);  // the text's characters (4), the BPE's symbols (8) and pairs (<= 16), the ids
  }
}
