// tests/fuzz/gpt2_vocabulary.hpp: the real GPT-2 tokenizer for the targets that fuzz what is done with it (encode,
// decode), loaded once per process from .deps/gpt2 (./setup.sh puts vocab.json and merges.txt there), or from the
// directory in the environment variable EIGENFORMER_GPT2_DIR.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

#include "eigenformer/text/gpt2_tokenizer.hpp"

namespace eigenformer::fuzz {

inline GPT2Tokenizer load_gpt2_tokenizer(const GPT2TokenizerOptions& options = {}) {
  const char* dir = std::getenv("EIGENFORMER_GPT2_DIR");
  const std::string path = dir ? dir : EIGENFORMER_GPT2_TOKENIZER_DIR;
  try {
    return GPT2Tokenizer::from_directory(path, options);
  } catch (const Error& e) {
    std::fprintf(stderr, "fuzz: cannot load the GPT-2 vocabulary (run ./setup.sh, or set EIGENFORMER_GPT2_DIR): %s\n", e.what());
    std::exit(2);
  }
}

// The one tokenizer of the process (with its default piece cache).
inline const GPT2Tokenizer& gpt2_tokenizer() {
  static const GPT2Tokenizer tokenizer = load_gpt2_tokenizer();
  return tokenizer;
}

}  // namespace eigenformer::fuzz
