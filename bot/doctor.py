"""`loopline doctor [--url https://HOST] [--socket]`: checks what stops a real install, says how to fix it.

Each check is a function in CHECKS that reads the Context and returns Results (one line each). Checks never
change anything (no migration, no message posted) and never print a secret: only its shape. A new check
(say, one for an HTTP endpoint the server grows) is one more function in CHECKS.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import ValidationError

from bot.core.settings import ConfigError, Settings

Status = Literal["ok", "problem", "skipped"]
SETTINGS_DOC = "the environment or .env (every setting is described in .env.example)"
APP_PAGE = "your app's page on api.slack.com/apps"
REINSTALL = ("run `loopline manifest --url https://YOUR.HOST`, paste it over the app's manifest (App Manifest "
             "page) and reinstall the app to the workspace (Install App); SLACK_BOT_TOKEN must be the Bot User "
             "OAuth Token shown after that")


@dataclass
class Result:
    check: str
    status: Status
    detail: str
    fix: str = ""

    def line(self) -> str:
        label = {"ok": "ok", "problem": "PROBLEM", "skipped": "skipped"}[self.status]
        fix = f" -> fix: {self.fix}" if self.fix else ""
        return f"{label:<8} {self.check:<15} {self.detail}{fix}"


@dataclass
class Context:
    settings: Settings
    url: str | None = None
    socket: bool = False
    # What earlier checks learned, for later ones.
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def socket_mode(self) -> bool:
        return self.socket or bool(self.settings.secret("slack_app_token"))


def ok(check: str, detail: str) -> Result:
    return Result(check, "ok", detail)


def problem(check: str, detail: str, fix: str) -> Result:
    return Result(check, "problem", detail, fix)


def skipped(check: str, detail: str) -> Result:
    return Result(check, "skipped", detail)


# -- settings -----------------------------------------------------------------------------------------

def load(env_file: str = ".env") -> tuple[Settings, list[Result]]:
    """Settings as `loopline serve` would read them; each malformed one is reported (not just the first)
    and replaced by its default, so the other checks still run."""
    results: list[Result] = []
    overrides: dict[str, Any] = {}
    while True:
        try:
            settings = Settings(_env_file=env_file, **overrides)  # type: ignore[call-arg]
            break
        except ValidationError as e:
            for err in e.errors():
                name = str(err["loc"][0]) if err["loc"] else ""
                if name not in Settings.model_fields or name in overrides:
                    raise  # a default that doesn't validate: a bug here, not a setting to fix
                overrides[name] = Settings.model_fields[name].default
                results.append(problem("settings", f"{name.upper()} is malformed: "
                                       f"{err['msg'].removeprefix('Value error, ')}", f"correct it in {SETTINGS_DOC}"))
    where = f"the environment and {Path(env_file).resolve()}" if Path(env_file).is_file() else \
        "the environment (no .env file in this folder)"
    results += _misspelt(env_file)
    if not results:
        results.append(ok("settings", f"read from {where}"))
    return settings, results


def _misspelt(env_file: str) -> list[Result]:
    """SLACK_BOT_TOKNE=… is silently ignored by the settings loader; name the setting it was meant to be."""
    from dotenv import dotenv_values

    known = [name.upper() for name in Settings.model_fields]
    given = set(os.environ) | {k for k in (dotenv_values(env_file) if Path(env_file).is_file() else {})}
    out = []
    for name in sorted(given):
        if name.upper() in known or not name.upper().startswith(("SLACK_", "LOOPLINE_", "OPENAI_", "DATABASE_")):
            continue
        close = difflib.get_close_matches(name.upper(), known, n=1, cutoff=0.8)
        if close:
            out.append(problem("settings", f"{name} is not a Loopline setting and is ignored",
                               f"did you mean {close[0]}? rename it in {SETTINGS_DOC}"))
    return out


def check_required(ctx: Context) -> list[Result]:
    s = ctx.settings
    out = []
    if bool(s.slack_client_id) != bool(s.secret("slack_client_secret")):
        have, lack = ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET") if s.slack_client_id else \
            ("SLACK_CLIENT_SECRET", "SLACK_CLIENT_ID")
        out.append(problem("settings", f"{have} is set but {lack} is not (OAuth needs both)",
                           f"copy both from {APP_PAGE}, Basic Information → App Credentials; or unset {have}"))
    if s.oauth_enabled and not s.encryption_keys:
        out.append(problem("settings", "LOOPLINE_ENCRYPTION_KEY is not set: OAuth installs store Slack tokens "
                           "encrypted with it", "create one with `loopline new-key`, keep it as safe as a password"))
    return out


# -- database -----------------------------------------------------------------------------------------

def check_database(ctx: Context) -> list[Result]:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from bot.core.db import Database, supported_url

    name = "database"
    try:
        url = make_url(supported_url(ctx.settings.database_url))
    except ConfigError as e:
        return [problem(name, str(e), f"set DATABASE_URL in {SETTINGS_DOC}")]
    shown = url.render_as_string(hide_password=True)
    if url.drivername.startswith("sqlite"):
        path = Path(url.database or "").expanduser().resolve()
        shown = f"SQLite file {path}"
        if not path.is_file():
            # Connecting would create an empty file: say so instead (a relative path is relative to the
            # folder loopline runs in, the usual reason a database "disappears").
            return [problem(name, f"{shown} doesn't exist",
                            "run `loopline migrate` to create it, or point DATABASE_URL at the existing one "
                            "(use an absolute path: sqlite:////abs/path/loopline.db)")]
    # A server that isn't there should be reported in seconds, not after the OS's TCP timeout.
    db = Database(ctx.settings.database_url, **({} if url.drivername.startswith("sqlite")
                                                 else {"connect_args": {"connect_timeout": 10}}))
    try:
        current, heads, known = _revisions(db)
    except SQLAlchemyError as e:
        reason = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
        return [problem(name, f"cannot use {shown}: {reason}",
                        "check DATABASE_URL's host, port, user, password and database name, and that the "
                        "server is running and reachable from here")]
    finally:
        db.dispose()
    head = ", ".join(sorted(heads))
    if current == heads:
        ctx.facts["database_ok"] = True
        return [ok(name, f"{shown} reachable; schema at the latest revision ({head})")]
    if not current:
        return [problem(name, f"{shown} has no Loopline schema", "run `loopline migrate` (or start `loopline serve`, "
                        "which migrates at start)")]
    unknown = current - known
    if unknown:
        return [problem(name, f"{shown} is at revision {', '.join(sorted(unknown))}, which this version of "
                        f"Loopline doesn't know (a newer one migrated it)",
                        "upgrade Loopline to the version that migrated it; never run an older one against it")]
    return [problem(name, f"{shown} is at revision {', '.join(sorted(current))}; this version needs {head}",
                    "run `loopline migrate`")]


def _revisions(db: Any) -> tuple[set[str], set[str], set[str]]:
    """(the database's Alembic revisions, this version's heads, every revision this version knows)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from bot.core.db import alembic_config

    script = ScriptDirectory.from_config(alembic_config())
    with db.engine.execution_options(loopline_readonly=True).connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    return current, set(script.get_heads()), {rev.revision for rev in script.walk_revisions()}


