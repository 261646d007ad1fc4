"""App Home: this week at a glance (pure: HomeData -> view)."""

from __future__ import annotations

from typing import Any

from bot.services.home import HomeData
from bot.slack.ids import Action
from bot.slack.render import blocks as bk
from bot.slack.render.text import VIEW_BLOCKS_MAX, channel_link, escape, escape_truncate, link


def trend(now: int, before: int) -> str:
    if before == 0:
        return "new" if now else "—"
    pct = round(100 * (now - before) / before)
    return f"{'+' if pct >= 0 else ''}{pct}%"


def home_view(d: HomeData) -> dict[str, Any]:
    b: list[dict[str, Any]] = [bk.header("This week at a glance")]
    kinds = ", ".join(f"{n} {escape(k)}{'s' if n != 1 else ''}" for k, n in sorted(d.by_kind.items())) or "none yet"
    b.append(bk.section(f"*{d.week_total}* feedback items in the last 7 days ({trend(d.week_total, d.previous_total)} "
                        f"vs the 7 days before): {kinds}."))
    if d.themes:
        b.append(bk.section("*Top themes*\n" + "\n".join(f"• {escape_truncate(t, 120)} — {n}" for t, n in d.themes[:5])))
    elif d.top_areas:
        b.append(bk.section("*Top areas*\n" + "\n".join(f"• {escape(a)} — {n}" for a, n in d.top_areas)))
    b.append(bk.divider())
    b.append(bk.section("*Open decisions*"))
    if d.open_decisions:
        for dec in d.open_decisions:
            due = f" · due {dec['due'].isoformat()}" if dec.get("due") else ""
            b.append(bk.context(f"*D-{dec['id']}* {escape_truncate(dec['title'], 150)} · "
                                f"{dec['status'].replace('_', ' ')}{due}"))
    else:
        b.append(bk.context("No open decisions."))
    b.append(bk.divider())
    b.append(bk.section("*Feedback you captured*"))
    if d.mine:
        for f in d.mine:
            b.append(bk.context(f"{link(f['permalink'], 'FB-' + str(f['id']))} {escape_truncate(f['text'], 200)} · "
                                f"{f['votes']} vote{'s' if f['votes'] != 1 else ''}"))
    else:
        b.append(bk.context("Nothing yet: react with :bulb: to a customer's message, or use `/feedback`."))
    b.append(bk.divider())
    b.append(bk.section("*Subscriptions*"))
    if d.subscriptions:
        for channel, areas in list(d.subscriptions.items())[:20]:
            b.append(bk.context(f"{channel_link(channel)}: {escape(', '.join(areas))}"))
    else:
        b.append(bk.context("No channel subscribes to announcements yet: `/subscribe billing, mobile` in a channel."))
    b.append(bk.actions(bk.button("Refresh", Action.HOME_REFRESH, "refresh")))
    return {"type": "home", "blocks": b[:VIEW_BLOCKS_MAX]}
