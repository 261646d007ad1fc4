"""`loopline export`: one place that turns each kind of record into JSON lines or CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from sqlalchemy.orm import Session

from bot.services import feedback as fb_svc

# kind -> (fields for CSV, records(session, include_withdrawn)). Features add theirs.
EXPORTERS: dict[str, tuple[list[str], Callable[[Session, bool], Iterator[dict[str, Any]]]]] = {
    "feedback": (fb_svc.EXPORT_FIELDS,
                 lambda s, all_: fb_svc.export_feedback(s, include_withdrawn=all_)),
}

# A spreadsheet (Excel, LibreOffice, Google Sheets) reads a cell starting with one of these as a
# formula: a customer's `=HYPERLINK("http://evil", "click")` would become a live link, `=cmd|…` a
# command. OWASP's CSV-injection advice: prefix such a cell with a single quote, which spreadsheets
# take as "this is text" and do not show.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """One CSV cell: text that a spreadsheet would evaluate gets a leading `'`.

    Only text is touched. Numbers (ARR, votes) are written as numbers, so a negative number stays a
    number; text that merely looks like one ("-20") is text and gets the quote like any other.
    """
    if isinstance(value, list | dict):
        value = json.dumps(value, ensure_ascii=False)
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def records_to_csv(records: Iterable[dict[str, Any]], fieldnames: list[str]) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fieldnames, extrasaction="ignore")
    writer.writeheader()
    yield buf.getvalue()
    for rec in records:
        buf.seek(0)
        buf.truncate()
        writer.writerow({k: spreadsheet_safe(v) for k, v in rec.items()})
        yield buf.getvalue()


def export_records(session: Session, what: str, *, fmt: str = "jsonl", include_withdrawn: bool = False) -> Iterator[str]:
    _register_features()
    if what not in EXPORTERS:
        raise ValueError(f"nothing to export for {what!r} yet")
    fields, records = EXPORTERS[what]
    rows = records(session, include_withdrawn)
    if fmt == "csv":
        yield from records_to_csv(rows, fields + (["status"] if include_withdrawn and what == "feedback" else []))
    else:  # JSON lines are for programs, not spreadsheets: every value verbatim
        for rec in rows:
            yield json.dumps(rec, ensure_ascii=False, default=str) + "\n"


def _register_features() -> None:
    import bot.features  # noqa: F401
