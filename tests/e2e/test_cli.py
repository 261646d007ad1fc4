"""The command line as a user runs it: settings errors, manifest, import and export."""

from __future__ import annotations

import csv
import json

import yaml

from tests.support.cli import run
from tests.support.env import REPO


def test_missing_setting_stops_with_one_clear_line(tmp_path):
    r = run("serve", env={"DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}, cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0, r.stderr
    assert "SLACK_SIGNING_SECRET" in r.stderr and "Traceback" not in r.stderr


def test_malformed_setting_names_it(tmp_path):
    r = run("serve", env={"SLACK_SIGNING_SECRET": "s", "SLACK_BOT_TOKEN": "xoxb-1", "PORT": "eighty"}, cwd=tmp_path)
    assert r.returncode == 2 and "PORT" in r.stderr and "Traceback" not in r.stderr
    r = run("serve", env={"SLACK_SIGNING_SECRET": "s", "SLACK_BOT_TOKEN": "xoxb-1",
                          "LOOPLINE_TIMEZONE": "Mars/Olympus_Mons"}, cwd=tmp_path)
    assert r.returncode == 2 and "LOOPLINE_TIMEZONE" in r.stderr
    r = run("serve", env={"SLACK_SIGNING_SECRET": "s", "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_API_URL": "slack.com/api"},
            cwd=tmp_path)
    assert r.returncode == 2 and "SLACK_API_URL" in r.stderr


def test_manifest_lists_everything_and_matches_the_committed_copy():
    r = run("manifest", "--url", "https://example.com")
    assert r.returncode == 0
    m = yaml.safe_load(r.stdout)
    assert (REPO / "slack-manifest.yml").read_text() == r.stdout, "regenerate slack-manifest.yml"
    commands = {c["command"] for c in m["features"]["slash_commands"]}
    assert commands == {"/feedback", "/announce", "/subscribe", "/unsubscribe", "/decision", "/digest"}
    assert all(c["url"] == "https://example.com/slack/events" for c in m["features"]["slash_commands"])
    assert m["features"]["shortcuts"][0]["callback_id"] == "capture_feedback"
    events = set(m["settings"]["event_subscriptions"]["bot_events"])
    assert {"reaction_added", "reaction_removed", "message.channels", "message.groups", "app_home_opened",
            "app_uninstalled", "tokens_revoked"} <= events
    scopes = set(m["oauth_config"]["scopes"]["bot"])
    assert {"commands", "chat:write", "reactions:read", "channels:history", "groups:history"} <= scopes
    assert m["settings"]["interactivity"]["request_url"] == "https://example.com/slack/events"


def test_import_keeps_good_rows_names_bad_lines_and_is_idempotent(tmp_path):
    path = tmp_path / "feedback.csv"
    rows = [
        ["text", "area", "kind", "customer", "arr", "created_at", "reporter"],
        ["Bulk-edit seats, please 🙏", "Admin Console", "idea", "Acme Corp", "120k", "2026-10-01T09:30:00Z", "sam"],
        ["", "billing", "bug", "Globex", "", "", ""],
        ["Invoices show VAT twice & round wrong", "billing", "bug", "Globex", "$1.2M", "2026-10-02", ""],
        ["SSO drops after 10 min", "identity", "complaint", "Initech", "", "", ""],
        ["Dark mode <3", "", "", "", "lots", "", ""],
        ["CSV export \"payload\" column is empty,\nsecond line of the same cell", "exports", "bug", "", "", "yesterday", ""],
        ["Webhooks: add retries", "integrations", "idea", "Hooli", "45,000", "2026-10-05T12:00:00+02:00", "lee"],
    ]
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite"}
    r = run("import", "feedback", str(path), env=env)
    assert r.returncode == 0, r.stderr
    assert "imported 3" in r.stdout and "rejected 4" in r.stdout
    assert "line 3: text is empty" in r.stdout
    assert "line 5: kind 'complaint'" in r.stdout
    assert "line 6: ARR must be a number" in r.stdout
    assert "line 7: created_at 'yesterday'" in r.stdout  # the record whose quoted cell spans lines 7-8
    again = run("import", "feedback", str(path), env=env)
    assert "imported 0, already present 3" in again.stdout

    out = run("export", "feedback", env=env)
    recs = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["text"] for r in recs] == [rows[1][0], rows[3][0], rows[7][0]]
    first = recs[0]
    assert first["area"] == "admin console" and first["customer"] == "Acme Corp" and first["arr"] == 120000
    assert first["created_at"] == "2026-10-01T09:30:00Z" and first["source"] == "import" and first["reporter"] == "sam"
    assert recs[2]["created_at"] == "2026-10-05T10:00:00Z"
    assert set(first) == {"id", "text", "kind", "area", "customer", "arr", "channel", "ts", "permalink", "reporter",
                          "captured_by", "votes", "source", "created_at", "decision_ids", "merged_into"}

    as_csv = run("export", "feedback", "--format", "csv", env=env)
    parsed = list(csv.DictReader(as_csv.stdout.splitlines()))
    assert [p["text"] for p in parsed] == [rows[1][0], rows[3][0], rows[7][0]]
    assert parsed[0]["decision_ids"] == "[]"


def test_import_of_a_missing_file_or_bad_header_says_so(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite"}
    r = run("import", "feedback", str(tmp_path / "nope.csv"), env=env)
    assert r.returncode == 2 and "cannot read" in r.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("message,area\nhello,billing\n")
    r = run("import", "feedback", str(bad), env=env)
    assert "line 1: the header must include a 'text' column" in r.stdout and r.returncode == 1


def test_demo_runs_without_credentials(tmp_path):
    r = run("demo", cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "Captured as FB-1" in r.stdout or "FB-1" in r.stdout
    assert "Traceback" not in r.stderr
    out = r.stdout
    # The announcement reached #releases, and its author was told privately.
    assert "#releases (bot) │ CSV export now keeps your custom fields" in out
    assert "DM to dana │ :mega: *AN-1* is on its way to 1 channel" in out
    # Deciding closed the loop: sam (who captured FB-2) got a DM; the customer channel stayed silent.
    assert "DM to sam │ :loudspeaker: Feedback you shared has an answer: *D-1*" in out and "was decided" in out
    assert "#ext-acme still has 0 bot messages" in out and "#ext-acme (bot)" not in out
    # The digest: a parent in #product and its thread, text read as Slack shows it (unescaped, no raw &lt;).
    assert "#product (bot) │ Feedback digest" in out and "↳ thread │ *1. " in out and "*Decisions*" in out
    assert "&lt;" not in out and "&amp;" not in out
    # App Home shows the author's acknowledgements.
    assert "dana's Home" in out and ":white_check_mark: <#C0RELEASES> 1" in out


def test_bad_database_or_token_stops_with_one_line(tmp_path, fake):
    base = {"SLACK_SIGNING_SECRET": "s", "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_API_URL": fake.base_url}
    r = run("serve", env={**base, "DATABASE_URL": "sqlite-ish://nope"}, cwd=tmp_path)
    assert r.returncode == 2 and "DATABASE_URL is malformed" in r.stderr and "Traceback" not in r.stderr
    r = run("serve", env={**base, "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none"}, cwd=tmp_path)
    assert r.returncode == 2 and "DATABASE_URL: cannot use the database" in r.stderr and "Traceback" not in r.stderr
    fake.invalid_tokens.add("xoxb-revoked")
    r = run("serve", env={**base, "SLACK_BOT_TOKEN": "xoxb-revoked", "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"},
            cwd=tmp_path)
    assert r.returncode == 2 and "SLACK_BOT_TOKEN was refused by Slack (invalid_auth)" in r.stderr
    r = run("serve", env={**base, "SLACK_API_URL": "http://127.0.0.1:1/api/", "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"},
            cwd=tmp_path)
    assert r.returncode == 2 and "SLACK_API_URL" in r.stderr and "Traceback" not in r.stderr
