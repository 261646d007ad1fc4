"""A fake OpenAI-compatible API: a real HTTP server for tests, no mocking of the client.

It speaks just enough of the OpenAI wire format for the real `openai` client:

* ``POST /v1/chat/completions`` -> a ``chat.completion`` object (id, object, created,
  model, choices[0].message.content, finish_reason, usage). With
  ``response_format={"type": "json_schema", ...}`` the content is a JSON object with
  one string per schema property, derived from the request: ``title`` is built from
  the most frequent word in the ``<feedback ...>...</feedback>`` quotes (e.g. "Export
  feedback"), ``summary`` is one sentence, ``headline`` names the first ``<theme>``.
  Without a response_format the content is a fixed sentence.
* ``POST /v1/embeddings`` -> deterministic vectors from a SHA-256 of each input text
  (unit length, ``embedding_dim`` floats, or the request's ``dimensions``). Honours
  ``encoding_format="base64"``, which the openai client sends by default.

Usage::

    from tests.support.fake_openai import FakeOpenAI

    with FakeOpenAI() as fake:
        client = OpenAI(api_key="test", base_url=fake.base_url, max_retries=0)
        client.chat.completions.create(model="m", messages=[...])
        fake.requests            # every JSON request body received, in order (list[dict])
        fake.chat_requests       # ... only chat completions
        fake.mode = "malformed"  # how the next requests are answered (see below)

Pytest fixture: ``fake_openai`` (a started server, closed after the test). To use it
in a test module add ``pytest_plugins = ["tests.support.fake_openai"]`` (import the class for
type hints only, under ``if TYPE_CHECKING:``, so pytest can assert-rewrite the plugin);
to make it available to the whole suite, put ``pytest_plugins = ["tests.support.fake_openai"]``
in a root ``conftest.py`` instead.

Modes (``fake.mode``, default ``"normal"``):

=================  ==========================================================
``normal``         valid answer derived from the request
``malformed``      content is not JSON
``wrong_schema``   valid JSON with the wrong fields
``too_long``       right fields, values far longer than any sane limit
``empty``          right fields, empty strings
``refusal``        content null, ``message.refusal`` set
``slow``           sleeps ``fake.slow_seconds`` (default 5) then answers normally
``500``            HTTP 500 with an OpenAI-style error body
``429``            HTTP 429 with ``Retry-After: 0``
=================  ==========================================================

``500``, ``429`` and ``slow`` also apply to embeddings; the content modes only to chat.
Per-request control, checked in this order before ``fake.mode``:

* ``fake.mode_when["some text"] = "malformed"``: any chat request whose body (as
  JSON, non-ASCII unescaped) contains that text gets that mode (order-independent,
  handy for "theme 2 fails"). Prompt text may itself be escaped by the code under
  test (e.g. ``&`` -> ``&amp;``), so plain words make the safest needles.
* ``fake.queue_modes("500", "normal")``: the next chat requests take these modes in turn.

``fake.headers`` holds the request headers (lower-cased names) in the same order as
``fake.requests``. The server is ``ThreadingHTTPServer`` on 127.0.0.1, port 0; closing
it wakes any ``slow`` handler so teardown stays fast.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import struct
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import pytest

MODES = frozenset(
    {"normal", "malformed", "wrong_schema", "too_long", "empty", "refusal", "slow", "500", "429"}
)

_FEEDBACK_RE = re.compile(r"<feedback\b[^>]*>(.*?)</feedback>", re.DOTALL)
_THEME_RE = re.compile(r"<theme\b[^>]*>\s*(.*?)\s*</theme>", re.DOTALL)
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z'-]{3,}")
# Words too common to name a theme after (the fake only looks at 4+ letter words).
_STOPWORD_TEXT = """
this that with from have when there their they them what which would could should about into
just than then also been were will your only very more most some such like make does doesn't
dont don't can't cannot it's isn't after before every really please
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def _most_frequent_word(texts: list[str]) -> str:
    words = Counter(
        w.lower() for text in texts for w in _WORD_RE.findall(text) if w.lower() not in _STOPWORDS
    )
    if not words:
        return "general"
    # Ties broken alphabetically so answers are deterministic.
    return min(words.items(), key=lambda kv: (-kv[1], kv[0]))[0]


