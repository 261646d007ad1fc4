"""Every install shape, replayed with Slack's own recorded payloads (tests/data/slack_payloads/README.md).

Enterprise Grid workspace installs (E111/T111), org-wide installs (`is_enterprise_install: true`, no
workspace in the installation) and Slack Connect installs are stored in the OAuth installation store the
way Bolt's OAuth flow stores them; the payloads are signed and sent over HTTP to the real server, and
the fake Web API tells which bot token each call carried.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from slack_sdk.oauth.installation_store import Installation
from sqlalchemy import select

from bot.core.models import Feedback, Job
from bot.core.settings import Settings, load_settings
from bot.features.feedback import render as fb_render
from bot.slack.manifest import BOT_SCOPES
from tests.conftest import ENCRYPTION_KEY, SIGNING_SECRET, RunningServer, export
from tests.support.slack_requests import SlackSender, select_value, text_value

PAYLOADS = Path(__file__).parent / "data" / "slack_payloads"
GRID_TOKEN, GRID2_TOKEN = "xoxb-e111-t111-grid", "xoxb-e111-t222-grid"
ORG_TOKEN, CONNECT_TOKEN = "xoxb-e111-org-wide", "xoxb-t-installed-connect"
MESSY = "SAML group sync for 400 seats in Jan 🙏 — <!here> & «Okta» users > 10k (ask <@W222>)"
REACTED_TS = "1599529504.000400"  # the ts the recorded reaction_added payloads point at


def load(name: str) -> dict[str, Any]:
    return json.loads((PAYLOADS / name).read_text())


def install(rt: Any, fake: Any, *, enterprise_id: str | None, team_id: str | None, token: str,
            org_wide: bool = False) -> None:
    """Store an installation as Bolt's OAuth flow would after oauth.v2.access for that shape."""
    rt.oauth_stores[0].save(Installation(
        app_id="A111", enterprise_id=enterprise_id, enterprise_name="Sandbox Org" if enterprise_id else None,
        team_id=team_id, team_name=team_id, bot_token=token, bot_id="BBOT", bot_user_id="UBOT",
        bot_scopes=BOT_SCOPES, user_id="W111", is_enterprise_install=org_wide, token_type="bot"))
    fake.register_token(token, team_id=team_id or "T111")


def team_of_item(db: Any, text: str) -> str:
    with db.read_session() as s:
        return str(s.scalar(select(Feedback.team_id).where(Feedback.text == text)))


def job(db: Any, key: str) -> Job | None:
    with db.read_session() as s:
        return s.scalar(select(Job).where(Job.key == key))


def assert_abandoned(db: Any, event_id: str, *reason: str) -> None:
    """The event's job and what it queued (the message fetch, the confirmation) all ended: none pending,
    retried or failed; the one that met the dead workspace is `abandoned`, tried once at most, with the reason."""
    with db.read_session() as s:
        jobs = list(s.scalars(select(Job).where(Job.key.in_(
            [f"ev:{event_id}", f"fetch:{event_id}", f"confirm:{event_id}"]))))
    assert jobs and {j.status for j in jobs} <= {"done", "abandoned"}, [(j.key, j.status, j.error) for j in jobs]
    [dead] = [j for j in jobs if j.status == "abandoned"]
    assert dead.attempts <= 1 and all(word in (dead.error or "") for word in reason), (dead.key, dead.error)


def tokens_used(fake: Any, method: str) -> set[str | None]:
    return {c.token for c in fake.calls_to(method)}


def reaction(base: str, *, event_id: str, ts: str = REACTED_TS, channel: str = "C111",
             **envelope: Any) -> dict[str, Any]:
    """A recorded reaction_added, re-aimed: Loopline tags with :bulb: (the recording's :heart_eyes: tags
    nothing), a fresh event_id (the recordings all say Ev111, which Loopline rightly de-duplicates)."""
    body = load(base)
    body["event"].update(reaction="bulb", item={"type": "message", "channel": channel, "ts": ts})
    body.update(event_id=event_id, **envelope)
    return body


def command(text: str, response_url: str, **fields: str) -> dict[str, str]:
    """The recorded Grid slash command (/hello-world in E111/T111), as /feedback."""
    form = dict(parse_qsl((PAYLOADS / "grid_slash_command.txt").read_text().strip()))
    form.update(command="/feedback", text=text, response_url=response_url, **fields)
    return form


