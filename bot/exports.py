"""`loopline export`: one place that turns each kind of record into JSON lines or CSV."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy.orm import Session

from bot.services import feedback as fb_svc

# kind -> (fields for CSV, records(session, include_withdrawn)). Features add theirs.
EXPORTERS: dict[str, tuple[list[str], Callable[[Session, bool], Iterator[dict[str, Any]]]]] = {
    "feedback": (fb_svc.EXPORT_FIELDS,
                 lambda s, all_: fb_svc.export_feedback(s, include_withdrawn=all_)),
}


def export_records(session: Session, what: str, *, fmt: str = "jsonl", include_withdrawn: bool = False) -> Iterator[str]:
    _register_features()
    if what not in EXPORTERS:
        raise ValueError(f"nothing to export for {what!r} yet")
    fields, records = EXPORTERS[what]
    rows = records(session, include_withdrawn)
    if fmt == "csv":
        yield from fb_svc.records_to_csv(rows, fields + (["status"] if include_withdrawn and what == "feedback" else []))
    else:
        for rec in rows:
            yield json.dumps(rec, ensure_ascii=False, default=str) + "\n"


def _register_features() -> None:
    import bot.features  # noqa: F401