# -- Slack tokens and secrets -------------------------------------------------------------------------

def _web_client(ctx: Context, token: str) -> Any:
    from bot.core.slack_client import make_web_client

    # One try, short timeout: the doctor reports what happens, it doesn't wait it out.
    return make_web_client(ctx.settings, token, retries=False, timeout=10)


def _slack_call(ctx: Context, check: str, token: str, setting: str, method: str) -> tuple[Any, Result | None]:
    from slack_sdk.errors import SlackApiError

    try:
        return _web_client(ctx, token).api_call(method), None
    except SlackApiError as e:
        error = str(e.response.get("error") or f"HTTP {e.response.status_code}")
        return None, problem(check, f"Slack refused {setting} ({error})", _token_fix(setting, error))
    except OSError as e:
        return None, problem(check, f"cannot reach SLACK_API_URL {ctx.settings.slack_api_url} ({e})",
                             "check this machine's network, proxy and firewall, or SLACK_API_URL "
                             "(https://slack.com/api/ unless you use GovSlack or a proxy)")


def _token_fix(setting: str, error: str) -> str:
    if error in ("token_revoked", "account_inactive", "app_uninstalled", "team_disabled"):
        return f"the app was uninstalled or its token revoked: reinstall it (Install App) and put the new token in {setting}"
    if error == "token_expired":
        return "token rotation is on and this token expired: turn rotation off in OAuth & Permissions, or use OAuth installs"
    if setting == "SLACK_APP_TOKEN":
        return ("generate an app-level token with the connections:write scope (Basic Information → App-Level "
                "Tokens) and turn Socket Mode on")
    return f"copy the Bot User OAuth Token (xoxb-…) from {APP_PAGE}, OAuth & Permissions, into {setting}"


