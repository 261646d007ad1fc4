#!/usr/bin/env bash
# The wheel is the product: build it (sdist first, then the wheel from the sdist, as `python -m build`
# does), install it alone into a fresh virtual environment, and run the black-box smoke
# (scripts/smoke_wheel.py) from an empty folder, so nothing from the source tree can be imported.
# Dependencies come from the package index (or pip's cache).
#
#   bash scripts/smoke-wheel.sh                  build, install, run; all in a temporary folder
#   bash scripts/smoke-wheel.sh --prepare DIR    build and install into DIR only
#   bash scripts/smoke-wheel.sh --run DIR        run the smoke against what --prepare left in DIR
# (scripts/test.sh prepares while the suite runs: the install mostly waits on the network.)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python}
mode=${1:-all}
if [ "$mode" = all ]; then
  work=$(mktemp -d -t loopline-smoke.XXXXXX)
  trap 'rm -rf "$work"' EXIT
else
  work=${2:?usage: smoke-wheel.sh [--prepare DIR | --run DIR]}
fi

secs() { python3 -c "import time,sys; print(f'{time.time()-float(sys.argv[1]):.1f}')" "$1"; }

prepare() {
  mkdir -p "$work"
  rm -rf "$work/dist" "$work/venv"
  local t; t=$(date +%s.%N)
  if ! "$PY" -m build --outdir "$work/dist" "$repo" >"$work/build.log" 2>&1; then
    echo "smoke: building the wheel failed:"; tail -30 "$work/build.log"; return 1
  fi
  local wheel; wheel=$(ls "$work"/dist/loopline-*.whl)
  echo "  built   $(basename "$wheel") ($(secs "$t") s, $(du -k "$wheel" | cut -f1) KiB)"
  t=$(date +%s.%N)
  "$PY" -m venv "$work/venv"
  if ! "$work/venv/bin/python" -m pip install -q "$wheel" >"$work/install.log" 2>&1; then
    echo "smoke: pip install of the wheel failed:"; tail -30 "$work/install.log"; return 1
  fi
  echo "  pip install of the wheel and its dependencies into a fresh venv: $(secs "$t") s"
}

run() {
  [ -x "$work/venv/bin/loopline" ] || { echo "smoke: nothing installed in $work (run --prepare first)"; return 1; }
  mkdir -p "$work/run" && cd "$work/run"
  # -I: isolated mode, neither the script's folder nor PYTHON* variables reach sys.path.
  env -u PYTHONPATH -u VIRTUAL_ENV "$work/venv/bin/python" -I "$repo/scripts/smoke_wheel.py"
}

case "$mode" in
  all) prepare && run ;;
  --prepare) prepare ;;
  --run) run ;;
  *) echo "usage: smoke-wheel.sh [--prepare DIR | --run DIR]"; exit 2 ;;
esac
