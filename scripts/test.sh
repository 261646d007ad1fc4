#!/usr/bin/env bash
# The test command: set up, lint, type-check, then the whole suite on SQLite and on PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate

# The wheel is built and installed into a fresh venv while the suite runs (mostly network waits);
# the smoke itself runs at the end (scripts/smoke-wheel.sh).
smoke_dir=$(mktemp -d -t loopline-smoke.XXXXXX)
# Its own process group, so that a failing suite stops it (pip included) on the way out.
setsid bash scripts/smoke-wheel.sh --prepare "$smoke_dir" >"$smoke_dir/prepare.log" 2>&1 &
smoke_prepare=$!
trap 'kill -- -"$smoke_prepare" 2>/dev/null || true; rm -rf "$smoke_dir"' EXIT

echo "== ruff"; ruff check bot tests bench
echo "== mypy"; mypy bot

pg_reachable() {
  pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null || python - <<'PY'
import sys, psycopg
try:
    psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", connect_timeout=3).close()
except Exception:
    sys.exit(1)
PY
}
if ! pg_reachable; then
  echo "PostgreSQL at 127.0.0.1:5432 is not reachable: failing (the suite must run on both)"; exit 1
fi

# The two databases' runs go side by side (each is mostly waits on sockets and commits; this halves
# the wall time on two cores). Each writes its own log, printed whole when both are done.
logs=$(mktemp -d -t loopline-suites.XXXXXX)
run_suite() {
  local label=$1; shift
  local rc=0
  env "$@" python -m pytest -q -p no:cacheprovider >"$logs/$label.log" 2>&1 || rc=$?
  echo "$rc" >"$logs/$label.rc"
}
echo "== pytest on sqlite and postgresql (side by side)"
run_suite sqlite LOOPLINE_TEST_DB=sqlite &
sqlite_job=$!
run_suite postgresql LOOPLINE_TEST_DB=postgres &
pg_job=$!
wait "$sqlite_job" "$pg_job"
failed=0
for label in sqlite postgresql; do
  rc=$(cat "$logs/$label.rc")
  echo "== pytest on $label (exit $rc)"
  cat "$logs/$label.log"
  if [ "$rc" -eq 5 ]; then echo "pytest collected no tests on $label: failing"; failed=1; fi
  if [ "$rc" -ne 0 ]; then failed=1; fi
done
rm -rf "$logs"
[ "$failed" -eq 0 ] || exit 1

echo "== smoke test of the installed wheel (scripts/smoke-wheel.sh)"
if ! wait "$smoke_prepare"; then cat "$smoke_dir/prepare.log"; exit 1; fi
cat "$smoke_dir/prepare.log"
bash scripts/smoke-wheel.sh --run "$smoke_dir"