def check_bot_token(ctx: Context) -> list[Result]:
    from bot.slack.manifest import BOT_SCOPES

    s = ctx.settings
    token = s.secret("slack_bot_token")
    if not token:
        if s.oauth_enabled:
            return [skipped("bot token", "multi-workspace OAuth: each workspace's token is stored when it installs "
                            "the app (/slack/install)")]
        return [problem("bot token", "SLACK_BOT_TOKEN is not set",
                        f"copy the Bot User OAuth Token (xoxb-…) from {APP_PAGE}, OAuth & Permissions (install "
                        "the app first); or set SLACK_CLIENT_ID, SLACK_CLIENT_SECRET and LOOPLINE_ENCRYPTION_KEY "
                        "for multi-workspace installs")]
    kinds = {"xoxp-": "a user token", "xapp-": "an app-level token (that one goes in SLACK_APP_TOKEN)",
             "xoxe": "a refresh token"}
    for prefix, kind in kinds.items():
        if token.startswith(prefix):
            return [problem("bot token", f"SLACK_BOT_TOKEN is {kind}, not a bot token (xoxb-…)",
                            _token_fix("SLACK_BOT_TOKEN", ""))]
    if not token.startswith("xoxb-") or token != token.strip():
        return [problem("bot token", f"SLACK_BOT_TOKEN doesn't look like a bot token ({len(token)} characters, "
                        "should start with xoxb- and have no spaces or quotes)", _token_fix("SLACK_BOT_TOKEN", ""))]
    resp, failed = _slack_call(ctx, "bot token", token, "SLACK_BOT_TOKEN", "auth.test")
    if failed:
        return [failed]
    out = [ok("bot token", f"valid: @{resp.get('user')} in {resp.get('team')} ({resp.get('team_id')})")]
    headers = {k.lower(): v for k, v in (resp.headers or {}).items()}
    granted_header = headers.get("x-oauth-scopes")
    if isinstance(granted_header, list):  # slack-sdk's async clients keep header values as lists
        granted_header = ",".join(granted_header)
    if granted_header is None:
        out.append(skipped("scopes", "Slack did not say which scopes the token has (no X-OAuth-Scopes header)"))
        return out
    granted = {x.strip() for x in granted_header.split(",") if x.strip()}
    missing = [x for x in BOT_SCOPES if x not in granted]
    if missing:
        out.append(problem("scopes", f"the bot token lacks {len(missing)} of the {len(BOT_SCOPES)} scopes the "
                           f"manifest asks for: {', '.join(missing)}", REINSTALL))
    else:
        out.append(ok("scopes", f"all {len(BOT_SCOPES)} scopes the manifest asks for are granted"))
    return out


SIGNING_SECRET_FIX = f"copy the Signing Secret from {APP_PAGE}, Basic Information → App Credentials (32 hex characters)"


