"""Slack Connect end to end: people outside the installing organisation, and channels shared with them,
never see anything internal (ARR, other customers, other channels' feedback) and never edit anything.

Every test drives the real server with signed requests and then sweeps everything the fake Slack
received that an outsider can see: messages and updates in the shared channel, ephemerals and DMs to
the outsider, their Home tab, the answers to their own requests (HTTP acks and response_url posts).
The rules are in docs/slack-connect.md.
"""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.core import channels as channel_svc
from bot.core import clock
from bot.core.models import Decision, DigestRun, DigestSchedule, Feedback, LoopNotification
from bot.features.digests import schedules as sched_svc
from bot.features.feedback.render import feedback_modal
from tests.support.announcements import copies, modal_values, open_modal, seed_subscriptions
from tests.support.decisions import click, log_decision
from tests.support.env import ADMIN, BOT_TOKEN, CUSTOMER, EXT_TEAM, PM, REP, export
from tests.support.home import blocks_text, open_home
from tests.support.slack_requests import select_value, text_value

TEAM = "T0001"
SHARED = "C0ACME"
ACME_SAYS = "Could we get SAML group sync before the Jan rollout? 400 seats 🙏 & <!here> cc <@U0REP>"
GLOBEX_SAYS = "Globex wants audit-log streaming to Splunk or they churn — top secret, don't share"
DM_SAYS = "Between us: Initech's renewal hinges on the SOC2 report & nothing else"
SALES_SAYS = "Internal: pricing page should hide the 40% Umbrella discount"
# What must never reach a person outside, or a shared channel: ARR in any spelling, other customers,
# other channels' feedback, and the buttons that edit items.
FORBIDDEN = [re.compile(p) for p in (
    r"\bARR\b", r"\$\d+(?:\.\d+)?[kKmM]\b", r"120[,.]?000", r"900[,.]?000", r"Globex", r"Initech", r"Umbrella",
    r"audit-log streaming", r"SOC2", r"pricing page", r"feedback_details", r"feedback_link_decision",
    r"feedback_account_confirm")]


@pytest.fixture
def settings(settings):
    # Offline TF-IDF themes and a brisk announcement pace keep these tests short; the code paths are the same.
    return settings.model_copy(update={"loopline_embedder": "tfidf", "loopline_workspace_rate": 25.0})


def seed_elsewhere(db) -> dict[str, int]:
    """Feedback from other channels and customers, and Acme's account mapping on the shared channel."""
    now = clock.now()
    ids = {}
    with db.session() as s:
        channel_svc.set_account(s, team_id=TEAM, channel_id=SHARED, customer="Acme Corp", arr=120_000)
        for key, text, channel, customer, arr in (
                ("globex", GLOBEX_SAYS, "G0SECRET", "Globex Corp", 900_000),
                ("dm", DM_SAYS, "D0REPPM", "Initech", 45_000),
                ("sales", SALES_SAYS, "C0SALES", "Umbrella", 2_500_000)):
            f = Feedback(team_id=TEAM, source_key=f"seed:{key}", text=text, kind="feedback", customer=customer,
                         arr=arr, source="command", channel=channel, reporter=REP, captured_by=REP,
                         permalink=f"https://example.slack.com/archives/{channel}/p1760000000000{len(ids)}00",
                         created_at=now - timedelta(hours=3 + len(ids)))
            s.add(f)
            s.flush()
            ids[key] = f.id
    return ids


def outside_view(fake, *, since: int = 0, people: tuple[str, ...] = (CUSTOMER,),
                 channels: tuple[str, ...] = (SHARED,)) -> list[Any]:
    """Everything from the fake's call log (from index `since`) that `people` or members of `channels` can see."""
    dms = {fake.dm_channel(p) for p in people} - {None}
    where = set(channels) | set(people) | dms

    def visible(method: str, p: dict[str, Any]) -> bool:
        if method in ("chat.postMessage", "chat.update", "chat.scheduleMessage"):
            return p.get("channel") in where
        if method == "chat.postEphemeral":  # only the named person sees it
            return p.get("user") in people
        if method == "views.publish":
            return p.get("user_id") in people
        if method == "files.completeUploadExternal":
            return p.get("channel_id") in channels or p.get("channels") in channels
        return False

    return [c.params for c in fake.calls[since:] if visible(c.method, c.params)]


def assert_clean(things: list[Any]) -> None:
    for thing in things:
        text = thing if isinstance(thing, str) else json.dumps(thing, ensure_ascii=False)
        for pattern in FORBIDDEN:
            assert not pattern.search(text), f"{pattern.pattern!r} reached someone outside: {text[:600]}"


