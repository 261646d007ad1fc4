"""Black-box smoke of an installed Loopline: run by scripts/smoke-wheel.sh with the Python of a fresh
virtual environment that holds the wheel and nothing from the source tree.

Everything goes through the `loopline` console script and HTTP, as a user or a container would use it:
migrate, serve answering /healthz, one /feedback signed as Slack signs it, doctor, the compose shape
(a web-only replica and a scheduler), and the demo. The Web API is the fake Slack shipped in the package
(bot.devtools.fakeslack, which `loopline demo` needs anyway). Every step runs and reports, so one run
shows everything that is broken; the exit code is 1 if any step failed.

Add a step with @step("name"): it gets the Smoke object and raises Failed (or any exception) to fail.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

# A signing secret shaped like Slack's (32 hex characters) and a bot token, both made up.
SIGNING_SECRET = "5c1d8e0f3a9b47c2a1e6d4f08b7c3e92"
BOT_TOKEN = "xoxb-1000000001-2000000002-smokeTestToken0000000"
FEEDBACK = "Smoke: Acme wants SSO via Okta — <!channel> ça urge & it's blocking 🙏"
TIMEOUT = 90.0  # seconds for one command; a cold start on a busy 2-core machine takes a few

STEPS: list[tuple[str, Callable[[Smoke], str | None]]] = []


class Failed(Exception):
    pass


def step(name: str) -> Callable[[Callable[[Smoke], str | None]], Callable[[Smoke], str | None]]:
    def add(fn: Callable[[Smoke], str | None]) -> Callable[[Smoke], str | None]:
        STEPS.append((name, fn))
        return fn

    return add


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tail(text: str, lines: int = 25) -> str:
    return "\n".join("      | " + line for line in text.strip().splitlines()[-lines:])


class Process:
    """A long-running `loopline …` with its output in a file (read on failure)."""

    def __init__(self, smoke: Smoke, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        self.log_path = smoke.work / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen([smoke.loopline, *args], cwd=smoke.work, env=smoke.env(**(env or {})),
                                     stdout=self._log, stderr=subprocess.STDOUT)
        smoke.processes.append(self.proc)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, check: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise Failed(f"exited with {self.proc.returncode} before {what}:\n{tail(self.log())}")
            if check():
                return
            time.sleep(0.1)
        raise Failed(f"no {what} after {timeout:.0f} s:\n{tail(self.log())}")

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM, as `docker stop` and compose send: it must exit in time, with nothing logged as an error.

        Exit code 0, or death by the SIGTERM itself: uvicorn re-raises the signal after its graceful
        shutdown so that a supervisor sees why it stopped (143 in a container).
        """
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self._log.close()
                raise Failed(f"did not stop within {timeout:.0f} s of SIGTERM:\n{tail(self.log())}") from None
        self._log.close()
        if self.proc.returncode not in (0, -signal.SIGTERM):
            raise Failed(f"exit code {self.proc.returncode} after SIGTERM:\n{tail(self.log())}")
        errors = [line for line in self.log().splitlines() if '"level": "error"' in line or "Traceback" in line]
        if errors:
            raise Failed("errors logged:\n" + tail("\n".join(errors)))


