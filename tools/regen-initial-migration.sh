#!/usr/bin/env bash
# Until the first release the schema lives in one initial migration; this regenerates it from
# bot/core/models.py (autogenerate against an empty SQLite database). After a release, add new revisions instead.
set -euo pipefail
exec 9>/tmp/loopline-regen.lock; flock 9  # helpers may run this at the same time
cd "$(dirname "$0")/.."
rm -f migrations/versions/0001_initial.py
tmp=$(mktemp -d)
python - "$tmp" <<'PY'
import sys
from alembic import command
from bot.core.db import alembic_config
cfg = alembic_config(f"sqlite:///{sys.argv[1]}/regen.db")
command.revision(cfg, message="initial schema", autogenerate=True, rev_id="0001", )
PY
f=$(ls migrations/versions/0001_*.py); mv "$f" migrations/versions/0001_initial.py
rm -rf "$tmp"
ruff format -q migrations/versions/0001_initial.py || true
echo "regenerated migrations/versions/0001_initial.py"
