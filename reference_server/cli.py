"""``autumn-server``: run the reference server, its migrations or its background jobs; manage keys.

autumn-server [--host 127.0.0.1] [--port 8080] [--workers N] [--http httptools|h11] [--loop uvloop|asyncio]
              [--database-url URL] [--demo] [...]
autumn-server migrate [--database-url URL]
autumn-server worker [--database-url URL]
autumn-server keys create [--org ORG_ID] [--env sandbox|live] [--name NAME]
autumn-server keys list
autumn-server keys revoke KEY_ID_OR_KEY
autumn-server keys new-encryption-key
autumn-server keys rotate-encryption [--encryption-keys NEW,OLD]
autumn-server --version

Every option is also an ``AUTUMN_*`` variable (:mod:`reference_server.settings`).  A start-up mistake
(a database that does not exist, a bad key, Stripe without its key...) is one or two lines and a
non-zero exit, never a traceback unless ``--debug``.  Organizations' Stripe secrets are stored
encrypted (:mod:`reference_server.store.secrets`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import logging.config
import os
import re
import shutil
import signal
import socket
import sqlite3
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError
from sqlalchemy.engine import make_url

from reference_server.dashboard.cli import add_admin_parser, run_admin
from reference_server.settings import (
    SERVE_ONLY,
    ConfigurationError,
    ServerSettings,
    describe_errors,
    load_settings,
    settings_flags,
)
from reference_server.store.db import Database
from reference_server.store.leases import startup_lock
from reference_server.store.org_stripe import reencrypt_secrets
from reference_server.store.schema_version import MigrationsPending, current_revision, require_current
from reference_server.store.secrets import (
    KEYS_ENV,
    EncryptionKeyError,
    SecretBox,
    SecretDecryptionError,
    generate_key,
    resolve_keys,
    write_key_file,
)
from reference_server.store.tenancy import (
    DEFAULT_ORG_ID,
    create_key,
    ensure_default_org,
    get_org,
    list_keys,
    revoke_key,
    tenant_for_key,
)

PROG = "autumn-server"
GENERATED_KEY_NAME = "generated at start"


def _version() -> str:
    from reference_server.app import API_VERSION, _version

    return f"{PROG} {_version()} (Autumn API {API_VERSION})"


class _VersionAction(argparse.Action):
    """``--version`` without importing the app until asked."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="print the version")

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        print(_version())
        parser.exit()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="The Autumn API reference server.")
    p.add_argument("--version", action=_VersionAction)
    settings_flags(p)
    sub = p.add_subparsers(dest="command")
    serve_less = frozenset(ServerSettings.model_fields) - SERVE_ONLY
    migrate = sub.add_parser(
        "migrate", help="bring the database's schema up to date (under a lock), then exit"
    )
    settings_flags(migrate, frozenset({"database_url", "debug", "log_level", "log_format"}))
    worker = sub.add_parser(
        "worker", help="run the background jobs (webhooks, Stripe follow-ups, refunds) without serving HTTP"
    )
    settings_flags(worker, serve_less)
    keys = sub.add_parser("keys", help="manage secret keys")
    settings_flags(keys, frozenset({"database_url", "encryption_keys", "debug"}))
    ks = keys.add_subparsers(dest="keys_command", required=True)
    create = ks.add_parser("create", help="create a secret key (printed once)")
    create.add_argument("--org", default=DEFAULT_ORG_ID)
    create.add_argument("--env", choices=("sandbox", "live"), default="sandbox")
    create.add_argument("--name")
    ks.add_parser("list", help="list keys (ids and prefixes, never the keys)")
    revoke = ks.add_parser("revoke", help="revoke a key by id or by the key itself")
    revoke.add_argument("key")
    ks.add_parser("new-encryption-key", help=f"print a new Fernet key for {KEYS_ENV}")
    ks.add_parser(
        "rotate-encryption",
        help="re-encrypt every stored Stripe secret with the first encryption key "
        "(with a SQLite key file: with a new key written to it)",
    )
    settings_flags(add_admin_parser(sub), frozenset({"database_url", "debug"}))
    return p


# -- keys -------------------------------------------------------------------------------------------


def _migrated(settings: ServerSettings) -> Database:
    db = Database(settings.database_url)
    try:
        with startup_lock(db):
            db.migrate()
    except Exception:
        db.dispose()
        raise
    return db


def _encryption_keys(settings: ServerSettings) -> str | None:
    return settings.encryption_keys.get_secret_value() if settings.encryption_keys else None