def replies_to(fake, since: int) -> list[Any]:
    """Bodies posted to response_urls since the given index of the webhook log."""
    return [w.body for w in fake.webhook_log[since:]]


def react(slack, *, user: str, ts: str, reaction: str = "bulb", channel: str = SHARED, **kw: Any):
    return slack.reaction("reaction_added", user=user, channel=channel, ts=ts, reaction=reaction,
                          ext_shared=channel == SHARED, **kw)


def rep_tags_acme(server, slack, fake, db) -> tuple[str, dict[str, Any]]:
    """The customer says something in the shared channel and the rep tags it: (message ts, its export)."""
    ts = fake.add_message(SHARED, ACME_SAYS, user=CUSTOMER)
    react(slack, user=REP, ts=ts)
    server.settle()
    [rec] = [x for x in export(db) if x["channel"] == SHARED]
    return ts, rec


# --- capture ----------------------------------------------------------------------------------------


def test_outsiders_reaction_is_not_a_tag_and_gets_no_answer(server, slack, fake, db):
    seed_elsewhere(db)
    ts = fake.add_message(SHARED, ACME_SAYS, user=CUSTOMER)
    mark = len(fake.calls)
    r = react(slack, user=CUSTOMER, ts=ts)
    assert r.status_code == 200
    server.settle()
    # Customers react with 💡 and 🐛 in their own words; only the organisation's people tag feedback.
    assert [x for x in export(db) if x["channel"] == SHARED] == []
    assert fake.ephemerals(user=CUSTOMER) == [] and fake.dms(CUSTOMER) == []
    assert_clean(outside_view(fake, since=mark))
    assert fake.calls_to("users.info", user=CUSTOMER), "who reacted is checked with Slack"

    # The same message tagged by the rep: captured, and the rep (inside) sees the account and its ARR.
    react(slack, user=REP, ts=ts, reaction="memo")
    server.settle()
    [rec] = [x for x in export(db) if x["channel"] == SHARED]
    assert rec["reporter"] == CUSTOMER and rec["captured_by"] == REP and rec["votes"] == 1 and rec["arr"] == 120_000
    [eph] = fake.wait_until(lambda: fake.ephemerals(user=REP, channel=SHARED))
    assert "$120k ARR" in json.dumps(eph["blocks"]) and "feedback_details" in json.dumps(eph["blocks"])

    # The customer's second reaction costs no second users.info (cached), and still counts for nothing.
    react(slack, user=CUSTOMER, ts=ts, reaction="bug")
    server.settle()
    assert len(fake.calls_to("users.info", user=CUSTOMER)) == 1
    assert export(db)[-1]["votes"] == 1 and fake.ephemerals(user=CUSTOMER) == []
    assert_clean(outside_view(fake, since=mark))


def test_when_slack_cannot_say_who_reacted_nothing_is_shown(server, slack, fake, db):
    """Fail closed: a reactor users.info doesn't know, in a shared channel, is treated as outside."""
    seed_elsewhere(db)
    ts = fake.add_message(SHARED, ACME_SAYS, user=CUSTOMER)
    react(slack, user="U0NOBODY", ts=ts)
    server.settle()
    assert fake.calls_to("users.info", user="U0NOBODY")
    assert [x for x in export(db) if x["channel"] == SHARED] == []
    assert fake.ephemerals(user="U0NOBODY") == [] and fake.dms("U0NOBODY") == []
    # An event without the is_ext_shared_channel flag is checked the same way (not assumed internal).
    slack.event({"type": "reaction_added", "user": CUSTOMER, "reaction": "bulb", "item_user": CUSTOMER,
                 "item": {"type": "message", "channel": SHARED, "ts": ts}, "event_ts": f"{time.time():.6f}"},
                ext_shared=None)
    server.settle()
    assert [x for x in export(db) if x["channel"] == SHARED] == []