def check_signing_secret(ctx: Context) -> list[Result]:
    secret = ctx.settings.secret("slack_signing_secret")
    if ctx.socket and not secret:
        return [skipped("signing secret", "not needed in Socket Mode")]
    if not secret:
        return [problem("signing secret", "SLACK_SIGNING_SECRET is not set (every request Slack sends over HTTP "
                        "is checked with it)", SIGNING_SECRET_FIX)]
    if re.fullmatch(r"[0-9a-f]{32}", secret):
        if secret == ctx.settings.secret("slack_client_secret"):
            return [problem("signing secret", "SLACK_SIGNING_SECRET is the same as SLACK_CLIENT_SECRET",
                            SIGNING_SECRET_FIX)]
        ctx.facts["signing_secret"] = secret
        return [ok("signing secret", "has the shape of a Slack signing secret (32 hex characters)")]
    if secret != secret.strip() or secret[:1] in "'\"":
        why = "has spaces or quotes around it"
    elif len(secret) == 24 and secret.isalnum():
        why = "looks like the Verification Token (24 characters, deprecated), not the Signing Secret"
    elif len(secret) == 32:
        why = "has characters other than 0-9 and a-f (a signing secret is 32 lowercase hex characters)"
    else:
        why = f"is {len(secret)} characters long, not 32 hex characters"
    return [problem("signing secret", f"SLACK_SIGNING_SECRET {why}", SIGNING_SECRET_FIX)]


def check_app_token(ctx: Context) -> list[Result]:
    token = ctx.settings.secret("slack_app_token")
    if not ctx.socket_mode:
        return [skipped("app token", "Socket Mode not in use (no --socket, SLACK_APP_TOKEN unset)")]
    if not token:
        return [problem("app token", "Socket Mode needs SLACK_APP_TOKEN (an app-level token, xapp-…)",
                        _token_fix("SLACK_APP_TOKEN", ""))]
    if not token.startswith("xapp-"):
        return [problem("app token", "SLACK_APP_TOKEN is not an app-level token (xapp-…)",
                        _token_fix("SLACK_APP_TOKEN", ""))]
    # apps.connections.open is the call `loopline socket` makes first; its URL is single-use and is dropped.
    _, failed = _slack_call(ctx, "app token", token, "SLACK_APP_TOKEN", "apps.connections.open")
    return [failed] if failed else [ok("app token", "valid: Slack hands it a Socket Mode connection")]


# -- the public URL -----------------------------------------------------------------------------------

def check_public_url(ctx: Context) -> list[Result]:
    import httpx

    if not ctx.url:
        return [skipped("public URL", "pass --url https://YOUR.HOST to check what Slack reaches")]
    base = ctx.url.rstrip("/")
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [problem("public URL", f"--url {ctx.url} is not a URL", "pass --url https://YOUR.HOST")]
    out = []
    if parts.scheme != "https" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
        out.append(problem("public URL", f"{base} is not https://: Slack only sends requests to https URLs",
                           "serve it behind TLS (a reverse proxy or tunnel) and use its https:// address"))
    health = base + "/healthz"
    try:
        r = httpx.get(health, timeout=10, follow_redirects=False)
    except httpx.HTTPError as e:
        return [*out, problem("public URL", f"nothing answers at {health} ({type(e).__name__}: {e})",
                              "start `loopline serve` there, and check that DNS, TLS and your proxy or tunnel "
                              "forward to it")]
    try:
        body = r.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or "ok" not in body or "database" not in body:
        return [*out, problem("public URL", f"{health} answered {r.status_code} "
                              f"({r.headers.get('content-type', 'no content type')}), not Loopline's health JSON",
                              "the URL reaches something else: point it (or your proxy) at `loopline serve`")]
    if r.status_code != 200 or body.get("ok") is not True:
        reason = body.get("reason") or f"its database is {body.get('database')}"
        return [*out, problem("public URL", f"{health} answered {r.status_code}: {reason}",
                              "see the server's logs; `loopline doctor` where it runs checks its settings and "
                              "database")]
    out.append(ok("public URL", f"{health} answers 200 with ok=true, database ok"))
    out.append(_check_request_url(ctx, base))
    out.append(_check_metrics(ctx, base))
    return out