def _rotate_encryption(settings: ServerSettings) -> int:
    """Re-encrypt stored secrets with the first configured key; a key file gets a new key first.

    The key file holds the new and the old keys while the secrets are rewritten (a running server
    re-reads it when a secret does not decrypt), then the new key alone.
    """
    db = _migrated(settings)
    try:
        source = resolve_keys(db.url, _encryption_keys(settings))
        if source is None or source.kind == "ephemeral":
            raise ConfigurationError(f"no encryption keys: set {KEYS_ENV} (new key first, then the old ones)")
        keys = source.keys
        if source.kind == "key_file" and source.path is not None:
            keys = [generate_key(), *source.keys]
            write_key_file(source.path, keys)
        try:
            box = SecretBox(keys)
            with db.write() as conn:
                count = reencrypt_secrets(conn, box, only_plaintext=False)
        except (EncryptionKeyError, SecretDecryptionError):
            if source.kind == "key_file" and source.path is not None:
                write_key_file(source.path, source.keys)
            raise
        if source.kind == "key_file" and source.path is not None:
            write_key_file(source.path, keys[:1])
            print(f"re-encrypted {count} secret(s) with a new key, now the only one in {source.path}")
        else:
            others = f"; the other keys can now be removed from {KEYS_ENV}" if len(keys) > 1 else ""
            print(f"re-encrypted {count} secret(s) with the first key{others}")
    finally:
        db.dispose()
    return 0


def _keys(args: argparse.Namespace, settings: ServerSettings) -> int:
    if args.keys_command == "new-encryption-key":
        print(generate_key())
        return 0
    if args.keys_command == "rotate-encryption":
        return _rotate_encryption(settings)
    db = _migrated(settings)
    try:
        with db.write() as conn:
            if args.keys_command == "create":
                org = ensure_default_org(conn) if args.org == DEFAULT_ORG_ID else get_org(conn, args.org)
                if org is None:
                    print(f"{PROG}: unknown organization {args.org}", file=sys.stderr)
                    return 1
                key_id, key = create_key(conn, org.pk, args.env, args.name)
                print(f"{key_id} {key}")
            elif args.keys_command == "list":
                print("id\torg\tenv\tprefix\tstate\tname")
                for k in list_keys(conn):
                    state = "revoked" if k["revoked"] else "active"
                    print(f"{k['id']}\t{k['org_id']}\t{k['env']}\t{k['prefix']}…\t{state}\t{k['name'] or ''}")
            elif args.keys_command == "revoke":
                if not revoke_key(conn, args.key):
                    print(f"{PROG}: no such active key", file=sys.stderr)
                    return 1
                print("revoked")
    finally:
        db.dispose()
    return 0


# -- serve, migrate, worker -------------------------------------------------------------------------


def generated_key_file(database_url: str) -> Path | None:
    """Where the key generated at first start is kept: beside a SQLite database (None otherwise)."""
    db_path = make_url(Database(database_url).url).database if database_url.startswith("sqlite") else None
    if not db_path or db_path == ":memory:":
        return None
    path = Path(db_path)
    return path.with_name(path.name + ".secret-key")


def _generated_key(settings: ServerSettings) -> tuple[str | None, bool]:
    """With no ``--secret-key``: the key generated at an earlier start (kept beside a SQLite database,
    mode 0600) while it is still active, else a new one.  Returns (key, new?); (None, False) on
    PostgreSQL once one was generated: it was printed then, and is never stored in plain text."""
    db = Database(settings.database_url)
    path = generated_key_file(settings.database_url)
    try:
        with startup_lock(db):
            if settings.migrate_on_start:
                db.migrate()
            else:
                require_current(db)
            with db.write() as conn:
                if path is not None and path.exists():
                    kept = path.read_text().strip()
                    if tenant_for_key(conn, kept) is not None:
                        return kept, False
                elif path is None and any(
                    k["name"] == GENERATED_KEY_NAME and not k["revoked"] for k in list_keys(conn)
                ):
                    return None, False
                org = ensure_default_org(conn)
                _key_id, key = create_key(conn, org.pk, "sandbox", GENERATED_KEY_NAME)
            if path is not None:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as out:
                    out.write(key + "\n")
            return key, True
    finally:
        db.dispose()


def _safe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def _configure_logging(settings: ServerSettings) -> dict[str, Any]:
    from reference_server.observability import logging_config

    config = logging_config(settings.log_level, settings.log_format)
    logging.config.dictConfig(config)
    return config