@pytest.fixture
def oauth_settings(fake: Any, db_url: str) -> Settings:
    fake.add_user("W111", "primary-owner", real_name="Pat Primary", team_id="T111")
    fake.add_user("W222", "kaz", real_name="Kaz", team_id="T111")
    fake.add_user("U111", "thread-starter", real_name="Uma", team_id="T111")
    fake.add_channel("C111", "random", members=["W111", "W222", "U111"], team_id="T111")
    fake.add_channel("C222", "general", members=["W111"], team_id="T222")
    return load_settings(slack_client_id="111.222", slack_client_secret="oauth-secret",
                         slack_signing_secret=SIGNING_SECRET, slack_api_url=fake.base_url, database_url=db_url,
                         loopline_log_format="text", loopline_encryption_key=ENCRYPTION_KEY)


@pytest.fixture
def multi(oauth_settings: Settings, db: Any) -> Any:
    srv = RunningServer(oauth_settings)
    yield srv
    srv.stop()


@pytest.fixture
def paused(oauth_settings: Settings, db: Any) -> Any:
    """The server acks and queues; its worker runs only when the test drains it."""
    srv = RunningServer(oauth_settings, background=False)
    yield srv
    srv.stop()


@contextmanager
def sender_for(srv: RunningServer) -> Iterator[SlackSender]:
    sender = SlackSender(srv.url, SIGNING_SECRET)
    try:
        yield sender
    finally:
        sender.close()


# --- Enterprise Grid, installed in one workspace of the org ---------------------------------------


def test_grid_workspace_reaction_is_captured_with_that_workspaces_token(multi, fake, db):
    install(multi.rt, fake, enterprise_id="E111", team_id="T111", token=GRID_TOKEN)
    fake.add_message("C111", MESSY, user="W111", ts=REACTED_TS)
    with sender_for(multi) as slack:
        r = slack.json_body(reaction("grid_reaction_added.json", event_id="EvGRID1"))
    assert r.status_code == 200
    multi.settle()
    [rec] = export(db)
    assert rec["text"] == MESSY and rec["reporter"] == "W111" and rec["captured_by"] == "W111"
    assert team_of_item(db, MESSY) == "T111"
    assert tokens_used(fake, "reactions.get") == {GRID_TOKEN}
    fake.wait_until(lambda: fake.ephemerals(user="W111", channel="C111"))
    assert tokens_used(fake, "chat.postEphemeral") == {GRID_TOKEN}


def test_grid_feedback_watch_joins_with_the_workspace_token_and_captures(multi, fake, db):
    install(multi.rt, fake, enterprise_id="E111", team_id="T111", token=GRID_TOKEN)
    recorded = load("grid_message.json")
    fake.add_message("C111", recorded["event"]["text"], user="W111", ts=recorded["event"]["ts"])
    with sender_for(multi) as slack:
        r = slack.form(command("watch", fake.response_url("watch")))
        assert r.status_code == 200 and "Watching" in r.json()["text"], r.text
        multi.settle()
        assert tokens_used(fake, "conversations.info") == {GRID_TOKEN}
        assert fake.webhook_posts("watch") == []  # no "I can't join" answer
        r = slack.json_body(recorded)
    assert r.status_code == 200
    multi.settle()
    [rec] = export(db)
    assert rec["text"] == "Hi there! Thanks for sharing the info!" and rec["source"] == "watch"
    fake.wait_until(lambda: export(db)[0]["permalink"])  # chat.getPermalink answered with the T111 token
    assert tokens_used(fake, "chat.getPermalink") == {GRID_TOKEN}


def test_grid_feedback_modal_submission_is_stored_in_the_workspace(multi, fake, db):
    install(multi.rt, fake, enterprise_id="E111", team_id="T111", token=GRID_TOKEN)
    body = load("grid_view_submission.json")
    body["view"].update(_our_modal("C111"))
    with sender_for(multi) as slack:
        r = slack.interactive(body)
    assert r.status_code == 200 and r.text == "", r.text
    assert team_of_item(db, MESSY) == "T111"


def _our_modal(channel: str, text: str = MESSY) -> dict[str, Any]:
    """The recorded view with Loopline's own feedback modal in it (callback, blocks, state)."""
    view = fb_render.feedback_modal(metadata={"channel": channel, "source": "modal"})
    return {"callback_id": view["callback_id"], "blocks": view["blocks"], "private_metadata": view["private_metadata"],
            "state": {"values": {"fb_text": text_value(text), "fb_kind": select_value("idea")}}}


