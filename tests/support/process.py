"""Runs `python -m bot …` as a real subprocess (for kill -9 and two-replica tests)."""

from __future__ import annotations

import os
import random
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A port for a child process to listen on. Picked below the kernel's ephemeral range (32768+ here):
    a port the kernel handed out would go back to the pool the moment it is released, and an
    outgoing connection of the other suite running beside this one could take it before the child binds."""
    rng = random.Random()
    while True:
        port = rng.randrange(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


class BotProcess:
    def __init__(self, args: list[str], env: dict[str, str], *, log: Path, port: int | None = None,
                 preexec_fn: Callable[[], None] | None = None, nofile: int | None = None):
        """`nofile` lowers the process's open-file limit (a real fault: the descriptors run out)."""
        self.port = port
        self.log_path = log
        self._log = log.open("ab")

        def preexec() -> None:
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
            if preexec_fn:
                preexec_fn()

        # With preexec_fn (e.g. a file-size limit) the child's output goes through a pipe that this
        # process copies to the log: a limit meant for the database must not also cut the log short.
        self.proc = subprocess.Popen([sys.executable, "-m", "bot", *args], cwd=REPO,
                                     stdout=subprocess.PIPE if preexec_fn else self._log,
                                     stderr=subprocess.STDOUT, env={**os.environ, **env},
                                     preexec_fn=preexec if (preexec_fn or nofile) else None)
        if preexec_fn:
            threading.Thread(target=self._copy_log, daemon=True).start()
        self.url = f"http://127.0.0.1:{port}" if port else ""

    def _copy_log(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self._log.write(line)
                self._log.flush()
            except ValueError:  # closed by stop()/kill9()
                return

    @classmethod
    def serve(cls, env: dict[str, str], *, log: Path, extra: tuple[str, ...] = (),
              preexec_fn: Callable[[], None] | None = None, nofile: int | None = None) -> BotProcess:
        port = free_port()
        p = cls(["serve", "--host", "127.0.0.1", "--port", str(port), *extra], env, log=log, port=port,
                preexec_fn=preexec_fn, nofile=nofile)
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
