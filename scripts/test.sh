#!/usr/bin/env bash
# One command: install runtime + dev dependencies (Chromium and a CJK font included), lint, and run
# the whole test suite (unit, real packaged models, API, real browser). Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
export GRADIO_ANALYTICS_ENABLED=False HF_HUB_OFFLINE=1
.venv/bin/ruff check .
exec .venv/bin/python -m pytest -q -p no:cacheprovider --durations=15 "$@"
