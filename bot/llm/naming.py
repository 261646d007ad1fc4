"""Optional LLM step: name/summarise already-found themes and write the headline.

Design constraints (why the code looks the way it does):

* The digest must always go out. Every failure (HTTP error, timeout, refusal,
  malformed or out-of-bounds JSON) turns into `None` for that slot and the
  caller keeps the offline text; `name_themes` never raises.
* Cost is bounded whatever the feedback volume: one call per theme at most,
  one for the headline, a capped prompt per call (representative quotes only,
  each truncated), `max_tokens` on every completion, and a total token budget
  per digest after which no more calls are made.
* Customer text is data. Quotes are HTML-escaped and wrapped in
  `<feedback>` markers, so no quote can close its marker early; the system
  prompt (a file in `prompts/`) tells the model to ignore instructions inside.
* Only plain `chat.completions.create` with `response_format=json_schema` is
  used (no `.parse` helpers), so any OpenAI-compatible server works and the
  test fake exercises exactly the production path.
"""

from __future__ import annotations

import html
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import openai
from openai import OpenAI
from openai.types.chat import ChatCompletionMessageParam
from openai.types.shared_params import ResponseFormatJSONSchema
from pydantic import BaseModel, ValidationError

from bot.llm.prompts import load_prompt, render_prompt
from bot.llm.schemas import (
    HEADLINE_MAX_CHARS,
    SUMMARY_MAX_CHARS,
    TITLE_MAX_CHARS,
    HeadlineText,
    ThemeText,
    strict_json_schema,
)
from bot.themes.types import Theme, ThemeItem

logger = logging.getLogger(__name__)

_ModelT = TypeVar("_ModelT", bound=BaseModel)

THEME_SYSTEM_PROMPT = "theme_summary.system"
THEME_USER_PROMPT = "theme_summary.user"
HEADLINE_SYSTEM_PROMPT = "digest_headline.system"
HEADLINE_USER_PROMPT = "digest_headline.user"

# Completion caps. A 60-char title + 400-char summary is ~130 tokens of JSON;
# 300 leaves room for tokenizer variance without letting a runaway answer cost much.
THEME_MAX_COMPLETION_TOKENS = 300
HEADLINE_MAX_COMPLETION_TOKENS = 150

# The headline prompt lists at most this many themes, so its size is bounded too.
HEADLINE_MAX_THEMES = 10

# Budget estimates use ~3 UTF-8 bytes per token: pessimistic for English
# (usually ~4-5 bytes) so the estimate errs towards stopping early, and bytes
# rather than characters so CJK/emoji-heavy feedback (3-4 bytes per character,
# often 1+ token each) is not underestimated. Plus a per-message allowance.
_BYTES_PER_TOKEN = 3.0
_TOKENS_PER_MESSAGE = 8

# After this many consecutive transport/API errors the service is treated as
# down: 60 themes x a 20 s timeout would otherwise stall the digest for 20 min.
_MAX_CONSECUTIVE_ERRORS = 3
# Errors that will not fix themselves within one digest (bad key, unknown model).
_FATAL_ERRORS: tuple[type[Exception], ...] = (
    openai.AuthenticationError,
    openai.PermissionDeniedError,
    openai.NotFoundError,
)

_ATTR_MAX_CHARS = 40
_CODE_FENCE = re.compile(r"^```[A-Za-z0-9_-]*\s*\n?(.*?)\n?```$", re.DOTALL)


@dataclass
class LlmDigestText:
    """What the LLM step produced for one digest.

    `themes[i]` corresponds to the i-th input theme; `None` means "keep the
    offline title/summary" (call failed, was invalid, or was skipped for budget).
    """

    themes: list[ThemeText | None]
    headline: str | None = None
    calls: int = 0  # HTTP requests attempted (never more than len(themes) + 1)
    prompt_tokens: int = 0  # as reported by the server's `usage`
    completion_tokens: int = 0
    failures: int = 0  # calls that produced nothing usable
    skipped: int = 0  # themes/headline not attempted (budget spent or API down)
    budget_tokens_used: int = 0  # what the budget was charged (usage, else estimate)

    @property
    def named(self) -> int:
        return sum(1 for t in self.themes if t is not None)

    def apply_to(self, themes: list[Theme]) -> None:
        """Overwrite title/summary of `themes` (the list that was named) where the LLM succeeded."""
        if len(themes) != len(self.themes):
            raise ValueError("apply_to needs the same list of themes that was named")
        for theme, text in zip(themes, self.themes, strict=True):
            if text is not None:
                theme.title = text.title
                theme.summary = text.summary


