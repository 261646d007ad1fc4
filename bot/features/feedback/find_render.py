"""Pure renderers for finding feedback: search results (a private message or a modal), paging, the
search form opened from App Home, and one account's view."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from bot.core.ids import decision_ref, feedback_ref
from bot.slack.ids import Action, Block, Callback
from bot.slack.render import blocks as bk
from bot.slack.render.text import escape, link, money, plain, quote

if TYPE_CHECKING:  # plain data built by bot/features/feedback/search.py; renderers import no services at run time
    from bot.features.feedback.search import AccountView, Hit, Results

STATUS = {"proposed": "proposed", "in_review": "in review", "decided": "decided", "rejected": "rejected",
          "deferred": "deferred", "superseded": "superseded"}
QUERY_MAX = 1500  # a button value holds 2,000 characters; the query rides in the paging buttons


def _accounts(hit: Hit) -> str:
    parts = [f"{escape(name)}" + (f" ({money(arr)} ARR)" if arr else "") for name, arr in hit.accounts.items()]
    return ", ".join(parts[:4]) + (f" +{len(parts) - 4}" if len(parts) > 4 else "")


def hit_blocks(hit: Hit, *, outsider: bool = False) -> list[dict[str, Any]]:
    """One item: id, votes, accounts/ARR (not for people outside the organisation), status, decisions."""
    title = link(hit.permalink, feedback_ref(hit.id)) if hit.permalink else feedback_ref(hit.id)
    bits = [f"*{title}*", f"{hit.votes} vote{'s' if hit.votes != 1 else ''}"]
    if hit.accounts and not outsider:
        bits.append(_accounts(hit))
    if hit.decisions:
        bits.append("; ".join(f"{decision_ref(d['id'])} {escape(d['title'][:80])} ({STATUS.get(d['status'], d['status'])})"
                              for d in hit.decisions[:3]))
    else:
        bits.append("open, no decision yet")
    if hit.merged:
        bits.append(f"{hit.merged} merged in")
    return [bk.section(" · ".join(bits) + "\n" + quote(hit.text, 400))]


def _page_value(query: str, page: int) -> str:
    return json.dumps({"q": query[:QUERY_MAX], "p": page})


def read_page_value(raw: str) -> tuple[str, int]:
    v = json.loads(raw)
    return str(v["q"])[:QUERY_MAX], max(0, int(v["p"]))


def results_blocks(res: Results, *, outsider: bool = False, capture_text: str | None = None) -> list[dict[str, Any]]:
    """`capture_text`: what `/feedback` was given, offered as feedback in case it was meant as such."""
    if not res.hits:
        head = f":mag: Nothing found for “{escape(res.query)}”."
    else:
        first, last = res.page * 5 + 1, res.page * 5 + len(res.hits)
        head = f":mag: *{first}–{last} of {res.total}* for “{escape(res.query)}” (best matches first)"
    blocks: list[dict[str, Any]] = [bk.section(head)]
    for hit in res.hits:
        blocks += hit_blocks(hit, outsider=outsider)
    nav = []
    if res.page > 0:
        nav.append(bk.button("Previous", Action.FEEDBACK_SEARCH_PAGE, _page_value(res.query, res.page - 1)))
    if res.page + 1 < res.pages:
        nav.append(bk.button("Next", Action.FEEDBACK_SEARCH_PAGE, _page_value(res.query, res.page + 1)))
    if capture_text and res.page == 0:
        nav.append(bk.button("Capture as feedback instead", Action.FEEDBACK_CAPTURE_INSTEAD, capture_text[:2000]))
    if nav:
        blocks.append(bk.actions(*nav))
    return blocks


def results_message(res: Results, *, outsider: bool = False,
                    capture_text: str | None = None) -> tuple[str, list[dict[str, Any]]]:
    text = escape(f"{res.total} result(s) for “{res.query}”" if res.hits else f"Nothing found for “{res.query}”")
    return text, results_blocks(res, outsider=outsider, capture_text=capture_text)


# --- from App Home: a form, then the results in the same modal ----------------------------------


def search_modal(query: str = "") -> dict[str, Any]:
    el: dict[str, Any] = {"type": "plain_text_input", "action_id": "value", "max_length": 500,
                          "placeholder": {"type": "plain_text", "text": "e.g. okta sso logout"}}
    if query:
        el["initial_value"] = query[:500]
    return {"type": "modal", "callback_id": Callback.FEEDBACK_SEARCH_MODAL,
            "title": {"type": "plain_text", "text": "Search feedback"},
            "submit": {"type": "plain_text", "text": "Search"},
            "close": {"type": "plain_text", "text": "Close"},
            "blocks": [{"type": "input", "block_id": Block.FB_SEARCH,
                        "label": {"type": "plain_text", "text": "Words to search for"}, "element": el}]}


def read_search_modal(values: dict[str, Any]) -> str:
    return ((values.get(Block.FB_SEARCH) or {}).get("value") or {}).get("value") or ""


def searching_modal(query: str) -> dict[str, Any]:
    return {"type": "modal", "callback_id": Callback.FEEDBACK_SEARCH_RESULTS,
            "title": {"type": "plain_text", "text": "Search feedback"},
            "close": {"type": "plain_text", "text": "Close"},
            "blocks": [bk.section(f":hourglass_flowing_sand: Searching for “{escape(query)}”…")]}


def results_modal(res: Results) -> dict[str, Any]:
    return {"type": "modal", "callback_id": Callback.FEEDBACK_SEARCH_RESULTS,
            "title": {"type": "plain_text", "text": plain("Search feedback", 24)},
            "close": {"type": "plain_text", "text": "Close"},
            "blocks": results_blocks(res)[:100]}


# --- /feedback customer NAME ---------------------------------------------------------------------


def account_message(v: AccountView) -> tuple[str, list[dict[str, Any]]]:
    arr = f" · {money(v.arr)} ARR" if v.arr else ""
    head = (f":office: *{escape(v.account)}* asked for *{v.total_items}* thing{'s' if v.total_items != 1 else ''}"
            f" · {v.votes} vote{'s' if v.votes != 1 else ''} (people, once each){arr}")
    blocks: list[dict[str, Any]] = [bk.section(head)]
    if v.open_decisions:
        blocks.append(bk.section("*Open decisions:* " + "; ".join(
            f"{decision_ref(d['id'])} {escape(d['title'][:100])} ({STATUS.get(d['status'], d['status'])})"
            for d in v.open_decisions[:10])))
    else:
        blocks.append(bk.context("No open decisions on these items."))
    for hit in v.items[:20]:
        blocks += hit_blocks(hit)
    if v.total_items > len(v.items):
        blocks.append(bk.context(f"…and {v.total_items - len(v.items)} more (`loopline export feedback` has them all)."))
    return escape(f"{v.account}: {v.total_items} item(s), {v.votes} vote(s)"), blocks[:50]


def account_not_found(name: str, candidates: list[str]) -> tuple[str, list[dict[str, Any]]]:
    if len(candidates) == 1:
        msg = (f":thinking_face: No account starts with “{escape(name)}”. Did you mean *{escape(candidates[0])}*? "
               f"Try `/feedback customer {escape(candidates[0])}`.")
        text = f"No account starts with “{name}”; did you mean {candidates[0]}?"
    elif candidates:
        names = ", ".join(f"*{escape(c)}*" for c in candidates[:15])
        msg = f":thinking_face: Several accounts match “{escape(name)}”: {names}. Type more of the name."
        text = f"Several accounts match “{name}”"
    else:
        msg = f":thinking_face: No account matches “{escape(name)}”. Names come from captured feedback and " \
              "from channels mapped with `/feedback account NAME`."
        text = f"No account matches “{name}”"
    return escape(text), [bk.section(msg)]
