"""The rules of duplicates and merges (bot/services/merging.py), on both databases."""

from __future__ import annotations

import numpy as np
import pytest

from bot.core.common import ServiceError
from bot.core.models import Feedback
from bot.features.decisions import service as dec_svc
from bot.features.feedback import merging
from bot.features.feedback import service as fb_svc
from bot.themes import StaticEmbedder, pack_vector

EMB = StaticEmbedder()
OKTA = "Okta SSO logs everyone out after 10 minutes & they have to sign in again"


def item(s, text: str, *, team: str = "T0001", user: str = "U0REP", customer: str | None = None,
         arr: float | None = None, embed: bool = True) -> Feedback:
    f, _ = fb_svc.capture_feedback(s, team_id=team, source="command", source_key=f"k:{team}:{text}:{user}",
                                   text=text, channel="C0SALES", reporter=user, captured_by=user, customer=customer,
                                   arr=arr)
    if embed:
        f.embedding, f.embedding_model = pack_vector(EMB.embed([text])[0]), EMB.name
    s.flush()
    return f


def similar(s, f: Feedback, *, team: str = "T0001") -> list[int]:
    vec = EMB.embed([f.text])[0]
    threshold = merging.suggestion_threshold(EMB.name)
    assert threshold is not None
    return [c.id for c in merging.similar_open_items(s, team_id=team, feedback_id=f.id, vector=vec, model=EMB.name,
                                                     threshold=threshold)]


def test_suggestions_stay_in_the_workspace_among_open_items_at_most_three(db):
    with db.session() as s:
        same = [item(s, OKTA + suffix) for suffix in ("", "!", " 🙃", " — again", " (urgent)")]
        elsewhere = item(s, OKTA, team="T0OTHER")
        withdrawn = item(s, OKTA + " please")
        withdrawn.status = "withdrawn"
        unrelated = item(s, "Dark mode for the mobile app, the night shift hates the glare")
        new = item(s, OKTA + ".", user="U0REP2")
        merging.merge(s, team_id="T0001", feedback_id=same[4].id, into_id=same[0].id, by="U0PM", request_key="m")
        found = similar(s, new)
        assert len(found) == 3
        assert elsewhere.id not in found and withdrawn.id not in found and unrelated.id not in found
        assert same[4].id not in found and new.id not in found
        merging.keep_separate(s, team_id="T0001", feedback_id=new.id, other_id=found[0], by="U0REP2")
        assert found[0] not in similar(s, new)


def test_nothing_close_no_suggestion_and_unmeasured_embedders_suggest_nothing(db):
    with db.session() as s:
        item(s, OKTA)
        new = item(s, "CSV export of invoices times out above 10k rows")
        assert similar(s, new) == []
    assert merging.suggestion_threshold("tfidf") is None and merging.suggestion_threshold("openai:x") is None


def test_threshold_is_stricter_than_the_research_one():
    from bot.themes.duplicates import DUPLICATE_THRESHOLDS

    for name, t in merging.SUGGESTION_THRESHOLDS.items():
        assert t > DUPLICATE_THRESHOLDS[name]


def test_merge_rules(db):
    with db.session() as s:
        a, b, c = item(s, OKTA), item(s, OKTA + "!", user="U0REP2"), item(s, OKTA + "?", user="U0PM")
        other_ws = item(s, OKTA, team="T0OTHER")
        with pytest.raises(ServiceError):
            merging.merge(s, team_id="T0001", feedback_id=a.id, into_id=a.id, by="U", request_key="1")
        with pytest.raises(ServiceError):
            merging.merge(s, team_id="T0001", feedback_id=a.id, into_id=other_ws.id, by="U", request_key="2")
        merging.merge(s, team_id="T0001", feedback_id=b.id, into_id=a.id, by="U", request_key="3")
        with pytest.raises(ServiceError):  # into an item that is itself merged
            merging.merge(s, team_id="T0001", feedback_id=c.id, into_id=b.id, by="U", request_key="4")
        with pytest.raises(ServiceError):  # merged already, elsewhere
            merging.merge(s, team_id="T0001", feedback_id=b.id, into_id=c.id, by="U", request_key="5")
        # The survivor merged on: its merged items follow, no chains.
        record, _ = merging.merge(s, team_id="T0001", feedback_id=a.id, into_id=c.id, by="U", request_key="6")
        s.refresh(b)
        assert b.merged_into == c.id and a.merged_into == c.id
        s.refresh(c, ["votes"])
        assert c.vote_count == 3
        merging.undo_merge(s, team_id="T0001", merge_id=record.id, by="U")
        s.refresh(b)
        s.refresh(a, ["votes"])
        assert b.merged_into == a.id and a.merged_into is None and a.vote_count == 2
        _, again = merging.undo_merge(s, team_id="T0001", merge_id=record.id, by="U")
        assert again is False
        with pytest.raises(ServiceError):
            merging.undo_merge(s, team_id="T0OTHER", merge_id=record.id, by="U")


def test_votes_after_a_merge_count_on_the_survivor_and_people_behind_include_merged(db):
    with db.session() as s:
        a, b = item(s, OKTA, user="U0PM"), item(s, OKTA + "!", user="U0REP2")
        merging.merge(s, team_id="T0001", feedback_id=b.id, into_id=a.id, by="U0REP2", request_key="x")
        assert fb_svc.add_vote(s, feedback_id=b.id, user_id="U0ADMIN", via="button")
        s.refresh(a, ["votes"])
        s.refresh(b, ["votes"])
        assert {v.user_id for v in a.votes} == {"U0PM", "U0REP2", "U0ADMIN"} and b.vote_count == 0
        people = dec_svc.people_behind(s, [a.id])
        assert people["U0REP2"] == [b.id] and people["U0PM"] == [a.id]


def test_accounts_once_per_account_with_their_arr():
    a = Feedback(id=1, text="x", customer="Acme Corp", arr=120_000.0)
    b = Feedback(id=2, text="y", customer="acme corp", arr=None)
    c = Feedback(id=3, text="z", customer="Globex", arr=80_000.0)
    assert merging.accounts_of(a, [b, c]) == {"Acme Corp": 120_000.0, "Globex": 80_000.0}
    assert merging.item_title("  \nOkta SSO logs everyone out after ten minutes and they must sign in again\nmore",
                              40) == "Okta SSO logs everyone out after ten…"
    assert np.isfinite(merging.SUGGESTION_THRESHOLDS["static:minilm-static-256"])
