"""Shared fixtures: a database (SQLite or the PostgreSQL at 127.0.0.1), the fake Slack Web API, and
the real Loopline server on a real socket.

Pick the database with LOOPLINE_TEST_DB=sqlite (default) or LOOPLINE_TEST_DB=postgres.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from bot.core import clock
from bot.core.db import Database
from bot.core.models import Base
from bot.core.settings import Settings, load_settings
from bot.devtools.fakeslack import FakeSlack
from tests.support.slack_requests import SlackSender

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_TOKEN = "xoxb-1234-test-token"
ENCRYPTION_KEY = "ZmDfcTF7_60GrrY167zsiPd67pEvs0aGOv2oasOM1Pg="  # a Fernet key, for OAuth installs in tests
PG_ADMIN_URL = os.environ.get("LOOPLINE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

# Seeded people and channels (realistic ids and names). CUSTOMER belongs to Acme's own workspace
# (EXT_TEAM), in the Slack Connect channel C0ACME: someone outside the installing organisation.
ADMIN, PM, REP, REP2, CUSTOMER, GUEST = "U0ADMIN", "U0PM", "U0REP", "U0REP2", "U0CUST", "U0GUEST"
EXT_TEAM = "T0EXT"


# Every test runs at this instant (a Wednesday at noon UTC, far from any DST change), advancing with
# real time from there: data seeded "the last 7 days" or "today" never straddles a midnight, whatever
# the hour CI runs. Processes started as subprocesses keep the system clock (tests give them real times).
PINNED_NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def pinned_clock() -> Iterator[datetime]:
    clock.set_source(clock.running_from(PINNED_NOW))
    yield PINNED_NOW
    clock.set_source(None)


@pytest.fixture(autouse=True)
def default_install_embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings built anywhere in a test (and processes it starts) embed with the default install's
    static model unless the test says otherwise: "auto" would load the optional PyTorch model where
    it is installed, tens of seconds per process under load. The optional models have their own tests."""
    monkeypatch.setenv("LOOPLINE_EMBEDDER", "static")


def _which_db() -> str:
    return os.environ.get("LOOPLINE_TEST_DB", "sqlite").lower()


@pytest.fixture(scope="session")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if _which_db().startswith("postgres"):
        name = f"loopline_t_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
        Database(url).upgrade()
        yield url
        with admin.connect() as c:
            c.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
    else:
        path = tmp_path_factory.mktemp("db") / "loopline-test.db"
        url = f"sqlite:///{path}"
        Database(url).upgrade()
        yield url


@pytest.fixture
def empty_db_url(tmp_path: Path) -> Iterator[str]:
    """A database with nothing in it yet, of the kind the suite runs on."""
    if not _which_db().startswith("postgres"):
        path = tmp_path / "fresh.db"
        create_engine(f"sqlite:///{path}").connect().close()  # the file exists, empty
        yield f"sqlite:///{path}"
        return
    name = f"loopline_empty_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


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


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    wipe(database)
    yield database
    database.dispose()


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    f = FakeSlack().start()
    f.add_user(ADMIN, "dana.admin", real_name="Dana Admin", is_admin=True, tz="Europe/Berlin")
    f.add_user(PM, "priya.pm", real_name="Priya (PM)", tz="America/New_York")
    f.add_user(REP, "sam.sales", real_name="Sam Sales", tz="America/Los_Angeles")
    f.add_user(REP2, "lee.sales", real_name="Lee Sales", tz="America/Chicago")
    f.add_user(CUSTOMER, "jo.acme", real_name="Jo at Acme", tz="Europe/London", team_id=EXT_TEAM)
    f.add_user(GUEST, "guest", real_name="Guest", tz="UTC")
    f.add_channel("C0SALES", "sales", members=[REP, REP2, PM, ADMIN])
    f.add_channel("C0ACME", "ext-acme", members=[REP, CUSTOMER], ext_shared=True, connected_teams=[EXT_TEAM])
    f.add_channel("C0PRODUCT", "product", members=[PM, ADMIN])
    f.add_channel("G0SECRET", "secret-deals", is_private=True, bot_member=False, members=[REP])
    yield f
    f.stop()


@pytest.fixture
def settings(fake: FakeSlack, db_url: str) -> Settings:
    # The embedder of the default install (`pip install`, no PyTorch): with "auto", a machine that has
    # the optional local model would load PyTorch in every end-to-end test that embeds or digests
    # (tens of seconds each under load). The optional models have their own tests (tests/test_themes.py).
    return load_settings(slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET,
                         slack_api_url=fake.base_url, database_url=db_url, loopline_log_format="text",
                         loopline_embedder="static")


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


@pytest.fixture
def server(settings: Settings, db: Database) -> Iterator[RunningServer]:
    srv = RunningServer(settings)
    yield srv
    srv.stop()


@pytest.fixture
def slack(server: RunningServer, fake: FakeSlack) -> Iterator[SlackSender]:
    sender = SlackSender(server.url, SIGNING_SECRET, response_url_base=fake.url.rstrip("/") + "/webhook")
    yield sender
    sender.close()


def export(db: Database, what: str = "feedback", **kw: Any) -> list[dict[str, Any]]:
    import json

    from bot import composition
    from bot.core.exports import export_records

    with db.read_session() as s:
        return [json.loads(line) for line in "".join(export_records(s, what, composition.exporters(composition.build_features()), **kw)).splitlines() if line.strip()]


REPO = Path(__file__).resolve().parents[1]
