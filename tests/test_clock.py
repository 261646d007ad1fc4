"""Time comes from one seam (bot/core/clock.py), so tests can pin it and pass at any hour on any date."""

from __future__ import annotations

import re
from datetime import timedelta

from bot.core import clock
from tests.conftest import PINNED_NOW, REPO

# Reading the wall clock anywhere else would bring back tests that fail shortly before midnight UTC
# (seeded "today" data falling into yesterday's digest period). The fake Slack and the request
# signer stand in for Slack's own clock and keep the real one.
_WALL_CLOCK = re.compile(r"\b(datetime\.now|datetime\.utcnow|date\.today|time\.time)\(")


def test_product_code_reads_the_time_only_through_the_clock_seam():
    offenders = []
    for path in sorted((REPO / "bot").rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if rel == "bot/core/clock.py" or rel.startswith("bot/devtools/"):
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if _WALL_CLOCK.search(line):
                offenders.append(f"{rel}:{n}: {line.strip()}")
    assert offenders == []


def test_tests_run_on_the_pinned_clock_which_still_moves_forward():
    first = clock.now()
    assert first.tzinfo is not None and first - PINNED_NOW < timedelta(minutes=30)
    assert clock.now() >= first

