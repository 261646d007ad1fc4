"""What the suite runs against: the seeded people and secrets, the pinned instant, the real server on a
real socket, and small readers of what it stored. tests/conftest.py builds its fixtures from these."""

from __future__ import annotations

import os
import socket
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bot.core import clock
from bot.core.db import Database
from bot.core.models import Base
from bot.core.settings import Settings

# Seeded people and channels (realistic ids and names). CUSTOMER belongs to Acme's own workspace
# (EXT_TEAM), in the Slack Connect channel C0ACME: someone outside the installing organisation.
ADMIN, PM, REP, REP2, CUSTOMER, GUEST = "U0ADMIN", "U0PM", "U0REP", "U0REP2", "U0CUST", "U0GUEST"

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_TOKEN = "xoxb-1234-test-token"
ENCRYPTION_KEY = "ZmDfcTF7_60GrrY167zsiPd67pEvs0aGOv2oasOM1Pg="  # a Fernet key, for OAuth installs in tests
PG_ADMIN_URL = os.environ.get("LOOPLINE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
EXT_TEAM = "T0EXT"

# Every test runs at this instant (a Wednesday at noon UTC, far from any DST change), advancing with
# real time from there: data seeded "the last 7 days" or "today" never straddles a midnight, whatever
# the hour CI runs. Processes started as subprocesses keep the system clock (tests give them real times).
PINNED_NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)


def which_db() -> str:
    return os.environ.get("LOOPLINE_TEST_DB", "sqlite").lower()


# slack-sdk's OAuth tables are created by its stores, not by our migrations; they hold tokens encrypted
# with a test's LOOPLINE_ENCRYPTION_KEY, which the next test's key could not read.
SLACK_SDK_TABLES = ("slack_bots", "slack_installations", "slack_oauth_states")


def wipe(db: Database) -> None:
    from sqlalchemy import inspect

    with db.session() as s:
        for table in reversed(Base.metadata.sorted_tables):
            s.execute(table.delete())
        for name in SLACK_SDK_TABLES:
            if inspect(s.connection()).has_table(name):
                s.execute(text(f"DELETE FROM {name}"))


class RunningServer:
    def __init__(self, settings: Settings, *, scheduler: bool = True, background: bool = True, metrics: Any = None):
        """`background=False`: no worker thread; the test drains `rt.worker` itself (work queued, not yet run).
        `metrics`: the runtime's bot.metrics.Metrics (default: its own, with production caching)."""
        import uvicorn

        from bot.runtime import Runtime
        from bot.server import create_asgi_app

        self.rt = Runtime(settings, metrics=metrics)
        app = create_asgi_app(self.rt, background=background, scheduler=scheduler)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until the worker has nothing due (the background thread does the work)."""
        from sqlalchemy import func, select

        from bot.core.models import Job

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.rt.db.read_session() as s:
                pending = s.scalar(select(func.count()).select_from(Job).where(
                    Job.status == "pending", Job.run_after <= clock.now()))
            if not pending:
                return
            self.rt.worker.wake()
            time.sleep(0.05)
        raise AssertionError("worker did not settle")


def export(db: Database, what: str = "feedback", **kw: Any) -> list[dict[str, Any]]:
    import json

    from bot import composition
    from bot.core.exports import export_records

    with db.read_session() as s:
        return [json.loads(line) for line in "".join(export_records(s, what, composition.exporters(composition.build_features()), **kw)).splitlines() if line.strip()]


REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
