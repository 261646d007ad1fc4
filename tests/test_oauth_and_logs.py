"""Multi-workspace install (OAuth v2) against the fake, and what the logs may never contain."""

from __future__ import annotations

import json
import logging
import re

import httpx

from bot.core.logging import JsonFormatter, bind, redact
from bot.core.settings import load_settings
from tests.conftest import ENCRYPTION_KEY, SIGNING_SECRET, RunningServer, export
from tests.support.slack_requests import SlackSender


def test_oauth_install_then_capture_in_the_new_workspace(fake, db, db_url):
    settings = load_settings(slack_client_id="111.222", slack_client_secret="oauth-secret",
                             slack_signing_secret=SIGNING_SECRET, slack_api_url=fake.base_url, database_url=db_url,
                             loopline_encryption_key=ENCRYPTION_KEY)
    srv = RunningServer(settings)
    try:
        with httpx.Client(base_url=srv.url, follow_redirects=False) as http:
            page = http.get("/slack/install")
            assert page.status_code == 200 and "slack.com/oauth/v2/authorize" in page.text
            state = re.search(r"state=([\w-]+)", page.text).group(1)
            assert ("commands" in page.text and "reactions%3Aread" in page.text) or "reactions:read" in page.text
            done = http.get(f"/slack/oauth_redirect?code=good-code&state={state}",
                            cookies={"slack-app-oauth-state": state})
            assert done.status_code == 200, done.text
            replay = http.get(f"/slack/oauth_redirect?code=good-code&state={state}",
                              cookies={"slack-app-oauth-state": state})
            assert replay.status_code in (400, 401)  # a state is good once
        installed_team = fake.oauth_response["team"]["id"]
        auth_tests = fake.call_count("auth.test")
        sender = SlackSender(srv.url, SIGNING_SECRET, response_url_base=fake.url.rstrip("/") + "/webhook")
        r = sender.command("/feedback", "Per-workspace capture works", user="U0NEW", team=installed_team)
        assert r.status_code == 200 and "FB-" in r.json()["text"]
        # Authorised from the stored installation: no Web API call before the ack.
        assert fake.call_count("auth.test") == auth_tests
        # An unknown workspace is told to reinstall, nothing is captured for it.
        sender.command("/feedback", "ghost", user="U0X", team="T0NOTHERE", response_url=fake.response_url("ghost"))
        assert "reinstall" in json.dumps(fake.wait_for_webhook("ghost")).lower()
        sender.close()
        assert [rec["text"] for rec in export(db)] == ["Per-workspace capture works"]
    finally:
        srv.stop()


def test_logs_are_json_with_context_and_never_show_tokens(capsys):
    logger = logging.getLogger("loopline.test")
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    from bot.core.logging import ContextFilter

    handler.addFilter(ContextFilter())
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with bind(team="T0001", channel="C0SALES", user="U0REP", event_id="Ev123"):
            logger.warning("calling Slack with xoxb-1234-5678-abcdefghijkl and sk-proj-abcdefghijklmnop")
    finally:
        logger.removeHandler(handler)
    line = capsys.readouterr().err.strip()
    rec = json.loads(line)
    assert rec["team"] == "T0001" and rec["channel"] == "C0SALES" and rec["user"] == "U0REP" and rec["event_id"] == "Ev123"
    assert "abcdefghijkl" not in line and "abcdefghijklmnop" not in line
    assert redact("xapp-1-A111-222-abc") .startswith("xapp-") and "222-abc" not in redact("xapp-1-A111-222-abc")


def test_server_logs_of_a_session_hold_no_secrets(server, slack, fake, db, caplog):
    caplog.set_level(logging.DEBUG)
    slack.command("/feedback", "token test", user="U0REP")
    fake.fail_next("chat.postEphemeral", error="invalid_auth", times=1)
    ts = fake.add_message("C0ACME", "hello", user="U0CUST")
    slack.reaction("reaction_added", user="U0REP", channel="C0ACME", ts=ts, reaction="bulb")
    server.settle()
    formatter = JsonFormatter()
    text = "\n".join(formatter.format(r) for r in caplog.records)
    assert "1234-test-token" not in text and SIGNING_SECRET not in text
