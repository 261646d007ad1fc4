"""One Slack posting budget for every process on the database (bot/features/announcements/budget.py).

Three real `loopline scheduler` processes on one PostgreSQL fan an announcement out against the fake
Web API enforcing a low per-workspace limit: together they must keep to it (per-process buckets send
three times the rate and lean on 429s), and every channel gets exactly one copy.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.core.db import Database
from bot.features.announcements import service as an_svc
from tests.conftest import ADMIN, BOT_TOKEN, REP, SIGNING_SECRET
from tests.support.process import BotProcess, bot_env
from tests.test_announcements_e2e import TEAM, copies, export, seed_subscriptions, wait

CAP = 4.0  # the fake's chat.postMessage limit for the workspace (msg/s; bursts of 4)
APP_RATE = 3.8  # LOOPLINE_WORKSPACE_RATE: what the app is told to keep to


def _needs_postgres(db: Database) -> None:
    if not db.url.startswith("postgres"):
        pytest.skip("several schedulers need a shared PostgreSQL (SQLite is one process's file, paced in "
                    "memory); run with LOOPLINE_TEST_DB=postgres")


def _scheduler(env: dict[str, str], log: Path) -> BotProcess:
    p = BotProcess(["scheduler"], env, log=log)
    wait(lambda: "scheduler and worker running" in log.read_text(errors="replace") or p.proc.poll() is not None,
         30, "for a scheduler to start")
    assert p.proc.poll() is None, p.log()
    return p


def test_three_schedulers_share_one_workspace_budget(fake, db, db_url, tmp_path):
    _needs_postgres(db)
    channels = [f"C0BUD{i:03d}" for i in range(36)]
    for ch in channels:
        fake.add_channel(ch, f"launch-{ch[-3:]}", members=[REP])
    seed_subscriptions(db, dict.fromkeys(channels, "offline mode"))
    env = bot_env(fake, db_url, SIGNING_SECRET, BOT_TOKEN, LOOPLINE_WORKSPACE_RATE=str(APP_RATE))
    procs = [_scheduler(env, tmp_path / f"scheduler-{i}.log") for i in range(3)]
    fake.workspace_rate = CAP
    fake.per_channel_rate = 1.0
    fake.latency_for["chat.postMessage"] = 0.03
    fake.clear_calls()
    try:
        started = time.monotonic()
        with db.session() as s:  # the subprocesses run on the system clock, not the pinned one
            an_svc.create_announcement(
                s, team_id=TEAM, source_key="test:shared-budget", title="Offline mode ships 📴 — on by default",
                body="Offline mode is rolling out to every mobile customer this week & it's *on* by default. "
                     "<!channel> questions → #mobile-launch", areas=["offline mode"], author=ADMIN,
                now=datetime.fromtimestamp(time.time(), UTC))
        wait(lambda: [r["status"] for r in export(db, "announcements")] == ["sent"], 60, "for the fan-out")
        elapsed = time.monotonic() - started
        time.sleep(1.0)  # anything still in flight would show up as a second copy
    finally:
        for p in procs:
            p.stop()
    assert {ch: len(copies(fake, ch)) for ch in channels} == dict.fromkeys(channels, 1)
    posts = fake.call_count("chat.postMessage")
    # Per-process buckets would post at 3 × 3.8/s against a cap of 4/s: dozens of 429s.
    assert fake.stats["429"] <= 1, (fake.stats, posts)
    assert elapsed >= (len(channels) - CAP) / APP_RATE * 0.9  # it kept to the rate, it didn't burst through
    logs = [p.log_path.read_text(errors="replace") for p in procs]
    assert not any("Traceback" in log for log in logs), logs


def test_reservations_from_several_processes_are_spaced_and_a_429_holds_them_all(db):
    """Two budgets on one database (as two replicas would have) hand out evenly spaced slots, and a
    429 reported through one pushes the other's next slot past its Retry-After."""
    from bot.features.announcements.budget import SharedBudget

    _needs_postgres(db)
    one, two = (SharedBudget(db, 10.0, 1.0, hold_seconds=30) for _ in range(2))
    stop = threading.Event()
    started = time.monotonic()
    done: list[float] = []

    def post(budget: Any, channel: str) -> None:
        assert budget.wait_for_slot("T0001", channel, stop)
        done.append(time.monotonic() - started)

    threads = [threading.Thread(target=post, args=(b, f"C0SLOT{i:02d}"))
               for i, b in enumerate([one, two] * 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    done.sort()
    assert len(done) == 10 and done[-1] == pytest.approx(0.9, abs=0.15)  # 10 slots at 10/s, not 2 × 10/s
    one.penalise("T0001", "C0SLOT00", 1.0)
    before = time.monotonic()
    assert two.wait_for_slot("T0001", "C0SLOT99", stop)
    assert time.monotonic() - before >= 0.9
