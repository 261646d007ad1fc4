"""Decision rules over a real database (SQLite or PostgreSQL): status changes, loop rows, report, export."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select

from bot.core.common import ServiceError
from bot.core.models import Decision, Job, LoopNotification
from bot.devtools.fakeslack.blockkit import check_message_blocks, check_view
from bot.features.decisions import render
from bot.features.decisions import service as svc
from bot.features.feedback import service as fb_svc
from tests.conftest import export

T = "T0001"


def _fb(s, key: str, *, reporter: str | None, captured_by: str, text: str = "Need SSO & <!here>") -> int:
    item, _ = fb_svc.capture_feedback(s, team_id=T, source="command", source_key=key, text=text, channel="C0SALES",
                                      reporter=reporter, captured_by=captured_by)
    return item.id


def test_status_change_rules_and_loop_rows(db):
    with db.session() as s:
        f1 = _fb(s, "k1", reporter="Jo at Acme (imported)", captured_by="U0REP")
        f2 = _fb(s, "k2", reporter="U0CUST", captured_by="U0REP")
        d, created = svc.create_decision(s, team_id=T, source_key="view:V1", title="SSO for all", created_by="U0PM",
                                         channel="C0SALES", feedback_ids=[f1, f2])
        again, created2 = svc.create_decision(s, team_id=T, source_key="view:V1", title="SSO for all",
                                              created_by="U0PM", channel="C0SALES")
        assert created and not created2 and again.id == d.id
        did = d.id
    with db.session() as s:
        r = svc.apply_status_change(s, team_id=T, decision_id=did, status="decided", by="U0PM", key="a1")
        assert r.changed and r.from_status == "proposed"
        assert svc.apply_status_change(s, team_id=T, decision_id=did, status="decided", by="U0PM", key="a1").reason \
            == "duplicate"
        assert svc.apply_status_change(s, team_id=T, decision_id=did, status="decided", by="U0PM", key="a2").reason \
            == "same"
        svc.apply_status_change(s, team_id=T, decision_id=did, status="in_review", by="U0PM", key="a3")
        svc.apply_status_change(s, team_id=T, decision_id=did, status="decided", by="U0PM", key="a4")
        svc.apply_status_change(s, team_id=T, decision_id=did, status="rejected", by="U0PM", key="a5")
    with db.read_session() as s:
        rows = sorted((n.user_id, n.trigger, sorted(n.feedback_ids)) for n in s.scalars(select(LoopNotification)))
        # Imported reporters (not Slack ids) are not messaged; each person once per outcome.
        assert rows == [("U0CUST", "decided", [f2]), ("U0CUST", "rejected", [f2]),
                        ("U0REP", "decided", [f1, f2]), ("U0REP", "rejected", [f1, f2])]
        assert s.scalar(select(func.count()).select_from(Job).where(Job.kind == "loop.notify")) == 4
    [rec] = export(db, "decisions")
    assert [h["status"] for h in rec["history"]] == ["proposed", "decided", "in_review", "decided", "rejected"]
    assert set(rec) == {"id", "title", "context", "status", "owner", "due", "area", "feedback_ids", "channel", "ts",
                        "history"}
    assert rec["owner"] == "U0PM" and rec["feedback_ids"] == [f"FB-{f1}", f"FB-{f2}"]


def test_validation_errors(db):
    with db.session() as s:
        f1 = _fb(s, "k1", reporter="U0REP", captured_by="U0REP")
        ids, problems = svc.resolve_feedback_ids(s, team_id=T, text=f"FB-{f1}, fb-404,  x1")
        assert ids == [f1, 404] and problems == ["x1 is not a feedback id (like FB-12)", "FB-404 does not exist"]
        assert svc.resolve_feedback_ids(s, team_id="T_OTHER", text=f"FB-{f1}")[1] == [f"FB-{f1} does not exist"]
        try:
            svc.create_decision(s, team_id=T, source_key="v", title="  ", created_by="U0PM", channel=None)
            raise AssertionError("empty title accepted")
        except ServiceError:
            pass
        try:
            svc.normalise_status("done")
            raise AssertionError("unknown status accepted")
        except ServiceError:
            pass
        assert svc.normalise_status("In review") == "in_review"


def test_status_report_made_in_review_overdue_stale(db):
    now = datetime(2030, 6, 15, 12, tzinfo=UTC)
    with db.session() as s:
        def mk(key: str, status: str, changed_days_ago: int, due: date | None = None) -> int:
            d, _ = svc.create_decision(s, team_id=T, source_key=key, title=f"{key} <b>", created_by="U0PM",
                                       channel="C0PRODUCT", status=status, due=due)
            d.status_changed_at = now - timedelta(days=changed_days_ago)
            return d.id

        made = mk("made", "decided", 2)
        old_made = mk("old", "rejected", 20)
        review = mk("review", "in_review", 3, due=date(2030, 6, 1))
        stale = mk("stale", "proposed", 30)
        mk("fine", "proposed", 1, due=date(2030, 7, 1))
        mk("gone", "superseded", 40, due=date(2020, 1, 1))
    with db.read_session() as s:
        rep = svc.decision_status_report(s, team_id=T, now=now, stale_days=14,
                                         period_start=now - timedelta(days=7), period_end=now)
    assert [i["id"] for i in rep["made"]] == [f"D-{made}"]
    assert f"D-{old_made}" not in json.dumps(rep)
    assert [i["id"] for i in rep["in_review"]] == [f"D-{review}"]
    assert [i["id"] for i in rep["overdue"]] == [f"D-{review}"]
    assert [i["id"] for i in rep["stale"]] == [f"D-{stale}"]
    item = rep["overdue"][0]
    assert item == {"id": f"D-{review}", "title": "review <b>", "status": "in_review", "owner": "U0PM",
                    "due": "2030-06-01", "channel": "C0PRODUCT", "ts": None, "feedback_ids": []}
    json.dumps(rep)  # plain data, ready for the digest's --json


def test_renderers_stay_within_block_kit_limits():
    long = "Ünïcode 🚀 & <!channel> " * 400
    d = render.DecisionSummary(id=7, title=long[:255], status="in_review", context=long, owner="U0PM",
                               due=date(2030, 1, 1), area="billing & <x>", created_by="U0PM",
                               feedback=[render.LinkedFeedback(i, f"https://example.slack.com/archives/C1/p{i}")
                                         for i in range(1, 300)])
    text, blocks = render.card(d, flags=("overdue", "stale"))
    assert check_message_blocks(blocks) == []
    shown = json.dumps(blocks)
    assert "<!channel>" not in shown and "and 279 more" in shown and "<!channel>" not in text
    items = [render.LoopItem(i, long, None, True) for i in range(1, 40)]
    _, dm = render.loop_dm(notification_id=1, d=d, outcome="shipped", announcement="AN-4: <b>", items=items)
    assert check_message_blocks(dm) == [] and "<!channel>" not in json.dumps(dm)
    assert check_view(render.decision_modal(metadata={"channel": "C1"}, title=long, author="U0PM")) == []
    choices = [(i, long, "proposed") for i in range(150)]
    assert check_view(render.link_modal(feedback_id=3, choices=choices, metadata={})) == []


def test_csv_export_of_decisions(db):
    from bot import composition
    from bot.core.exports import export_records

    with db.session() as s:
        svc.create_decision(s, team_id=T, source_key="v1", title='Quote "this", & that', created_by="U0PM",
                            channel="C0SALES")
    with db.read_session() as s:
        out = "".join(export_records(s, "decisions", composition.exporters(composition.build_features()), fmt="csv"))
    header, row = out.splitlines()[:2]
    assert header.split(",")[:4] == ["id", "title", "context", "status"]
    assert row.startswith('D-') and '"Quote ""this"", & that"' in row and "proposed" in row


def test_decision_ids_validator(db):
    with db.session() as s:
        d, _ = svc.create_decision(s, team_id=T, source_key="v1", title="x", created_by="U0PM", channel=None)
        assert svc.validate_decision_ids(s, T, [d.id]) == []
        assert svc.validate_decision_ids(s, "T_OTHER", [d.id]) == [f"D-{d.id} does not exist"]
    with db.read_session() as s:
        assert s.scalar(select(func.count()).select_from(Decision)) == 1
