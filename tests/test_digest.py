"""Digest data and rendering: themes, trend, accounts, decisions, Block Kit limits, escaping, LLM naming."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.core.db import Database
from bot.core.models import Decision, DecisionFeedback, Feedback
from bot.devtools.fakeslack.blockkit import check_message_blocks
from bot.features.digests.render import render_digest
from bot.features.digests.service import DigestData, DigestTheme, build_digest
from bot.themes import TfidfEmbedder

if TYPE_CHECKING:
    from tests.fake_openai import FakeOpenAI

pytest_plugins = ["tests.fake_openai"]

DATA = Path(__file__).parent / "data" / "feedback_messy.jsonl"
NOW = datetime(2024, 3, 11, 13, 0, tzinfo=UTC)
START = NOW - timedelta(days=7)
PING = "URGENT <!channel> <!here> the export button is gone & <@U0PM> said it's fine > not fine"
WITHDRAWN = "zzwithdrawn secret export complaint that must never show"


def seed(db: Database, *, team: str = "T0001", now: datetime = NOW, previous: int = 4) -> dict[str, int]:
    """The messy fixture in the current week (+ a quote that tries to ping), `previous` older copies of
    the export theme in the week before, and a withdrawn item."""
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
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


def build(db: Database, **kw: Any) -> DigestData:
    with db.read_session() as s:
        return build_digest(s, team_id="T0001", channel="C0PRODUCT", period_key="weekly:2024-03-11", start=START,
                            end=NOW, label="Mon 4 Mar – Sun 10 Mar 2024", embedder=TfidfEmbedder(), now=NOW, **kw)


def all_text(messages: list[dict[str, Any]]) -> str:
    return json.dumps(messages, ensure_ascii=False)


def test_digest_finds_themes_with_counts_trend_accounts_and_decisions(db):
    ids = seed(db)
    d = build(db)
    assert d.total == 43 and d.previous_total == 4
    assert 3 <= len(d.themes) <= 10
    assert sum(t.count for t in d.themes) + d.other_count == d.total
    export = next(t for t in d.themes if ids["ping"] in t.feedback_ids)
    assert export.previous_count >= 2 and export.weekly[-1] == export.count and len(export.weekly) == 8
    assert "Acme Corp" in export.accounts and export.arr >= 120000
    assert f"D-{ids['decision']}" in export.decisions
    assert all(len(t.quotes) <= 3 and t.quotes for t in d.themes)
    assert WITHDRAWN not in all_text(render_digest(d))
    js = d.to_dict()
    assert set(js) >= {"period", "total", "previous_total", "themes", "decisions"}
    assert set(js["themes"][0]) >= {"title", "summary", "count", "trend", "feedback_ids", "quotes", "accounts", "arr"}
    assert DigestData.from_dict(json.loads(json.dumps(js))).to_dict() == js


def test_rendered_digest_is_valid_escaped_and_never_pings(db):
    seed(db)
    messages = render_digest(build(db))
    assert "digest" in messages[0]["blocks"][0]["text"]["text"].lower()
    for m in messages:
        assert check_message_blocks(m["blocks"]) == []
        assert len(m["blocks"]) <= 50
    text = all_text(messages)
    for ping in ("<!channel>", "<!here>", "<@U0PM>", "<!everyone>"):
        assert ping not in text
    assert "&lt;!channel&gt;" in text


def _big_theme(i: int) -> DigestTheme:
    long = ("<!channel> " + "très long retour client 🙃 & <b> " * 200)[:3000]
    return DigestTheme(title=f"Theme {i} " + "x" * 300, summary="s " * 2000, count=1000 - i, previous_count=i,
                       feedback_ids=list(range(i * 100, i * 100 + 100)),
                       quotes=[{"id": i * 10 + k, "text": long, "permalink": "https://example.slack.com/archives/C1/p1",
                                "customer": "Acme " * 50} for k in range(3)],
                       accounts=[f"Account {k} <!here>" for k in range(40)], arr=1e7, kinds={"bug": 3, "idea": 7},
                       decisions=[f"D-{k}" for k in range(60)], weekly=[1] * 8)


def test_block_kit_limits_at_volume():
    d = DigestData(team_id="T", channel="C", period_key="k", period_start=START, period_end=NOW, period_label="wk",
                   total=60_000, previous_total=50_000, themes=[_big_theme(i) for i in range(60)], other_count=5000,
                   headline="<!channel> " * 200,
                   decisions={s: [{"id": f"D-{k}", "title": "Decide <!channel> " * 20, "due": "2024-03-01",
                                   "feedback_ids": [1, 2]} for k in range(300)]
                              for s in ("made", "in_review", "overdue", "stale")})
    messages = render_digest(d)
    assert len(messages) == 1 + 10 + 1 + 1  # parent, top 10, the rest, decisions
    for m in messages:
        assert check_message_blocks(m["blocks"]) == [], m["blocks"][:2]
        assert len(m["text"]) <= 4000
    assert "<!channel>" not in all_text(messages) and "<!here>" not in all_text(messages)
    assert "and 275 decisions" in all_text(messages[-1:])


def test_llm_names_themes_against_the_fake_server(db, fake_openai: FakeOpenAI):
    from bot.llm import ThemeNamer

    seed(db)
    offline = build(db)
    namer = ThemeNamer(api_key="test", base_url=fake_openai.base_url, model="gpt-test", timeout=5)
    named = build(db, namer=namer)
    assert named.llm_named == len(named.themes) and named.headline
    assert [t.count for t in named.themes] == [t.count for t in offline.themes]
    assert fake_openai.chat_requests
    # Customer text goes out as escaped data, never raw.
    assert "<!channel>" not in json.dumps(fake_openai.chat_requests)

    fake_openai.mode = "malformed"
    broken = build(db, namer=namer)
    assert broken.llm_named == 0 and broken.headline is None
    assert [t.title for t in broken.themes] == [t.title for t in offline.themes]


def test_llm_timeout_falls_back_to_offline_text(db, fake_openai: FakeOpenAI):
    from bot.llm import ThemeNamer

    seed(db)
    offline = build(db)
    fake_openai.mode = "slow"
    fake_openai.slow_seconds = 3
    namer = ThemeNamer(api_key="test", base_url=fake_openai.base_url, model="gpt-test", timeout=0.3)
    d = build(db, namer=namer)
    assert d.llm_named == 0
    assert [t.title for t in d.themes] == [t.title for t in offline.themes]
    assert all(check_message_blocks(m["blocks"]) == [] for m in render_digest(d))


def test_empty_period_still_renders(db):
    d = build(db)
    assert d.total == 0 and d.themes == []
    messages = render_digest(d)
    assert "No new feedback" in all_text(messages)
    assert all(check_message_blocks(m["blocks"]) == [] for m in messages)


def test_stored_vectors_are_used_when_all_present(db):
    from bot.features.digests.jobs import embed_pending
    from bot.themes import pack_vector

    class Fixed:
        name, dim, corpus_dependent = "fixed-test", 16, False

        def embed(self, texts: list[str]) -> Any:
            import numpy as np

            return np.asarray([[float(("export" in t.lower()) + 0.1), float("sso" in t.lower()), 1.0] + [0.0] * 13
                               for t in texts], dtype=np.float32)

    seed(db)
    assert embed_pending(db, TfidfEmbedder()) == 0  # corpus-fitted vectors are never stored
    assert embed_pending(db, Fixed()) == 43 + 4  # active items only
    with db.read_session() as s:
        assert s.query(Feedback).filter(Feedback.embedding.is_(None)).count() == 1  # the withdrawn one
        assert {m for (m,) in s.query(Feedback.embedding_model).filter(Feedback.status == "active")} == {"fixed-test"}
    d = build(db)  # stored, same model -> no embedding at build time
    assert d.total == 43 and d.themes
    assert pack_vector([1.0, 2.0])