@contextlib.contextmanager
def _multiprocess_metrics() -> Iterator[None]:
    """A ``PROMETHEUS_MULTIPROC_DIR`` shared by the worker processes (unless one is set), removed after."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        yield
        return
    path = tempfile.mkdtemp(prefix="autumn-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    try:
        yield
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _serve(settings: ServerSettings) -> int:
    import uvicorn

    from reference_server.app import create_app_from_settings

    if settings.workers > 1 and settings.rate_limits and not settings.redis_url:
        raise ConfigurationError(
            f"--workers {settings.workers} would count rate limits in each process ({settings.workers}x the "
            "documented limits): set AUTUMN_REDIS_URL=redis://127.0.0.1:6379/0 or use --no-rate-limits"
        )
    _check_port_free(settings.host, settings.port)
    log_config = _configure_logging(settings)
    generated = False
    announce = "the one printed at its first start (autumn-server keys create makes another)"
    if settings.secret_key is None:
        key, generated = _generated_key(settings)
        if key is not None:
            settings = settings.model_copy(update={"secret_key": SecretStr(key)})
    if settings.secret_key is not None:
        announce = settings.secret_key.get_secret_value() + (" (new)" if generated else "")
    # The payment code and the N workers read the same settings from the environment.
    os.environ.update(settings.env())
    # Built here once, even for N workers: migrations, seeding and every check happen before any
    # worker starts (the workers then find the database ready).
    app = create_app_from_settings(settings)
    url = f"http://{settings.host}:{settings.port}"
    stack = settings.server_stack()
    for fallback in stack.fallbacks:
        logging.getLogger("reference_server").warning("%s", fallback)
    print(
        f"Autumn reference server on {url}"
        + (f" ({settings.workers} workers)" if settings.workers > 1 else "")
    )
    print(f"HTTP: uvicorn, {stack.describe()}")
    print(f"Database: {_safe_url(settings.database_url)}")
    print(f"Secret key: {announce}")
    if settings.demo:
        print("Demo: customer 'demo_customer', plans 'free' (default) and 'pro'; messages, credits, seats")
    sys.stdout.flush()
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_config": log_config,
        "access_log": False,  # autumn.access logs each request with its id
        "http": stack.http,  # explicit, never uvicorn's "auto" (which depends on what is installed)
        "loop": stack.loop,
        "timeout_graceful_shutdown": 10,
    }
    if settings.workers == 1:
        uvicorn.run(app, **common)
        return 0
    app.state.autumn.db.dispose()
    with _multiprocess_metrics():
        uvicorn.run("reference_server.app:app_factory", factory=True, workers=settings.workers, **common)
    return 0


def _check_port_free(host: str, port: int) -> None:
    """Refuse a taken address before migrating or printing anything (uvicorn would find out last)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigurationError(
                f"cannot listen on {host}:{port} ({exc.strerror or exc}): another server may be using it; "
                "stop it or choose another --port / AUTUMN_PORT"
            ) from exc


def _migrate(settings: ServerSettings) -> int:
    _configure_logging(settings)
    db = _migrated(settings)
    try:
        print(f"{_safe_url(settings.database_url)} is at revision {current_revision(db)}")
    finally:
        db.dispose()
    return 0


def _serve_worker_metrics(host: str, port: int) -> None:
    """The worker's job metrics at ``http://host:port/metrics`` (prometheus_client's own server)."""
    from prometheus_client import start_http_server

    from reference_server.observability import metrics_registry

    _check_port_free(host, port)
    start_http_server(port, addr=host, registry=metrics_registry())


def _worker(settings: ServerSettings) -> int:
    """The background jobs alone: the lease makes this the only place they run while it lives."""
    from reference_server.app import create_app_from_settings

    _configure_logging(settings)
    settings = settings.model_copy(update={"background_jobs": True})
    os.environ.update(settings.env())  # the payment code reads the processor settings from it
    app = create_app_from_settings(settings)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with app.router.lifespan_context(app):
            if settings.worker_metrics_port is not None:
                _serve_worker_metrics(settings.host, settings.worker_metrics_port)
            print(f"Autumn background worker on {_safe_url(settings.database_url)}", flush=True)
            await stop.wait()

    asyncio.run(run())
    return 0


# -- operator-grade errors --------------------------------------------------------------------------


