"""Services and renderers of announcements, without Slack."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest

from bot.core import clock
from bot.core.common import ServiceError
from bot.devtools.fakeslack import blockkit
from bot.features.announcements import render
from bot.features.announcements import service as an_svc
from bot.features.announcements.budget import TokenBucket
from bot.features.subscriptions import service as sub_svc

TEAM = "T0001"


def _view(**kw: object) -> render.AnnouncementView:
    base: dict[str, object] = {"id": 4, "title": "Löschen & <Export>", "body": "x", "areas": ["billing"],
                               "author": "U0ADMIN"}
    base.update(kw)
    return render.AnnouncementView(**base)  # type: ignore[arg-type]


def test_message_escapes_user_text_and_stays_within_block_kit_limits():
    long_body = ("<!channel> & @here " + "🚀 résumé " * 400 + "\n") * 20  # ~90k characters
    text, blocks, meta = render.announcement_message(_view(body=long_body, version=2), delivery_id=9)
    assert blockkit.check_message_blocks(blocks) == []
    assert len(blocks) <= 50
    dumped = json.dumps(blocks)
    assert "<!channel>" not in dumped and "&lt;!channel&gt;" in dumped and "(edited)" in dumped
    assert "<!channel>" not in text
    assert meta == {"event_type": "loopline_announcement", "event_payload": {"announcement_id": 4, "delivery_id": 9}}
    assert render.is_copy_of({"metadata": meta}, 9) and not render.is_copy_of({"metadata": meta}, 10)
    assert not render.is_copy_of({"text": "hi"}, 9)


def test_modal_and_confirmation_are_valid_views():
    areas = [(f"area {i}", f"Area {i}") for i in range(130)]
    view = render.announce_modal(areas, private_metadata={"opener": "U0ADMIN"})
    assert blockkit.check_view(view) == []
    [areas_block] = [b for b in view["blocks"] if b.get("block_id") == "an_areas"]
    assert len(areas_block["element"]["options"]) == 100
    _text, blocks = render.confirmation(_view(channels=[f"C{i:05d}" for i in range(300)],
                                             send_at=clock.now() + timedelta(hours=1)), scheduled=True)
    assert blockkit.check_message_blocks(blocks) == []
    assert "and 260 more" in json.dumps(blocks)
    values = {"an_title": {"v": {"type": "plain_text_input", "value": " T "}},
              "an_areas": {"v": {"type": "multi_static_select", "selected_options": [{"value": "billing"}]}},
              "an_send_at": {"v": {"type": "datetimepicker", "selected_date_time": 1767225600}}}
    assert render.read_modal(values) == {"title": "T", "body": "", "areas": ["billing"], "send_at": 1767225600,
                                         "decisions": ""}


def test_subscriptions_normalise_and_targets_are_distinct(db):
    with db.session() as s:
        r = sub_svc.subscribe(s, team_id=TEAM, channel_id="C1", text="Billing,  mobile   APP", by="U1", may_create=True)
        assert r.added == ["Billing", "mobile APP"] and r.created == ["Billing", "mobile APP"]
        r = sub_svc.subscribe(s, team_id=TEAM, channel_id="C2", text="billing, new thing", by="U2", may_create=False)
        assert r.added == ["Billing"] and r.unknown == ["new thing"]
        assert sub_svc.channels_for_areas(s, team_id=TEAM, areas=["BILLING", "mobile app"]) == ["C1", "C2"]
        sub_svc.deactivate_channel(s, TEAM, "C2", "is_archived")
        assert sub_svc.channels_for_areas(s, team_id=TEAM, areas=["billing"]) == ["C1"]
        r = sub_svc.subscribe(s, team_id=TEAM, channel_id="C2", text="billing", by="U2", may_create=False)
        assert r.added == ["Billing"]  # re-subscribing brings it back


def test_create_is_idempotent_cancel_only_before_sending_and_permissions(db):
    with db.session() as s:
        sub_svc.subscribe(s, team_id=TEAM, channel_id="C1", text="billing", by="U1", may_create=True)
        with pytest.raises(ServiceError):
            an_svc.create_announcement(s, team_id=TEAM, source_key="k0", title="t", body="b", areas=["nobody"],
                                       author="U1")
        later = clock.now() + timedelta(hours=1)
        a = an_svc.create_announcement(s, team_id=TEAM, source_key="k1", title="t", body="b", areas=["Billing"],
                                       author="U1", send_at=later)
        again = an_svc.create_announcement(s, team_id=TEAM, source_key="k1", title="t", body="b",
                                           areas=["billing"], author="U1", send_at=later)
        assert a.scheduled and not again.created and again.id == a.id and a.channels == ["C1"]
        with pytest.raises(ServiceError, match="Only"):
            an_svc.cancel_announcement(s, team_id=TEAM, announcement_id=a.id, by="U2")
        b = an_svc.create_announcement(s, team_id=TEAM, source_key="k2", title="t", body="b", areas=["billing"],
                                       author="U1")
        ann_b = an_svc.get(s, b.id, team_id=TEAM)
        assert ann_b is not None
        ann_b.deliveries[0].status = "sent"
        s.flush()
        with pytest.raises(ServiceError, match="Retract"):
            an_svc.cancel_announcement(s, team_id=TEAM, announcement_id=b.id, by="U1")
    with db.session() as s, pytest.raises(ServiceError, match="doesn't exist"):  # AN-n of another workspace
        an_svc.cancel_announcement(s, team_id="T0OTHER", announcement_id=a.id, by="U1")
    with db.session() as s:
        assert an_svc.cancel_announcement(s, team_id=TEAM, announcement_id=a.id, by="U1").status == "cancelled"
    assert an_svc.may_announce({"is_owner": True}, "U9", set())
    assert an_svc.may_announce({}, "U9", {"U9"}) and not an_svc.may_announce({"is_admin": False}, "U9", set())


def test_token_bucket_paces_threads_to_the_rate():
    bucket = TokenBucket(50.0)
    slots = [bucket.reserve() for _ in range(26)]
    assert slots[-1] - slots[0] == pytest.approx(0.5, abs=0.01)
    start = time.monotonic()
    bucket.penalise(0.2)
    assert bucket.reserve() >= start + 0.2


def test_an_announce_grant_is_for_one_person_one_form_one_workspace_and_expires(db):
    now = clock.now()
    with db.session() as s:
        an_svc.grant_announce(s, team_id=TEAM, user_id="U0ADMIN", view_key="k-admin", now=now)
    with db.read_session() as s:
        def may(user: str, key: str | None, team: str = TEAM, at: object = now) -> bool:
            return an_svc.may_submit_announcement(s, team_id=team, user_id=user, view_key=key, now=at)

        assert may("U0ADMIN", "k-admin")
        assert not may("U0REP", "k-admin")  # someone else with the admin's form
        assert not may("U0ADMIN", "k-other") and not may("U0ADMIN", None)
        assert not may("U0ADMIN", "k-admin", team="T0OTHER")
        assert may("U0ADMIN", "k-admin", at=now + an_svc.GRANT_TTL - timedelta(minutes=1))
        assert not may("U0ADMIN", "k-admin", at=now + an_svc.GRANT_TTL)
    with db.session() as s:
        assert an_svc.purge_grants(s, now=now + timedelta(hours=1)) == 0
        assert an_svc.purge_grants(s, now=now + an_svc.GRANT_TTL) == 1
