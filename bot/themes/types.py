"""Plain data shared by theme finding (offline) and the LLM naming step."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ThemeItem:
    """One piece of feedback as the theme finder sees it (no ORM, no Slack)."""

    id: int
    text: str
    kind: str | None = None
    area: str | None = None
    customer: str | None = None
    arr: float | None = None
    permalink: str | None = None
    embedding: tuple[float, ...] | None = None  # stored vector, if any


@dataclass
class Theme:
    """A group of feedback items about one thing.

    `title`/`summary` start as the offline names; the LLM step may replace them.
    `representative_ids` are the items nearest the centre, best first.
    """

    title: str
    summary: str
    keyphrases: list[str]
    item_ids: list[int]
    representative_ids: list[int]
    centroid: list[float] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.item_ids)
