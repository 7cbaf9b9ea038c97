"""The reference server's settings: one object, built and validated once at start.

Every option is an ``AUTUMN_*`` environment variable and an ``autumn-server`` flag (the flag wins);
:func:`settings_flags` derives the flags from the fields, so the two never drift, and the README's
settings table lists the same fields (a test compares them).  The registered processors' settings are
not written here: each registration declares its own
(:attr:`~reference_server.processors.registration.Registration.settings`), read into the
:attr:`ServerSettings.processors` block of that processor, their flags and rows made from them.
``autumn-server`` builds the object, exports what it was given to the environment and its worker
processes rebuild the same object there (:func:`reference_server.app.app_factory`), as
``uvicorn --factory`` and gunicorn users do.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import limits
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from reference_server.api.ratelimit import DEFAULT_LIMITS, Limit
from reference_server.processors.registration import Registration, Setting, http_url
from reference_server.processors.registry import PROCESSORS, ProcessorSettings
from reference_server.store.db import DEFAULT_DATABASE_URL
from reference_server.store.tenancy import KEY_PREFIXES

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
"""1 MiB, :data:`reference_server.api.request_guard.DEFAULT_MAX_BODY_BYTES`'s value."""


class ConfigurationError(ValueError):
    """A setting that cannot work (checked at start): ``autumn-server`` prints it and exits."""


_SCHEMES = ("sqlite", "postgresql", "postgres", "postgresql+psycopg")

PROCESSORS_BLOCK = "processors"
"""The field of the registered processors' own settings (no variable or flag of its own)."""


def processor_settings_declared() -> Iterator[tuple[Registration[Any], Setting]]:
    """Every registered processor's settings, with their registration, in registration order."""
    for registration in PROCESSORS.values():
        for setting in registration.settings:
            yield registration, setting


