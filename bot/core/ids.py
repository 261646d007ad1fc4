"""Public ids, the way people see and type them: FB-12 (feedback), D-3 (decisions), AN-4 (announcements).
Formatted and parsed here only."""

from __future__ import annotations

import re

FEEDBACK, DECISION, ANNOUNCEMENT = "FB", "D", "AN"


def feedback_ref(n: int | str) -> str:
    return f"{FEEDBACK}-{n}"


def decision_ref(n: int | str) -> str:
    return f"{DECISION}-{n}"


def announcement_ref(n: int | str) -> str:
    return f"{ANNOUNCEMENT}-{n}"


_PUBLIC_ID = re.compile(r"^\s*(?:(FB|D|AN)-?)?(\d{1,12})\s*$", re.IGNORECASE)  # 12 digits: no overflow


def parse_public_id(text: str, prefix: str) -> int | None:
    """'FB-12', 'fb12', '12' -> 12 for prefix FB; anything else -> None."""
    m = _PUBLIC_ID.match(text or "")
    if not m or (m.group(1) and m.group(1).upper() != prefix):
        return None
    return int(m.group(2))


def parse_public_ids(text: str, prefix: str) -> tuple[list[int], list[str]]:
    """Split 'FB-12, FB-40 x' into ([12, 40], ['x'])."""
    ids: list[int] = []
    bad: list[str] = []
    for part in re.split(r"[\s,;]+", text or ""):
        if not part:
            continue
        n = parse_public_id(part, prefix)
        if n is None:
            bad.append(part)
        elif n not in ids:
            ids.append(n)
    return ids, bad
