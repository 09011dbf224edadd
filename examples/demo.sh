#!/usr/bin/env bash
# demo.sh: the README's first command ends here. Runs each example once on what the project has without downloads:
# the blocks showcase, the toy translator this library trained (examples/translator/model) on sentences it never saw in
# training, the same program on a small PyTorch-written model, the small GPT-2 this library trained on Moby-Dick
# (examples/gpt2/model, docs/gpt2_training.md), and GPT-2 on a random-weight checkpoint that gpt2 --init-random writes
# beside the real GPT-2 tokenizer (which ./setup.sh put into .deps/gpt2).
#   examples/demo.sh [BUILD_DIR]        (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
bin="$build/bin"

echo "== showcase: the blocks on a toy batch"
"$bin/showcase"

echo
echo "== translator: English -> Spanish with the model this library trained from scratch (docs/training.md)"
"$bin/translator" translate --model examples/translator/model "the red cars are not fast" "my sister did not open the old door" \
  "we saw the young queens" --beam 4

echo
echo "== translator: greedy decoding with a PyTorch translation-tutorial model (random weights)"
"$bin/translator" translate --model tests/fixtures/translator/post_relu_3layers --src-ids "5 9 23 7" --src-ids "12 4"

echo
echo "== gpt2: the small GPT-2 this library trained on Moby-Dick (docs/gpt2_training.md), temperature 0.8, seed 1"
"$bin/gpt2" --model examples/gpt2/model --prompt "The captain stood on the deck and" --max-new-tokens 100 --temperature 0.8 --seed 1
echo

echo
echo "== gpt2: a random-weight GPT-2 with the real tokenizer (the words are random; the machinery is real)"
"$bin/gpt2" --init-random "$build/gpt2-random" --tokenizer-dir .deps/gpt2
"$bin/gpt2" --model "$build/gpt2-random" --prompt "The Transformer reads the whole sentence at once, so" --max-new-tokens 24 --seed 1
"$bin/gpt2" --model "$build/gpt2-random" --tokenize-file README.md | awk '{ print "README.md is " NF " GPT-2 tokens" }'
