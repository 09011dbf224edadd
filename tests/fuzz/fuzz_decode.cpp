// fuzz_decode: GPT2Tokenizer::decode, decode_bytes, token and StreamingDecoder on arbitrary id lists, with the real
// GPT-2 vocabulary. The first byte chooses how the rest is read: even, as 16-bit little-endian ids (0..65535, most
// inside the 50257 of the vocabulary); odd, as raw 64-bit ids (negative and huge ones). An id outside the vocabulary
// must throw a RangeError and nothing else; for valid ids, the text is valid UTF-8 and streaming gives the same text.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_support.hpp"
#include "gpt2_vocabulary.hpp"

using namespace eigenformer;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)fuzz::gpt2_tokenizer();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool wide = (data[0] & 1) != 0;
  const std::size_t width = wide ? 8 : 2;
  std::vector<std::int64_t> ids;
  for (std::size_t at = 1; at + width <= size; at += width) {
    if (wide) {
      std::int64_t id = 0;
      std::memcpy(&id, data + at, 8);
      ids.push_back(id);
    } else {
      ids.push_back(static_cast<std::int64_t>(data[at]) | (static_cast<std::int64_t>(data[at + 1]) << 8));
    }
  }
  const GPT2Tokenizer& tokenizer = fuzz::gpt2_tokenizer();
  bool all_valid = true;
  for (const std::int64_t id : ids) all_valid = all_valid && id >= 0 && id < tokenizer.vocab_size();

  std::string decoded;
  try {
    decoded = tokenizer.decode(ids);
    fuzz::require(all_valid, "an id outside the vocabulary is refused");
    fuzz::require(find_invalid_utf8(decoded) == decoded.size(), "decode gives valid UTF-8");
  } catch (const RangeError&) {
    fuzz::require(!all_valid, "only ids outside the vocabulary are refused");
  }
  try {
    (void)tokenizer.decode_bytes(ids);
  } catch (const RangeError&) {
    fuzz::require(!all_valid, "decode_bytes refuses only ids outside the vocabulary");
  }

  StreamingDecoder stream(tokenizer);
  std::string streamed;
  for (const std::int64_t id : ids) {
    const bool valid = id >= 0 && id < tokenizer.vocab_size();
    try {
      streamed += stream.push(id);
      fuzz::require(valid, "push refuses an id outside the vocabulary");
      fuzz::require(stream.pending_bytes() <= 3, "at most 3 bytes wait for the rest of a character");
      fuzz::require(!tokenizer.token(id).empty(), "every token is spelled");
    } catch (const RangeError&) {
      fuzz::require(!valid, "push refuses only ids outside the vocabulary");
    }
  }
  streamed += stream.flush();
  if (all_valid) fuzz::require(streamed == decoded, "streaming decode == decode");
  return 0;
}
