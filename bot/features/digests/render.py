"""The digest as Slack messages: a parent that says what happened, one thread reply per theme, one for
the rest, one for decisions. Pure: DigestData in, list of {"text", "blocks"} out.

Every message stays within Block Kit limits whatever the volume: top themes get their own reply,
the remainder are summed in one; long lists are packed into sections under 3000 characters and capped
with "and N more"; a message that still has more than 50 blocks is split over several replies.
Nothing here can ping anyone: user text is escaped and decision owners are not @-mentioned.
"""

from __future__ import annotations

from typing import Any

from bot.features.digests.service import DigestData, DigestTheme
from bot.slack.render import blocks as bk
from bot.slack.render.text import SECTION_TEXT_MAX, escape, escape_truncate, link, money, quote, truncate

Message = dict[str, Any]

TOP_THEMES = 10
QUOTE_CHARS = 500
LIST_CAP = 25  # lines per list before "and N more"
_PACK = SECTION_TEXT_MAX - 100

_UNCOUNTABLE = ("feedback", "praise")
STATUS_TITLES = {"made": ":white_check_mark: Made this period", "in_review": ":mag: In review",
                 "overdue": ":alarm_clock: Overdue", "stale": ":zzz: Stale (no change for a while)"}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _change(now: int, before: int) -> str:
    if before == 0:
        return "new this period" if now else "none in the previous period either"
    diff = now - before
    pct = round(100 * diff / before)
    arrow = ":arrow_up_small:" if diff > 0 else ":arrow_down_small:" if diff < 0 else ":left_right_arrow:"
    return f"{arrow} {'+' if diff >= 0 else ''}{pct}% vs {before} in the previous period"


def _kind(k: str, n: int) -> str:
    word = (k or "feedback").replace("_", " ")
    return f"{n} {escape(word)}" if n == 1 or word.endswith(_UNCOUNTABLE) else f"{n} {escape(word)}s"


def _kinds(kinds: dict[str, int]) -> str:
    return ", ".join(_kind(k, n) for k, n in sorted(kinds.items(), key=lambda kv: -kv[1]))


def pack_lines(lines: list[str], *, cap: int = LIST_CAP, more: str = "more") -> list[dict[str, Any]]:
    """Lines (already mrkdwn) -> section blocks each under the text limit; at most `cap` lines shown."""
    shown, rest = lines[:cap], len(lines) - cap
    if rest > 0:
        shown.append(f"_… and {rest} {more}_")
    out: list[dict[str, Any]] = []
    buf = ""
    for line in shown:
        line = truncate(line, _PACK)
        if buf and len(buf) + 1 + len(line) > _PACK:
            out.append(bk.section(buf))
            buf = ""
        buf = f"{buf}\n{line}" if buf else line
    if buf:
        out.append(bk.section(buf))
    return out


def parent_message(d: DigestData) -> Message:
    title = f"Feedback digest · {d.period_label}"
    lines = [f"*{_plural(d.total, 'item')}* of feedback — {_change(d.total, d.previous_total)}",
             f"*{_plural(len(d.themes), 'theme')}*" + (f" (+{d.other_count} other items)" if d.other_count else "")
             + f" · *{_plural(d.decisions_made, 'decision')} made*"]
    if d.kinds:
        lines.append(_kinds(d.kinds))
    blocks = [bk.header(title)]
    if d.headline:
        blocks.append(bk.section(escape_truncate(d.headline, 600)))
    blocks.append(bk.section("\n".join(lines)))
    if d.themes:
        top = [f"{i}. {escape_truncate(t.title, 120)} — {t.count}" for i, t in enumerate(d.themes[:5], 1)]
        blocks.append(bk.section("*Top themes*\n" + "\n".join(top)))
    notes = ["Themes, quotes and decisions are in the thread :thread:"]
    if d.areas:
        notes.append("areas: " + escape_truncate(", ".join(d.areas), 300))
    blocks.append(bk.context(" · ".join(notes)))
    text = f"{title}: {d.total} items, {len(d.themes)} themes, {d.decisions_made} decisions made"
    return {"text": escape_truncate(text, 300), "blocks": blocks}


