"""A realistic week of feedback (tests/data/feedback_messy.jsonl) for digests and App Home."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from bot.core.db import Database
from bot.core.models import Decision, DecisionFeedback, Feedback
from tests.support.env import DATA

MESSY = DATA / "feedback_messy.jsonl"


NOW = datetime(2024, 3, 11, 13, 0, tzinfo=UTC)


PING = "URGENT <!channel> <!here> the export button is gone & <@U0PM> said it's fine > not fine"


WITHDRAWN = "zzwithdrawn secret export complaint that must never show"


def seed(db: Database, *, team: str = "T0001", now: datetime = NOW, previous: int = 4) -> dict[str, int]:
    """The messy fixture in the current week (+ a quote that tries to ping), `previous` older copies of
    the export theme in the week before, and a withdrawn item."""
    rows = [json.loads(line) for line in MESSY.read_text().splitlines() if line.strip()]
    ids: dict[str, int] = {}
    with db.session() as s:
        for n, r in enumerate(rows):
            f = Feedback(team_id=team, source_key=f"seed:{r['id']}", text=r["text"], kind=r["kind"],
                         customer=r.get("customer"), arr=r.get("arr"), source="import", channel="C0SALES",
                         permalink=f"https://example.slack.com/archives/C0SALES/p{1710000000 + n}000100",
                         created_at=now - timedelta(hours=2 + n))
            s.add(f)
            s.flush()
            ids[f"seed{r['id']}"] = f.id
        export_rows = [r for r in rows if r["theme"] == "export"]
        for i in range(previous):
            r = export_rows[i % len(export_rows)]
            s.add(Feedback(team_id=team, source_key=f"old:{i}", text=r["text"] + " (last week)", kind=r["kind"],
                           customer=r.get("customer"), source="import", created_at=now - timedelta(days=8, hours=i)))
        ping = Feedback(team_id=team, source_key="ping", text=PING + " CSV export " * 3, kind="bug",
                        customer="Acme Corp", arr=120000, source="command", created_at=now - timedelta(hours=1))
        s.add(ping)
        s.add(Feedback(team_id=team, source_key="gone", text=WITHDRAWN, kind="bug", source="command",
                       status="withdrawn", created_at=now - timedelta(hours=1)))
        s.flush()
        ids["ping"] = ping.id
        d = Decision(team_id=team, title="Ship CSV export v2 <!here>", status="decided", owner="U0PM")
        s.add(d)
        s.flush()
        s.add(DecisionFeedback(decision_id=d.id, feedback_id=ids["ping"]))
        ids["decision"] = d.id
    return ids