def _check_metrics(ctx: Context, base: str) -> Result:
    """Who can read GET /metrics through this URL: nothing in it is secret or personal, but an operator
    should know whether it is public. A problem only when this config has LOOPLINE_METRICS_TOKEN and the
    server answers without it (the server runs with other settings)."""
    import httpx

    url = base + "/metrics"
    token = ctx.settings.secret("loopline_metrics_token")
    try:
        r = httpx.get(url, timeout=10, follow_redirects=False)
    except httpx.HTTPError as e:
        return ok("metrics", f"{url} did not answer ({type(e).__name__}); scrape /metrics where the server runs")
    if r.status_code == 200 and "loopline_slack_requests_total" in r.text:
        if token:
            return problem("metrics", f"{url} answers without LOOPLINE_METRICS_TOKEN, though it is set here",
                           "give the server the same LOOPLINE_METRICS_TOKEN as here and restart it")
        return ok("metrics", f"{url} answers anyone who reaches this URL (counts and timings, nothing secret); "
                  "set LOOPLINE_METRICS_TOKEN, or keep /metrics off your public proxy, to limit who can read it")
    if r.status_code == 401:
        if token:
            good = httpx.get(url, timeout=10, headers={"authorization": f"Bearer {token}"})
            if good.status_code != 200:
                return problem("metrics", f"{url} refuses this LOOPLINE_METRICS_TOKEN ({good.status_code})",
                               "give the server the same LOOPLINE_METRICS_TOKEN as here and restart it")
        return ok("metrics", f"{url} needs LOOPLINE_METRICS_TOKEN (Prometheus: bearer_token / authorization)")
    return ok("metrics", f"{url} is not served through this URL ({r.status_code}); scrape /metrics where the "
              "server runs")


def _check_request_url(ctx: Context, base: str) -> Result:
    """Sends what Slack sends when you type the Request URL in the app's settings: a signed url_verification."""
    import httpx

    url = base + "/slack/events"
    secret = ctx.facts.get("signing_secret")
    if not secret:
        return skipped("request URL", f"{url} not checked: it needs a valid SLACK_SIGNING_SECRET")
    from bot.devtools.slack_requests import SlackSender

    challenge = os.urandom(16).hex()
    # Signed as Slack signs, with Slack's clock (the wall clock): SlackSender is the signer the demo uses.
    sender = SlackSender(base, secret)
    try:
        r = sender.json_body({"token": "loopline-doctor", "challenge": challenge, "type": "url_verification"})
    except httpx.HTTPError as e:
        return problem("request URL", f"{url} did not answer ({type(e).__name__}: {e})",
                       "check that your proxy forwards POST /slack/events to `loopline serve`")
    finally:
        sender.close()
    if r.status_code == 401:
        return problem("request URL", f"{url} rejects requests signed with this SLACK_SIGNING_SECRET (401): "
                       "the server runs with another one", "give the server the same SLACK_SIGNING_SECRET as here "
                       "(the one on the app's Basic Information page) and restart it")
    try:
        echoed = r.json().get("challenge")
    except (ValueError, AttributeError):
        echoed = None
    if r.status_code != 200 or echoed != challenge:
        return problem("request URL", f"{url} answered {r.status_code} to Slack's url_verification, without the "
                       "challenge", "point your proxy's /slack/events at `loopline serve`")
    return ok("request URL", f"{url} answers Slack's signed url_verification challenge (use it for Event "
              "Subscriptions, Interactivity and every slash command)")


# -- running them -------------------------------------------------------------------------------------

CHECKS: tuple[Callable[[Context], list[Result]], ...] = (
    check_required, check_database, check_bot_token, check_signing_secret, check_app_token, check_public_url,
)


def run(*, url: str | None = None, socket: bool = False, env_file: str = ".env",
        print_line: Callable[[str], None] = print) -> int:
    """Runs every check, prints one line each as it finishes; 1 if anything needs fixing, else 0."""
    settings, results = load(env_file)
    for r in results:
        print_line(r.line())
    ctx = Context(settings=settings, url=url, socket=socket)
    for check in CHECKS:
        found = check(ctx)
        for r in found:
            print_line(r.line())
        results += found
    problems = sum(r.status == "problem" for r in results)
    if problems:
        print_line(f"{problems} problem{'s' if problems != 1 else ''} found: fix {'them' if problems != 1 else 'it'} "
                   "and run `loopline doctor` again")
        return 1
    print_line("everything checked is ready" + ("" if url else " (add --url https://YOUR.HOST to check the public URL)"))
    return 0
