// train/seq2seq_batch.hpp: a padded batch for teacher-forced sequence-to-sequence training, as the PyTorch translation
// tutorial's collate_fn and train_epoch make it. Each pair holds a source and a target sequence, both already with BOS
// first and EOS last. The decoder reads the target without its last token and learns to predict it without its first:
//   src     [B, S]    the sources, padded with pad_id to the longest (S)
//   tgt     [B, T]    tgt[:-1] of every target, padded (T = longest target length - 1)
//   targets [B * T]   tgt[1:] of every target, pad_id where padded: give CrossEntropyOptions::ignore_index = pad_id
// src_lengths and tgt_lengths hold the real lengths (the padding masks of Transformer::forward). `tokens` counts the
// targets that are not padding, the tokens a step learns from.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "eigenformer/core/error.hpp"
#include "eigenformer/core/tensor.hpp"

namespace eigenformer {

struct Seq2SeqBatch {
  Tensor<std::int64_t> src, tgt, targets;
  std::vector<Index> src_lengths, tgt_lengths;
  Index tokens = 0;
};

// sources[i], targets[i]: pair i. RangeError for an empty batch, a source shorter than 1 token or a target shorter than
// 2 (BOS and EOS at least), each named by its index in the batch.
inline Seq2SeqBatch make_seq2seq_batch(const std::vector<const std::vector<std::int64_t>*>& sources,
                                       const std::vector<const std::vector<std::int64_t>*>& targets, std::int64_t pad_id) {
  const Index B = static_cast<Index>(sources.size());
  if (B == 0 || targets.size() != sources.size())
    throw RangeError("make_seq2seq_batch: " + std::to_string(sources.size()) + " sources and " + std::to_string(targets.size()) +
                     " targets; expected the same number, at least 1");
  Index S = 0, T = 0;
  for (Index b = 0; b < B; ++b) {
    const auto& s = *sources[static_cast<std::size_t>(b)];
    const auto& t = *targets[static_cast<std::size_t>(b)];
    if (s.empty()) throw RangeError("make_seq2seq_batch: source " + std::to_string(b) + " is empty");
    if (t.size() < 2) throw RangeError("make_seq2seq_batch: target " + std::to_string(b) + " has " + std::to_string(t.size()) +
                                       " tokens; expected BOS, EOS and what lies between");
    S = std::max<Index>(S, static_cast<Index>(s.size()));
    T = std::max<Index>(T, static_cast<Index>(t.size()) - 1);
  }
  Seq2SeqBatch batch;
  batch.src = Tensor<std::int64_t>(Shape{B, S}, pad_id);
  batch.tgt = Tensor<std::int64_t>(Shape{B, T}, pad_id);
  batch.targets = Tensor<std::int64_t>(Shape{B * T}, pad_id);
  for (Index b = 0; b < B; ++b) {
    const auto& s = *sources[static_cast<std::size_t>(b)];
    const auto& t = *targets[static_cast<std::size_t>(b)];
    std::copy(s.begin(), s.end(), batch.src.data() + b * S);
    const Index n = static_cast<Index>(t.size()) - 1;
    std::copy(t.begin(), t.end() - 1, batch.tgt.data() + b * T);
    std::copy(t.begin() + 1, t.end(), batch.targets.data() + b * T);
    batch.src_lengths.push_back(static_cast<Index>(s.size()));
    batch.tgt_lengths.push_back(n);
    batch.tokens += n;
  }
  return batch;
}

}  // namespace eigenformer
