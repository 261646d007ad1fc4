"""Rules of finding feedback (bot/services/search.py), on both databases."""

from __future__ import annotations

from bot.core import channels as channel_svc
from bot.features.feedback import merging
from bot.features.feedback import search as svc
from bot.features.feedback import service as fb_svc
from bot.themes import StaticEmbedder, pack_vector

EMB = StaticEmbedder()


def item(s, text: str, *, team: str = "T0001", customer: str | None = None, user: str = "U0REP"):
    f, _ = fb_svc.capture_feedback(s, team_id=team, source="command", source_key=f"k:{team}:{text}:{customer}",
                                   text=text, channel="C0SALES", reporter=user, captured_by=user, customer=customer)
    f.embedding, f.embedding_model = pack_vector(EMB.embed([text])[0]), EMB.name
    s.flush()
    return f


def ids(res: svc.Results) -> list[int]:
    return [h.id for h in res.hits]


def test_query_words():
    assert svc.query_words("The Okta SSO, the okta LOGOUT of a 10-min session!") == \
        ["okta", "sso", "logout", "10-min", "session"]
    assert len(svc.query_words(" ".join(f"word{i}" for i in range(20)))) == 8


def test_words_are_matched_literally_on_both_databases(db):
    with db.session() as s:
        literal = item(s, "webhook field a_b is missing")
        item(s, "webhook field axb is missing")
        item(s, "100% of our admins")
        assert ids(svc.search(s, team_id="T0001", query="a_b")) == [literal.id]
        assert ids(svc.search(s, team_id="T0001", query="zzz")) == []


def test_search_sees_only_open_items_of_the_workspace_and_pages(db):
    with db.session() as s:
        texts = [f"Okta SSO logout problem number {i}" for i in range(12)]
        mine = [item(s, t) for t in texts]
        item(s, "Okta SSO logout problem elsewhere", team="T0OTHER")
        mine[0].status = "withdrawn"
        merging.merge(s, team_id="T0001", feedback_id=mine[1].id, into_id=mine[2].id, by="U", request_key="m")
        vec = EMB.embed(["okta sso logout"])[0]
        first = svc.search(s, team_id="T0001", query="okta sso logout", vector=vec, model=EMB.name)
        assert first.total == 10 and len(first.hits) == svc.PER_PAGE and first.pages == 2
        last = svc.search(s, team_id="T0001", query="okta sso logout", page=7, vector=vec, model=EMB.name)
        assert last.page == 1 and len(last.hits) == 5
        seen = set(ids(first)) | set(ids(last))
        assert mine[0].id not in seen and mine[1].id not in seen and len(seen) == 10
        merged_into = next(h for h in first.hits + last.hits if h.id == mine[2].id)
        assert merged_into.merged == 1 and merged_into.votes == 1


def test_account_names_match_case_insensitively_by_unique_prefix(db):
    with db.session() as s:
        item(s, "x", customer="Acme Corp")
        item(s, "y", customer="acme corp ")
        item(s, "z", customer="Acme Labs")
        channel_svc.set_account(s, team_id="T0001", channel_id="C0INI", customer="Initech", arr=50_000)
        item(s, "w", customer="Globex", team="T0OTHER")
        assert svc.known_accounts(s, team_id="T0001") == ["Acme Corp", "Acme Labs", "Initech"]
        assert svc.match_account(s, team_id="T0001", name="ACME CORP") == ("Acme Corp", [])
        assert svc.match_account(s, team_id="T0001", name="acme  l") == ("Acme Labs", [])
        assert svc.match_account(s, team_id="T0001", name="acme") == (None, ["Acme Corp", "Acme Labs"])
        assert svc.match_account(s, team_id="T0001", name="labs") == (None, ["Acme Labs"])
        assert svc.match_account(s, team_id="T0001", name="globex") == (None, [])
        view = svc.account_view(s, team_id="T0001", account="Initech")
        assert view.total_items == 0 and view.arr == 50_000
