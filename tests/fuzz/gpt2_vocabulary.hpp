// tests/fuzz/gpt2_vocabulary.hpp: the real GPT-2 tokenizer for the targets that fuzz what is done with it (encode,
// decode), and its rules for comparing the two BPE functions; loaded once per process from .deps/gpt2 (./setup.sh puts vocab.json and merges.txt there), or from the
// directory in the environment variable EIGENFORMER_GPT2_DIR.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "eigenformer/text/gpt2_tokenizer.hpp"

namespace eigenformer::fuzz {

inline std::string gpt2_dir() {
  const char* dir = std::getenv("EIGENFORMER_GPT2_DIR");
  return dir ? dir : EIGENFORMER_GPT2_TOKENIZER_DIR;
}

inline GPT2Tokenizer load_gpt2_tokenizer(const GPT2TokenizerOptions& options = {}) {
  const std::string path = gpt2_dir();
  try {
    return GPT2Tokenizer::from_directory(path, options);
  } catch (const Error& e) {
    std::fprintf(stderr, "fuzz: cannot load the GPT-2 vocabulary (run ./setup.sh, or set EIGENFORMER_GPT2_DIR): %s\n", e.what());
    std::exit(2);
  }
}

// The same files as the rules the BPE functions of text/gpt2_tokenizer.hpp take, for comparing them.
inline const detail::Gpt2Vocabulary& gpt2_vocabulary() {
  static const detail::Gpt2Vocabulary vocabulary = [] {
    const std::string path = gpt2_dir();
    detail::Gpt2Vocabulary v;
    try {
      detail::parse_gpt2_vocab(read_file_bounded(path + "/vocab.json", "a vocab.json", GPT2Tokenizer::max_vocab_json_bytes), "vocab.json", v);
      detail::parse_gpt2_merges(read_file_bounded(path + "/merges.txt", "a merges.txt", GPT2Tokenizer::max_merges_txt_bytes), "merges.txt",
                                "vocab.json", v);
    } catch (const Error& e) {
      std::fprintf(stderr, "fuzz: cannot load the GPT-2 vocabulary (run ./setup.sh, or set EIGENFORMER_GPT2_DIR): %s\n", e.what());
      std::exit(2);
    }
    return v;
  }();
  return vocabulary;
}

// Both BPE functions on one piece must give the same ids: bpe_piece (a heap, for pieces up to 16 KiB) and
// bpe_long_piece (rank buckets, for longer ones), whatever the length and the merge table.
inline void require_same_bpe(const detail::Gpt2Vocabulary& v, std::string_view piece) {
  static detail::Gpt2EncodeScratch heap_scratch;
  static detail::Gpt2LongPieceScratch long_scratch;
  static std::vector<std::int64_t> heap_ids, long_ids;
  heap_ids.clear();
  long_ids.clear();
  detail::bpe_piece(v, piece, heap_scratch, heap_ids);
  detail::bpe_long_piece(v, piece, long_scratch, long_ids);
  if (heap_ids != long_ids) {
    std::fprintf(stderr, "fuzz: property failed: bpe_piece and bpe_long_piece give the same ids\n");
    std::abort();
  }
}

// The one tokenizer of the process (with its default piece cache).
inline const GPT2Tokenizer& gpt2_tokenizer() {
  static const GPT2Tokenizer tokenizer = load_gpt2_tokenizer();
  return tokenizer;
}

}  // namespace eigenformer::fuzz
