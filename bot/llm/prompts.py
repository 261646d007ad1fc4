"""Prompt files live in the repo's top-level `prompts/` directory, not in code.

Keeping them as plain files lets product people tweak wording without touching
Python, and lets tests assert that what reaches the API is exactly the file.
The folder ships inside the installed package as `bot.prompts` (see pyproject.toml).
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from string import Template

PROMPTS_DIR: Traversable = files("bot.prompts")

# Names are plain identifiers plus dots (e.g. "theme_summary.system"); refusing
# anything else means a name can never walk out of PROMPTS_DIR.
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def _path_for(name: str) -> Traversable:
    if not _NAME_RE.match(name) or ".." in name:
        raise ValueError(f"invalid prompt name: {name!r}")
    # "theme_summary.system" -> theme_summary.system.md; an explicit suffix is kept.
    return PROMPTS_DIR / (name if name.endswith((".md", ".txt")) else name + ".md")


@lru_cache(maxsize=64)
def load_prompt(name: str) -> str:
    """Return the text of `prompts/<name>.md` (cached; raises if missing).

    Trailing whitespace is stripped so editors adding a final newline do not
    change what is sent.
    """
    return _path_for(name).read_text(encoding="utf-8").rstrip()


def render_prompt(name: str, **values: object) -> str:
    """Fill a `$placeholder` template from `prompts/` with string.Template.

    `substitute` (not `safe_substitute`) so a placeholder missing from the code
    fails loudly in tests instead of sending a literal `$name` to the model.
    Substituted values are never re-parsed, so `$` or `{}` in customer text is inert.
    """
    return Template(load_prompt(name)).substitute({k: str(v) for k, v in values.items()})
