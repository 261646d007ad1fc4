"""App Home: this week at a glance (pure: HomeData -> view)."""

from __future__ import annotations

from typing import Any

from bot.core.ids import decision_ref, feedback_ref
from bot.features import HomeData
from bot.slack.ids import Action
from bot.slack.render import blocks as bk
from bot.slack.render.text import (
    SECTION_TEXT_MAX,
    VIEW_BLOCKS_MAX,
    channel_link,
    escape,
    escape_truncate,
    link,
    mention,
)

Block = dict[str, Any]

# Per-list caps keep the view well under Slack's 100 blocks whatever the workspace holds; the rest
# is summarised as "and N more". Subscriptions share one section (one line per channel).
MAX_DECISIONS = 10
MAX_MINE = 10
FLAG_MARKS = {"overdue": ":alarm_clock: overdue", "stale": ":hourglass: stale"}


def trend(now: int, before: int) -> str:
    if before == 0:
        return "new" if now else "—"
    pct = round(100 * (now - before) / before)
    return f"{'+' if pct >= 0 else ''}{pct}%"


UNCOUNTABLE = ("feedback", "praise")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 or word.endswith(UNCOUNTABLE) else 's'}"


def _more(shown: int, total: int, what: str) -> Block | None:
    return bk.context(f"…and {total - shown} more {what}.") if total > shown else None


def _flags(dec: dict[str, Any], extra_flags: dict[Any, list[str]]) -> list[str]:
    found = [f for f in ("overdue", "stale") if dec.get(f)]
    return found or [f for f in extra_flags.get(dec.get("id"), []) if f in FLAG_MARKS]


def _decision_line(dec: dict[str, Any], extra_flags: dict[Any, list[str]]) -> str:
    # The decisions hook may append its markers to the status string; render markers from the flags only,
    # so they appear once and in one style.
    status = str(dec.get("status") or "").split(" · ")[0].replace("_", " ")
    parts = [f"*{decision_ref(dec['id'])}* {escape_truncate(dec.get('title'), 150)}", status]
    if dec.get("owner"):
        parts.append(mention(dec["owner"]))
    if dec.get("due"):
        parts.append(f"due {dec['due'].isoformat()}")
    if dec.get("channel"):
        parts.append(channel_link(dec["channel"]))
    parts += [f"*{FLAG_MARKS[f]}*" for f in _flags(dec, extra_flags)]
    return " · ".join(parts)


def _glance(d: HomeData) -> list[Block]:
    kinds = ", ".join(_plural(n, escape((k or "item").replace("_", " "))) for k, n in sorted(d.by_kind.items(), key=lambda kv: str(kv[0])))
    out = [bk.header("This week at a glance"),
           bk.section(f"*{d.week_total}* feedback items in the last 7 days ({trend(d.week_total, d.previous_total)} "
                      f"vs {d.previous_total} the 7 days before): {kinds or 'none yet'}.\n"
                      f"*{max(d.open_total, len(d.open_decisions))}* open decisions.")]
    if d.themes:
        out.append(bk.section("*Top themes* (latest digest)\n" + "\n".join(
            f"• {escape_truncate(t, 120)} — {n}" for t, n in d.themes[:5])))
    if any(a != "no area" for a, _ in d.top_areas):  # "no area — 46" alone tells nobody anything
        out.append(bk.section("*Top areas*\n" + "\n".join(f"• {escape_truncate(a, 80)} — {n}"
                                                            for a, n in d.top_areas[:5])))
    return out


def _decisions(d: HomeData) -> list[Block]:
    out = [bk.divider(), bk.section("*Open decisions*")]
    extra_flags = d.extra.get("decision_flags") or {}
    shown = d.open_decisions[:MAX_DECISIONS]
    out += [bk.context(_decision_line(dec, extra_flags)) for dec in shown]
    if not shown:
        out.append(bk.context("No open decisions."))
    more = _more(len(shown), max(d.open_total, len(d.open_decisions)), "open decisions")
    return out + ([more] if more else [])


def _mine(d: HomeData) -> list[Block]:
    out = [bk.divider(), bk.section("*Feedback you captured*")]
    shown = d.mine[:MAX_MINE]
    for f in shown:
        who = f" · {escape_truncate(f['customer'], 60)}" if f.get("customer") else ""
        words = "_(text not fetched yet)_" if f.get("text_pending") and not f["text"].strip() \
            else escape_truncate(f["text"], 200)
        out.append(bk.context(f"{link(f.get('permalink'), feedback_ref(f['id']))} {words}"
                              f"{who} · {_plural(int(f.get('votes') or 0), 'vote')}"))
    if not shown:
        out.append(bk.context("Nothing yet: react with :bulb: to a customer's message, or use `/feedback`."))
    more = _more(len(shown), max(d.mine_total, len(d.mine)), "of yours")
    return out + ([more] if more else [])


def _subscriptions(d: HomeData) -> list[Block]:
    if not d.subscriptions:
        return [bk.divider(), bk.section("*Subscriptions*\nNo channel subscribes to announcements yet: "
                                         "`/subscribe billing, mobile` in a channel.")]
    text, items = "*Subscriptions*", list(d.subscriptions.items())
    for i, (channel, areas) in enumerate(items):
        line = f"\n• {channel_link(channel)}: {escape_truncate(', '.join(areas), 300)}"
        tail = f"\n…and {len(items) - i} more channels."
        if len(text) + len(line) + len(tail) > SECTION_TEXT_MAX - 50:
            text += tail
            break
        text += line
    return [bk.divider(), bk.section(text)]


def home_view(d: HomeData) -> dict[str, Any]:
    b: list[Block] = _glance(d) + _decisions(d) + _mine(d)
    b += d.sections
    b += _subscriptions(d)
    # Should a future section overflow the view, drop the tail but keep the Refresh button.
    b = b[: VIEW_BLOCKS_MAX - 1]
    b.append(bk.actions(bk.button("Search feedback", Action.FEEDBACK_SEARCH_OPEN, "search"),
                        bk.button("Refresh", Action.HOME_REFRESH, "refresh")))
    return {"type": "home", "blocks": b}