def test_scheduled_work_for_a_grid_workspace_no_request_came_from_yet_finds_its_installation(oauth_settings, fake, db):
    # After an upgrade, a digest or announcement for a Grid workspace may run before any request from it.
    from bot.runtime import Runtime

    rt = Runtime(oauth_settings)
    try:
        install(rt, fake, enterprise_id="E111", team_id="T111", token=GRID_TOKEN)
        assert rt.slack.token_for("T111") == GRID_TOKEN
    finally:
        rt.stop()


# --- Slack Connect ------------------------------------------------------------------------------


def test_slack_connect_reaction_is_stored_under_the_installed_workspace(multi, fake, db):
    install(multi.rt, fake, enterprise_id="E_INSTALLED", team_id="T_INSTALLED", token=CONNECT_TOKEN)
    fake.add_message("C111", MESSY, user="W111", ts=REACTED_TS)
    with sender_for(multi) as slack:
        # The envelope names the other organisation (T_SOURCE/E_SOURCE); authorizations[0] is ours.
        r = slack.json_body(reaction("connect_reaction_added.json", event_id="EvCONNECT1"))
    assert r.status_code == 200
    multi.settle()
    assert [rec["text"] for rec in export(db)] == [MESSY]
    assert team_of_item(db, MESSY) == "T_INSTALLED"
    assert tokens_used(fake, "reactions.get") == {CONNECT_TOKEN}


def test_slack_connect_modal_submitted_from_the_other_side_reaches_the_installed_workspace(multi, fake, db):
    # Recorded: a view opened in a Connect channel and submitted by someone of the other organisation
    # (team/enterprise "other-side"); only view.app_installed_team_id names the installed workspace. Bolt's
    # lookup with the other side's enterprise finds nothing ("please reinstall"); Loopline finds its own
    # installation and answers with its own rule: people outside the organisation can't file items.
    install(multi.rt, fake, enterprise_id=None, team_id="T-installed-workspace", token=CONNECT_TOKEN)
    body = load("connect_view_submission.json")
    body["view"].update(_our_modal("C111"))
    with sender_for(multi) as slack:
        r = slack.interactive(body)
    assert r.status_code == 200 and "reinstall" not in r.text.lower(), r.text
    assert r.json()["response_action"] == "errors" and "workspace that runs Loopline" in r.json()["errors"]["fb_text"]
    assert export(db) == []


# --- Org-wide installs --------------------------------------------------------------------------


def org_wide_oauth(srv: RunningServer, fake: Any) -> None:
    """Install through the real OAuth pages with Slack's org-wide oauth.v2.access answer."""
    fake.oauth_response = {
        "ok": True, "app_id": "A111", "authed_user": {"id": "W111"}, "scope": ",".join(BOT_SCOPES),
        "token_type": "bot", "access_token": ORG_TOKEN, "bot_user_id": "UBOT", "team": None,
        "enterprise": {"id": "E111", "name": "Sandbox Org"}, "is_enterprise_install": True,
    }
    with httpx.Client(base_url=srv.url, follow_redirects=False) as http:
        page = http.get("/slack/install")
        state = re.search(r"state=([\w-]+)", page.text).group(1)  # type: ignore[union-attr]
        done = http.get(f"/slack/oauth_redirect?code=good-code&state={state}", cookies={"slack-app-oauth-state": state})
        assert done.status_code == 200, done.text


def org_wide(event: dict[str, Any], event_id: str) -> dict[str, Any]:
    """The recorded org-wide envelope (authorizations[0].team_id null) around another recorded event."""
    body = load("org_wide_message.json")
    body.update(event=event, event_id=event_id)
    return body


def test_org_wide_install_captures_in_the_workspace_where_things_happen(multi, fake, db):
    org_wide_oauth(multi, fake)
    assert multi.rt.oauth_stores[0].find_bot(enterprise_id="E111", team_id=None, is_enterprise_install=True)
    recorded = load("org_wide_message.json")
    fake.add_message("C111", "<@W222>", user="W111", ts=recorded["event"]["ts"])
    fake.add_message("C111", MESSY, user="W111", ts=REACTED_TS)
    with sender_for(multi) as slack:
        # Org-wide commands say is_enterprise_install=true; the workspace is team_id.
        r = slack.form(command("watch", fake.response_url("watch"), is_enterprise_install="true"))
        assert r.status_code == 200 and "Watching" in r.json()["text"], r.text
        multi.settle()
        assert tokens_used(fake, "conversations.info") == {ORG_TOKEN}
        assert slack.json_body(recorded).status_code == 200
        assert slack.json_body(org_wide(reaction("grid_reaction_added.json", event_id="x")["event"],
                                        "EvORGREACT")).status_code == 200
    multi.settle()
    assert sorted(rec["text"] for rec in export(db)) == sorted(["<@W222>", MESSY])
    with db.read_session() as s:
        assert set(s.scalars(select(Feedback.team_id))) == {"T111"}  # never T_UNKNOWN, never E111
    assert tokens_used(fake, "reactions.get") == {ORG_TOKEN}


