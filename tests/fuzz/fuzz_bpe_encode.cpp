// fuzz_bpe_encode: GPT2Tokenizer::encode on arbitrary bytes, with the real GPT-2 vocabulary. Invalid UTF-8 must be
// refused with a FormatError; valid text must come back from decode_bytes exactly (with and without
// "<|endoftext|>" as a special token), the piece cache must not change the ids, both BPE functions (bpe_piece,
// bpe_long_piece) must give the same ids on every piece, and streaming the ids through a StreamingDecoder must give
// what decode() gives.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "gpt2_vocabulary.hpp"

using namespace eigenformer;

namespace {

// The same vocabulary without a piece cache: every piece goes through the BPE merge loop.
const GPT2Tokenizer& uncached() {
  static const GPT2Tokenizer tokenizer = [] {
    GPT2TokenizerOptions options;
    options.cache_capacity = 0;
    return fuzz::load_gpt2_tokenizer(options);
  }();
  return tokenizer;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)fuzz::gpt2_tokenizer();
  (void)uncached();
  (void)fuzz::gpt2_vocabulary();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = fuzz::as_text(data, size);
  const GPT2Tokenizer& tokenizer = fuzz::gpt2_tokenizer();
  const bool valid = find_invalid_utf8(text) == text.size();
  for (const bool special : {true, false}) {
    EncodeOptions options;
    options.special_tokens = special;
    std::vector<std::int64_t> ids;
    try {
      ids = tokenizer.encode(text, options);
    } catch (const FormatError&) {
      fuzz::require(!valid, "only invalid UTF-8 is refused");
      continue;
    }
    fuzz::require(valid, "invalid UTF-8 is refused");
    fuzz::require(uncached().encode(text, options) == ids, "the piece cache does not change the ids");
    if (!special) gpt2_pretokenize(text, [](std::string_view piece) { fuzz::require_same_bpe(fuzz::gpt2_vocabulary(), piece); });
    fuzz::require(tokenizer.decode_bytes(ids) == text, "decode_bytes(encode(text)) == text");
    const std::string decoded = tokenizer.decode(ids);
    fuzz::require(decoded == text, "decode(encode(text)) == text for valid UTF-8");
    StreamingDecoder stream(tokenizer);
    std::string streamed;
    for (const std::int64_t id : ids) streamed += stream.push(id);
    streamed += stream.flush();
    fuzz::require(streamed == decoded, "streaming decode == decode");
  }
  return 0;
}
