"""The import contracts (pyproject.toml [tool.importlinter], run by `lint-imports` in scripts/test.sh) hold,
and a deliberate violation breaks them: checked on a copy of the package, renamed so the installed one
can't answer for it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))

pytestmark = pytest.mark.skipif(not Path(LINT).exists(), reason="import-linter is not installed (dev extra)")


def _renamed(text: str) -> str:
    return re.sub(r"\bbot\b(?=[.\s]|$)", "copybot", text)


def _copy(tmp: Path) -> Path:
    """bot/ as copybot/ (imports rewritten), with the contracts translated into copybot's names."""
    shutil.copytree(ROOT / "bot", tmp / "copybot", ignore=shutil.ignore_patterns("__pycache__", "models"))
    for py in (tmp / "copybot").rglob("*.py"):
        py.write_text(_renamed(py.read_text(encoding="utf-8")), encoding="utf-8")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]

    def value(v: object) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        return json.dumps(_renamed(v) if isinstance(v, str) else [_renamed(x) for x in v])

    lines = ["[tool.importlinter]"]
    lines += [f"{k} = {value(v)}" for k, v in config.items() if k != "contracts"]
    for contract in config["contracts"]:
        lines += ["", "[[tool.importlinter.contracts]]"] + [f"{k} = {value(v)}" for k, v in contract.items()]
    (tmp / "contracts.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tmp


def _lint(tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tmp)}
    return subprocess.run([LINT, "--config", str(tmp / "contracts.toml"), "--no-cache"], cwd=tmp, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_copy_keeps_every_contract(tmp_path: Path) -> None:
    result = _lint(_copy(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(("module", "line", "contract"), [
    ("features/feedback/service.py", "from copybot.slack import edge", "Services hold the rules"),
    ("features/home/render.py", "from copybot.features.home import service", "Renderers are pure"),
    ("core/clock.py", "import copybot.features.decisions.service", "Parts import downwards only"),
    ("features/workspaces/notify.py", "from copybot.features.feedback import service", "Features import each other"),
])
def test_a_deliberate_violation_fails(tmp_path: Path, module: str, line: str, contract: str) -> None:
    tmp = _copy(tmp_path)
    target = tmp / "copybot" / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{line}  # noqa\n", encoding="utf-8")
    result = _lint(tmp)
    assert result.returncode != 0, result.stdout
    broken = result.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken, result.stdout
