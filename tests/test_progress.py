"""Long command-line work shows progress on a terminal and stays quiet in a pipe (CI, cron, `| tee`).

The commands run as real subprocesses, once with stderr on a pseudo-terminal (as in a person's shell)
and once with everything piped.
"""

from __future__ import annotations

import csv
import os
import pty
import re
import select
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import REPO

CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPENAI_", "LOOPLINE_", "DATABASE_"))}
ROWS = 800
AREAS = ["billing", "exports", "identity", "mobile", "integrations"]
TEXTS = [
    "Invoices show VAT twice & round wrong — Globex's finance team is furious",
    "CSV export drops the *custom fields* column 😩",
    "SSO via Okta logs people out after 10 min (<@U0REP> has the details)",
    "The iOS app crashes when a board has > 500 cards",
    "Webhooks need retries; we lose events when our endpoint blips",
    "Dark mode please <3 — the night shift asks every week",
]


def run_cli(args: list[str], env: dict[str, str], *, tty: bool) -> tuple[int, str, str]:
    """(exit code, stdout, stderr); with tty=True stderr is a pseudo-terminal, stdout a pipe."""
    cmd = [sys.executable, "-m", "bot", *args]
    full_env = {**CLEAN_ENV, "TERM": "xterm", "COLUMNS": "120", **env}
    if not tty:
        r = subprocess.run(cmd, cwd=REPO, env=full_env, capture_output=True, text=True, timeout=240,
                           stdin=subprocess.DEVNULL)
        return r.returncode, r.stdout, r.stderr
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, cwd=REPO, env=full_env, stdout=subprocess.PIPE, stderr=slave,
                            stdin=subprocess.DEVNULL)
    os.close(slave)
    chunks: list[bytes] = []
    while True:  # drain the terminal while it runs, or the child blocks on a full pty buffer
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed its end
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(master)
    out = proc.stdout.read().decode() if proc.stdout else ""
    proc.wait(timeout=240)
    return proc.returncode, out, b"".join(chunks).decode(errors="replace")


def screen(raw: str) -> list[str]:
    """The lines a terminal shows after `raw` (carriage returns, erase-to-end-of-line, newlines)."""
    lines, col = [""], 0
    i = 0
    while i < len(raw):
        if raw.startswith("\x1b[K", i):
            lines[-1] = lines[-1][:col]
            i += 3
            continue
        ch = raw[i]
        if ch == "\r":
            col = 0
        elif ch == "\n":
            lines.append("")
            col = 0
        else:
            lines[-1] = lines[-1][:col] + ch + lines[-1][col + 1:]
            col += 1
        i += 1
    return [line for line in lines if line]


@pytest.fixture
def big_csv(tmp_path: Path) -> Path:
    path = tmp_path / "feedback-export.csv"
    now = datetime.now(UTC)  # the subprocess keeps the system clock
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "area", "kind", "customer", "arr", "created_at"])
        for i in range(ROWS):
            w.writerow([f"{TEXTS[i % len(TEXTS)]} (ticket #{i})", AREAS[i % len(AREAS)], "feedback",
                        f"Customer {i % 40}", f"{(i % 40) * 5}k", (now - timedelta(days=i % 120, hours=i % 24)).isoformat()])
    return path


def test_import_and_a_long_digest_show_progress_on_a_terminal_only(big_csv: Path, tmp_path: Path):
    env_tty = {"DATABASE_URL": f"sqlite:///{tmp_path}/tty.db"}
    env_pipe = {"DATABASE_URL": f"sqlite:///{tmp_path}/pipe.db"}

    rc, out_tty, err_tty = run_cli(["import", "feedback", str(big_csv)], env_tty, tty=True)
    assert rc == 0, out_tty + err_tty
    rc, out_pipe, err_pipe = run_cli(["import", "feedback", str(big_csv)], env_pipe, tty=False)
    assert rc == 0, out_pipe + err_pipe
    assert f"imported {ROWS}" in out_tty and out_tty == out_pipe  # the result itself is the same
    # On the terminal: one line redrawn in place, counting the file's lines as they go, cleared at the end.
    draws = [d.removesuffix("\x1b[K") for d in err_tty.split("\r") if d.startswith("importing")]
    assert all(d.startswith("importing feedback-export.csv: ") and f"/{ROWS + 1:,} lines" in d for d in draws)
    done = [int(d.split(": ", 1)[1].split("/")[0].replace(",", "")) for d in draws]
    assert len(set(done)) >= 3 and done == sorted(done) and done[0] < ROWS // 2 < done[-1], draws
    assert err_tty.endswith("\r\x1b[K")
    # In a pipe: nothing but what a log would want (no progress, no control characters).
    assert "importing" not in err_pipe and "\r" not in err_pipe and "\x1b" not in err_pipe

    since = (datetime.now(UTC) - timedelta(days=60)).date().isoformat()  # earlier items are its history
    digest = ["digest", "--channel", "C0PRODUCT", "--print", "--since", since, "--team", "T_LOCAL"]
    env = {**env_tty, "LOOPLINE_EMBEDDER": "tfidf"}
    rc, out_tty, err_tty = run_cli(digest, env, tty=True)
    assert rc == 0, out_tty + err_tty
    rc, out_pipe, err_pipe = run_cli(digest, {**env_pipe, "LOOPLINE_EMBEDDER": "tfidf"}, tty=False)
    assert rc == 0, out_pipe + err_pipe
    assert re.search(r"^\d+ items of feedback", out_tty, re.M) and out_tty == out_pipe
    for step in ("reading feedback", "finding themes among ", "comparing with "):
        assert step in err_tty, err_tty
    # What the person sees at the end: the log lines, each whole on its own line, and no progress left over.
    seen = screen(err_tty)
    logged = [line for line in seen if "INFO bot.features.digests.service" in line]
    assert len(logged) == 1 and logged[0].startswith("20"), seen
    assert not any("digest:" in line for line in seen), seen
    assert "digest:" not in err_pipe and "\r" not in err_pipe
