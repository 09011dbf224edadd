#!/usr/bin/env bash
# setup.sh: install what building and testing Eigenformer needs, from Debian/Ubuntu packages.
# Safe to run again: packages already installed are skipped, and apt is not touched at all when
# nothing is missing.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: ./setup.sh [--fixtures] [--help]

Installs the build and test dependencies with apt-get (only the missing ones):
  libeigen3-dev nlohmann-json3-dev libcli11-dev doctest-dev libbenchmark-dev
  cmake g++ make pkg-config

  --fixtures   also install python3-torch python3-numpy, needed only to regenerate
               the test fixtures with tools/make_fixtures.py
  --help       show this help

Runs apt-get through sudo when not root.
EOF
}

packages=(libeigen3-dev nlohmann-json3-dev libcli11-dev doctest-dev libbenchmark-dev cmake g++ make pkg-config)

for arg in "$@"; do
  case "$arg" in
    --fixtures) packages+=(python3-torch python3-numpy) ;;
    -h|--help) usage; exit 0 ;;
    *) echo "setup.sh: unknown option '$arg'; see ./setup.sh --help" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "setup.sh: all ${#packages[@]} packages already installed"
  exit 0
fi

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

log=$(mktemp "${TMPDIR:-/tmp}/eigenformer-setup.XXXXXX")
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! "${as_root[@]}" apt-get update -q >"$log" 2>&1 ||
   ! "${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$log" 2>&1; then
  cat "$log" >&2
  echo "setup.sh: apt-get failed installing: ${missing[*]}" >&2
  exit 1
fi
echo "setup.sh: installed ${#missing[@]} package(s): ${missing[*]}"
