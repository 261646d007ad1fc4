"""Shared fixtures: a database (SQLite or the PostgreSQL at 127.0.0.1), the fake Slack Web API, and
the real Loopline server on a real socket.

Pick the database with LOOPLINE_TEST_DB=sqlite (default) or LOOPLINE_TEST_DB=postgres.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from bot.core import clock
from bot.core.db import Database
from bot.core.settings import Settings, load_settings
from bot.devtools.fakeslack import FakeSlack
from tests.support.env import (
    ADMIN,
    BOT_TOKEN,
    CUSTOMER,
    EXT_TEAM,
    GUEST,
    PG_ADMIN_URL,
    PINNED_NOW,
    PM,
    REP,
    REP2,
    SIGNING_SECRET,
    RunningServer,
    which_db,
    wipe,
)
from tests.support.slack_requests import SlackSender


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


@pytest.fixture(scope="session")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if which_db().startswith("postgres"):
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
    if not which_db().startswith("postgres"):
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
    # The embedder comes from LOOPLINE_EMBEDDER, set by `default_install_embedder` above.
    return load_settings(slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET,
                         slack_api_url=fake.base_url, database_url=db_url, loopline_log_format="text")


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


