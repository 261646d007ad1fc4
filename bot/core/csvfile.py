"""Reading a CSV file people made (Excel, Sheets, a script): its encoding, and its records with their lines.

Two rules: the whole file is decoded before anything is imported (so a file in an encoding we
can't read is refused whole, never half imported), and a record the csv module can't parse is
reported with the lines it covers instead of being resumed from inside (which turned fragments of a
cell into items and swallowed the rows after it).
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

# Longest first: UTF-32 LE's mark starts with UTF-16 LE's. The "utf-16"/"utf-32" codecs read the mark
# to pick the byte order and drop it; "utf-8-sig" drops UTF-8's.
BOMS = ((codecs.BOM_UTF32_LE, "utf-32", "UTF-32"), (codecs.BOM_UTF32_BE, "utf-32", "UTF-32"),
        (codecs.BOM_UTF8, "utf-8-sig", "UTF-8"), (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"),
        (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"))
NOTHING = "nothing was imported"


class UnreadableFile(ValueError):
    """The file can't be decoded as a whole; the message is one line naming why and what to do."""


def decode(data: bytes, *, name: str, encoding: str | None = None) -> str:
    """The file's text: in `encoding` if given, else by its byte-order mark, else strict UTF-8.

    No guessing beyond that: bytes that aren't UTF-8 decode "successfully" as Latin-1 or cp1252
    whatever they really are (Shift-JIS, Mac Roman…), so a wrong guess would store mojibake for
    good. We say which encoding it looks like and let the person name it with --encoding.
    """
    if encoding:
        try:
            label = codecs.lookup(encoding).name
        except LookupError:
            raise UnreadableFile(f"unknown encoding {encoding!r} (e.g. utf-8, cp1252, latin-1, utf-16); "
                                 f"{NOTHING}") from None
        text = _strict(data, encoding, label, name=name)
    else:
        bom = next(((codec, label) for mark, codec, label in BOMS if data.startswith(mark)), None)
        if bom is not None:
            text = _strict(data, bom[0], bom[1], name=name)
        else:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as e:
                raise UnreadableFile(f"{name} is not UTF-8 ({_where(data, e)}{_looks_like(data)}); {NOTHING}. "
                                     "Save it as UTF-8 (Excel: \"CSV UTF-8\"), or name its encoding, "
                                     "e.g. --encoding cp1252") from None
    text = text.removeprefix("\ufeff")  # a UTF-8 mark when --encoding utf-8 was given
    if "\x00" in text:
        raise UnreadableFile(f"{name} contains NUL characters, as UTF-16 text without a byte-order mark does; "
                             f"{NOTHING}. Pass --encoding utf-16-le (or utf-16-be), or save it as UTF-8")
    return text


def _strict(data: bytes, codec: str, label: str, *, name: str) -> str:
    try:
        return data.decode(codec)
    except UnicodeDecodeError as e:
        raise UnreadableFile(f"{name} is not valid {label} ({_where(data, e)}); {NOTHING}") from None


def _where(data: bytes, e: UnicodeDecodeError) -> str:
    line = data.count(b"\n", 0, e.start) + 1
    return f"line {line} has byte 0x{data[e.start]:02x}"


def _looks_like(data: bytes) -> str:
    try:
        data.decode("cp1252")
    except UnicodeDecodeError:
        return ""
    return ", as in Windows-1252/Latin-1 files"


@dataclass
class Record:
    line: int  # where the record starts (a quoted cell may span lines)
    end: int  # its last line
    cells: list[str] | None  # None when it could not be parsed
    error: str | None = None


def records(text: str) -> Iterator[Record]:
    """Every record of `text`, blank lines skipped, each with its lines.

    The csv module's field size limit is lifted for the file at hand: past it the reader raises in
    the middle of a cell and then carries on *inside* it. A cell can't be longer than the file, and
    the caller decides how long a value may be (and says so as that row's error). `strict` makes a
    quote that is never closed, or a stray one inside a quoted cell, an error instead of quietly
    gluing the following rows into one cell; the lines such a record covers are reported, never
    re-read as records of their own.
    """
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, len(text) + 1))
    try:
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        while True:
            start = reader.line_num + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                yield Record(start, max(start, reader.line_num), None, _explain(e))
                continue
            if cells:
                yield Record(start, reader.line_num, cells)
    finally:
        csv.field_size_limit(limit)


def _explain(e: csv.Error) -> str:
    msg = str(e)
    if "unexpected end of data" in msg:
        return "a quote in it is never closed"
    if "expected after" in msg:
        return "a quote inside a quoted cell must be doubled (\"\")"
    return msg
