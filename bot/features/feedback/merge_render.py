"""Pure renderers for duplicates: the "Looks like FB-12" suggestion, the merge note with Undo."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bot.core.ids import feedback_ref
from bot.slack.ids import Action
from bot.slack.render import blocks as bk
from bot.slack.render.text import escape, link, quote


@dataclass(frozen=True)
class Similar:
    """An open item offered as the one a new item repeats (built by the caller from the model)."""

    id: int
    title: str
    votes: int
    accounts: tuple[str, ...] = ()
    permalink: str | None = None

    @property
    def public_id(self) -> str:
        return feedback_ref(self.id)


def similar_of(rows: list[dict[str, Any]]) -> list[Similar]:
    """From bot/features/feedback/merging.py `describe`."""
    return [Similar(id=r["id"], title=r["title"], votes=r["votes"], accounts=tuple(r["accounts"]),
                    permalink=r["permalink"]) for r in rows]


def similar_line(c: Similar) -> str:
    """'FB-12 — Okta SSO (Acme, Globex · 5 votes)', plain (escape it for mrkdwn)."""
    votes = f"{c.votes} vote{'s' if c.votes != 1 else ''}"
    bits = ", ".join(c.accounts[:4]) + (f" +{len(c.accounts) - 4}" if len(c.accounts) > 4 else "")
    return f"{c.public_id} — {c.title} ({bits + ' · ' if bits else ''}{votes})"


def _value(new_id: int, into: int, offered: list[int]) -> str:
    return json.dumps({"f": new_id, "i": into, "all": offered})


def read_value(raw: str) -> tuple[int, int, list[int]]:
    """A Merge / Keep separate button's value -> (new item, offered item, every item offered)."""
    v = json.loads(raw)
    return int(v["f"]), int(v["i"]), [int(x) for x in v.get("all") or []][:3]


def suggestion(new_id: int, similar: list[Similar]) -> tuple[str, list[dict[str, Any]]]:
    """The private note after a capture when open items look the same: one section and two buttons each."""
    offered = [c.id for c in similar]
    first = similar_line(similar[0])
    blocks: list[dict[str, Any]] = []
    for c in similar:
        label = link(c.permalink, c.public_id) if c.permalink else c.public_id
        line = escape(similar_line(c)).replace(escape(c.public_id), label, 1)
        blocks.append(bk.section(f":mag: *{feedback_ref(new_id)}* looks like {line}"))
        blocks.append(bk.actions(
            bk.button(f"Merge into {c.public_id}", Action.FEEDBACK_MERGE, _value(new_id, c.id, offered),
                      style="primary"),
            bk.button("Keep separate", Action.FEEDBACK_KEEP_SEPARATE, _value(new_id, c.id, offered))))
    more = f" (and {len(similar) - 1} more)" if len(similar) > 1 else ""
    return escape(f"Looks like {first}{more}"), blocks


def merged(*, merge_id: int, new_id: int, into: Similar, text: str) -> tuple[str, list[dict[str, Any]]]:
    head = (f":twisted_rightwards_arrows: Merged *{feedback_ref(new_id)}* into {escape(similar_line(into))}. Both texts "
            "and sources are kept; votes, accounts and decision links now count on "
            f"*{into.public_id}*, once per person.")
    blocks = [bk.section(f"{head}\n{quote(text, 300)}"),
              bk.actions(bk.button("Undo", Action.FEEDBACK_UNDO_MERGE, str(merge_id)))]
    return escape(f"Merged {feedback_ref(new_id)} into {into.public_id}"), blocks


def unmerged(*, new_id: int, into_id: int) -> tuple[str, list[dict[str, Any]]]:
    msg = f"Undone: {feedback_ref(new_id)} is its own item again, with its votes and links; {feedback_ref(into_id)} is as before."
    return msg, [bk.section(f":leftwards_arrow_with_hook: {msg}")]


def kept_separate(*, new_id: int, other_id: int) -> tuple[str, list[dict[str, Any]]]:
    msg = f"Kept separate: {feedback_ref(new_id)} and {feedback_ref(other_id)} won't be suggested as duplicates again."
    return msg, [bk.section(f":ok_hand: {msg}")]


def problem(text: str) -> tuple[str, list[dict[str, Any]]]:
    return escape(text), [bk.section(f":warning: {escape(text)}")]