class Smoke:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.bin = Path(sys.executable).parent
        self.loopline = str(self.bin / "loopline")
        self.db_url = f"sqlite:///{work / 'smoke.db'}"
        self.fake: Any = None
        self.server: Process | None = None
        self.processes: list[subprocess.Popen[bytes]] = []
        self.port = 0

    def env(self, **extra: str) -> dict[str, str]:
        """The environment a user's shell would have: no Loopline settings but ours, no source tree."""
        keep = {k: v for k, v in os.environ.items()
                if not k.startswith(("SLACK_", "LOOPLINE_", "OPENAI_", "DATABASE_", "PYTHON", "VIRTUAL_ENV"))}
        keep["PATH"] = f"{self.bin}{os.pathsep}{keep.get('PATH', '')}"
        settings = {"DATABASE_URL": self.db_url, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                    "LOOPLINE_EMBEDDER": "tfidf", "LOOPLINE_LOG_FORMAT": "json"}
        if self.fake is not None:
            settings["SLACK_API_URL"] = self.fake.base_url
        return {**keep, **settings, **extra}

    def run(self, *args: str, expect: int | None = 0, **env: str) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([self.loopline, *args], cwd=self.work, env=self.env(**env), capture_output=True,
                           text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
        if expect is not None and r.returncode != expect:
            raise Failed(f"`loopline {' '.join(args)}` exited with {r.returncode} (expected {expect}):\n"
                         f"{tail(r.stderr or r.stdout)}")
        return r

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def http(method: str, url: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def _get(url: str) -> str:
    try:
        return http("GET", url)[1]
    except OSError:
        return ""


def healthy(url: str) -> bool:
    try:
        status, body = http("GET", url + "/healthz")
    except OSError:
        return False
    return status == 200 and json.loads(body).get("ok") is True


def slack_signed(body: str, secret: str = SIGNING_SECRET) -> dict[str, str]:
    """Headers Slack adds: v0 HMAC-SHA256 of `v0:timestamp:body` with the signing secret."""
    ts = str(int(time.time()))
    sig = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={sig}",
            "Content-Type": "application/x-www-form-urlencoded"}


# -- the steps ---------------------------------------------------------------------------------------

@step("installed from the wheel, not the source tree")
def _installed(s: Smoke) -> str:
    import bot

    where = Path(bot.__file__).resolve()
    if Path(sys.prefix).resolve() not in where.parents:
        raise Failed(f"bot is imported from {where}, outside this virtual environment ({sys.prefix})")
    if not Path(s.loopline).is_file():
        raise Failed(f"no console script at {s.loopline}")
    return f"bot from {where.parent}"


@step("fake Slack Web API (from the installed package)")
def _fake(s: Smoke) -> str:
    from bot.devtools.fakeslack import FakeSlack

    s.fake = FakeSlack().start()
    s.fake.add_user("U0REP", "sam.sales", real_name="Sam Sales", tz="Europe/Berlin")
    s.fake.add_channel("C0SALES", "sales", members=["U0REP"])
    return s.fake.base_url


@step("loopline migrate")
def _migrate(s: Smoke) -> str:
    r = s.run("migrate")
    if "up to date" not in r.stdout:
        raise Failed(f"unexpected output: {r.stdout!r}")
    return r.stdout.strip()


@step("loopline serve (the image's entry command) answers /healthz")
def _serve(s: Smoke) -> str:
    s.port = free_port()
    # The container runs plain `loopline serve` with PORT; --host keeps this one on the loopback.
    s.server = Process(s, "serve", ["serve", "--host", "127.0.0.1"], env={"PORT": str(s.port)})
    t0 = time.monotonic()
    s.server.wait_for(lambda: healthy(s.url), "healthy /healthz")
    status, body = http("GET", s.url + "/healthz")
    return f"{status} {body} after {time.monotonic() - t0:.1f} s"


@step("one /feedback signed like Slack is captured and stored")
def _feedback(s: Smoke) -> str:
    if s.server is None:
        raise Failed("no server (see above)")
    body = urllib.parse.urlencode({
        "token": "deprecated", "team_id": "T0001", "team_domain": "example", "channel_id": "C0SALES",
        "channel_name": "sales", "user_id": "U0REP", "user_name": "sam.sales", "command": "/feedback",
        "text": FEEDBACK, "api_app_id": "A0001", "is_enterprise_install": "false",
        "response_url": s.fake.url.rstrip("/") + "/webhook/smoke", "trigger_id": "1.2.smoke"})
    t0 = time.monotonic()
    status, answer = http("POST", s.url + "/slack/events", body.encode(), slack_signed(body))
    ack_ms = (time.monotonic() - t0) * 1000
    if status != 200 or "FB-1" not in answer:
        raise Failed(f"ack {status}: {answer[:300]}")
    unsigned, _ = http("POST", s.url + "/slack/events", body.encode(), {**slack_signed(body, "0" * 32)})
    if unsigned != 401:
        raise Failed(f"a request signed with another secret got {unsigned}, not 401")
    records = [json.loads(line) for line in s.run("export", "feedback").stdout.splitlines() if line.strip()]
    if [r["text"] for r in records] != [FEEDBACK]:
        raise Failed(f"export shows {records!r}")
    return f"acked FB-1 in {ack_ms:.0f} ms; exported {records[0]['id']} with its text intact"


@step("GET /metrics (Prometheus text) counts that /feedback")
def _metrics(s: Smoke) -> str:
    if s.server is None:
        raise Failed("no server (see above)")
    status, text = http("GET", s.url + "/metrics")
    if status != 200:
        raise Failed(f"{status}: {text[:300]}")
    want = ('loopline_slack_requests_total{code="200",kind="command",outcome="acked"} 1.0',
            'loopline_slack_requests_total{code="401",kind="unknown",outcome="rejected"} 1.0',
            'loopline_slack_ack_seconds_count{kind="command"} 1.0', "loopline_database_up 1.0")
    missing = [w for w in want if w not in text]
    if missing:
        raise Failed(f"missing {missing} in:\n{tail(text, 60)}")
    if FEEDBACK[:20] in text or SIGNING_SECRET in text:
        raise Failed("/metrics shows a secret or the feedback's text")
    return f"{sum(1 for line in text.splitlines() if line.startswith('loopline_'))} loopline_ samples"


@step("loopline doctor --url (every check passes)")
def _doctor(s: Smoke) -> str:
    r = s.run("doctor", "--url", s.url, expect=None)
    if r.returncode != 0:
        raise Failed(f"exited with {r.returncode}:\n{tail(r.stdout + r.stderr)}")
    lines = r.stdout.strip().splitlines()
    return f"{sum(line.startswith('ok ') for line in lines)} ok, {sum(line.startswith('skipped ') for line in lines)} skipped"


@step("loopline serve stops cleanly on SIGTERM")
def _stop(s: Smoke) -> str:
    if s.server is None:
        raise Failed("no server (see above)")
    t0 = time.monotonic()
    s.server.stop()
    return f"in {time.monotonic() - t0:.1f} s, exit {s.server.proc.returncode}"


@step("compose shape: `serve --no-scheduler` and `scheduler` side by side")
def _compose(s: Smoke) -> str:
    s.port = free_port()
    web = Process(s, "web", ["serve", "--no-scheduler", "--host", "127.0.0.1", "--port", str(s.port)])
    metrics_port = free_port()
    sched = Process(s, "scheduler", ["scheduler", "--metrics-host", "127.0.0.1", "--metrics-port", str(metrics_port)])
    try:
        web.wait_for(lambda: healthy(s.url), "healthy /healthz")
        sched.wait_for(lambda: "scheduler and worker running" in sched.log(), "'scheduler and worker running'")
        # compose.yaml's health check for the scheduler reads this from its --metrics-port.
        sched.wait_for(lambda: "loopline_worker_running 1.0" in _get(f"http://127.0.0.1:{metrics_port}/metrics"),
                       "loopline_worker_running 1.0 on --metrics-port")
    finally:
        try:
            web.stop()
        finally:
            sched.stop()
    return "both up (the scheduler's --metrics-port answering), both stopped cleanly"


@step("loopline demo")
def _demo(s: Smoke) -> str:
    r = s.run("demo")
    if "FB-1" not in r.stdout or "Web API calls" not in r.stdout:
        raise Failed(f"unexpected output:\n{tail(r.stdout)}")
    return f"{len(r.stdout.splitlines())} lines of output"


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="loopline-smoke-run-"))
    smoke = Smoke(work)
    failed = []
    t_all = time.monotonic()
    try:
        for name, fn in STEPS:
            t0 = time.monotonic()
            try:
                detail = fn(smoke)
                print(f"  ok      {name} ({time.monotonic() - t0:.1f} s){': ' + detail if detail else ''}", flush=True)
            except Exception as e:
                failed.append(name)
                what = str(e) if isinstance(e, Failed) else f"{type(e).__name__}: {e}"
                print(f"  FAILED  {name} ({time.monotonic() - t0:.1f} s): {what}", flush=True)
    finally:
        for proc in smoke.processes:  # left running by a failed step
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if smoke.fake is not None:
            smoke.fake.stop()
        shutil.rmtree(work, ignore_errors=True)
    total = time.monotonic() - t_all
    if failed:
        print(f"smoke: {len(failed)} of {len(STEPS)} steps failed ({total:.0f} s): {', '.join(failed)}")
        return 1
    print(f"smoke: all {len(STEPS)} steps passed ({total:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