def _database_problem(exc: BaseException, database_url: str) -> list[str] | None:
    """One or two lines for a database that cannot be used, from the driver's error."""
    text = str(getattr(exc, "orig", None) or exc)
    try:
        url = make_url(Database(database_url).url)
    except Exception:
        return None
    where = f"{url.host or 'localhost'}:{url.port or 5432}"
    missing = re.search(r'database "([^"]+)" does not exist', text)
    if missing:
        name = missing.group(1)
        return [
            f'PostgreSQL database "{name}" does not exist on {where}.',
            f"Create it first (createdb -h {url.host or 'localhost'} -p {url.port or 5432} {name}, or "
            f'CREATE DATABASE "{name}"), or point --database-url / AUTUMN_DATABASE_URL at an existing one.',
        ]
    unreachable = re.search(
        r"connection refused|timeout expired|name or service not known|could not translate host name",
        text,
        re.I,
    )
    if unreachable or "could not connect" in text.lower():
        reason = unreachable.group(0).lower() if unreachable else "no connection"
        return [
            f"cannot reach PostgreSQL at {where}: {reason}.",
            "Is PostgreSQL running there, and is --database-url / AUTUMN_DATABASE_URL right?",
        ]
    login = re.search(r'(password authentication failed for user "[^"]+"|role "[^"]+" does not exist)', text)
    if login:
        return [f"PostgreSQL at {where} refused the login: {login.group(1)}.", "Fix the user or password."]
    unusable = "unable to open database file" in text or isinstance(exc, FileNotFoundError | PermissionError)
    if unusable and url.get_backend_name() == "sqlite":
        return [
            f"cannot open the SQLite database {url.database}: its folder does not exist or is not writable.",
            "Create the folder or point --database-url / AUTUMN_DATABASE_URL elsewhere.",
        ]
    return None


def explain(exc: BaseException, database_url: str | None) -> tuple[list[str], int] | None:
    """What an operator reads for a start-up failure: lines and an exit status (None: unexpected)."""
    from alembic.util.exc import CommandError
    from sqlalchemy.exc import DBAPIError

    if isinstance(exc, ValidationError):
        return describe_errors(exc), 2
    if isinstance(exc, ConfigurationError | MigrationsPending):
        return [str(exc)], 2
    if isinstance(exc, EncryptionKeyError | SecretDecryptionError):
        return [str(exc)], 1
    if isinstance(exc, CommandError) and "Can't locate revision" in str(exc):
        return [
            f"the database was migrated by a newer autumn-server ({exc}).",
            "Run the newer version, or restore a backup made for this one.",
        ], 1
    if database_url is not None and isinstance(exc, DBAPIError | sqlite3.Error | OSError):
        lines = _database_problem(exc, database_url)
        if lines is not None:
            return lines, 1
    with contextlib.suppress(ImportError):
        import psycopg

        if database_url is not None and isinstance(exc, psycopg.Error):
            lines = _database_problem(exc, database_url)
            if lines is not None:
                return lines, 1
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(_join_dash_values(sys.argv[1:] if argv is None else argv))
    flags = vars(args)
    debug = bool(flags.get("debug")) or os.environ.get("AUTUMN_DEBUG", "").lower() in ("1", "true", "yes")
    database_url = flags.get("database_url") or os.environ.get("AUTUMN_DATABASE_URL")
    try:
        settings = load_settings(flags)
        database_url = settings.database_url
        if args.command == "keys":
            return _keys(args, settings)
        if args.command == "admin":
            return run_admin(args, settings.database_url)
        if args.command == "migrate":
            return _migrate(settings)
        if args.command == "worker":
            return _worker(settings)
        return _serve(settings)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if debug:
            raise
        explained = explain(exc, database_url)
        if explained is None:
            lines = [f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"]
            lines.append("(run with --debug for the traceback)")
            status = 1
        else:
            lines, status = explained
        for line in lines:
            print(f"{PROG}: {line}", file=sys.stderr)
        return status


# Options whose values may begin with "-": a Fernet key is URL-safe base64, so about one in 64
# starts with "-", which argparse would take for an option unless it is joined with "=".
_DASH_VALUE_OPTIONS = frozenset({"--encryption-keys"})


def _join_dash_values(argv: Sequence[str]) -> list[str]:
    """Rewrite ``--encryption-keys VALUE`` as ``--encryption-keys=VALUE`` so any key parses."""
    joined: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in _DASH_VALUE_OPTIONS and i + 1 < len(argv):
            joined.append(f"{arg}={argv[i + 1]}")
            i += 2
            continue
        joined.append(arg)
        i += 1
    return joined


if __name__ == "__main__":
    raise SystemExit(main())
