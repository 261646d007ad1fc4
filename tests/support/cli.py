"""`python -m bot …` run as a user runs it, with none of the developer's settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.env import REPO

CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPENAI_", "LOOPLINE_", "DATABASE_"))}


def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=cwd or REPO, env={**CLEAN_ENV, **(env or {})},
                          capture_output=True, text=True, timeout=120, input=stdin)