@dataclass
class _RunState:
    result: LlmDigestText
    consecutive_errors: int = 0
    api_down: bool = False
    warned_budget: bool = field(default=False)


def estimate_tokens(messages: Sequence[ChatCompletionMessageParam]) -> int:
    """Pessimistic prompt-token estimate without a tokenizer dependency."""
    size = sum(len(str(m.get("content") or "").encode("utf-8")) for m in messages)
    return math.ceil(size / _BYTES_PER_TOKEN) + _TOKENS_PER_MESSAGE * len(messages)


def neutralize(text: str, *, max_chars: int | None = None) -> str:
    """Make customer-derived text safe to place between prompt markers.

    Whitespace is collapsed (fewer tokens, no fake "new section" lines), the
    text is truncated *before* escaping (so an entity is never cut in half),
    then `&`, `<`, `>` are HTML-escaped: with no raw `<` left, the text cannot
    contain `</feedback>` or any other marker, whatever its case or spacing.
    """
    flat = " ".join(text.split())
    if max_chars is not None and len(flat) > max_chars:
        flat = flat[: max(max_chars - 1, 0)].rstrip() + "…"
    return html.escape(flat, quote=False)


def _attr(value: str) -> str:
    # Attribute values additionally escape quotes so they cannot end the attribute.
    return html.escape(" ".join(value.split())[:_ATTR_MAX_CHARS], quote=True)


def _response_format(name: str, model: type[BaseModel]) -> ResponseFormatJSONSchema:
    return {
        "type": "json_schema",
        "json_schema": {"name": name, "strict": True, "schema": strict_json_schema(model)},
    }


_THEME_FORMAT = _response_format("theme_text", ThemeText)
_HEADLINE_FORMAT = _response_format("digest_headline", HeadlineText)


def _strip_code_fence(content: str) -> str:
    # Servers that ignore response_format often wrap JSON in ```json fences.
    stripped = content.strip()
    match = _CODE_FENCE.match(stripped)
    return match.group(1).strip() if match else stripped