def theme_message(rank: int, t: DigestTheme) -> Message:
    head = f"*{rank}. {escape_truncate(t.title, 150)}*"
    if t.summary:
        head += "\n" + escape_truncate(t.summary, 800)
    stats = [f"*{_plural(t.count, 'item')}* · {_change(t.count, t.previous_count)}"]
    if t.kinds:
        stats.append(_kinds(t.kinds))
    if t.accounts:
        names = ", ".join(escape_truncate(a, 60) for a in t.accounts[:8])
        more = f" and {len(t.accounts) - 8} more" if len(t.accounts) > 8 else ""
        stats.append(f":office: {names}{more} · {money(t.arr)} ARR")
    blocks = [bk.section(head), bk.context(*[truncate(s, 1900) for s in stats])]
    for q in t.quotes[:3]:
        who = f" · {escape_truncate(q.get('customer'), 60)}" if q.get("customer") else ""
        ref = link(q.get("permalink"), f"FB-{q['id']}") if q.get("permalink") else f"FB-{q['id']}"
        blocks.append(bk.section(f"{quote(q.get('text'), QUOTE_CHARS)}\n— {ref}{who}"))
    if t.decisions:
        ds = ", ".join(escape(x) for x in t.decisions[:20])
        blocks.append(bk.context(f":scales: Decisions: {ds}" + (" …" if len(t.decisions) > 20 else "")))
    return {"text": escape_truncate(f"{rank}. {t.title}: {t.count} items", 300), "blocks": blocks}


def rest_message(themes: list[DigestTheme], start_rank: int, other_count: int) -> Message | None:
    if not themes and not other_count:
        return None
    lines = [f"{i}. {escape_truncate(t.title, 150)} — {t.count} ({t.trend})"
             for i, t in enumerate(themes, start_rank)]
    total = sum(t.count for t in themes) + other_count
    blocks = [bk.section(f"*The rest: {_plural(total, 'item')}*")]
    blocks += pack_lines(lines, cap=60, more="themes")
    if other_count:
        blocks.append(bk.context(f"{_plural(other_count, 'item')} fit no theme"))
    return {"text": f"The rest: {total} items", "blocks": blocks}


def _decision_line(d: dict[str, Any]) -> str:
    bits = [f"*{escape(str(d.get('id', '')))}* {escape_truncate(str(d.get('title') or ''), 150)}"]
    if d.get("due"):
        bits.append(f"due {escape(str(d['due']))}")
    if d.get("feedback_ids"):
        bits.append(_plural(len(d["feedback_ids"]), "linked item"))
    return "• " + " · ".join(bits)


def decisions_message(decisions: dict[str, list[dict[str, Any]]]) -> Message:
    blocks: list[dict[str, Any]] = [bk.section("*Decisions*")]
    counts = []
    for status, title in STATUS_TITLES.items():
        items = decisions.get(status) or []
        counts.append(f"{len(items)} {status.replace('_', ' ')}")
        if not items:
            continue
        lines = [_decision_line(d) for d in items]
        packed = pack_lines(lines, cap=LIST_CAP, more="decisions")
        packed[0]["text"]["text"] = truncate(f"*{title}*\n" + packed[0]["text"]["text"], SECTION_TEXT_MAX)
        blocks += packed
    if len(blocks) == 1:
        blocks.append(bk.context("No decisions made, in review, overdue or stale."))
    return {"text": "Decisions: " + ", ".join(counts), "blocks": blocks}


def split_oversized(msg: Message) -> list[Message]:
    """A message with more than 50 blocks becomes several (continuations keep the same text)."""
    parts = bk.chunk_blocks(msg["blocks"])
    return [{"text": msg["text"], "blocks": p} for p in parts]


def render_digest(d: DigestData, *, top: int = TOP_THEMES) -> list[Message]:
    """[parent, theme replies…, the rest?, decisions]."""
    out = [parent_message(d)]
    if not d.total:
        out[0]["blocks"].insert(-1, bk.section("No new feedback in this period."))
    for i, t in enumerate(d.themes[:top], 1):
        out.append(theme_message(i, t))
    rest = rest_message(d.themes[top:], top + 1, d.other_count)
    if rest:
        out.append(rest)
    out.append(decisions_message(d.decisions))
    return [part for m in out for part in split_oversized(m)]
