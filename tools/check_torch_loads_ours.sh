#!/usr/bin/env bash
# Checks that PyTorch loads what Eigenformer saves: every translator fixture is loaded and written again by our
# C++ code (build/bin/translator resave), then tools/check_torch_loads_translator.py builds the tutorial model in
# PyTorch, load_state_dict(strict=True)s each re-saved directory and compares its greedy ids with the reference.
# The result is committed as tests/fixtures/translator/torch_loads_ours.txt.
#   ./setup.sh --fixtures && cmake --build build --target translator && tools/check_torch_loads_ours.sh [build]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
dirs=()
for fixture in tests/fixtures/translator/*/; do
  name=$(basename "$fixture")
  "$build/bin/translator" resave --model "$fixture" --output "$out/$name" 2>/dev/null
  dirs+=("$out/$name")
done
/usr/bin/python3 tools/check_torch_loads_translator.py --require-reference "${dirs[@]}" | sed "s|$out/|re-saved |" | tee tests/fixtures/translator/torch_loads_ours.txt