def test_outsider_cannot_open_or_submit_the_forms_that_edit_items(server, slack, fake, db):
    seed_elsewhere(db)
    ts, before = rep_tags_acme(server, slack, fake, db)
    fid = int(before["id"].split("-")[1])
    views_before, hooks, mark = len(fake.calls_to("views.open")), len(fake.webhook_log), len(fake.calls)

    # Buttons they never saw, clicked anyway (a forged payload: Slack signs what the client sends).
    acks = []
    for action in ("feedback_details", "feedback_link_decision"):
        r = slack.block_action(user=CUSTOMER, user_team=EXT_TEAM, action_id=action, value=str(fid), channel=SHARED)
        assert r.status_code == 200
        acks.append(r.text)
    r = slack.message_shortcut(user=CUSTOMER, user_team=EXT_TEAM, channel=SHARED,
                               message={"text": ACME_SAYS, "user": CUSTOMER, "ts": ts})
    assert r.status_code == 200
    acks.append(r.text)
    server.settle()
    time.sleep(0.3)  # the modal would open right after the ack: give it the chance to (wrongly) happen
    assert len(fake.calls_to("views.open")) == views_before

    # The details form submitted directly: refused in the ack, nothing changes.
    view = feedback_modal(metadata={"feedback_id": fid, "channel": SHARED}, text=before["text"])
    values = {"fb_text": text_value("Acme is our biggest customer, give them everything for free"),
              "fb_customer": text_value("Acme"), "fb_arr": text_value("1"), "fb_area": text_value("pricing"),
              "fb_kind": select_value("bug")}
    r = slack.view_submission(view, values, user=CUSTOMER, user_team=EXT_TEAM)
    assert r.status_code == 200 and r.json()["response_action"] == "errors"
    acks.append(r.text)
    # A new capture through the form, and the account mapping's confirm button: refused too.
    r = slack.view_submission(feedback_modal(metadata={"channel": SHARED, "source": "modal"}), values,
                              user=CUSTOMER, user_team=EXT_TEAM)
    assert r.json()["response_action"] == "errors"
    acks.append(r.text)
    slack.block_action(user=CUSTOMER, user_team=EXT_TEAM, action_id="feedback_account_confirm",
                       value=json.dumps({"name": "Acme (free tier)", "arr": 1}), channel=SHARED)
    server.settle()
    [after] = [x for x in export(db) if x["channel"] == SHARED]
    assert (after["text"], after["arr"], after["kind"], after["customer"], after["area"]) == (
        before["text"], 120_000, before["kind"], "Acme Corp", None)
    assert len(export(db)) == 4  # the 3 seeded + Acme's: nothing new
    with db.read_session() as s:
        ch = channel_svc.get_channel(s, team_id=TEAM, channel_id=SHARED)
        assert ch is not None and (ch.customer, ch.customer_arr) == ("Acme Corp", 120_000)
    told = replies_to(fake, hooks)
    assert told, "the outsider is told privately that this is not for them"
    assert_clean([*acks, *told, *outside_view(fake, since=mark)])


# --- digests ----------------------------------------------------------------------------------------


def test_digest_in_shared_channel_is_refused_and_nothing_is_posted(server, slack, fake, db):
    seed_elsewhere(db)
    r = slack.command("/digest", "now", user=REP, channel=SHARED)
    assert r.status_code == 200
    refusal = fake.wait_until(lambda: [e for e in fake.ephemerals(user=REP, channel=SHARED) if "shared" in e["text"]],
                              timeout=10)
    assert "internal channel" in refusal[0]["text"]
    with db.read_session() as s:
        [run] = s.scalars(select(DigestRun)).all()
        assert run.status == "refused" and run.ts is None
    assert fake.bot_messages(SHARED) == [] and fake.files == []
    assert_clean([r.text, *outside_view(fake)])

    # Asked again: the channel is known to be shared now, so the answer comes at once.
    r = slack.command("/digest", "now", user=REP, channel=SHARED)
    assert "shared with another organisation" in r.json()["text"]
    r = slack.command("/digest", "weekly mon 09:00", user=REP, channel=SHARED)
    assert "shared with another organisation" in r.json()["text"]
    # A schedule in a channel not looked at yet: refused after the ack, once Slack has said it is shared.
    fake.share_channel("C0PRODUCT", teams=[EXT_TEAM])
    hooks = len(fake.webhook_log)
    r = slack.command("/digest", "daily 17:30", user=PM, channel="C0PRODUCT")
    assert r.status_code == 200
    [answer] = fake.wait_for_webhook(count=hooks + 1, timeout=10)[hooks:]
    assert "shared with another organisation" in answer["text"]
    with db.read_session() as s:
        assert s.scalars(select(DigestSchedule)).all() == [] and len(s.scalars(select(DigestRun)).all()) == 1
    assert fake.bot_messages(SHARED) == [] and fake.bot_messages("C0PRODUCT") == []


