"""The digest chart: weekly volume of the top themes, as PNG bytes (matplotlib, Agg, no display)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # headless: the worker has no display, and Agg is thread-safe per figure

from matplotlib.figure import Figure


def theme_volume_png(labels: list[str], series: list[tuple[str, list[int]]], *, title: str = "") -> bytes:
    """One line per theme over the periods in `labels` (oldest first). Figure(), not pyplot: pyplot keeps
    global state that is not safe across the worker's threads."""
    fig = Figure(figsize=(8, 4), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    x = list(range(len(labels)))
    for name, counts in series:
        short = name if len(name) <= 40 else name[:39] + "…"
        ax.plot(x, counts[-len(labels):], marker="o", linewidth=2, label=short)
    ax.set_xticks(x)
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylabel("items")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    if title:
        ax.set_title(title[:80], fontsize=10)
    if series:
        ax.legend(fontsize=8, loc="upper left", frameon=False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
