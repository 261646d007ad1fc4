#!/usr/bin/env bash
# The wheel is the product: build it (sdist first, then the wheel from the sdist, as `python -m build`
# does), install it alone into a fresh virtual environment, and run the black-box smoke
# (scripts/smoke_wheel.py) from an empty folder, so nothing from the source tree can be imported.
# Dependencies come from the package index (or pip's cache). Used by scripts/test.sh.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python}
work=$(mktemp -d -t loopline-smoke.XXXXXX)
trap 'rm -rf "$work"' EXIT

secs() { python3 -c "import time,sys; print(f'{time.time()-float(sys.argv[1]):.1f}')" "$1"; }

t=$(date +%s.%N)
if ! "$PY" -m build --outdir "$work/dist" "$repo" >"$work/build.log" 2>&1; then
  echo "smoke: building the wheel failed:"; tail -30 "$work/build.log"; exit 1
fi
wheel=$(ls "$work"/dist/loopline-*.whl)
echo "  built   $(basename "$wheel") ($(secs "$t") s, $(du -k "$wheel" | cut -f1) KiB)"

t=$(date +%s.%N)
"$PY" -m venv "$work/venv"
if ! "$work/venv/bin/python" -m pip install -q "$wheel" >"$work/install.log" 2>&1; then
  echo "smoke: pip install of the wheel failed:"; tail -30 "$work/install.log"; exit 1
fi
echo "  pip install of the wheel into a fresh venv: $(secs "$t") s"

mkdir "$work/run" && cd "$work/run"
env -u PYTHONPATH -u VIRTUAL_ENV "$work/venv/bin/python" -I "$repo/scripts/smoke_wheel.py"
