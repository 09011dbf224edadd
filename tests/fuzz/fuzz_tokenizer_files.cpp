// fuzz_tokenizer_files: loading GPT-2's vocab.json and merges.txt (text/gpt2_tokenizer.hpp) from arbitrary bytes.
// The input is both files: vocab.json up to the first NUL byte, merges.txt after it (JSON cannot hold a raw NUL;
// without one, merges.txt is just its header). Whatever files load, the tokenizer built from them must work: every
// token decodes, encoding text and decoding the ids gives the text back (BPE with an arbitrary merge table), and
// the two BPE functions (bpe_piece, bpe_long_piece) give the same ids.
#include <cstdint>
#include <string>
#include <string_view>

#include "eigenformer/text/gpt2_tokenizer.hpp"
#include "fuzz_support.hpp"
#include "gpt2_vocabulary.hpp"

using namespace eigenformer;

namespace {

// Both BPE functions give the same ids on every piece of the text, with this merge table (rules in any order).
void check_same_bpe(const detail::Gpt2Vocabulary& v, std::string_view text) {
  if (find_invalid_utf8(text) != text.size()) return;
  gpt2_pretokenize(text, [&](std::string_view piece) { fuzz::require_same_bpe(v, piece); });
}

void check_round_trip(const GPT2Tokenizer& tokenizer, std::string_view text) {
  if (find_invalid_utf8(text) != text.size()) return;
  for (const bool special : {true, false}) {
    EncodeOptions options;
    options.special_tokens = special;
    const std::vector<std::int64_t> ids = tokenizer.encode(text, options);
    fuzz::require(tokenizer.decode_bytes(ids) == text, "decode_bytes(encode(text)) == text");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input = fuzz::as_text(data, size);
  const std::size_t nul = input.find('\0');
  const std::string_view vocab = input.substr(0, nul);
  const std::string_view merges = nul == std::string_view::npos ? std::string_view("#version: 0.2\n") : input.substr(nul + 1);
  fuzz::allow_library_errors([&] {
    const GPT2Tokenizer tokenizer = GPT2Tokenizer::from_text(vocab, merges, {}, "vocab.json", "merges.txt");
    fuzz::require(tokenizer.vocab_size() >= 257, "256 byte tokens and <|endoftext|>");
    fuzz::require(tokenizer.token(tokenizer.eos_id()) == "<|endoftext|>", "eos is <|endoftext|>");
    // Every token (the first 1024 of a large file) decodes, and its bytes encode back to themselves.
    const std::int64_t shown = std::min<std::int64_t>(tokenizer.vocab_size(), 1024);
    for (std::int64_t id = 0; id < shown; ++id) {
      fuzz::require(tokenizer.token_id(tokenizer.token(id)) == id, "token_id(token(id)) == id");
      check_round_trip(tokenizer, tokenizer.token_bytes(id));
    }
    check_round_trip(tokenizer, "Hello, world! It's 2024:  tabs\tand\r\nnew lines, caf\xC3\xA9 \xF0\x9F\x98\x80<|endoftext|>end");
    check_round_trip(tokenizer, merges.substr(0, 256));
    // The same files as the rules themselves: bpe_piece and bpe_long_piece agree on the sample texts and on a
    // long run of each pair of the first rules (where the order of the rules matters). Not on files over 64 KiB,
    // which would be parsed twice (GPT-2's real files, 1.5 MB, take seconds under the sanitizers).
    if (size > 65536) return;
    detail::Gpt2Vocabulary v;
    detail::parse_gpt2_vocab(vocab, "vocab.json", v);
    detail::parse_gpt2_merges(merges, "merges.txt", "vocab.json", v);
    check_same_bpe(v, "Hello, world! It's 2024:  tabs\tand\r\nnew lines, caf\xC3\xA9 \xF0\x9F\x98\x80<|endoftext|>end");
    check_same_bpe(v, merges.substr(0, 256));
    for (std::size_t r = 0; r < v.merge_of_rank.size() && r < 8; ++r) {
      const detail::Gpt2RankedMerge& m = v.merge_of_rank[r];
      std::string run;
      while (run.size() < 200) run += v.bytes[static_cast<std::size_t>(m.left)] + v.bytes[static_cast<std::size_t>(m.right)];
      fuzz::require_same_bpe(v, run);
    }
  });
  return 0;
}