class _Environment(EnvSettingsSource):
    """The ``AUTUMN_*`` variables of the fields, and the registered processors' settings (each
    registration's :attr:`~Registration.settings`) for the :attr:`ServerSettings.processors` block."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        if field_name != PROCESSORS_BLOCK:
            return super().get_field_value(field, field_name)
        block = {
            registration.name: values
            for registration in PROCESSORS.values()
            if (values := registration.read(self.env_vars, self.case_sensitive))
        }
        return block, field_name, False

    def prepare_field_value(
        self, field_name: str, field: FieldInfo, value: Any, value_is_complex: bool
    ) -> Any:
        if field_name == PROCESSORS_BLOCK:
            return value or None  # none set: the field's default
        return super().prepare_field_value(field_name, field, value, value_is_complex)


class ServerSettings(BaseSettings):
    """What an operator can set; see the README's settings table."""

    model_config = SettingsConfigDict(
        env_prefix="AUTUMN_", extra="ignore", validate_by_name=True, validate_default=True
    )

    host: str = Field("127.0.0.1", description="address to listen on")
    port: int = Field(8080, ge=1, le=65535, description="port to listen on")
    workers: int = Field(1, ge=1, le=256, description="web processes (uvicorn workers)")
    http: Literal["httptools", "h11"] = Field(
        "httptools",
        description="HTTP/1.1 parser: `httptools` (C, the fast one) or `h11` (pure Python); `h11` when "
        "httptools is not installed",
    )
    loop: Literal["uvloop", "asyncio"] = Field(
        "uvloop",
        description="event loop: `uvloop` or the standard `asyncio` one; `asyncio` when uvloop is not "
        "installed (Windows, PyPy)",
    )
    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        description="`sqlite:///path.db` or `postgresql://user@host:5432/db` (the database must exist)",
    )
    secret_key: SecretStr | None = Field(
        None,
        description="an `am_sk_test_`/`am_sk_live_` key registered for the default organization "
        "(default: one generated at first start, kept beside a SQLite database)",
    )
    encryption_keys: SecretStr | None = Field(
        None,
        description="comma-separated Fernet keys for stored Stripe secrets, the first encrypts "
        "(default: a key file beside a SQLite database)",
    )
    public_url: str | None = Field(
        None,
        description="the URL customers reach this server at, for checkout and portal links "
        "(default: the Host of the request)",
    )
    payment_processor: str = Field(
        "local",
        description="the server-wide default processor, a registered one: "
        + " or ".join(f"`{name}`" for name in PROCESSORS),
    )
    processors: dict[str, dict[str, str]] = Field(default_factory=dict, repr=False)
    """Each registered processor's own settings by variable, keyed by processor name
    (``{"stripe": {"STRIPE_SECRET_KEY": ...}}``): read from the variables its registration declares
    (:attr:`Registration.settings`), or from their flags, and checked by them.  Not in the repr: it
    holds secrets."""
    demo: bool = Field(False, description="seed a demo catalogue and customer")
    rate_limits: bool = Field(True, description="enforce Autumn's documented rate limits")
    rate_limit_overrides: dict[str, str] = Field(
        default_factory=dict,
        description='JSON, per group: `{"billing": "60/minute"}` (groups: check, track, billing, events, '
        "entity_get, list, other; Autumn's documented numbers otherwise)",
    )
    redis_url: str | None = Field(
        None,
        description="`redis://host:6379/0`: rate limits shared by every process (needed with "
        "`workers` > 1); in memory without it",
    )
    max_body_bytes: int = Field(
        DEFAULT_MAX_BODY_BYTES, ge=1024, description="largest request body served (413 beyond)"
    )
    migrate_on_start: bool = Field(
        True,
        description="run migrations at start (under a lock); off: refuse to start until "
        "`autumn-server migrate` has run",
    )
    background_jobs: bool = Field(
        True,
        description="take part in running the background jobs (one process at a time holds them); "
        "off: leave them to `autumn-server worker`",
    )
    job_lease_seconds: float = Field(
        5.0,
        ge=1.0,
        le=300.0,
        description="how long the background jobs' holder may go silent before another process takes over",
    )
    metrics: bool = Field(True, description="serve Prometheus metrics at `/metrics`")
    worker_metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="where `autumn-server worker` serves its metrics (none: it serves nothing)",
    )
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field(
        "info", description="log level"
    )
    log_format: Literal["text", "json"] = Field("text", description="`json`: one JSON object per log line")
    debug: bool = Field(False, description="show tracebacks of start-up errors")

    @field_validator("log_level", "log_format", "payment_processor", "http", "loop", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        try:
            scheme = make_url(value).drivername
        except ArgumentError:
            scheme = ""
        if scheme not in _SCHEMES:
            got = f" ({scheme}:// is not supported)" if scheme else ""
            raise ValueError(f"use sqlite:///path.db or postgresql://user@host:5432/dbname{got}")
        return value

    @field_validator("secret_key")
    @classmethod
    def _secret_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        key = value.get_secret_value().strip()
        prefixes = tuple(KEY_PREFIXES.values())
        if not key.startswith(prefixes) or len(key) < len(prefixes[0]) + 8:
            raise ValueError(
                "a secret key starts with am_sk_test_ or am_sk_live_ followed by at least 8 characters "
                "(autumn-server keys create makes one)"
            )
        return SecretStr(key)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The flags, then the environment (with the registered processors' variables)."""
        return init_settings, _Environment(settings_cls), dotenv_settings, file_secret_settings

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return None if value is None else http_url(value)

    @field_validator(PROCESSORS_BLOCK)
    @classmethod
    def _processor_settings(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        """Each registered processor's settings as its registration checks them; nothing else."""
        out: dict[str, dict[str, str]] = {}
        for registration, setting in processor_settings_declared():
            given = value.get(registration.name, {}).get(setting.variable)
            if given is None:
                continue
            try:
                checked = setting.check(given)
            except ValueError as exc:
                shown = "" if setting.secret else f" {given!r}"
                raise ValueError(f"{flag_name(setting.name)} / {setting.variable}{shown}: {exc}") from exc
            out.setdefault(registration.name, {})[setting.variable] = checked
        return out

    @field_validator("rate_limit_overrides", mode="before")
    @classmethod
    def _overrides_json(cls, value: Any) -> Any:
        if isinstance(value, str):  # a flag's value; pydantic-settings decodes the variable itself
            try:
                return json.loads(value) if value.strip() else {}
            except ValueError as exc:
                raise ValueError('use JSON such as {"billing": "60/minute"}') from exc
        return value

    @field_validator("rate_limit_overrides")
    @classmethod
    def _overrides(cls, value: dict[str, str]) -> dict[str, str]:
        for group, rate in value.items():
            if group not in DEFAULT_LIMITS:
                raise ValueError(f"unknown group {group!r} (one of {', '.join(DEFAULT_LIMITS)})")
            try:
                limits.parse(rate)
            except ValueError as exc:
                raise ValueError(
                    f"{group}: {rate!r} is not a rate such as 60/minute or 10 per second"
                ) from exc
        return value

    def limits(self) -> dict[str, Limit]:
        """Autumn's documented limits with :attr:`rate_limit_overrides` applied."""
        out = dict(DEFAULT_LIMITS)
        for group, rate in self.rate_limit_overrides.items():
            item = limits.parse(rate)
            out[group] = Limit(item.amount, float(item.get_expiry()), DEFAULT_LIMITS[group].per_customer)
        return out

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("use redis://host:6379/0 (or rediss://, unix://)")
        return value.strip()

    @field_validator("payment_processor")
    @classmethod
    def _registered_processor(cls, value: str) -> str:
        if value not in PROCESSORS:
            *others, last = (repr(name) for name in PROCESSORS)  # as pydantic words a Literal's
            raise ValueError(
                f"Input should be {', '.join(others)} or {last}" if others else f"Input should be {last}"
            )
        return value

    @model_validator(mode="after")
    def _default_processor_settings(self) -> ServerSettings:
        """The server-wide default processor's own settings are complete (its registration says)."""
        own = self.processors.get(self.payment_processor, {})
        problem = PROCESSORS[self.payment_processor].default_problem(own)
        if problem is not None:
            raise ValueError(problem)
        return self

    def processor_settings(self) -> ProcessorSettings:
        """The processor part of these settings: the default's name, and the registered processors'
        own settings (the :attr:`processors` block, by variable) for their registrations to read."""
        return ProcessorSettings(
            default=self.payment_processor,
            values={name: value for values in self.processors.values() for name, value in values.items()},
        )

    def server_stack(self) -> ServerStack:
        """The :attr:`http` parser and :attr:`loop` to serve with: the chosen ones when importable."""
        return server_stack(self.http, self.loop)

    def env(self) -> dict[str, str]:
        """These settings as the environment variables that rebuild them in another process."""
        out: dict[str, str] = {}
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            if value is None:
                continue
            if name == PROCESSORS_BLOCK:
                out.update(self.processor_settings().values)
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            if isinstance(value, dict):
                value = json.dumps(value)
            out[env_name(name, field.validation_alias)] = (
                str(value).lower() if isinstance(value, bool) else str(value)
            )
        return out


@dataclass(frozen=True)
class ServerStack:
    """uvicorn's ``http=`` and ``loop=`` for a server, and why a choice was not available."""

    http: str
    loop: str
    fallbacks: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"{self.http} + {self.loop}"


def server_stack(http: str = "httptools", loop: str = "uvloop") -> ServerStack:
    """``http``/``loop`` when importable, else uvicorn's pure-Python ``h11``/``asyncio`` (``fallbacks``
    says why).  Always explicit: uvicorn's ``auto`` would depend on what happens to be installed.

    uvicorn (>= 0.36) runs the loop through ``asyncio.Runner(loop_factory=...)``: uvloop serves that
    server's loop only and no global event-loop policy is set, so a server in a thread (the tests'
    :func:`reference_server.testing.serve_app`) leaves the process's asyncio as it was.
    """
    fallbacks = []
    if http == "httptools" and importlib.util.find_spec("httptools") is None:
        http = "h11"
        fallbacks.append("httptools is not installed: h11 instead")
    if loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
        loop = "asyncio"
        fallbacks.append("uvloop is not installed: asyncio instead")
    return ServerStack(http, loop, tuple(fallbacks))


def env_name(name: str, alias: object = None) -> str:
    """The environment variable of a field (for the Stripe ones, the plain ``STRIPE_*`` name that the
    Stripe code reads; ``AUTUMN_STRIPE_*`` works too)."""
    if isinstance(alias, AliasChoices):
        return str(alias.choices[-1])
    return f"AUTUMN_{name.upper()}"


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


SERVE_ONLY = frozenset({"port", "workers", "http", "loop", "demo", "public_url"})
"""Settings of the web server alone (the ``migrate`` and ``worker`` commands take the others)."""


def settings_flags(parser: argparse.ArgumentParser, only: frozenset[str] | None = None) -> None:
    """Add a flag per setting to ``parser`` (``--name VALUE``; ``--name/--no-name`` for switches), the
    registered processors' settings included when ``only`` has :data:`PROCESSORS_BLOCK`.

    Defaults are suppressed, so a flag not given leaves the variable (or the default) in force.
    """
    for name, field in ServerSettings.model_fields.items():
        if only is not None and name not in only:
            continue
        if name == PROCESSORS_BLOCK:
            for _, setting in processor_settings_declared():
                help_text = setting.description.replace("`", "").replace("%", "%%")
                parser.add_argument(
                    flag_name(setting.name),
                    dest=setting.name,
                    default=argparse.SUPPRESS,
                    metavar=setting.name.upper(),
                    help=f"{help_text} (${setting.variable})",
                )
            continue
        help_text = (field.description or "").replace("`", "").replace("%", "%%")
        help_text += f" (${env_name(name, field.validation_alias)})"
        if field.annotation is bool:
            parser.add_argument(
                flag_name(name),
                dest=name,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=help_text,
            )
        else:
            parser.add_argument(
                flag_name(name), dest=name, default=argparse.SUPPRESS, metavar=name.upper(), help=help_text
            )


def load_settings(flags: dict[str, Any] | None = None) -> ServerSettings:
    """The settings from the environment with ``flags`` (field name -> value) on top."""
    flags = flags or {}
    given = {k: v for k, v in flags.items() if k in ServerSettings.model_fields and k != PROCESSORS_BLOCK}
    block: dict[str, dict[str, str]] = {}
    for registration, setting in processor_settings_declared():
        if flags.get(setting.name) is not None:
            block.setdefault(registration.name, {})[setting.variable] = str(flags[setting.name])
    if block:
        given[PROCESSORS_BLOCK] = block  # merged over the environment's, setting by setting
    return ServerSettings(**given)


def describe_errors(exc: ValidationError) -> list[str]:
    """One line per invalid setting, naming its flag and variable: no traceback, no pydantic URL."""
    lines = []
    for error in exc.errors(include_url=False):
        message = str(error["msg"]).removeprefix("Value error, ")
        loc = [str(part) for part in error["loc"]]
        name = loc[0] if loc else ""
        field = ServerSettings.model_fields.get(name)
        if field is None or name == PROCESSORS_BLOCK:  # a processor's setting names itself
            lines.append(message)
            continue
        given = error.get("input")
        shown = "" if isinstance(given, SecretStr) or "key" in name or given is None else f" {given!r}"
        lines.append(f"{flag_name(name)} / {env_name(name, field.validation_alias)}{shown}: {message}")
    return lines


__all__ = [
    "PROCESSORS_BLOCK",
    "SERVE_ONLY",
    "ConfigurationError",
    "ServerSettings",
    "ServerStack",
    "describe_errors",
    "env_name",
    "flag_name",
    "load_settings",
    "processor_settings_declared",
    "server_stack",
    "settings_flags",
]