class ThemeNamer:
    """Names themes with an OpenAI-compatible chat model, within a fixed budget."""

    def __init__(
        self,
        api_key: str,
        base_url: str | None,
        model: str,
        timeout: float = 20.0,
        max_quote_chars: int = 400,
        max_items_per_theme: int = 12,
        max_total_tokens: int = 24000,
        *,
        token_limit_param: Literal["max_tokens", "max_completion_tokens"] = "max_tokens",
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if max_quote_chars < 1 or max_items_per_theme < 1 or max_total_tokens < 1:
            raise ValueError("max_quote_chars, max_items_per_theme and max_total_tokens must be >= 1")
        self.model = model
        self.timeout = timeout
        self.max_quote_chars = max_quote_chars
        self.max_items_per_theme = max_items_per_theme
        self.max_total_tokens = max_total_tokens
        # `max_tokens` is what every compatible server understands; OpenAI's
        # reasoning models only accept `max_completion_tokens`.
        self.token_limit_param = token_limit_param
        # max_retries=0: a retry would be a second billed call for the same
        # theme and would multiply the worst-case latency; a failed theme just
        # keeps its offline text.
        self._client = OpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)

    def close(self) -> None:
        self._client.close()

    # ------------------------------------------------------------------ public

    def name_themes(
        self,
        themes: list[Theme],
        items_by_id: dict[int, ThemeItem],
        *,
        period_label: str,
    ) -> LlmDigestText:
        """Return LLM text for each theme (or None) and a headline (or None).

        Themes are processed in the given order, so put the most important
        first: when the budget runs out it is the tail that keeps offline text.
        Never raises.
        """
        state = _RunState(result=LlmDigestText(themes=[None] * len(themes)))
        try:
            self._run(state, themes, items_by_id, period_label)
        except Exception:  # the digest must go out even if this step has a bug
            logger.exception("LLM naming step failed unexpectedly; keeping offline text")
        return state.result

    # ---------------------------------------------------------------- internals

    def _run(
        self,
        state: _RunState,
        themes: list[Theme],
        items_by_id: dict[int, ThemeItem],
        period_label: str,
    ) -> None:
        result = state.result
        if not themes:
            return

        # Reserve room for the headline up front (sized with offline text,
        # which is truncated to the same caps as LLM text in the prompt), so a
        # large digest does not spend everything on themes and lose the headline.
        headline_reserve = self._call_cost(
            self._headline_messages(themes, [None] * len(themes), period_label),
            HEADLINE_MAX_COMPLETION_TOKENS,
        )
        theme_budget = self.max_total_tokens - headline_reserve

        for index, theme in enumerate(themes):
            if state.api_down:
                result.skipped += len(themes) - index
                break
            messages = self._theme_messages(theme, items_by_id, period_label)
            if messages is None:
                # No quotes to show: the model could only rephrase the offline
                # keyphrases, which is not worth a call.
                result.skipped += 1
                continue
            cost = self._call_cost(messages, THEME_MAX_COMPLETION_TOKENS)
            if result.budget_tokens_used + cost > theme_budget:
                # Stop rather than skip-and-continue: themes are in priority
                # order and similarly sized, so later ones would not fit either.
                logger.warning(
                    "LLM token budget (%d) reached after %d of %d themes; the rest keep offline text",
                    self.max_total_tokens,
                    index,
                    len(themes),
                )
                result.skipped += len(themes) - index
                break
            result.themes[index] = self._complete(
                state,
                messages,
                _THEME_FORMAT,
                ThemeText,
                THEME_MAX_COMPLETION_TOKENS,
                cost,
                what=f"theme {index + 1}/{len(themes)}",
            )

        if state.api_down:
            result.skipped += 1
            return
        messages = self._headline_messages(themes, result.themes, period_label)
        cost = self._call_cost(messages, HEADLINE_MAX_COMPLETION_TOKENS)
        if result.budget_tokens_used + cost > self.max_total_tokens:
            logger.warning("LLM token budget (%d) spent; keeping the offline headline", self.max_total_tokens)
            result.skipped += 1
            return
        headline = self._complete(
            state,
            messages,
            _HEADLINE_FORMAT,
            HeadlineText,
            HEADLINE_MAX_COMPLETION_TOKENS,
            cost,
            what="headline",
        )
        result.headline = headline.headline if headline is not None else None

    @staticmethod
    def _call_cost(messages: Sequence[ChatCompletionMessageParam], max_completion: int) -> int:
        return estimate_tokens(messages) + max_completion

    def _theme_messages(
        self, theme: Theme, items_by_id: dict[int, ThemeItem], period_label: str
    ) -> list[ChatCompletionMessageParam] | None:
        # Only representative items go out (never the whole cluster), so the
        # prompt size is bounded by max_items_per_theme x max_quote_chars.
        ids = theme.representative_ids or theme.item_ids
        items = [items_by_id[i] for i in ids if i in items_by_id and items_by_id[i].text.strip()]
        items = items[: self.max_items_per_theme]
        blocks = []
        for item in items:
            attrs = f'id="{item.id}"'
            # kind/area help the summary; customer names and ARR are left out
            # on purpose (not needed for naming, and not ours to send).
            if item.kind:
                attrs += f' kind="{_attr(item.kind)}"'
            if item.area:
                attrs += f' area="{_attr(item.area)}"'
            text = neutralize(item.text, max_chars=self.max_quote_chars)
            blocks.append(f"<feedback {attrs}>\n{text}\n</feedback>")
        if not blocks:
            return None
        keyphrases = neutralize("; ".join(theme.keyphrases[:10]), max_chars=300)
        user = render_prompt(
            THEME_USER_PROMPT,
            period_label=neutralize(period_label, max_chars=80),
            item_count=theme.count,
            shown_count=len(blocks),
            keyphrases=keyphrases,
            feedback="\n".join(blocks),
        )
        return [
            {"role": "system", "content": load_prompt(THEME_SYSTEM_PROMPT)},
            {"role": "user", "content": user},
        ]

    def _headline_messages(
        self, themes: list[Theme], named: Sequence[ThemeText | None], period_label: str
    ) -> list[ChatCompletionMessageParam]:
        blocks = []
        for rank, (theme, text) in enumerate(zip(themes, named, strict=True), start=1):
            if rank > HEADLINE_MAX_THEMES:
                break
            # LLM text where we have it, offline text otherwise; both derive
            # from customer feedback, so both are escaped and delimited.
            title = text.title if text is not None else theme.title
            summary = text.summary if text is not None else theme.summary
            body = (
                f"{neutralize(title, max_chars=TITLE_MAX_CHARS)}: "
                f"{neutralize(summary, max_chars=SUMMARY_MAX_CHARS)}"
            )
            blocks.append(f'<theme rank="{rank}" items="{theme.count}">\n{body}\n</theme>')
        user = render_prompt(
            HEADLINE_USER_PROMPT,
            period_label=neutralize(period_label, max_chars=80),
            total_items=sum(t.count for t in themes),
            theme_count=len(themes),
            themes="\n".join(blocks),
        )
        return [
            {"role": "system", "content": load_prompt(HEADLINE_SYSTEM_PROMPT)},
            {"role": "user", "content": user},
        ]

    def _complete(
        self,
        state: _RunState,
        messages: list[ChatCompletionMessageParam],
        response_format: ResponseFormatJSONSchema,
        schema: type[_ModelT],
        max_completion: int,
        estimated_cost: int,
        *,
        what: str,
    ) -> _ModelT | None:
        """One chat call -> validated model, or None (with a warning)."""
        result = state.result
        result.calls += 1
        use_legacy = self.token_limit_param == "max_tokens"
        try:
            completion = self._client.chat.completions.create(
                model=self.model,
                messages=messages,
                response_format=response_format,
                max_tokens=max_completion if use_legacy else openai.omit,
                max_completion_tokens=openai.omit if use_legacy else max_completion,
            )
        except Exception as exc:  # any client/transport error means "keep offline text"
            # A timed-out call may still have been billed: charge the estimate.
            result.budget_tokens_used += estimated_cost
            result.failures += 1
            state.consecutive_errors += 1
            fatal = isinstance(exc, _FATAL_ERRORS)
            if fatal or state.consecutive_errors >= _MAX_CONSECUTIVE_ERRORS:
                state.api_down = True
            logger.warning(
                "LLM call for %s failed (%s: %s); keeping offline text%s",
                what,
                type(exc).__name__,
                _short_error(exc),
                "; not calling the API again for this digest" if state.api_down else "",
            )
            return None

        # The API answered, so it is up, even if the answer turns out unusable.
        state.consecutive_errors = 0
        usage = completion.usage
        if usage is not None:
            result.prompt_tokens += usage.prompt_tokens
            result.completion_tokens += usage.completion_tokens
            result.budget_tokens_used += usage.prompt_tokens + usage.completion_tokens
        else:
            result.budget_tokens_used += estimated_cost

        choice = completion.choices[0] if completion.choices else None
        content = choice.message.content if choice is not None else None
        if not content:
            refused = choice is not None and bool(choice.message.refusal)
            result.failures += 1
            logger.warning(
                "LLM call for %s returned no content (%s); keeping offline text",
                what,
                "refusal" if refused else f"finish_reason={choice.finish_reason if choice else None}",
            )
            return None
        try:
            return schema.model_validate_json(_strip_code_fence(content))
        except ValidationError as exc:
            result.failures += 1
            # Never log the content itself: it may echo customer text (PII).
            problems = ", ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '<root>'}:{err['type']}"
                for err in exc.errors(include_input=False, include_url=False, include_context=False)
            )
            logger.warning(
                "LLM answer for %s failed validation (%s; %d chars, finish_reason=%s); keeping offline text",
                what,
                problems,
                len(content),
                choice.finish_reason if choice is not None else None,
            )
            return None


def _short_error(exc: Exception) -> str:
    # Status errors carry the server's body, which can be long; one line is enough.
    message = str(exc).splitlines()[0] if str(exc) else ""
    return message[:200]


__all__ = [
    "HEADLINE_MAX_CHARS",
    "HeadlineText",
    "LlmDigestText",
    "ThemeNamer",
    "ThemeText",
    "estimate_tokens",
    "neutralize",
]
