#!/usr/bin/env bash
# One entry point for a fresh Linux machine (Python 3.11):
#   ./run.sh          set up .venv and start the dashboard on http://localhost:8501
#   ./run.sh test     set up .venv (+ Debian's chromium for browser tests) and run the tests
#   ./run.sh setup [--with-browser]   only set up
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}

setup() {
  if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
  fi
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements-dev.txt
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

case "${1:-app}" in
  app)   setup; shift || true; exec .venv/bin/python -m genre.ui.serve "$@" ;;  # GENRE_DEV=1: rerun on save
  test)  setup --with-browser; shift || true; exec .venv/bin/python -m pytest "$@" ;;
  setup) shift || true; setup "$@" ;;
  *)     echo "usage: ./run.sh [app|test|setup [--with-browser]]" >&2; exit 2 ;;
esac
