"""Settings, read from the environment or `.env` (names are part of the product contract)."""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_REACTIONS = "bulb=idea,bug=bug,memo=feedback"


class ConfigError(Exception):
    """A setting is missing or malformed; the message is one line that names it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_client_id: str | None = None
    slack_client_secret: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    database_url: str = "sqlite:///./loopline.db"
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    loopline_llm_model: str = "gpt-4o-mini"
    loopline_embedding_model: str = "text-embedding-3-small"
    loopline_embedder: str = Field(default="auto", description="auto|local|onnx|static|tfidf|openai")
    loopline_timezone: str = "UTC"
    loopline_announcers: str = ""
    loopline_reactions: str = DEFAULT_REACTIONS
    loopline_stale_days: int = Field(default=14, ge=1)
    # chat.postMessage is "several hundred per minute" per workspace; 4/s stays safely under that.
    loopline_workspace_rate: float = Field(default=4.0, gt=0)
    loopline_channel_rate: float = Field(default=1.0, gt=0)
    loopline_log_format: str = "auto"
    loopline_job_lease_seconds: float = Field(default=90.0, gt=0)
    # Fernet keys, comma-separated: the first encrypts stored Slack tokens, every one decrypts (rotation).
    loopline_encryption_key: SecretStr | None = None
    # When set, GET /metrics (and the scheduler's --metrics-port) needs `Authorization: Bearer <token>`.
    loopline_metrics_token: SecretStr | None = None
    port: int = Field(default=3000, ge=1, le=65535)

    @field_validator("slack_api_url")
    @classmethod
    def _api_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL such as https://slack.com/api/")
        # WebClient joins method names onto base_url; without the slash the path is dropped.
        return v if v.endswith("/") else v + "/"

    @field_validator("loopline_timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {v!r} (use an IANA name like Europe/Berlin)") from e
        return v

    @field_validator("loopline_reactions")
    @classmethod
    def _reactions(cls, v: str) -> str:
        parse_reactions(v)
        return v

    @field_validator("loopline_encryption_key")
    @classmethod
    def _encryption_key(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None:
            parse_keys(v.get_secret_value())
        return v

    @property
    def encryption_keys(self) -> list[str]:
        return parse_keys(self.secret("loopline_encryption_key") or "")

    def require_encryption_keys(self) -> list[str]:
        """OAuth installs keep Slack tokens in the database, always encrypted: no key, no start.

        Generating one on the fly would print a secret into the logs, and a restart without it would
        leave every stored token unreadable (every workspace would have to reinstall).
        """
        keys = self.encryption_keys
        if not keys:
            raise ConfigError("LOOPLINE_ENCRYPTION_KEY is not set: OAuth installs store Slack tokens encrypted "
                              "with it; create one with `loopline new-key` and keep it as safe as a password")
        return keys

    @property
    def announcers(self) -> set[str]:
        return {u.strip() for u in self.loopline_announcers.split(",") if u.strip()}

    @property
    def reactions(self) -> dict[str, str]:
        return parse_reactions(self.loopline_reactions)

    @property
    def oauth_enabled(self) -> bool:
        return bool(self.slack_client_id and self.slack_client_secret)

    @property
    def llm_enabled(self) -> bool:
        return self.openai_api_key is not None and bool(self.openai_api_key.get_secret_value())

    def secret(self, name: str) -> str | None:
        value = getattr(self, name)
        return value.get_secret_value() if isinstance(value, SecretStr) else value

    def require(self, *names: str) -> None:
        """Stop with one clear line if any of `names` is unset."""
        for name in names:
            if not self.secret(name):
                raise ConfigError(f"{name.upper()} is not set (environment or .env); it is required here")

    def require_slack_http(self) -> None:
        self.require("slack_signing_secret")
        if not self.slack_bot_token and not self.oauth_enabled:
            raise ConfigError(
                "SLACK_BOT_TOKEN is not set (or set SLACK_CLIENT_ID and SLACK_CLIENT_SECRET for OAuth installs)"
            )


def parse_reactions(spec: str) -> dict[str, str]:
    """`bulb=idea,bug=bug` -> {"bulb": "idea", "bug": "bug"}."""
    mapping: dict[str, str] = {}
    for part in spec.split(","):
        if not part.strip():
            continue
        name, sep, kind = part.partition("=")
        name, kind = name.strip().strip(":"), kind.strip()
        if not sep or not name or not kind:
            raise ValueError(f"expected emoji=kind pairs like {DEFAULT_REACTIONS!r}, got {part.strip()!r}")
        mapping[name] = kind
    if not mapping:
        raise ValueError("at least one emoji=kind pair is needed")
    return mapping


def parse_keys(spec: str) -> list[str]:
    """`KEY1,KEY2` -> Fernet keys, checked. Messages never show a key."""
    keys = [k.strip() for k in spec.split(",") if k.strip()]
    for i, key in enumerate(keys, 1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise ValueError(f"key {i} of {len(keys)} is not a Fernet key (32 url-safe base64-encoded bytes; "
                             "make one with `loopline new-key`)") from None
    return keys


def load_settings(**overrides: object) -> Settings:
    """Build Settings, turning pydantic's multi-line report into one line naming the setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as e:
        err = e.errors()[0]
        name = str(err["loc"][0]).upper() if err["loc"] else "setting"
        raise ConfigError(f"{name} is malformed: {err['msg'].removeprefix('Value error, ')}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