def test_scheduled_digest_stops_when_its_channel_becomes_shared(server, slack, fake, db):
    seed_elsewhere(db)
    now = clock.now()
    with db.session() as s:  # an internal channel's daily digest, in effect for two days
        sched_svc.save_schedule(s, team_id=TEAM, channel="C0PRODUCT", cadence="daily", weekday=None,
                                at_time="00:00", timezone="UTC", areas=[], by=PM, now=now - timedelta(days=2))
    fake.share_channel("C0PRODUCT", teams=[EXT_TEAM])  # ...then someone shares the channel with a customer
    with db.session() as s:
        assert sched_svc.plan_runs(s, now=now) == 2
    server.rt.worker.wake()

    def all_refused() -> bool:  # the owner is told at the first refusal; the other run follows a moment later
        with db.read_session() as s:
            runs = s.scalars(select(DigestRun)).all()
            return bool(runs) and all(r.status == "refused" for r in runs)

    fake.wait_until(lambda: fake.dms(PM) and all_refused(), timeout=15, message="for both runs refused, the owner told")
    with db.read_session() as s:
        [sched] = s.scalars(select(DigestSchedule)).all()
        assert not sched.active
    [dm] = fake.dms(PM)
    assert "shared with another organisation" in dm["text"] and "stopped" in dm["text"]
    assert fake.bot_messages("C0PRODUCT") == [] and fake.files == []
    assert_clean(outside_view(fake, channels=("C0PRODUCT",)))


def test_channel_shared_and_unshared_events_are_believed_at_once(server, slack, fake, db):
    """Slack tells the app when a channel is shared or unshared: the next /digest is answered accordingly,
    without waiting for the cached answer to expire."""
    slack.event({"type": "channel_shared", "connected_team_id": EXT_TEAM, "channel": "C0PRODUCT",
                 "event_ts": f"{time.time():.6f}"})
    server.settle()
    r = slack.command("/digest", "now", user=PM, channel="C0PRODUCT")
    assert "shared with another organisation" in r.json()["text"]
    slack.event({"type": "channel_unshared", "previously_connected_team_id": EXT_TEAM, "channel": "C0PRODUCT",
                 "is_ext_shared": False, "event_ts": f"{time.time():.6f}"})
    server.settle()
    r = slack.command("/digest", "now", user=PM, channel="C0PRODUCT")
    assert "Building the digest" in r.json()["text"]


# --- App Home ---------------------------------------------------------------------------------------


def test_app_home_of_an_outsider_shows_nothing_internal(server, slack, fake, db):
    seed_elsewhere(db)
    with db.session() as s:  # an open decision the whole organisation sees on its Home tab
        s.add(Decision(team_id=TEAM, title="Match Globex's 40% discount for Initech?", status="in_review", owner=PM))
    rep_tags_acme(server, slack, fake, db)
    inside = open_home(slack, fake, REP)
    assert "FB-" in blocks_text(inside) and "Globex" in blocks_text(inside)  # all there for the rep
    mark = len(fake.calls)
    outside = open_home(slack, fake, CUSTOMER)
    text = blocks_text(outside)
    assert "FB-" not in text and "D-" not in text and "Acme" not in text
    assert_clean(outside_view(fake, since=mark))
    # The Refresh button (or a forged one) publishes the same safe view.
    slack.block_action(user=CUSTOMER, user_team=EXT_TEAM, action_id="home_refresh", channel=None)
    server.settle()
    assert "FB-" not in blocks_text(fake.home_view(CUSTOMER))
    assert_clean(outside_view(fake, since=mark))


# --- decisions and closing the loop ---------------------------------------------------------------


