"""Pydantic models for what the LLM must return, and their strict JSON schemas.

The models are the real gate: whatever the server claims about structured
output, content is only used if it validates here.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

TITLE_MAX_CHARS = 60
SUMMARY_MAX_CHARS = 400
SUMMARY_MAX_SENTENCES = 3
HEADLINE_MAX_CHARS = 200

# Common abbreviations would otherwise count as sentence ends ("e.g. exports").
_ABBREVIATIONS = re.compile(r"\b(?:e\.g|i\.e|etc|vs|approx|incl|esp|inc|ltd|co)\.", re.IGNORECASE)
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+")


def _clean_line(value: object) -> object:
    """Collapse whitespace and drop control/format characters.

    Slack renders these as one line; stray newlines or zero-width characters
    from a model would break the layout or hide text.
    """
    if not isinstance(value, str):
        return value  # let pydantic report the type error
    kept = "".join(ch for ch in value if unicodedata.category(ch) not in {"Cc", "Cf"} or ch.isspace())
    return " ".join(kept.split())


def count_sentences(text: str) -> int:
    """Rough sentence count; good enough to reject rambling paragraphs."""
    masked = _ABBREVIATIONS.sub("abbr", text)
    return len([part for part in _SENTENCE_SPLIT.split(masked) if part.strip()])


class ThemeText(BaseModel):
    """LLM-written name and summary for one theme."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: Annotated[
        str,
        Field(
            min_length=1,
            max_length=TITLE_MAX_CHARS,
            description=f"Short specific theme name, at most {TITLE_MAX_CHARS} characters, no trailing period.",
        ),
    ]
    summary: Annotated[
        str,
        Field(
            min_length=1,
            max_length=SUMMARY_MAX_CHARS,
            description=f"1 to {SUMMARY_MAX_SENTENCES} plain sentences, at most {SUMMARY_MAX_CHARS} characters.",
        ),
    ]

    @field_validator("title", "summary", mode="before")
    @classmethod
    def _clean(cls, value: object) -> object:
        return _clean_line(value)

    @field_validator("summary")
    @classmethod
    def _at_most_three_sentences(cls, value: str) -> str:
        if count_sentences(value) > SUMMARY_MAX_SENTENCES:
            raise ValueError(f"summary must be 1-{SUMMARY_MAX_SENTENCES} sentences")
        return value


class HeadlineText(BaseModel):
    """LLM-written headline for the digest's parent Slack message."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    headline: Annotated[
        str,
        Field(
            min_length=1,
            max_length=HEADLINE_MAX_CHARS,
            description=f"One plain sentence, at most {HEADLINE_MAX_CHARS} characters.",
        ),
    ]

    @field_validator("headline", mode="before")
    @classmethod
    def _clean(cls, value: object) -> object:
        return _clean_line(value)


def strict_json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """A strict-mode JSON schema for a flat model of string fields.

    Built by hand rather than from `model_json_schema()` because OpenAI's strict
    mode (and several compatible servers) reject keywords such as `maxLength`
    and `title`; limits are stated in descriptions and enforced by pydantic.
    """
    properties: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        if field.annotation is not str:
            raise TypeError(f"{model.__name__}.{name}: only str fields are supported")
        properties[name] = {"type": "string", "description": field.description or name}
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }
