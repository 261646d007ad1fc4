"""Runs `python -m bot …` as a real subprocess (for kill -9 and two-replica tests)."""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BotProcess:
    def __init__(self, args: list[str], env: dict[str, str], *, log: Path, port: int | None = None,
                 nofile: int | None = None):
        """`nofile` lowers the process's open-file limit (a real fault: the descriptors run out)."""
        self.port = port
        self.log_path = log
        self._log = log.open("ab")
        preexec = (lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))) if nofile else None
        self.proc = subprocess.Popen([sys.executable, "-m", "bot", *args], cwd=REPO, stdout=self._log,
                                     stderr=subprocess.STDOUT, env={**os.environ, **env}, preexec_fn=preexec)
        self.url = f"http://127.0.0.1:{port}" if port else ""

    @classmethod
    def serve(cls, env: dict[str, str], *, log: Path, extra: tuple[str, ...] = (), nofile: int | None = None,
              ) -> BotProcess:
        port = free_port()
        p = cls(["serve", "--host", "127.0.0.1", "--port", str(port), *extra], env, log=log, port=port,
                nofile=nofile)
        p.wait_ready()
        return p

    def wait_ready(self, timeout: float = 30) -> None:
        import httpx

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"exited {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"not ready:\n{self.log()}")

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if not self._log.closed:
            self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def bot_env(fake: Any, db_url: str, secret: str, token: str, **extra: str) -> dict[str, str]:
    env = {"SLACK_BOT_TOKEN": token, "SLACK_SIGNING_SECRET": secret, "SLACK_API_URL": fake.base_url,
           "DATABASE_URL": db_url, "LOOPLINE_LOG_FORMAT": "json", "OPENAI_API_KEY": ""}
    env.update(extra)
    return env
