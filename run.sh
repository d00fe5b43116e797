#!/usr/bin/env bash
# One entry point for a fresh Linux machine (Python 3.11):
#   ./run.sh          set up .venv and start the dashboard on http://localhost:8501
#   ./run.sh test     set up .venv (+ Debian's chromium for browser tests) and run the tests
#   ./run.sh setup [--with-browser]   only set up
#   ./run.sh lock [--upgrade | --upgrade-package NAME ...]
#                     remake the lock (requirements.lock) from pyproject.toml's declared ranges:
#                     on purpose only; without --upgrade the locked versions stay where they are
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
LOCK=requirements.lock

# .venv holds exactly the lock (hash-checked, no resolver) plus genre itself (editable). It is
# built anew whenever the lock or pyproject.toml changes (or a set-up was cut short), so nothing
# outside the lock survives in it.
venv() {
  local stamp
  stamp=$(cat "$LOCK" pyproject.toml | sha256sum | cut -c1-16)
  if [ -x .venv/bin/python ] && [ "$(cat .venv/.genre-lock 2>/dev/null)" = "$stamp" ]; then
    return
  fi
  echo "Setting up .venv from $LOCK ..." >&2
  rm -rf .venv
  "$PY" -m venv .venv
  if [ "$(uname -sm)" = "Linux x86_64" ] && .venv/bin/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    .venv/bin/python -m pip install -q --require-hashes --no-deps -r "$LOCK"
    .venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
    .venv/bin/python -m pip check || { echo "pyproject.toml asks for what $LOCK lacks: ./run.sh lock" >&2; exit 1; }
  else  # the lock is made for Linux x86-64 and Python 3.11 (what CI tests); elsewhere, the declared ranges
    echo "warning: $LOCK is for Linux x86-64 with Python 3.11; installing pyproject.toml's ranges instead" >&2
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".[dev]"
  fi
  echo "$stamp" > .venv/.genre-lock
}

setup() {
  venv
  # librosa's numba kernels compiled by one process before any parallel run: processes that
  # compile at once can leave a mismatched cache that segfaults every later run (numba #10128).
  .venv/bin/python -m genre.numba_cache
  # Browser tests: Debian's Chromium (never `playwright install`), with text and emoji fonts so
  # the screenshots in test-artifacts/ show what a person sees (no empty boxes for 🎵 or ⚠️);
  # espeak-ng speaks the non-music the music-verdict tests need.
  if [ "${1:-}" = "--with-browser" ] && { [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/espeak-ng ] ||
       [ ! -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ]; }; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium fonts-dejavu-core \
      fonts-noto-color-emoji espeak-ng >/dev/null
  fi
}

# The lock: every package of the runtime and of the dev and cluster extras at one version, with
# the sha256 of each of its files, for Linux x86-64 and Python 3.11 (uv, itself locked).
lock() {
  [ -x .venv/bin/uv ] || venv
  .venv/bin/uv pip compile pyproject.toml --extra dev --extra cluster --generate-hashes \
    --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
    --custom-compile-command "./run.sh lock" --output-file "$LOCK" "$@"
}

case "${1:-app}" in
  app)   setup; shift || true; exec .venv/bin/python -m genre dashboard "$@" ;;  # GENRE_DEV=1: rerun on save
  test)  setup --with-browser; shift || true; exec .venv/bin/python -m pytest "$@" ;;
  setup) shift || true; setup "$@" ;;
  lock)  shift; lock "$@" ;;
  *)     echo "usage: ./run.sh [app|test|setup [--with-browser]|lock [--upgrade]]" >&2; exit 2 ;;
esac
