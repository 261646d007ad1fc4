#!/usr/bin/env bash
# The test command: set up, lint, type-check, then the whole suite on SQLite and on PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate

echo "== ruff"; ruff check bot tests bench
echo "== mypy"; mypy bot

run_suite() {
  local label=$1; shift
  echo "== pytest on $label"
  set +e
  env "$@" python -m pytest -q -p no:cacheprovider
  local rc=$?
  set -e
  if [ $rc -eq 5 ]; then echo "pytest collected no tests on $label: failing"; exit 1; fi
  if [ $rc -ne 0 ]; then exit $rc; fi
}

run_suite sqlite LOOPLINE_TEST_DB=sqlite
if pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null || python - <<'PY'
import sys, psycopg
try:
    psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", connect_timeout=3).close()
except Exception:
    sys.exit(1)
PY
then
  run_suite postgresql LOOPLINE_TEST_DB=postgres
else
  echo "PostgreSQL at 127.0.0.1:5432 is not reachable: failing (the suite must run on both)"; exit 1
fi
