"""`loopline demo`'s people and how it prints what Slack would show them (shared by bot/demo.py and
bot/devtools/demo_steps.py)."""

from __future__ import annotations

import html
import os
from typing import Any

ADMIN, PM, REP, REP2, CUSTOMER = "U0ADMIN", "U0PM", "U0REP", "U0REP2", "U0CUST"


def say(title: str) -> None:
    print(f"\n\033[1m▶ {title}\033[0m" if os.isatty(1) else f"\n> {title}")


def show(label: str, text: str) -> None:
    for i, line in enumerate(text.strip().splitlines() or [""]):
        print(f"   {label if i == 0 else ' ' * len(label)} │ {line}")


def blocks_text(msg: dict[str, Any]) -> str:
    """A terminal rendering of what a person would read in Slack."""
    out: list[str] = []
    for b in msg.get("blocks") or []:
        if b.get("type") in ("section", "header"):
            t = (b.get("text") or {}).get("text")
            if t:
                out.append(t)
            for f in b.get("fields") or []:
                out.append(f.get("text", ""))
        elif b.get("type") == "context":
            out.append("  " + " · ".join(e.get("text", "") for e in b.get("elements", []) if isinstance(e, dict)))
        elif b.get("type") == "actions":
            out.append("  [" + "] [".join(e.get("text", {}).get("text", "…") for e in b.get("elements", [])) + "]")
    # Slack shows &lt; as <: unescape so the terminal reads like the client (the wire text stays escaped).
    return html.unescape("\n".join(out) or msg.get("text", ""))
