"""Progress of long command-line work (an import, a digest over months), on a terminal only.

One line on stderr, redrawn in place (at most ~10 times a second, and every half second while a slow
step runs, so the elapsed time shows it hasn't hung), cleared when the work ends. When stderr is not a
terminal (a pipe, a file, CI, cron) nothing at all is written: logs and the command's output stay clean.
The standard library is enough for one line (a progress-bar dependency would bring nothing we use).
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import TextIO

_active: Progress | None = None  # the line on the terminal now, if any (log lines go above it)


class Progress:
    def __init__(self, label: str, *, total: int | None = None, unit: str = "", stream: TextIO | None = None,
                 min_interval: float = 0.1) -> None:
        self.label, self.total, self.unit = label, total, unit
        self.stream = stream or sys.stderr
        self.enabled = _is_terminal(self.stream)
        self.done = 0
        self.step = ""
        self._t0 = time.monotonic()
        self._last = 0.0
        self._min_interval = min_interval
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def __enter__(self) -> Progress:
        global _active
        if self.enabled:
            _active = self
            self._draw(force=True)
            self._ticker = threading.Thread(target=self._tick, name="progress", daemon=True)
            self._ticker.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        global _active
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        if self.enabled:
            _active = None
            with self._lock:
                self.stream.write("\r\033[K")  # the command's own summary follows on a clean line
                self.stream.flush()

    def update(self, done: int) -> None:
        """Units done so far (of `total`)."""
        self.done = done
        if self.enabled:
            self._draw()

    def stage(self, text: str) -> None:
        """A new step of the work ("finding themes among 12,345 items"); always drawn."""
        self.step = text
        if self.enabled:
            self._draw(force=True)

    def line(self) -> str:
        elapsed = time.monotonic() - self._t0
        parts = [f"{self.label}:"]
        if self.step:
            parts.append(self.step)
        if self.total:
            pct = min(100, 100 * self.done // self.total)
            parts.append(f"{self.done:,}/{self.total:,} {self.unit} ({pct}%)".replace("  ", " "))
            if elapsed >= 1 and self.done:
                rate = self.done / elapsed
                parts.append(f"{rate:,.0f} {self.unit}/s".lstrip())
                if self.done < self.total:
                    parts.append(f"~{_duration((self.total - self.done) / rate)} left")
        parts.append(f"[{_duration(elapsed)}]")
        return " ".join(parts)

    @contextmanager
    def cleared(self) -> Iterator[None]:
        """Take the line off the terminal while something else writes there, then draw it again."""
        with self._lock:
            self.stream.write("\r\033[K")
            self.stream.flush()
            yield
            self.stream.write(self._text())
            self.stream.flush()

    def _text(self) -> str:
        width = max(20, shutil.get_terminal_size().columns - 1)
        return "\r" + self.line()[:width] + "\033[K"

    def _draw(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self._min_interval:
            return
        with self._lock:
            self._last = now
            self.stream.write(self._text())
            self.stream.flush()

    def _tick(self) -> None:
        while not self._stop.wait(0.5):
            self._draw(force=True)


def active() -> Progress | None:
    return _active


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):  # a closed or fake stream
        return False


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"
