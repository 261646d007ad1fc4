"""`loopline doctor`: each thing that stops a real install is named with its fix, against the fake Slack
(a real HTTP server that reports a token's scopes in X-OAuth-Scopes) and a real running server."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.core.db import Database, alembic_config
from bot.core.settings import Settings, load_settings
from bot.devtools.fakeslack import DEFAULT_SCOPES, FakeSlack
from bot.doctor import run
from tests.conftest import REPO, RunningServer
from tests.support.process import free_port

HEX_SECRET = "a3f9c2e81b7d4c6e9f0a1b2c3d4e5f60"
TOKEN = "xoxb-2001-3001-doctorTokenNotReal"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """A shell with no Loopline settings, in an empty folder (no .env)."""
    for name in list(os.environ):
        if name.startswith(("SLACK_", "LOOPLINE_", "OPENAI_", "DATABASE_")) or name.upper() in {
                n.upper() for n in Settings.model_fields}:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    yield monkeypatch


def configure(env: pytest.MonkeyPatch, fake: FakeSlack, db_url: str, **settings: str) -> None:
    values = {"SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": HEX_SECRET, "SLACK_API_URL": fake.base_url,
              "DATABASE_URL": db_url, **settings}
    for name, value in values.items():
        env.setenv(name, value)


def doctor(**kw: object) -> tuple[int, list[str]]:
    lines: list[str] = []
    rc = run(print_line=lines.append, **kw)  # type: ignore[arg-type]
    return rc, lines


def line(lines: list[str], check: str) -> str:
    found = [x for x in lines if x.split(None, 1)[1].startswith(check)]
    assert len(found) == 1, f"no single line for {check!r} in:\n" + "\n".join(lines)
    return found[0]


def test_a_ready_install_passes_every_check(env, fake: FakeSlack, db: Database, db_url: str):
    configure(env, fake, db_url)
    srv = RunningServer(load_settings())
    try:
        rc, lines = doctor(url=srv.url)
    finally:
        srv.stop()
    assert rc == 0, "\n".join(lines)
    for check in ("settings", "database", "bot token", "scopes", "signing secret", "public URL", "request URL",
                  "metrics"):
        assert line(lines, check).startswith("ok "), line(lines, check)
    assert "answers anyone who reaches this URL" in line(lines, "metrics")
    assert "all 12 scopes" in line(lines, "scopes")
    assert "Loopline Test (T0001)" in line(lines, "bot token")
    assert line(lines, "app token").startswith("skipped ")
    assert lines[-1].startswith("everything checked is ready")
    assert fake.call_count("auth.test") >= 1  # the token really went over the wire
    assert HEX_SECRET not in "\n".join(lines) and TOKEN not in "\n".join(lines)


def test_a_token_missing_scopes_names_them_and_how_to_reinstall(env, fake: FakeSlack, db: Database, db_url: str):
    granted = [s for s in DEFAULT_SCOPES.split(",") if s not in ("files:write", "im:history")]
    fake.register_token(TOKEN, scopes=",".join(granted))
    configure(env, fake, db_url)
    rc, lines = doctor()
    assert rc == 1
    scopes = line(lines, "scopes")
    assert scopes.startswith("PROBLEM ")
    assert "lacks 2 of the 12 scopes" in scopes and "files:write, im:history" in scopes
    assert "loopline manifest --url" in scopes and "reinstall" in scopes
    assert line(lines, "bot token").startswith("ok ")  # the token itself is fine
    assert lines[-1].startswith("1 problem found")


def test_a_revoked_or_wrong_token_says_what_slack_answered(env, fake: FakeSlack, db: Database, db_url: str):
    configure(env, fake, db_url)
    fake.revoked_tokens.add(TOKEN)
    rc, lines = doctor()
    assert rc == 1
    assert "token_revoked" in line(lines, "bot token") and "reinstall" in line(lines, "bot token")
    env.setenv("SLACK_BOT_TOKEN", "xoxp-1-2-3-a-user-token")
    rc, lines = doctor()
    assert rc == 1 and "is a user token, not a bot token" in line(lines, "bot token")
    env.setenv("SLACK_API_URL", f"http://127.0.0.1:{free_port()}/api/")
    env.setenv("SLACK_BOT_TOKEN", TOKEN)
    rc, lines = doctor()
    assert rc == 1 and "cannot reach SLACK_API_URL" in line(lines, "bot token")


def test_an_unmigrated_database_is_named_with_loopline_migrate(env, fake: FakeSlack, empty_db_url: str):
    from alembic import command

    configure(env, fake, empty_db_url)
    rc, lines = doctor()
    assert rc == 1
    assert "has no Loopline schema" in line(lines, "database") and "loopline migrate" in line(lines, "database")

    db = Database(empty_db_url)
    cfg = alembic_config()
    with db.engine.begin() as conn:  # the schema of an older release
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    rc, lines = doctor()
    assert rc == 1
    assert "is at revision 0001; this version needs" in line(lines, "database")

    db.upgrade()
    db.dispose()
    rc, lines = doctor()
    assert line(lines, "database").startswith("ok ") and "latest revision" in line(lines, "database"), lines
    assert rc == 0


def test_a_database_that_is_not_there(env, fake: FakeSlack, tmp_path: Path):
    configure(env, fake, "sqlite:///./nowhere/loopline.db")
    rc, lines = doctor()
    assert rc == 1
    assert f"{tmp_path}/nowhere/loopline.db doesn't exist" in line(lines, "database")
    assert not (tmp_path / "nowhere").exists()  # the doctor creates nothing
    port = free_port()
    configure(env, fake, f"postgresql://loopline:s3cret-pw@127.0.0.1:{port}/loopline")
    rc, lines = doctor()
    assert rc == 1 and "cannot use postgresql+psycopg://loopline:***@127.0.0.1" in line(lines, "database")
    assert "s3cret-pw" not in "\n".join(lines)
    configure(env, fake, "mysql://root@localhost/loopline")
    rc, lines = doctor()
    assert rc == 1 and "mysql" in line(lines, "database") and "PostgreSQL" in line(lines, "database")


@pytest.mark.parametrize("secret, says", [
    ("0123456789abcdefghijklmn", "looks like the Verification Token"),
    ("8f742231b10e8888abcd99yyyzzz85a5", "characters other than 0-9 and a-f"),
    (f'"{HEX_SECRET}"', "spaces or quotes around it"),
    ("abc123", "is 6 characters long"),
])
def test_a_bad_signing_secret_is_described_never_shown(env, fake: FakeSlack, db: Database, db_url: str,
                                                      secret: str, says: str):
    configure(env, fake, db_url, SLACK_SIGNING_SECRET=secret)
    rc, lines = doctor()
    assert rc == 1
    result = line(lines, "signing secret")
    assert result.startswith("PROBLEM ") and says in result and "Basic Information" in result
    assert secret not in "\n".join(lines)


def test_the_public_url_must_answer_as_loopline_does(env, fake: FakeSlack, db: Database, db_url: str):
    configure(env, fake, db_url)
    rc, lines = doctor(url=f"http://127.0.0.1:{free_port()}")
    assert rc == 1 and "nothing answers at http://127.0.0.1:" in line(lines, "public URL")

    rc, lines = doctor(url=fake.url)  # something answers, but it isn't Loopline
    assert rc == 1 and "not Loopline's health JSON" in line(lines, "public URL")

    rc, lines = doctor(url="http://loopline.example.invalid")
    assert rc == 1 and "Slack only sends requests to https URLs" in "\n".join(lines)

    # The server runs with another signing secret than the one here: Slack's requests would all be refused.
    srv = RunningServer(load_settings(slack_signing_secret="0" * 32))
    try:
        rc, lines = doctor(url=srv.url)
    finally:
        srv.stop()
    assert rc == 1
    assert line(lines, "public URL").startswith("ok ")
    assert "rejects requests signed with this SLACK_SIGNING_SECRET (401)" in line(lines, "request URL")


def test_who_can_read_metrics_through_the_public_url(env, fake: FakeSlack, db: Database, db_url: str):
    configure(env, fake, db_url, LOOPLINE_METRICS_TOKEN="scrape-token-1")
    srv = RunningServer(load_settings())
    try:
        rc, lines = doctor(url=srv.url)
    finally:
        srv.stop()
    assert rc == 0 and "needs LOOPLINE_METRICS_TOKEN" in line(lines, "metrics")
    assert "scrape-token-1" not in "\n".join(lines)
    # This config has a token, the server runs without one: its /metrics is open to anyone.
    srv = RunningServer(load_settings(loopline_metrics_token=None))
    try:
        rc, lines = doctor(url=srv.url)
    finally:
        srv.stop()
    assert rc == 1 and line(lines, "metrics").startswith("PROBLEM ")
    assert "answers without LOOPLINE_METRICS_TOKEN" in line(lines, "metrics")


def test_socket_mode_needs_an_app_token(env, fake: FakeSlack, db: Database, db_url: str):
    configure(env, fake, db_url)
    rc, lines = doctor(socket=True)
    assert rc == 1 and "Socket Mode needs SLACK_APP_TOKEN" in line(lines, "app token")
    env.setenv("SLACK_APP_TOKEN", "xoxb-wrong-kind")
    rc, lines = doctor(socket=True)
    assert rc == 1 and "not an app-level token" in line(lines, "app token")
    env.setenv("SLACK_APP_TOKEN", "xapp-1-A0001-1-doctor")
    env.delenv("SLACK_SIGNING_SECRET")
    rc, lines = doctor(socket=True)
    assert rc == 0, "\n".join(lines)
    assert line(lines, "app token").startswith("ok ") and fake.call_count("apps.connections.open") == 1
    assert line(lines, "signing secret").startswith("skipped ")
    fake.invalid_tokens.add("xapp-1-A0001-1-doctor")
    rc, lines = doctor(socket=True)
    assert rc == 1 and "invalid_auth" in line(lines, "app token") and "connections:write" in line(lines, "app token")


def test_settings_that_are_malformed_or_misspelt_are_all_named(env, fake: FakeSlack, db: Database, db_url: str,
                                                               tmp_path: Path):
    configure(env, fake, db_url)
    env.delenv("SLACK_BOT_TOKEN")
    (tmp_path / ".env").write_text(f"SLACK_BOT_TOKNE={TOKEN}\nPORT=eighty\nLOOPLINE_TIMEZONE=Mars/Olympus_Mons\n")
    rc, lines = doctor()
    assert rc == 1
    settings = [x for x in lines if x.split(None, 1)[1].startswith("settings")]
    assert any("PORT is malformed" in x for x in settings)
    assert any("LOOPLINE_TIMEZONE is malformed" in x and "Europe/Berlin" in x for x in settings)
    assert any("SLACK_BOT_TOKNE is not a Loopline setting" in x and "did you mean SLACK_BOT_TOKEN?" in x
               for x in settings)
    assert "SLACK_BOT_TOKEN is not set" in line(lines, "bot token")
    assert line(lines, "database").startswith("ok ")  # the other checks still ran


def test_oauth_installs_need_both_halves_and_a_key(env, fake: FakeSlack, db: Database, db_url: str):
    configure(env, fake, db_url, SLACK_CLIENT_ID="1234.5678")
    env.delenv("SLACK_BOT_TOKEN")
    rc, lines = doctor()
    assert rc == 1
    text_ = "\n".join(lines)
    assert "SLACK_CLIENT_ID is set but SLACK_CLIENT_SECRET is not" in text_
    env.setenv("SLACK_CLIENT_SECRET", "f" * 32)
    rc, lines = doctor()
    assert rc == 1 and "LOOPLINE_ENCRYPTION_KEY is not set" in "\n".join(lines) and "loopline new-key" in "\n".join(lines)
    assert line(lines, "bot token").startswith("skipped ")


def test_the_command_exits_non_zero_with_one_line_per_check(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPENAI_", "LOOPLINE_", "DATABASE_"))}
    r = subprocess.run([sys.executable, "-m", "bot", "doctor", "--url", f"http://127.0.0.1:{free_port()}"],
                       cwd=tmp_path, env={**env, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    out = r.stdout.splitlines()
    assert [x.split()[1] for x in out[:-1]] == ["settings", "database", "bot", "signing", "app", "public"]
    assert out[-1] == "4 problems found: fix them and run `loopline doctor` again"
    assert "Traceback" not in r.stderr