def test_decision_card_in_shared_channel_hides_linked_feedback_and_refuses_outsiders(server, slack, fake, db):
    ids = seed_elsewhere(db)
    _, acme_rec = rep_tags_acme(server, slack, fake, db)
    acme = acme_rec["id"]
    d = log_decision(server, slack, fake, channel=SHARED, feedback=f"{acme}, FB-{ids['globex']}, FB-{ids['sales']}")
    [card] = fake.bot_messages(SHARED)
    shown = json.dumps(card, ensure_ascii=False)
    assert d["id"] in shown and "G0SECRET" not in shown and f"FB-{ids['globex']}" not in shown
    assert_clean(outside_view(fake))

    # An outsider presses "Decided": refused, privately, and the card is not changed.
    mark, hooks = len(fake.calls), len(fake.webhook_log)
    r = slack.block_action(user=CUSTOMER, user_team=EXT_TEAM, action_id="decision_status:decided",
                           value=d["id"].split("-")[1], channel=SHARED, message_ts=d["ts"])
    assert r.status_code == 200
    server.settle()
    assert export(db, "decisions")[-1]["status"] == "proposed"
    assert replies_to(fake, hooks), "the outsider is told, privately (through the click's response_url)"
    assert_clean([r.text, *replies_to(fake, hooks), *outside_view(fake, since=mark)])

    # The owner moves it on; the refreshed card still hides the linked feedback.
    click(slack, user=PM, decision=d, status="in_review")
    server.settle()
    assert export(db, "decisions")[-1]["status"] == "in_review"
    assert fake.calls_to("chat.update", channel=SHARED)
    assert_clean(outside_view(fake))
    # The same decision card in an internal channel keeps its links (the rule is about who can see it).
    inside = log_decision(server, slack, fake, channel="C0SALES", feedback=f"FB-{ids['globex']}")
    card_inside = next(m for m in fake.bot_messages("C0SALES") if m["ts"] == inside["ts"])
    assert f"FB-{ids['globex']}" in json.dumps(card_inside["blocks"])


def test_loop_closing_skips_outsiders_and_warns_before_replying_in_shared_channel(server, slack, fake, db):
    ids = seed_elsewhere(db)
    ts, acme_rec = rep_tags_acme(server, slack, fake, db)
    acme = acme_rec["id"]
    d = log_decision(server, slack, fake, feedback=f"{acme}, FB-{ids['globex']}")
    click(slack, user=PM, decision=d, status="decided")
    server.settle()
    [dm] = fake.wait_until(lambda: fake.dms(REP))
    # The customer who said it is outside the organisation: no DM about internal decisions.
    fake.wait_until(lambda: _loop_status(db, CUSTOMER) == "skipped", message="for the outsider's notification")
    assert fake.dms(CUSTOMER) == []
    # The rep's button for the item from the shared channel asks before posting there.
    [button] = [e for b in dm["blocks"] if b["type"] == "actions" for e in b["elements"]
                if e["value"].endswith(":" + acme.split("-")[1])]
    assert button.get("confirm") and "outside" in json.dumps(button["confirm"])
    slack.block_action(user=REP, action_id="loop_reply", value=button["value"], channel=fake.dm_channel(REP),
                       message_ts=dm["ts"])
    server.settle()
    [reply] = fake.replies(SHARED, ts)
    assert d["id"] in reply["text"] and "was decided" in reply["text"]
    assert_clean(outside_view(fake))


def _loop_status(db, user: str) -> str | None:
    with db.read_session() as s:
        row = s.scalar(select(LoopNotification).where(LoopNotification.user_id == user))
        return row.status if row else None


# --- announcements (author-written: allowed, and carrying nothing else) ---------------------------


def test_announcement_copy_in_shared_channel_carries_only_what_the_author_wrote(server, slack, fake, db):
    seed_elsewhere(db)
    seed_subscriptions(db, {SHARED: "mobile", "C0SALES": "mobile"})
    view = open_modal(slack, fake)
    r = slack.view_submission(view, modal_values("Offline mode is here 📴", "Works on iOS & Android <3", ["mobile"]),
                              user=ADMIN)
    assert r.status_code == 200
    fake.wait_until(lambda: copies(fake, SHARED), timeout=15)
    [copy] = copies(fake, SHARED)
    assert "Offline mode" in json.dumps(copy["blocks"], ensure_ascii=False)
    assert_clean(outside_view(fake))
    # "Got it" from the customer is fine (they are the audience); the thanks carries nothing else.
    slack.block_action(user=CUSTOMER, user_team=EXT_TEAM, action_id="announce_ack", channel=SHARED,
                       message_ts=copy["ts"], value=copy["blocks"][-1]["elements"][0]["value"])
    server.settle()
    assert_clean(outside_view(fake))


# --- Enterprise Grid: another workspace of the same organisation is inside ----------------------------


