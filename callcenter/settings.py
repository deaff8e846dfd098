"""The one ``Settings`` model: a TOML file, ``CALLCENTER_*`` overrides, secrets files.

Why one loader: a hotline office edits one file, operators override per host with the
environment (``CALLCENTER_AMI__SECRET``, ``CALLCENTER_DATABASE__URL``: ``__`` separates
levels), and Docker-style secrets files (``CALLCENTER_AMI__SECRET_FILE=/run/secrets/ami``)
keep passwords out of both. Every problem stops the start with a ``ConfigError`` that names
where the value came from, its dotted key and the reason.

Section models live beside their feature (telephony, simulator, tickets, auth); this module
only composes them and adds the service-wide sections.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from callcenter.auth.config import PUBLISHED_TOKEN_SECRETS, AuthConfig, with_local_token_secret
from callcenter.auth.local_secret import LocalSecretError
from callcenter.calls.config import CallsConfig
from callcenter.ivr.config import IvrConfig
from callcenter.queues.config import QueuesConfig
from callcenter.recordings.config import RecordingsConfig
from callcenter.reports.config import ReportsConfig
from callcenter.revisit.config import RevisitConfig
from callcenter.simulator.config import SimulatorConfig
from callcenter.speech.config import SpeechConfig
from callcenter.telephony.config import AgiConfig, AmiConfig
from callcenter.tickets.config import TicketsConfig

ENV_PREFIX = "CALLCENTER_"
CONFIG_ENV = "CALLCENTER_CONFIG"
DEFAULT_CONFIG = Path("config/callcenter.toml")
DEFAULT_SOURCE = "built-in default"
ROLES = ("web", "telephony", "workers")
DEFAULT_DATA_DIR = Path("var")
# Optional in the model (dev mode generates them) but required in production.
REQUIRED_IN_PRODUCTION = frozenset({"auth.token_secret"})
PUBLISHED_SECRETS = {"auth.token_secret": PUBLISHED_TOKEN_SECRETS}


class ConfigError(Exception):
    """A configuration problem: where it came from, which key, and why."""

    def __init__(self, source: str, key: str, reason: str) -> None:
        self.source = source
        self.key = key
        self.reason = reason
        super().__init__(f"{source}: {key}: {reason}")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServiceConfig(Section):
    """Which parts run in this process and how strict the start is."""

    mode: Literal["dev", "production"] = "dev"
    timezone: str = "Asia/Shanghai"
    roles: list[Literal["web", "telephony", "workers"]] = Field(
        default_factory=lambda: list(ROLES), min_length=1
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class DatabaseConfig(Section):
    """SQLite file by default; PostgreSQL (asyncpg) in production."""

    url: str = "sqlite+aiosqlite:///var/callcenter.db"
    password: SecretStr | None = None
    echo: bool = False
    pool_size: int = Field(default=5, ge=1)
    max_overflow: int = Field(default=10, ge=0)
    pool_timeout: float = Field(default=30.0, gt=0)
    pool_recycle: int = Field(default=1800, ge=-1)
    sqlite_busy_timeout_ms: int = Field(default=5000, ge=0)
    pool_pre_ping: bool = True
    """Check each pooled connection before use: survives a database restart, at the cost of
    one round trip per session (about a fifth of the ticket-creation rate)."""
    auto_upgrade: bool = False

    @field_validator("url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        scheme = value.split("://", 1)[0]
        if scheme not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
            raise ValueError(
                f"unsupported driver {scheme!r}: use sqlite+aiosqlite:// or postgresql+asyncpg://"
            )
        return value

    @property
    def is_postgres(self) -> bool:
        return self.url.startswith("postgresql")

    def effective_url(self) -> str:
        """The URL with ``password`` filled in (kept separate so it can come from a secret)."""
        if self.password is None:
            return self.url
        from sqlalchemy.engine import make_url

        url = make_url(self.url).set(password=self.password.get_secret_value())
        return url.render_as_string(hide_password=False)


class BusConfig(Section):
    """In-process bus alone on a laptop; Redis (pub/sub + streams) to scale out."""

    backend: Literal["memory", "redis"] = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_password: SecretStr | None = None
    redis_prefix: str = "callcenter:"
    events_channel: str = "ev:"
    jobs_stream: str = "jobs:"
    subscriber_queue_size: int = Field(default=1000, ge=1)
    redelivery_timeout: float = Field(default=60.0, gt=0)


class WebConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)


class LoggingConfig(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"
    access_log: bool = False


class Settings(Section):
    """Everything a ``callcenter`` process needs, validated before anything starts."""

    service: ServiceConfig = Field(default_factory=ServiceConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    bus: BusConfig = Field(default_factory=BusConfig)
    web: WebConfig = Field(default_factory=WebConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    ami: AmiConfig = Field(default_factory=AmiConfig)
    agi: AgiConfig = Field(default_factory=AgiConfig)
    simulator: SimulatorConfig = Field(default_factory=SimulatorConfig)
    tickets: TicketsConfig = Field(default_factory=TicketsConfig)
    calls: CallsConfig = Field(default_factory=CallsConfig)
    ivr: IvrConfig = Field(default_factory=IvrConfig)
    reports: ReportsConfig = Field(default_factory=ReportsConfig)
    recordings: RecordingsConfig = Field(default_factory=RecordingsConfig)
    queues: QueuesConfig = Field(default_factory=QueuesConfig)
    speech: SpeechConfig = Field(default_factory=SpeechConfig)
    revisit: RevisitConfig = Field(default_factory=RevisitConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)

    @property
    def data_dir(self) -> Path:
        """Where local state lives: the SQLite database's folder, else ``var/``."""
        from sqlalchemy.engine import make_url

        url = make_url(self.database.url)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            return Path(url.database).expanduser().parent
        return DEFAULT_DATA_DIR


