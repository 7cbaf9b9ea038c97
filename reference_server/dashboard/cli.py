"""``autumn-server admin``: dashboard accounts from the command line.

``autumn-server admin create --org ORG --email EMAIL`` asks for the password twice on a terminal, or
reads one line from standard input with ``--password-stdin`` (scripts, CI).
"""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from typing import Any

from reference_server.store.db import Database
from reference_server.store.leases import startup_lock
from reference_server.store.tenancy import DEFAULT_ORG_ID, ensure_default_org

from .auth import MIN_PASSWORD_LENGTH, AdminError, create_admin

PROG = "autumn-server"


def add_admin_parser(sub: Any) -> argparse.ArgumentParser:
    """The ``admin`` subcommand on ``sub`` (the CLI's subparsers); returns ``admin create``'s parser,
    which takes the settings flags (``--database-url``...)."""
    admin: argparse.ArgumentParser = sub.add_parser("admin", help="manage dashboard admin accounts")
    commands = admin.add_subparsers(dest="admin_command", required=True)
    create = commands.add_parser("create", help="create a dashboard admin of an organization")
    create.add_argument(
        "--org", required=True, help="the organization's id or slug (default org: org_default)"
    )
    create.add_argument("--email", required=True)
    create.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    return create


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass(f"Password (at least {MIN_PASSWORD_LENGTH} characters): ")
    if getpass.getpass("Again: ") != first:
        raise AdminError("the passwords differ")
    return first


def run_admin(args: argparse.Namespace, database_url: str) -> int:
    try:
        password = _password(args)
        db = Database(database_url)
        try:
            with startup_lock(db):
                db.migrate()
            with db.write() as conn:
                if args.org == DEFAULT_ORG_ID:
                    ensure_default_org(conn)
                create_admin(conn, args.org, args.email, password, int(time.time() * 1000))
        finally:
            db.dispose()
    except AdminError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    print(f"created dashboard admin {args.email.strip().lower()} of {args.org}")
    return 0
