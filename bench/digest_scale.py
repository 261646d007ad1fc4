"""Weekly digest over 100,000 stored items (vectors already stored), on SQLite or PostgreSQL.

    python bench/digest_scale.py --db sqlite            # loads, then builds in a fresh process
    python bench/digest_scale.py --db postgres --items 100000 --history 20000

Vectors are synthesised: 384-dim, a few hundred cluster centres + noise, unit length (like
all-MiniLM-L6-v2's); texts are realistic feedback sentences built from the centre's topic. The build
runs in a child process so its peak RSS is the digest's, not the loader's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/loopline_bench"
SQLITE_URL = "sqlite:////tmp/loopline_bench.db"

SUBJECTS = ["CSV export", "SSO login", "invoice PDF", "mobile app", "search", "dashboard", "webhooks", "API rate limit",
            "Slack integration", "billing page", "user roles", "audit log", "dark mode", "calendar sync", "offline mode",
            "bulk edit", "notifications", "SAML config", "data retention", "onboarding flow"]
PROBLEMS = ["times out for large accounts", "is missing the field they need", "crashes after the last update",
            "is too slow on Mondays", "shows the wrong currency", "needs a per-team setting", "drops data silently",
            "should support filters", "breaks with emoji in names 🙃", "needs an admin override"]
CUSTOMERS = [f"Customer {i:03d}" for i in range(400)]


def url_for(db: str) -> str:
    return PG_URL if db == "postgres" else SQLITE_URL


def prepare(db: str) -> None:
    from sqlalchemy import create_engine, text

    if db == "postgres":
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'loopline_bench'"))
            c.execute(text("DROP DATABASE IF EXISTS loopline_bench"))
            c.execute(text("CREATE DATABASE loopline_bench"))
        admin.dispose()
    else:
        for suffix in ("", "-wal", "-shm"):
            Path("/tmp/loopline_bench.db" + suffix).unlink(missing_ok=True)


def load(db: str, items: int, history: int, centres: int, seed: int = 0) -> float:
    from sqlalchemy import insert

    from bot.core.db import Database
    from bot.core.models import Feedback
    from bot.themes import pack_vector

    t0 = time.perf_counter()
    prepare(db)
    database = Database(url_for(db))
    database.upgrade()
    rng = np.random.default_rng(seed)
    cent = rng.normal(size=(centres, 384)).astype(np.float32)
    cent /= np.linalg.norm(cent, axis=1, keepdims=True)
    # Zipf-ish theme sizes: a few big themes, a long tail, as in real feedback.
    weights = 1.0 / np.arange(1, centres + 1) ** 0.8
    weights /= weights.sum()
    now = datetime.now(UTC)
    total = items + history
    batch = 5000
    with database.engine.begin() as conn:
        for s0 in range(0, total, batch):
            n = min(batch, total - s0)
            which = rng.choice(centres, size=n, p=weights)
            vecs = cent[which] + rng.normal(scale=0.045, size=(n, 384)).astype(np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
            rows = []
            for j in range(n):
                i = s0 + j
                c = int(which[j])
                current = i < items
                age = timedelta(seconds=float(rng.uniform(60, 7 * 86400 - 60)))
                if not current:
                    age += timedelta(days=7 * int(rng.integers(1, 8)))
                rows.append({
                    "team_id": "T0BENCH", "source_key": f"bench:{i}",
                    "text": f"{SUBJECTS[c % len(SUBJECTS)]} {PROBLEMS[(c // len(SUBJECTS)) % len(PROBLEMS)]} "
                            f"— ticket #{i} from {CUSTOMERS[i % len(CUSTOMERS)]} & <team> (variant {c})",
                    "kind": ("bug", "idea", "feedback")[c % 3], "area": None,
                    "customer": CUSTOMERS[i % len(CUSTOMERS)], "arr": float(10_000 * (1 + i % 50)),
                    "source": "import", "status": "active", "text_pending": False,
                    "created_at": now - age, "updated_at": now,
                    "embedding": pack_vector(vecs[j]), "embedding_model": "local:all-MiniLM-L6-v2",
                })
            conn.execute(insert(Feedback), rows)
    database.dispose()
    return time.perf_counter() - t0


def build(db: str) -> dict[str, float]:
    from bot.core.db import Database
    from bot.features.digests.render import render_digest
    from bot.features.digests.service import build_digest

    database = Database(url_for(db))
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    with database.read_session() as s:
        data = build_digest(s, team_id="T0BENCH", channel="C0BENCH", period_key="bench", start=now - timedelta(days=7),
                            end=now, label="bench week", now=now)
    messages = render_digest(data)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": round(seconds, 2), "peak_rss_mb": round(peak), "items": data.total,
            "previous_total": data.previous_total, "themes": len(data.themes), "other": data.other_count,
            "messages": len(messages)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--history", type=int, default=20_000, help="items in the 7 previous weeks (trend, chart)")
    ap.add_argument("--centres", type=int, default=300)
    ap.add_argument("--build-only", action="store_true")
    args = ap.parse_args()
    if args.build_only:
        print(json.dumps(build(args.db)))
        return 0
    load_s = load(args.db, args.items, args.history, args.centres)
    print(f"loaded {args.items} current + {args.history} history items into {args.db} in {load_s:.1f}s")
    out = subprocess.run([sys.executable, __file__, "--db", args.db, "--build-only"], check=True,
                         capture_output=True, text=True, env={**os.environ, "LOOPLINE_LOG_FORMAT": "text"})
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{args.db}: digest of {r['items']} items built in {r['seconds']}s, peak RSS {r['peak_rss_mb']} MB, "
          f"{r['themes']} themes (+{r['other']} other items), previous period {r['previous_total']}, "
          f"{r['messages']} messages")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