# --- loading ---------------------------------------------------------------------------


def load_settings(path: Path | str | None = None,
                  env: Mapping[str, str] | None = None) -> Settings:
    """Read the file (explicit, ``$CALLCENTER_CONFIG`` or ``config/callcenter.toml`` if
    present), apply environment overrides and secrets files, validate, check secrets."""
    env = os.environ if env is None else env
    file, required = _choose_file(path, env)
    data: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if file is not None and (required or file.is_file()):
        data = _read_toml(file)
        _record_sources(data, str(file), sources)
    _apply_env(data, sources, env)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise _config_error(exc, sources, str(file or DEFAULT_SOURCE)) from None
    if settings.service.mode == "production":
        check_production_secrets(settings, sources)
    else:
        try:
            settings.auth = with_local_token_secret(settings.auth, settings.data_dir)
        except LocalSecretError as exc:
            raise ConfigError(DEFAULT_SOURCE, "auth.token_secret", str(exc)) from None
    return settings


def _choose_file(path: Path | str | None, env: Mapping[str, str]) -> tuple[Path | None, bool]:
    if path is not None:
        return Path(path), True
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV]), True
    return DEFAULT_CONFIG, False


def _read_toml(file: Path) -> dict[str, Any]:
    try:
        with file.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(str(file), "-", "config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(file), "-", f"not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(str(file), "-", f"cannot read: {exc.strerror}") from None


def _record_sources(data: Mapping[str, Any], source: str, sources: dict[str, str],
                    prefix: str = "") -> None:
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        sources[dotted] = source
        if isinstance(value, Mapping):
            _record_sources(value, source, sources, dotted + ".")


def _apply_env(data: dict[str, Any], sources: dict[str, str], env: Mapping[str, str]) -> None:
    """``CALLCENTER_A__B=v`` sets ``a.b``; ``CALLCENTER_A__B_FILE=path`` reads it from a file.

    Only names with ``__`` are settings, so ``CALLCENTER_CONFIG`` and friends are left alone.
    """
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        raw_key = name[len(ENV_PREFIX):]
        if raw_key.endswith("_FILE"):
            key = raw_key[: -len("_FILE")].lower().split("__")
            value: Any = _read_secret_file(name, env[name], key)
            source = f"secret file {env[name]} (from {name})"
        else:
            key = raw_key.lower().split("__")
            value = _parse_env_value(env[name])
            source = f"environment {name}"
        _set_nested(data, key, value, name)
        sources[".".join(key)] = source


def _read_secret_file(name: str, file: str, key: list[str]) -> str:
    try:
        return Path(file).read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(f"environment {name}", ".".join(key),
                          f"cannot read secret file {file}: {exc.strerror}") from None


def _parse_env_value(raw: str) -> Any:
    """Lists and tables may be given as JSON (``["web","workers"]``); the rest stays text
    and pydantic converts it (``8080`` → int, ``true`` → bool)."""
    if raw[:1] in "[{":
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    return raw


def _set_nested(data: dict[str, Any], key: list[str], value: Any, name: str) -> None:
    node = data
    for part in key[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"environment {name}", ".".join(key),
                              f"{part!r} is a value, not a section")
        node = child
    node[key[-1]] = value


def _config_error(exc: ValidationError, sources: Mapping[str, str], fallback: str) -> ConfigError:
    """The first problem, attributed to where its value (or its section) came from."""
    error = exc.errors()[0]
    parts = [str(p) for p in error["loc"]]
    key = ".".join(parts) or "-"
    source = fallback
    for end in range(len(parts), 0, -1):
        found = sources.get(".".join(parts[:end]))
        if found:
            source = found
            break
    reason = error["msg"]
    if error["type"] == "extra_forbidden":
        reason = "unknown key"
    more = len(exc.errors()) - 1
    if more:
        reason += f" (and {more} more problem{'s' if more > 1 else ''})"
    return ConfigError(source, key, reason)


# --- production secrets ----------------------------------------------------------------


def _from_environment(source: str | None) -> bool:
    return bool(source) and source.startswith(("environment ", "secret file "))


def _secret_fields(model: BaseModel, prefix: str = "") -> list[tuple[str, Any, Any, bool]]:
    """(dotted key, value, default, required) for every ``SecretStr`` field, recursively."""
    found: list[tuple[str, Any, Any, bool]] = []
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        dotted = f"{prefix}{name}"
        if isinstance(value, BaseModel):
            found.extend(_secret_fields(value, dotted + "."))
            continue
        annotation = str(info.annotation)
        if "SecretStr" not in annotation:
            continue
        optional = "None" in annotation and dotted not in REQUIRED_IN_PRODUCTION
        default = None if info.default_factory else info.default
        found.append((dotted, value, default, not optional))
    return found


def check_production_secrets(settings: Settings, sources: Mapping[str, str]) -> None:
    """Production refuses secrets that are missing or that come from the repo's files or
    defaults: they are public, so they must come from the environment or a secrets file."""
    for key, value, default, required in _secret_fields(settings):
        source = sources.get(key)
        if isinstance(value, SecretStr) and not value.get_secret_value():
            raise ConfigError(source or DEFAULT_SOURCE, key, "secret is empty")
        if value is None:
            if required:
                raise ConfigError(DEFAULT_SOURCE, key, "secret missing in production mode")
            continue
        if not _from_environment(source):
            origin = source or DEFAULT_SOURCE
            raise ConfigError(origin, key, "secret must come from the environment or a "
                              f"secrets file in production mode ({_env_name(key)} or "
                              f"{_env_name(key)}_FILE)")
        published = PUBLISHED_SECRETS.get(key, frozenset())
        if (isinstance(default, SecretStr) and value == default
                or isinstance(value, SecretStr) and value.get_secret_value() in published):
            raise ConfigError(source or DEFAULT_SOURCE, key,
                              "secret is the repository default; choose your own")
    _check_url_passwords(settings, sources)


def _check_url_password(url: str, key: str, password_key: str,
                        sources: Mapping[str, str]) -> None:
    """A password inside a URL is a secret too: only from the environment in production."""
    url_source = sources.get(key, DEFAULT_SOURCE)
    if urlsplit(url).password and not _from_environment(url_source):
        raise ConfigError(url_source, key, "contains a password; in production set "
                          f"{password_key} from the environment or a secrets file")


def _check_url_passwords(settings: Settings, sources: Mapping[str, str]) -> None:
    if settings.bus.backend == "redis":
        _check_url_password(settings.bus.redis_url, "bus.redis_url", "bus.redis_password",
                            sources)
    db = settings.database
    if not db.is_postgres:
        return
    _check_url_password(db.url, "database.url", "database.password", sources)
    if db.password is None and not urlsplit(db.url).password:
        raise ConfigError(DEFAULT_SOURCE, "database.password",
                          "secret missing in production mode")


def _env_name(key: str) -> str:
    return ENV_PREFIX + key.upper().replace(".", "__")