def test_org_wide_modal_submission_is_stored_under_the_workspace_not_the_org(multi, fake, db):
    install(multi.rt, fake, enterprise_id="E111", team_id=None, token=ORG_TOKEN, org_wide=True)
    body = load("org_wide_view_submission.json")  # team null, view.app_installed_team_id "E111"
    body["view"].update(_our_modal("C111"))
    with sender_for(multi) as slack:
        r = slack.interactive(body)
    assert r.status_code == 200 and r.text == "", r.text
    assert team_of_item(db, MESSY) == "T111"
    multi.settle()
    assert tokens_used(fake, "chat.postEphemeral") | tokens_used(fake, "chat.postMessage") == {ORG_TOKEN}


def test_org_wide_button_click_is_answered_with_the_org_token(multi, fake, db):
    install(multi.rt, fake, enterprise_id="E111", team_id=None, token=ORG_TOKEN, org_wide=True)
    with sender_for(multi) as slack:
        body = load("org_wide_view_submission.json")
        body["view"].update(_our_modal("C111"))
        slack.interactive(body)
        [item] = export(db)
        click = load("org_wide_block_actions.json")  # team null; the user's team is T_expected
        click["user"]["team_id"] = "T111"
        click["actions"][0].update(action_id="feedback_details", value=item["id"].removeprefix("FB-"))
        r = slack.interactive(click)
    assert r.status_code == 200
    [opened] = fake.wait_for("views.open")
    assert opened.token == ORG_TOKEN and MESSY in json.dumps(opened.params["view"], ensure_ascii=False)


# --- Uninstall and revocation -------------------------------------------------------------------


def two_grid_workspaces(rt: Any, fake: Any) -> None:
    """Loopline installed in T111 and T222 of the org E111, a message to tag in each."""
    install(rt, fake, enterprise_id="E111", team_id="T111", token=GRID_TOKEN)
    install(rt, fake, enterprise_id="E111", team_id="T222", token=GRID2_TOKEN)
    fake.add_message("C111", MESSY, user="W111", ts=REACTED_TS)
    fake.add_message("C222", "Keep working here", user="W111", ts=REACTED_TS)


