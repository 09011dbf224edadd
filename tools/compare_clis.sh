#!/usr/bin/env bash
# compare_clis.sh BIN_A BIN_B: runs the example programs of two builds on the committed fixtures (successful runs,
# sampling, narrow weights, a full context, bad input, --help) and reports every difference in what they print on
# stdout and stderr, their exit codes and the files they write. For changes that must not change behaviour (a
# restructuring): build the commit before and after, e.g.
#   git worktree add /tmp/before HEAD~1 && cmake -S /tmp/before -B /tmp/before/build -DEIGENFORMER_BUILD_TESTS=OFF &&
#   cmake --build /tmp/before/build -j2 --target showcase translator gpt2 && tools/compare_clis.sh /tmp/before/build/bin build/bin
# Timings on stderr ("12.3 tokens/s") and the programs' own paths (--help's usage line, "wrote DIR") are masked.
set -uo pipefail
if [[ $# -ne 2 || ! -x "$1/gpt2" || ! -x "$2/gpt2" ]]; then
  echo "usage: tools/compare_clis.sh BIN_A BIN_B (each a build's bin/ with showcase, translator and gpt2)" >&2
  exit 2
fi
a=$(cd "$1" && pwd) b=$(cd "$2" && pwd)
cd "$(dirname "$0")/.."
work=$(mktemp -d "${TMPDIR:-/tmp}/compare-clis.XXXXXX")
trap 'rm -rf "$work"' EXIT
F=tests/fixtures
commands=(
  "showcase"
  "translator translate --model $F/translator/post_relu_3layers --src-ids '5 9 23 7' --src-ids '12 4'"
  "translator translate --model $F/translator/post_gelu_odd --src-ids '3 4 5 6 7 8' --src-ids '9' --max-new-tokens 30"
  "translator translate --model $F/translator/pre_gelu_1layer --src-ids '3 4 5'"
  "translator translate --model $F/translator/pre_relu_2layers --src-ids '3 4 5 6' --threads 1"
  "translator translate --model $F/translator/pre_relu_2layers --max-new-tokens 2 < tests/cmake/hello.txt"
  "translator translate --model $F/translator/pre_relu_2layers --src-ids '3 99999'"
  "translator translate --model /nonexistent --src-ids '3'"
  "translator resave --model $F/translator/post_gelu_odd --output OUT"
  "translator --help"
  "gpt2 --model $F/gpt2/tiny_f32_hub --prompt-ids '5 6 7' --output-ids --max-new-tokens 12 --temperature 0"
  "gpt2 --model $F/gpt2/tiny_f32_hub --prompt-ids '5 6 7' --output-ids --max-new-tokens 12 --temperature 0.8 --top-k 5 --seed 3"
  "gpt2 --model $F/gpt2/tiny_bf16 --prompt-ids '1 2 3 4' --output-ids --max-new-tokens 40 --top-p 0.9 --seed 7"
  "gpt2 --model $F/gpt2/odd_shape --prompt-ids '1 2' --output-ids --max-new-tokens 100 --temperature 0"
  "gpt2 --model $F/gpt2/tiny_f32_transformer_prefix --prompt-ids '5 6 7' --output-ids --dtype bf16 --max-new-tokens 8 --temperature 0"
  "gpt2 --model $F/gpt2/tiny_f32_hub --prompt-ids '5 6 7' --output-ids --dtype int8 --max-new-tokens 8 --temperature 0"
  "gpt2 --model $F/gpt2/one_layer_one_head --prompt-ids '5 6 7' --output-ids --repetition-penalty 1.3 --max-new-tokens 8"
  "gpt2 --init-random OUT --tokenizer-dir .deps/gpt2"
  "gpt2 --model $F/gpt2/tiny_f32_hub --prompt-ids '1' --dtype f64"
  "gpt2 --help"
  "gpt2 --model /nonexistent --prompt-ids '1'"
)
differences=0
for i in "${!commands[@]}"; do
  for side in a b; do
    bin=$a
    [[ $side == b ]] && bin=$b
    dir="$work/$side/$i"
    mkdir -p "$dir/OUT"
    command=${commands[$i]//OUT/$dir/OUT}
    (eval "$bin/$command") >"$dir/stdout" 2>"$dir/stderr"
    echo "exit $?" >>"$dir/stdout"
    sed -i -E "s#$bin/##g; s#$dir/##g; s/[0-9.]+ tok(en)?s?\/s/N tok\/s/g; s/ in [0-9.]+ ?m?s/ in T/g" "$dir/stdout" "$dir/stderr"
  done
  if ! diff -r "$work/a/$i" "$work/b/$i" >"$work/diff" 2>&1; then
    echo "differs: ${commands[$i]}"
    cat "$work/diff"
    differences=$((differences + 1))
  fi
done
echo "${#commands[@]} commands, $differences differing"
[[ $differences -eq 0 ]]