def fake_embedding(text: str, dim: int) -> list[float]:
    """Deterministic unit vector for `text` (same text -> same vector, any process)."""
    values: list[float] = []
    counter = 0
    while len(values) < dim:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        values.extend((b / 127.5) - 1.0 for b in digest)
        counter += 1
    vec = values[:dim]
    norm = sum(v * v for v in vec) ** 0.5 or 1.0
    return [v / norm for v in vec]


class FakeOpenAI:
    """See the module docstring. Attributes tests read or set:

    base_url, requests, headers, chat_requests, embedding_requests, mode,
    mode_when, slow_seconds, embedding_dim, queue_modes().
    """

    def __init__(self, *, mode: str = "normal", slow_seconds: float = 5.0, embedding_dim: int = 64) -> None:
        self.mode = mode
        self.mode_when: dict[str, str] = {}
        self.slow_seconds = slow_seconds
        self.embedding_dim = embedding_dim
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.paths: list[str] = []
        self._queue: deque[str] = deque()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._counter = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        # Daemon threads and no join on close: a `slow` handler must not hold up teardown.
        self._server.daemon_threads = True
        self._server.block_on_close = False
        # A short poll interval: shutdown() waits up to one interval, once per test.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-openai", daemon=True
        )
        self._started = False

    # -------------------------------------------------------------- lifecycle

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> FakeOpenAI:
        if not self._started:
            self._thread.start()
            self._started = True
        return self

    def close(self) -> None:
        self._closing.set()
        if self._started:
            self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------ test helpers

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        # Fail in the test that sets a typo, not later inside the server thread.
        self._check_mode(value)
        self._mode = value

    def queue_modes(self, *modes: str) -> None:
        """The next len(modes) chat requests use these modes, in order."""
        for mode in modes:
            self._check_mode(mode)
        with self._lock:
            self._queue.extend(modes)

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                r for r, p in zip(self.requests, self.paths, strict=True) if p.endswith("/chat/completions")
            ]

    @property
    def embedding_requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r, p in zip(self.requests, self.paths, strict=True) if p.endswith("/embeddings")]

    @staticmethod
    def _check_mode(mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown fake_openai mode {mode!r}; expected one of {sorted(MODES)}")

    # -------------------------------------------------------------- internals

    def _record(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> int:
        with self._lock:
            self.requests.append(body)
            self.headers.append(headers)
            self.paths.append(path)
            self._counter += 1
            return self._counter

    def _chat_mode(self, raw: str) -> str:
        with self._lock:
            for needle, mode in self.mode_when.items():
                if needle in raw:
                    return mode
            if self._queue:
                return self._queue.popleft()
            return self.mode

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, like the real API
            # Headers and body go out in separate writes; with Nagle on, the
            # client's delayed ACK adds ~40 ms to every response.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep pytest output clean

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length).decode("utf-8", errors="replace")
                try:
                    body = json.loads(raw) if raw else {}
                except json.JSONDecodeError:
                    self._send(400, _error("request body is not JSON", "invalid_request_error"))
                    return
                path = self.path.split("?", 1)[0]
                number = fake._record(path, body, {k.lower(): v for k, v in self.headers.items()})
                if path.endswith("/chat/completions"):
                    # Match needles against decoded JSON: the client may \u-escape non-ASCII.
                    mode = fake._chat_mode(json.dumps(body, ensure_ascii=False))
                elif path.endswith("/embeddings"):
                    mode = fake.mode if fake.mode in {"slow", "500", "429"} else "normal"
                else:
                    self._send(404, _error(f"unknown path {path}", "invalid_request_error"))
                    return
                if mode not in MODES:
                    self._send(400, _error(f"fake_openai: unknown mode {mode!r}", "invalid_request_error"))
                    return
                # Event.wait instead of sleep: close() wakes a `slow` handler so teardown is quick.
                if mode == "slow" and fake._closing.wait(fake.slow_seconds):
                    return
                if mode == "500":
                    self._send(
                        500, _error("The server had an error processing your request.", "server_error")
                    )
                elif mode == "429":
                    self._send(
                        429,
                        _error("Rate limit reached.", "rate_limit_exceeded"),
                        {"Retry-After": "0"},
                    )
                elif path.endswith("/chat/completions"):
                    self._send(200, _chat_response(body, mode, number))
                else:
                    self._send(200, _embedding_response(body, fake.embedding_dim))

            def _send(
                self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and hung up; that is the point of `slow`

        return Handler


def _error(message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": kind}}


def _text_of(content: Any) -> str:
    """Message content may be a string or a list of {"type": "text", "text": ...} parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def _answer_for(body: dict[str, Any]) -> tuple[dict[str, str] | None, list[str]]:
    """The normal-mode JSON answer (None if no json_schema was asked for)."""
    user_text = "\n".join(
        _text_of(m.get("content")) for m in body.get("messages", []) if m.get("role") == "user"
    )
    fmt = body.get("response_format") or {}
    if fmt.get("type") != "json_schema":
        return None, []
    props = list(((fmt.get("json_schema") or {}).get("schema") or {}).get("properties") or {})
    quotes = _FEEDBACK_RE.findall(user_text)
    word = _most_frequent_word(quotes or [user_text])
    themes = _THEME_RE.findall(user_text)
    answer: dict[str, str] = {}
    for prop in props:
        if prop == "title":
            answer[prop] = f"{word.capitalize()} feedback"
        elif prop == "summary":
            answer[prop] = f"{max(len(quotes), 1)} customers mention {word}."
        elif prop == "headline":
            top = themes[0].split(":", 1)[0].strip() if themes else word
            answer[prop] = f"This period's top theme: {top}."[:200]
        else:
            answer[prop] = f"fake {prop}"
    return answer, props


def _chat_response(body: dict[str, Any], mode: str, number: int) -> dict[str, Any]:
    answer, props = _answer_for(body)
    content: str | None
    refusal: str | None = None
    if mode == "malformed":
        content = 'Sure! Here is your JSON: {"title": "Export problems", "summary": '
    elif mode == "wrong_schema":
        content = json.dumps({"name": "Something", "description": "Not the fields you asked for."})
    elif mode == "too_long":
        content = json.dumps({p: "Very long text. " * 100 for p in props or ["title"]})
    elif mode == "empty":
        content = json.dumps(dict.fromkeys(props or ["title"], ""))
    elif mode == "refusal":
        content, refusal = None, "I can't help with that."
    else:
        content = json.dumps(answer) if answer is not None else "This is a reply from the fake OpenAI server."
    prompt_chars = sum(len(_text_of(m.get("content"))) for m in body.get("messages", []))
    prompt_tokens = max(1, prompt_chars // 4)
    completion_tokens = max(1, len(content or refusal or "") // 4)
    return {
        "id": f"chatcmpl-fake-{number}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "fake-model"),
        "system_fingerprint": "fp_fake",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def _embedding_response(body: dict[str, Any], default_dim: int) -> dict[str, Any]:
    raw_input = body.get("input", [])
    texts = [raw_input] if isinstance(raw_input, str) else [str(t) for t in raw_input]
    dim = int(body.get("dimensions") or default_dim)
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for index, text in enumerate(texts):
        vec = fake_embedding(text, dim)
        # base64 = little-endian float32 bytes, what the openai client decodes by default.
        encoded: Any = base64.b64encode(struct.pack(f"<{dim}f", *vec)).decode() if as_base64 else vec
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    tokens = sum(max(1, len(t) // 4) for t in texts)
    return {
        "object": "list",
        "data": data,
        "model": body.get("model", "fake-embedding"),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A started FakeOpenAI server, closed after the test."""
    with FakeOpenAI() as server:
        yield server
