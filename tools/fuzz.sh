#!/usr/bin/env bash
# tools/fuzz.sh: build the libFuzzer targets of tests/fuzz with clang (into build-fuzz/), run each for a fixed time
# on a fresh copy of its seed corpus, and print one line of figures per target. Exit status 1 if any target found
# something (a crash, leak, undefined behaviour, timeout, out-of-memory or a slow input), its input saved under
# build-fuzz/fuzz-runs/<target>/artifacts/. docs/reliability.md records the figures of the long runs.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: tools/fuzz.sh [SECONDS] [TARGET...] [--build-dir DIR] [--keep-corpus] [--no-build] [--list] [--help]

Builds the fuzz targets (clang++, -DEIGENFORMER_BUILD_FUZZERS=ON) and runs each TARGET (default: all) for
SECONDS (default 600), one after the other: first once over large seeds generated for the run (make_corpus.py
--large: a megabyte for each JSON reader, words over 16 KiB for bpe_encode), then fuzzing a copy of
tests/fuzz/corpus/<target>/ (the committed seeds are never changed) with its dictionary tests/fuzz/<target>.dict
when there is one, for what is left of SECONDS. Then prints, per target:
  executions, executions per second, coverage (libFuzzer's cov: edges and ft: features at the end) of the fuzzing,
  corpus (inputs kept at the end, seeds included), the slowest input if one was reported as slow,
  findings (crash, leak, timeout, oom and slow-unit files)

  --build-dir DIR   where to build and run (default: build-fuzz)
  --keep-corpus     continue from the corpus of the previous run in DIR instead of a fresh copy of the seeds
  --no-build        use the targets already built in DIR
  --list            list the targets and exit
  --help            show this help

Each run: -max_total_time=SECONDS -max_len=<per target> -report_slow_units=<per target> -timeout=<per target>
-rss_limit_mb=2048 (also the malloc limit). The JSON readers (safetensors, gpt2_config, translator_config,
tokenizer_files): inputs up to 4 MiB, an input of 8 s or more is a finding, one of 20 s stops the run. bpe_encode
(32 KiB), decode (256 KiB), the command lines (16 KiB): 5 s a finding, 10 s stops the run. The slowest valid input
of each size limit takes under 2.5 s here (docs/reliability.md), so an input over the limit took a path slower than
linear; it is saved as slow-unit-* (or timeout-*) with the other findings.
Environment: FUZZ_JOBS (build parallelism, default 2), CXX (default clang++), FUZZ_NICE (default 10: runs
under nice, to leave the machine usable), EIGENFORMER_GPT2_DIR (the GPT-2 vocabulary; default .deps/gpt2).
Needs clang with libFuzzer (Debian: clang libclang-rt-14-dev, which ./setup.sh installs).
To replay a finding: build-fuzz/bin/fuzz_<target> <file>.
EOF
}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
all_targets=(safetensors gpt2_config translator_config tokenizer_files bpe_encode decode gpt2_cli translator_cli)
seconds=600
build_dir="$root/build-fuzz"
keep_corpus=0
build=1
targets=()

while [[ $# -gt 0 ]]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --list) printf '%s\n' "${all_targets[@]}"; exit 0 ;;
    --build-dir) [[ $# -ge 2 ]] || { echo "fuzz.sh: --build-dir needs a directory" >&2; exit 2; }; build_dir=$(realpath -m "$2"); shift ;;
    --keep-corpus) keep_corpus=1 ;;
    --no-build) build=0 ;;
    -*) echo "fuzz.sh: unknown option '$1'; see tools/fuzz.sh --help" >&2; exit 2 ;;
    *)
      if [[ "$1" =~ ^[0-9]+$ ]]; then
        seconds=$1
      elif printf '%s\n' "${all_targets[@]}" | grep -qx -- "$1"; then
        targets+=("$1")
      else
        echo "fuzz.sh: '$1' is neither a number of seconds nor a target (${all_targets[*]})" >&2
        exit 2
      fi ;;
  esac
  shift
done
[[ ${#targets[@]} -gt 0 ]] || targets=("${all_targets[@]}")
[[ "$seconds" -ge 1 ]] || { echo "fuzz.sh: SECONDS must be at least 1" >&2; exit 2; }

nice_cmd=(nice -n "${FUZZ_NICE:-10}")

# Per target: the largest input (-max_len), the seconds from which an input is reported as slow, a finding
# (-report_slow_units; libFuzzer counts whole seconds), and those at which one stops the run (-timeout). The
# slowest valid input of -max_len we measured (fuzzing mode, shared 2-core machine) took 2.2 s for the JSON readers
# (a 4 MB safetensors header of 60,000 tensors) and 0.5 s for bpe_encode (32 KB of prose): the limits leave a
# margin of 3 or more for a slower machine, and a super-linear parse of megabytes takes minutes.
max_len_of() {
  case "$1" in
    safetensors|gpt2_config|translator_config|tokenizer_files) echo $((4 << 20)) ;;
    bpe_encode) echo $((32 << 10)) ;;
    decode) echo $((256 << 10)) ;;
    *) echo $((16 << 10)) ;;
  esac
}
slow_of() {
  case "$1" in
    safetensors|gpt2_config|translator_config|tokenizer_files) echo 8 ;;
    *) echo 5 ;;
  esac
}
timeout_of() {
  case "$1" in
    safetensors|gpt2_config|translator_config|tokenizer_files) echo 20 ;;
    *) echo 10 ;;
  esac
}

