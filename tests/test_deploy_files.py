"""What a user copies to deploy: the wheel's contents, the Dockerfile, compose.yaml and .env.example.

No Docker engine runs here, so these check what can be checked without one: every command the image and
compose run is a command the installed CLI accepts, the image's health check works against a real server,
the final image holds the wheel only, and every setting is documented. scripts/smoke-wheel.sh runs the
commands themselves from an installed wheel.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import yaml
from dotenv import dotenv_values

from bot.cli import build_parser
from bot.core.settings import Settings
from tests.conftest import PG_ADMIN_URL, REPO, RunningServer
from tests.support.process import free_port

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def tracked(folder: str) -> list[Path]:
    out = subprocess.run(["git", "ls-files", folder], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return [REPO / line for line in out.splitlines() if line]


def test_the_wheel_lists_every_package_and_ships_migrations_and_prompts():
    cfg = PYPROJECT["tool"]["setuptools"]
    listed, mapped = set(cfg["packages"]), cfg["package-dir"]
    on_disk = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "bot").rglob("__init__.py")}
    assert on_disk - listed == set(), "add these packages to [tool.setuptools] packages in pyproject.toml"
    assert mapped == {"bot.migrations": "migrations", "bot.prompts": "prompts"}

    def shipped(path: Path) -> bool:
        rel = path.relative_to(REPO)
        for package, folder in mapped.items():
            if rel.parts[0] != folder:
                continue
            sub = rel.parent.relative_to(folder).parts
            if path.suffix == ".py" and ".".join((package, *sub)) in listed:
                return True
            globs = cfg["package-data"].get(package, [])
            return any(fnmatch.fnmatch("/".join((*sub, rel.name)), g) for g in globs)
        return False

    files = tracked("migrations") + tracked("prompts")
    assert any(f.name == "0001_initial.py" for f in files) and any(f.suffix == ".md" for f in files)
    assert [str(f.relative_to(REPO)) for f in files if not shipped(f)] == []


def dockerfile_stages() -> list[list[str]]:
    """Instructions (continuation lines joined) grouped by stage."""
    text = re.sub(r"\\\n\s*", " ", (REPO / "Dockerfile").read_text())
    stages: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        stages[-1].append(line)
    return stages


def test_the_image_installs_the_wheel_only_and_runs_loopline_serve_as_non_root():
    build, final = dockerfile_stages()
    assert any(i.startswith("RUN pip wheel") and "--no-deps" in i for i in build)
    for folder in ("bot", "migrations", "prompts"):
        assert any(i.startswith(f"COPY {folder} ") for i in build), f"the build stage must copy {folder}/"
    copies = [i for i in final if i.startswith(("COPY", "ADD"))]
    assert copies == ["COPY --from=build /dist /tmp/dist"], "the final stage takes the wheel, no sources"
    assert any(i.startswith("RUN pip install") and "/tmp/dist/*.whl" in i for i in final)
    user = [i.split()[1] for i in final if i.startswith("USER ")]
    assert user and user[-1] not in ("root", "0")
    cmd = [i for i in final if i.startswith("CMD ")]
    assert json.loads(cmd[-1][4:]) == ["loopline", "serve"]
    assert build_parser().parse_args(["serve"]).fn.__name__ == "cmd_serve"


def healthcheck_command() -> list[str]:
    _, final = dockerfile_stages()
    [check] = [i for i in final if i.startswith("HEALTHCHECK ")]
    return json.loads(check[check.index("CMD ") + 4:])


def test_the_image_health_check_passes_on_a_healthy_server_and_fails_otherwise(settings, db):
    cmd = healthcheck_command()
    assert cmd[0] == "python"
    srv = RunningServer(settings)
    try:
        r = subprocess.run([sys.executable, *cmd[1:]], env={**os.environ, "PORT": str(srv.port)},
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
    finally:
        srv.stop()
    r = subprocess.run([sys.executable, *cmd[1:]], env={**os.environ, "PORT": str(free_port())},
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0


def compose() -> dict:
    return yaml.safe_load((REPO / "compose.yaml").read_text())


def test_compose_runs_a_web_replica_a_scheduler_and_postgres_with_a_volume_and_health_checks():
    c = compose()
    services = c["services"]
    assert set(services) == {"db", "migrate", "web", "scheduler"}
    parser = build_parser()
    commands = {}
    for name in ("migrate", "web", "scheduler"):
        svc = services[name]
        assert svc["command"][0] == "loopline" and svc["env_file"] == ".env" and svc["build"] == "."
        args = parser.parse_args(svc["command"][1:])  # the installed CLI accepts it
        commands[name] = args
        assert svc["environment"]["DATABASE_URL"].startswith("postgresql://loopline:${POSTGRES_PASSWORD")
        assert svc["environment"]["DATABASE_URL"].endswith("@db:5432/loopline")
    assert commands["web"].fn.__name__ == "cmd_serve" and commands["web"].no_scheduler
    assert commands["scheduler"].fn.__name__ == "cmd_scheduler"
    assert commands["migrate"].fn.__name__ == "cmd_migrate"
    for name in ("web", "scheduler"):
        assert services[name]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
    assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert services["web"]["ports"] == ["${LOOPLINE_PUBLISH_PORT:-3000}:3000"]
    assert "healthcheck" not in services["web"]  # the image's HEALTHCHECK (GET /healthz) applies
    assert services["scheduler"]["healthcheck"]["test"][0] == "CMD"  # asks its --metrics-port
    db = services["db"]
    assert db["image"].startswith("postgres:") and "pg_isready" in db["healthcheck"]["test"]
    volume = db["volumes"][0].split(":")[0]
    assert volume in c["volumes"], "PostgreSQL's data must be on a named volume"


def test_env_example_documents_every_setting_and_holds_no_secret():
    text = (REPO / ".env.example").read_text()
    named = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", text, flags=re.M))
    settings = {name.upper() for name in Settings.model_fields}
    assert settings - named == set(), "document these in .env.example"
    compose_vars = set(re.findall(r"\$\{([A-Z0-9_]+)", (REPO / "compose.yaml").read_text()))
    assert compose_vars - named == set()
    live = dotenv_values(REPO / ".env.example")
    assert live and all(v == "" for v in live.values()), f"only empty values may be live: {live}"
    Settings(_env_file=str(REPO / ".env.example"))  # type: ignore[call-arg]  # copying it as is starts cleanly


def test_replicas_starting_together_on_an_empty_database_all_migrate_it(empty_db_url: str):
    """compose runs a one-shot migrate first, but a rollout elsewhere (or `up` without it) starts every
    replica at once on an empty database, and each brings the schema up to date at start."""
    from sqlalchemy import create_engine, text

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "LOOPLINE_", "DATABASE_"))}
    hold = None
    if empty_db_url.startswith("postgresql"):
        # Line them up: an uncommitted alembic_version table makes every migrate that gets as far as
        # creating it wait; rolling it back lets them all go at the same instant.
        hold = create_engine(empty_db_url.replace("postgresql://", "postgresql+psycopg://", 1)).connect()
        hold.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
    procs = [subprocess.Popen([sys.executable, "-m", "bot", "migrate"], cwd=REPO, text=True,
                              env={**env, "DATABASE_URL": empty_db_url}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT) for _ in range(3)]
    if hold is not None:
        name = empty_db_url.rsplit("/", 1)[1]
        deadline = time.monotonic() + 60
        with create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT").connect() as watch:
            # (autocommit: pg_stat_activity is a snapshot that holds still for a transaction)
            while watch.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = :d AND "
                                     "wait_event_type = 'Lock'"), {"d": name}).scalar() < 3:
                assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "never lined up"
                time.sleep(0.05)
        hold.rollback()
        hold.close()
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], "\n---\n".join(outputs)
    assert all(o.strip().endswith("database schema is up to date") for o in outputs)


def test_the_scheduler_health_check_asks_its_metrics_port(settings, db):
    """compose.yaml's scheduler runs with --metrics-port 9100 and its health check reads /metrics there:
    run that command (with this Python) against a real `loopline scheduler` on that port."""
    svc = compose()["services"]["scheduler"]
    args = build_parser().parse_args(svc["command"][1:])
    assert args.fn.__name__ == "cmd_scheduler" and args.metrics_port == 9100
    test = svc["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python"]
    port = free_port()
    check = [sys.executable, *test[2:]]
    check[-1] = check[-1].replace("127.0.0.1:9100", f"127.0.0.1:{port}")
    env = {**os.environ, "SLACK_BOT_TOKEN": settings.secret("slack_bot_token"), "SLACK_API_URL": settings.slack_api_url,
           "DATABASE_URL": settings.database_url, "LOOPLINE_METRICS_TOKEN": "scrape-me"}
    assert subprocess.run(check, env=env, capture_output=True, timeout=30).returncode != 0  # nothing there
    proc = subprocess.Popen([sys.executable, "-m", "bot", *svc["command"][1:-1], str(port)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while subprocess.run(check, env=env, capture_output=True, timeout=30).returncode != 0:
            assert time.monotonic() < deadline and proc.poll() is None, "the scheduler never became healthy"
            time.sleep(0.3)
        wrong = {**env, "LOOPLINE_METRICS_TOKEN": "not-the-token"}
        assert subprocess.run(check, env=wrong, capture_output=True, timeout=30).returncode != 0
    finally:
        proc.terminate()
        assert proc.wait(15) == 0
