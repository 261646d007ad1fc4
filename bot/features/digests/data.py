"""A digest's data: what the service builds, the worker stores on the DigestRun and the renderer draws.
Plain dataclasses, so the renderer needs no service to read them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from bot.core.ids import feedback_ref

HISTORY_PERIODS = 8  # the chart's span, current period included
CHART_THEMES = 5
N_QUOTES = 3
DECISION_STATUSES = ("made", "in_review", "overdue", "stale")


@dataclass
class DigestTheme:
    title: str
    summary: str
    count: int
    previous_count: int
    feedback_ids: list[int]
    quotes: list[dict[str, Any]]  # {id, text, permalink, customer}; raw text, escaped when rendered
    accounts: list[str]
    arr: float
    kinds: dict[str, int]
    decisions: list[str] = field(default_factory=list)  # "D-7"
    weekly: list[int] = field(default_factory=list)  # counts per period, oldest first, current last

    @property
    def trend(self) -> str:
        if self.previous_count == 0:
            return "new" if self.count else "flat"
        ratio = self.count / self.previous_count
        return "up" if ratio >= 1.15 else "down" if ratio <= 0.85 else "flat"

    @property
    def change_pct(self) -> int | None:
        if not self.previous_count:
            return None
        return round(100 * (self.count - self.previous_count) / self.previous_count)


@dataclass
class DigestData:
    team_id: str
    channel: str
    period_key: str
    period_start: datetime
    period_end: datetime
    period_label: str
    total: int
    previous_total: int
    themes: list[DigestTheme]
    other_count: int = 0
    other_ids: list[int] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)
    decisions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    headline: str | None = None
    areas: list[str] = field(default_factory=list)
    chart_labels: list[str] = field(default_factory=list)
    llm_named: int = 0
    seconds: float = 0.0

    @property
    def decisions_made(self) -> int:
        return len(self.decisions.get("made", []))

    def to_dict(self) -> dict[str, Any]:
        """The `loopline digest --json` shape (docs/digests.md), also stored on the DigestRun."""
        return {
            "team_id": self.team_id, "channel": self.channel,
            "period": {"key": self.period_key, "start": self.period_start.isoformat(),
                       "end": self.period_end.isoformat(), "label": self.period_label},
            "total": self.total, "previous_total": self.previous_total,
            "themes": [{**{k: v for k, v in asdict(t).items() if k != "feedback_ids"},
                        "feedback_ids": [feedback_ref(i) for i in t.feedback_ids], "trend": t.trend,
                        "change_pct": t.change_pct} for t in self.themes],
            "other": {"count": self.other_count, "feedback_ids": [feedback_ref(i) for i in self.other_ids]},
            "kinds": self.kinds,
            "decisions": {k: self.decisions.get(k, []) for k in DECISION_STATUSES},
            "headline": self.headline, "areas": self.areas, "chart_labels": self.chart_labels,
            "llm_named": self.llm_named,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DigestData:
        def ids(xs: list[Any]) -> list[int]:
            return [int(str(x).removeprefix(feedback_ref(""))) for x in xs]

        themes = [DigestTheme(title=t["title"], summary=t["summary"], count=t["count"],
                              previous_count=t["previous_count"], feedback_ids=ids(t["feedback_ids"]),
                              quotes=t["quotes"], accounts=t["accounts"], arr=t["arr"], kinds=t["kinds"],
                              decisions=t.get("decisions", []), weekly=t.get("weekly", []))
                  for t in d["themes"]]
        p = d["period"]
        return cls(team_id=d["team_id"], channel=d["channel"], period_key=p["key"],
                   period_start=datetime.fromisoformat(p["start"]), period_end=datetime.fromisoformat(p["end"]),
                   period_label=p["label"], total=d["total"], previous_total=d["previous_total"], themes=themes,
                   other_count=d["other"]["count"], other_ids=ids(d["other"]["feedback_ids"]),
                   kinds=d.get("kinds", {}), decisions=d.get("decisions", {}), headline=d.get("headline"),
                   areas=d.get("areas", []), chart_labels=d.get("chart_labels", []),
                   llm_named=d.get("llm_named", 0))

    def home_summary(self, limit: int = 5) -> list[list[Any]]:
        return [[t.title, t.count] for t in self.themes[:limit]]
