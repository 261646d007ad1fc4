"""`loopline export`: one place that turns each kind of record into JSON lines or CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from bot.features import Exporter


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


def export_records(session: Session, what: str, exporters: Mapping[str, Exporter], *, fmt: str = "jsonl",
                   include_withdrawn: bool = False) -> Iterator[str]:
    """`exporters`: kind -> Exporter, every feature's (bot/composition.py: exporters())."""
    if what not in exporters:
        raise ValueError(f"nothing to export for {what!r} yet")
    fields, records = exporters[what].fields, exporters[what].records
    rows = records(session, include_withdrawn)
    if fmt == "csv":
        yield from records_to_csv(rows, fields + (["status"] if include_withdrawn and what == "feedback" else []))
    else:  # JSON lines are for programs, not spreadsheets: every value verbatim
        for rec in rows:
            yield json.dumps(rec, ensure_ascii=False, default=str) + "\n"

