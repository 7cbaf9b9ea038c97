"""``autumn-server``: run the reference server, or manage its secret keys.

autumn-server [--host 127.0.0.1] [--port 8080] [--database-url URL] [--secret-key KEY] [--demo]
autumn-server keys create [--org ORG_ID] [--env sandbox|live] [--name NAME]
autumn-server keys list
autumn-server keys revoke KEY_ID_OR_KEY
autumn-server keys new-encryption-key
autumn-server keys rotate-encryption [--encryption-keys NEW,OLD]

Organizations' Stripe secrets are stored encrypted with ``AUTUMN_ENCRYPTION_KEYS`` (or
``--encryption-keys``; on SQLite without either, a key file beside the database), see
:mod:`reference_server.store.secrets`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from reference_server.store.db import DEFAULT_DATABASE_URL, Database
from reference_server.store.org_stripe import reencrypt_secrets
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
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="autumn-server", description="The Autumn API reference server.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument(
        "--database-url",
        default=os.environ.get("AUTUMN_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="sqlite:///path.db (default ./autumn.db) or postgresql://user@host/db",
    )
    p.add_argument(
        "--secret-key",
        default=os.environ.get("AUTUMN_SECRET_KEY"),
        help="register this am_sk_test_/am_sk_live_ key for the default organization",
    )
    encryption_help = (
        f"comma-separated Fernet keys for stored Stripe secrets, the first encrypts (default ${KEYS_ENV}, "
        "else a key file beside a SQLite database); prefer the variable: command lines are visible"
    )
    p.add_argument("--encryption-keys", help=encryption_help)
    p.add_argument("--demo", action="store_true", help="seed a demo catalogue and customer")
    p.add_argument("--no-rate-limits", action="store_true", help="switch Autumn's rate limits off")
    p.add_argument("--log-level", default="info")
    sub = p.add_subparsers(dest="command")
    keys = sub.add_parser("keys", help="manage secret keys")
    keys.add_argument("--database-url", default=argparse.SUPPRESS, help="as above (either position works)")
    keys.add_argument("--encryption-keys", default=argparse.SUPPRESS, help="as above")
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
    return p


def _rotate_encryption(args: argparse.Namespace) -> int:
    """Re-encrypt stored secrets with the first configured key; a key file gets a new key first.

    The key file holds the new and the old keys while the secrets are rewritten (a running server
    re-reads it when a secret does not decrypt), then the new key alone.
    """
    db = Database(args.database_url)
    db.migrate()
    try:
        try:
            source = resolve_keys(db.url, getattr(args, "encryption_keys", None))
        except EncryptionKeyError as exc:
            print(exc, file=sys.stderr)
            return 1
        if source is None or source.kind == "ephemeral":
            print(f"no encryption keys: set {KEYS_ENV} (new key first, then the old ones)", file=sys.stderr)
            return 1
        keys = source.keys
        if source.kind == "key_file" and source.path is not None:
            keys = [generate_key(), *source.keys]
            write_key_file(source.path, keys)
        try:
            box = SecretBox(keys)
            with db.write() as conn:
                count = reencrypt_secrets(conn, box, only_plaintext=False)
        except (EncryptionKeyError, SecretDecryptionError) as exc:
            if source.kind == "key_file" and source.path is not None:
                write_key_file(source.path, source.keys)
            print(exc, file=sys.stderr)
            return 1
        if source.kind == "key_file" and source.path is not None:
            write_key_file(source.path, keys[:1])
            print(f"re-encrypted {count} secret(s) with a new key, now the only one in {source.path}")
        else:
            others = f"; the other keys can now be removed from {KEYS_ENV}" if len(keys) > 1 else ""
            print(f"re-encrypted {count} secret(s) with the first key{others}")
    finally:
        db.dispose()
    return 0


def _keys(args: argparse.Namespace) -> int:
    if args.keys_command == "new-encryption-key":
        print(generate_key())
        return 0
    if args.keys_command == "rotate-encryption":
        return _rotate_encryption(args)
    db = Database(args.database_url)
    db.migrate()
    try:
        with db.write() as conn:
            if args.keys_command == "create":
                org = ensure_default_org(conn) if args.org == DEFAULT_ORG_ID else get_org(conn, args.org)
                if org is None:
                    print(f"unknown organization {args.org}", file=sys.stderr)
                    return 1
                key_id, key = create_key(conn, org.pk, args.env, args.name)
                print(f"{key_id} {key}")
            elif args.keys_command == "list":
                for k in list_keys(conn):
                    state = "revoked" if k["revoked"] else "active"
                    print(f"{k['id']}\t{k['org_id']}\t{k['env']}\t{k['prefix']}…\t{state}\t{k['name'] or ''}")
            elif args.keys_command == "revoke":
                if not revoke_key(conn, args.key):
                    print("no such active key", file=sys.stderr)
                    return 1
                print("revoked")
    finally:
        db.dispose()
    return 0


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


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(_join_dash_values(sys.argv[1:] if argv is None else argv))
    if args.command == "keys":
        return _keys(args)
    import uvicorn

    from reference_server.app import create_app

    secret_key = args.secret_key
    generated = False
    if secret_key is None:
        db = Database(args.database_url)
        db.migrate()
        with db.write() as conn:
            org = ensure_default_org(conn)
            _key_id, secret_key = create_key(conn, org.pk, "sandbox", "generated at start")
        db.dispose()
        generated = True
    try:
        app = create_app(
            args.database_url,
            secret_key=secret_key,
            demo=args.demo,
            rate_limits=not args.no_rate_limits,
            encryption_keys=args.encryption_keys,
        )
    except (EncryptionKeyError, SecretDecryptionError) as exc:
        print(f"autumn-server: {exc}", file=sys.stderr)
        return 1
    url = f"http://{args.host}:{args.port}"
    print(f"Autumn reference server on {url}")
    print(f"Database: {args.database_url}")
    print(f"Secret key{' (new)' if generated else ''}: {secret_key}")
    if args.demo:
        print("Demo: customer 'demo_customer', plans 'free' (default) and 'pro'; messages, credits, seats")
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