def test_grid_uninstall_stops_new_work_and_abandons_what_was_queued(paused, fake, db, caplog):
    caplog.set_level(logging.WARNING)
    rt = paused.rt
    two_grid_workspaces(rt, fake)
    with sender_for(paused) as slack:
        assert slack.json_body(reaction("grid_reaction_added.json", event_id="EvQUEUED")).status_code == 200
        assert slack.json_body(reaction("grid_reaction_added.json", event_id="EvOTHER", channel="C222",
                                        team_id="T222")).status_code == 200
        assert slack.json_body(load("grid_app_uninstalled.json") | {"event_id": "EvUNINSTALL"}).status_code == 200
        store = rt.oauth_stores[0]
        assert store.find_bot(enterprise_id="E111", team_id="T111") is None
        assert store.find_installation(enterprise_id="E111", team_id="T111") is None
        assert store.find_bot(enterprise_id="E111", team_id="T222") is not None  # the rest of the org is untouched
        # A later event for the workspace that removed the app: Bolt's answer, nothing queued.
        late = slack.json_body(reaction("grid_reaction_added.json", event_id="EvLATE"))
    assert late.status_code == 200 and "reinstall" in late.text.lower()
    assert job(db, "ev:EvLATE") is None
    rt.worker.drain()
    assert_abandoned(db, "EvQUEUED", "T111", "removed")
    texts = [rec["text"] for rec in export(db)]
    assert "Keep working here" in texts and MESSY not in texts
    assert any("abandoned" in r.getMessage() and "T111" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("refusal", ["token_revoked", "invalid_auth", "account_inactive"])
def test_a_job_refused_for_a_dead_token_is_abandoned_not_dropped(paused, fake, db, caplog, refusal):
    caplog.set_level(logging.WARNING)
    rt = paused.rt
    two_grid_workspaces(rt, fake)
    with sender_for(paused) as slack:
        slack.json_body(reaction("grid_reaction_added.json", event_id="EvDEAD"))
        slack.json_body(reaction("grid_reaction_added.json", event_id="EvALIVE", channel="C222", team_id="T222"))
    # Slack stops honouring T111's token before the worker gets to its job.
    if refusal == "token_revoked":
        fake.revoked_tokens.add(GRID_TOKEN)
    elif refusal == "invalid_auth":
        fake.invalid_tokens.add(GRID_TOKEN)
    else:
        fake.fail_next("reactions.get", error="account_inactive", status=200, times=None, channel="C111")
    rt.worker.drain()
    assert_abandoned(db, "EvDEAD", refusal, "T111")  # not retried: no later attempt can succeed
    assert job(db, "ev:EvALIVE").status == "done"  # type: ignore[union-attr]
    texts = [rec["text"] for rec in export(db)]
    assert "Keep working here" in texts and MESSY not in texts
    assert any("abandoned" in r.getMessage() and refusal in r.getMessage() for r in caplog.records)


def test_tokens_revoked_for_one_grid_workspace_removes_only_its_bot(paused, fake, db):
    rt = paused.rt
    install(rt, fake, enterprise_id="E111", team_id="T111", token=GRID_TOKEN)
    install(rt, fake, enterprise_id="E111", team_id="T222", token=GRID2_TOKEN)
    with sender_for(paused) as slack:
        assert slack.json_body(load("grid_tokens_revoked.json") | {"event_id": "EvREVOKE"}).status_code == 200
    store = rt.oauth_stores[0]
    assert store.find_bot(enterprise_id="E111", team_id="T111") is None
    assert store.find_bot(enterprise_id="E111", team_id="T222") is not None


def test_org_level_bot_token_revocation_removes_the_org_wide_bot(paused, fake, db):
    install(paused.rt, fake, enterprise_id="E111", team_id=None, token=ORG_TOKEN, org_wide=True)
    with sender_for(paused) as slack:  # recorded: enterprise_id only, bot and user tokens revoked
        assert slack.json_body(load("org_wide_tokens_revoked.json") | {"event_id": "EvORGREVOKE"}).status_code == 200
    assert paused.rt.oauth_stores[0].find_bot(enterprise_id="E111", team_id=None, is_enterprise_install=True) is None


def test_org_wide_uninstall_stops_the_whole_org_and_abandons_its_queue(paused, fake, db):
    rt = paused.rt
    install(rt, fake, enterprise_id="E111", team_id=None, token=ORG_TOKEN, org_wide=True)
    fake.add_message("C111", MESSY, user="W111", ts=REACTED_TS)
    with sender_for(paused) as slack:
        event = reaction("grid_reaction_added.json", event_id="x")["event"]
        assert slack.json_body(org_wide(event, "EvORGQUEUED")).status_code == 200
        # Recorded org-level uninstall: enterprise_id only, no workspace, no authorizations.
        assert slack.json_body(load("org_wide_app_uninstalled.json") | {"event_id": "EvORGGONE"}).status_code == 200
        assert rt.oauth_stores[0].find_bot(enterprise_id="E111", team_id=None, is_enterprise_install=True) is None
        late = slack.json_body(org_wide(event, "EvORGLATE"))
    assert late.status_code == 200 and job(db, "ev:EvORGLATE") is None
    rt.worker.drain()
    assert_abandoned(db, "EvORGQUEUED", "app_uninstalled", "T111")
    assert MESSY not in [rec["text"] for rec in export(db)]


# --- Replay of every recorded shape: nothing lands in a made-up workspace -------------------------


def test_every_recorded_payload_resolves_to_a_real_workspace():
    from bot.slack.edge import team_of

    expected = {
        "grid_reaction_added.json": "T111", "grid_message.json": "T111", "grid_view_submission.json": "T111",
        "grid_thread_broadcast.json": "T111", "org_wide_message.json": "T111", "org_wide_app_home_opened.json": "T111",
        "org_wide_view_submission.json": "T111", "org_wide_block_actions.json": "T_expected",
        "connect_reaction_added.json": "T_INSTALLED", "connect_app_uninstalled.json": "T_INSTALLED",
        "connect_view_submission.json": "T-installed-workspace",
    }
    assert {name: team_of(load(name)) for name in expected} == expected
    form = dict(parse_qsl((PAYLOADS / "grid_slash_command.txt").read_text().strip()))
    assert team_of(form) == team_of({**form, "is_enterprise_install": "true"}) == "T111"



def test_the_manifest_offers_org_wide_installs():
    from bot.slack.manifest import manifest

    assert manifest("https://example.com")["settings"]["org_deploy_enabled"] is True
