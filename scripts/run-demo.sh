#!/usr/bin/env bash
# Quick start: set up and run the demo on the embedded defaults (SQLite, offline themes, no Slack).
set -euo pipefail
cd "$(dirname "$0")/.."
LOOPLINE_SKIP_LOCAL_MODEL=${LOOPLINE_SKIP_LOCAL_MODEL:-1} bash scripts/setup.sh
. .venv/bin/activate
exec loopline demo "$@"
