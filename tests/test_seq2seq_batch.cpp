// make_seq2seq_batch (train/seq2seq_batch.hpp): the tutorial's teacher forcing: the decoder reads tgt[:-1] and is
// scored on tgt[1:], every row padded to the longest with pad_id, which the loss ignores.
#include "eigenformer/train/seq2seq_batch.hpp"

#include <doctest/doctest.h>

#include <vector>

using namespace eigenformer;

TEST_CASE("make_seq2seq_batch: sources padded, targets shifted by one, padding marked for the loss to ignore") {
  const std::vector<std::int64_t> s0{2, 10, 11, 3}, s1{2, 12, 3}, t0{2, 20, 3}, t1{2, 21, 22, 23, 3};
  const Seq2SeqBatch b = make_seq2seq_batch({&s0, &s1}, {&t0, &t1}, 1);
  CHECK(b.src.shape() == Shape{2, 4});
  CHECK(b.tgt.shape() == Shape{2, 4});
  CHECK(b.targets.shape() == Shape{8});
  CHECK(b.src_lengths == std::vector<Index>{4, 3});
  CHECK(b.tgt_lengths == std::vector<Index>{2, 4});
  CHECK(b.tokens == 6);
  for (Index b2 = 0; b2 < 2; ++b2) {
    const auto& s = b2 == 0 ? s0 : s1;
    const auto& t = b2 == 0 ? t0 : t1;
    for (Index i = 0; i < 4; ++i) {
      CHECK(b.src.at(b2, i) == (i < Index(s.size()) ? s[size_t(i)] : 1));
      CHECK(b.tgt.at(b2, i) == (i + 1 < Index(t.size()) ? t[size_t(i)] : 1));
      CHECK(b.targets[b2 * 4 + i] == (i + 1 < Index(t.size()) ? t[size_t(i + 1)] : 1));
    }
  }
  const std::vector<std::int64_t> empty, one{2};
  CHECK_THROWS_WITH_AS(make_seq2seq_batch({&empty}, {&t0}, 1), "make_seq2seq_batch: source 0 is empty", RangeError);
  CHECK_THROWS_WITH_AS(make_seq2seq_batch({&s0}, {&one}, 1),
                       "make_seq2seq_batch: target 0 has 1 tokens; expected BOS, EOS and what lies between", RangeError);
  CHECK_THROWS_AS(make_seq2seq_batch({}, {}, 1), RangeError);
}