class TestEnterpriseGrid:
    SIBLING, STRANGER = "W0SIBLING", "W0STRANGER"

    @pytest.fixture
    def fake(self, fake):
        # The installing workspace T0001 belongs to the Grid organisation E0ORG; T0SIB is another workspace
        # of it, T0OTHER a workspace of another Grid organisation sharing the channel.
        fake.register_token(BOT_TOKEN, team_id=TEAM, enterprise_id="E0ORG")
        fake.add_user(self.SIBLING, "sib", real_name="Sam Sibling", team_id="T0SIB", enterprise_id="E0ORG")
        fake.add_user(self.STRANGER, "str", real_name="Stella Stranger", team_id="T0OTHER", enterprise_id="E0OTHER")
        fake.add_member(SHARED, self.SIBLING)
        fake.add_member(SHARED, self.STRANGER)
        return fake

    def test_same_organisation_tags_and_edits_other_organisation_does_not(self, server, slack, fake, db):
        seed_elsewhere(db)
        ts = fake.add_message(SHARED, ACME_SAYS, user=CUSTOMER)
        react(slack, user=self.STRANGER, ts=ts)
        server.settle()
        assert [x for x in export(db) if x["channel"] == SHARED] == []
        react(slack, user=self.SIBLING, ts=ts)
        server.settle()
        [rec] = [x for x in export(db) if x["channel"] == SHARED]
        assert rec["captured_by"] == self.SIBLING
        [eph] = fake.wait_until(lambda: fake.ephemerals(user=self.SIBLING))
        assert "$120k ARR" in json.dumps(eph["blocks"])  # inside the organisation: the full confirmation
        assert fake.ephemerals(user=self.STRANGER) == []
        fid = rec["id"].split("-")[1]
        views = len(fake.calls_to("views.open"))
        slack.block_action(user=self.SIBLING, user_team="T0SIB", action_id="feedback_details", value=fid,
                           channel=SHARED)
        fake.wait_for("views.open", count=views + 1)
        slack.block_action(user=self.STRANGER, user_team="T0OTHER", action_id="feedback_details", value=fid,
                           channel=SHARED)
        server.settle()
        time.sleep(0.3)
        assert len(fake.calls_to("views.open")) == views + 1
        assert_clean(outside_view(fake, people=(self.STRANGER,), channels=()))

    def test_when_slack_is_down_a_form_stays_closed(self, server, slack, fake, db):
        """Right after the ack, Add details asks users.info for a Grid person; when Slack fails, no form."""
        _, rec = rep_tags_acme(server, slack, fake, db)
        fake.fail_next("users.info", status=503, times=1)
        views, hooks = len(fake.calls_to("views.open")), len(fake.webhook_log)
        slack.block_action(user=self.SIBLING, user_team="T0SIB", action_id="feedback_details",
                           value=rec["id"].split("-")[1], channel=SHARED)
        fake.wait_until(lambda: replies_to(fake, hooks))
        assert "try again" in json.dumps(replies_to(fake, hooks)) and len(fake.calls_to("views.open")) == views
        slack.block_action(user=self.SIBLING, user_team="T0SIB", action_id="feedback_details",
                           value=rec["id"].split("-")[1], channel=SHARED)
        fake.wait_for("views.open", count=views + 1)  # Slack is back: the sibling workspace is inside

    def test_someone_not_placed_yet_is_refused_once_then_looked_up(self, server, slack, fake, db):
        """At ack time there is no time to ask Slack: a Grid person nobody has looked up yet is refused
        (fail closed) with a 'try again', looked up after the ack, and let in on the next try."""
        confirm = json.dumps({"name": "Acme Corp", "arr": 120_000})
        hooks = len(fake.webhook_log)
        slack.block_action(user=self.SIBLING, user_team="T0SIB", action_id="feedback_account_confirm",
                           value=confirm, channel=SHARED, action_ts="1760000000.000001")
        server.settle()
        assert "try again" in json.dumps(replies_to(fake, hooks))
        assert fake.calls_to("users.info", user=self.SIBLING)
        with db.read_session() as s:
            assert channel_svc.get_channel(s, team_id=TEAM, channel_id=SHARED) is None
        slack.block_action(user=self.SIBLING, user_team="T0SIB", action_id="feedback_account_confirm",
                           value=confirm, channel=SHARED, action_ts="1760000000.000002")
        server.settle()
        with db.read_session() as s:
            ch = channel_svc.get_channel(s, team_id=TEAM, channel_id=SHARED)
            assert ch is not None and ch.customer == "Acme Corp"
        # The other organisation's person stays outside, however often they try.
        for n in range(2):
            slack.block_action(user=self.STRANGER, user_team="T0OTHER", action_id="feedback_account_confirm",
                               value=json.dumps({"name": "Free tier", "arr": 1}), channel=SHARED,
                               action_ts=f"1760000001.00000{n}")
        server.settle()
        with db.read_session() as s:
            assert channel_svc.get_channel(s, team_id=TEAM, channel_id=SHARED).customer == "Acme Corp"