if [[ $build -eq 1 ]]; then
  cxx=${CXX:-clang++}
  command -v "$cxx" >/dev/null 2>&1 || { echo "fuzz.sh: $cxx not found; run ./setup.sh (it installs clang and libclang-rt-14-dev)" >&2; exit 1; }
  # The targets only: no tests, examples or install rules in this build; OpenMP off (one thread per input).
  mkdir -p "$build_dir"
  "${nice_cmd[@]}" cmake -S "$root" -B "$build_dir" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DEIGENFORMER_BUILD_FUZZERS=ON -DEIGENFORMER_BUILD_TESTS=OFF -DEIGENFORMER_BUILD_EXAMPLES=OFF \
    -DEIGENFORMER_INSTALL=OFF -DEIGENFORMER_USE_OPENMP=OFF >"$build_dir/configure.log" 2>&1 ||
    { cat "$build_dir/configure.log" >&2; echo "fuzz.sh: configuring $build_dir failed" >&2; exit 1; }
  "${nice_cmd[@]}" cmake --build "$build_dir" -j "${FUZZ_JOBS:-2}" --target "${targets[@]/#/fuzz_}" >"$build_dir/build.log" 2>&1 ||
    { tail -50 "$build_dir/build.log" >&2; echo "fuzz.sh: building the fuzz targets failed (log: $build_dir/build.log)" >&2; exit 1; }
fi

runs="$build_dir/fuzz-runs"
mkdir -p "$runs"
status=0
printf '%-18s %12s %9s %7s %8s %8s %8s  %s\n' target executions exec/s cov ft corpus slowest findings
for t in "${targets[@]}"; do
  bin="$build_dir/bin/fuzz_$t"
  [[ -x "$bin" ]] || { echo "fuzz.sh: $bin is not built" >&2; status=1; continue; }
  work="$runs/$t"
  if [[ $keep_corpus -eq 0 || ! -d "$work/corpus" ]]; then
    rm -rf "$work"
    mkdir -p "$work"
    cp -r "$root/tests/fuzz/corpus/$t" "$work/corpus"
  fi
  rm -rf "$work/artifacts" "$work/large"
  mkdir -p "$work/artifacts" "$work/large"
  limits=(-max_len="$(max_len_of "$t")" -report_slow_units="$(slow_of "$t")" -timeout="$(timeout_of "$t")" -rss_limit_mb=2048
          -artifact_prefix="$work/artifacts/")
  # First the large seeds, each run once under the same limits (-runs=0: the initial pass over the corpus only). Not
  # in the corpus the fuzzing mutates: libFuzzer would mutate at the size of the largest input from the start, and
  # megabyte inputs run a hundred times slower. Their time comes out of SECONDS.
  started=$SECONDS
  python3 "$root/tests/fuzz/make_corpus.py" --large "$t" "$work/large" >/dev/null ||
    { echo "fuzz.sh: writing the large seeds of $t failed" >&2; exit 1; }
  : >"$work/large-log.txt"
  set +e
  rc_large=0
  if [[ -n "$(ls -A "$work/large")" ]]; then
    "${nice_cmd[@]}" "$bin" "${limits[@]}" -runs=0 "$work/large" >"$work/large-log.txt" 2>&1
    rc_large=$?
  fi
  left=$((seconds - (SECONDS - started)))
  [[ $left -ge 1 ]] || left=1
  args=(-max_total_time="$left" "${limits[@]}" -print_final_stats=1)
  [[ -f "$root/tests/fuzz/$t.dict" ]] && args+=(-dict="$root/tests/fuzz/$t.dict")
  "${nice_cmd[@]}" "$bin" "${args[@]}" "$work/corpus" >"$work/log.txt" 2>&1
  rc=$?
  [[ $rc -ne 0 ]] || rc=$rc_large
  set -e
  # libFuzzer's figures: the last status line ("#N DONE cov: C ft: F corp: ...") and -print_final_stats.
  last=$(grep -E '^#[0-9]+' "$work/log.txt" | tail -1 || true)
  cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
  ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
  execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$work/log.txt" | tail -1)
  rate=$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+)/\1/p' "$work/log.txt" | tail -1)
  corpus=$(find "$work/corpus" -type f | wc -l)
  # "Slowest unit: N s:" each time an input over -report_slow_units beat the slowest so far (whole seconds).
  slowest=$(cat "$work/log.txt" "$work/large-log.txt" | sed -nE 's/^Slowest unit: ([0-9]+) s:.*/\1/p' | sort -n | tail -1)
  slowest=${slowest:+$slowest s}
  findings=$(find "$work/artifacts" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'slow-unit-*' \) | sort)
  n_findings=$(grep -c . <<<"$findings" || true)
  what="none"
  if [[ $n_findings -gt 0 ]]; then
    what="$n_findings: $(tr '\n' ' ' <<<"$findings")(logs: $work/large-log.txt, log.txt)"
    status=1
  elif [[ $rc -ne 0 ]]; then
    what="exit status $rc without a saved input (logs: $work/large-log.txt, log.txt)"
    status=1
  fi
  printf '%-18s %12s %9s %7s %8s %8s %8s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$corpus" "${slowest:--}" "$what"
done
exit $status
