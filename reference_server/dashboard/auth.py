"""Dashboard accounts and sign-in: argon2 password hashes, server-side sessions, CSRF tokens.

A session is a random token in an HttpOnly, SameSite=Strict cookie; the database keeps only its SHA-256
(with the session's CSRF token), so signing out ends it on the server.  Every state-changing request
carries the session's CSRF token (a form field or the ``X-CSRF-Token`` header htmx sends) and, when the
browser sends one, an ``Origin`` equal to the server's own.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import Connection

from reference_server.store import dashboard_admins as admins

SESSION_COOKIE = "autumn_dashboard"
LOGIN_CSRF_COOKIE = "autumn_dashboard_login"
SESSION_TTL_MS = 12 * 3_600_000
MIN_PASSWORD_LENGTH = 12

_HASHER = PasswordHasher()
# Verified against when the email is unknown, so a wrong email costs as long as a wrong password.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))


class AdminError(ValueError):
    """An admin account that cannot be created (unknown organization, taken email, short password)."""


@dataclass(frozen=True)
class Admin:
    pk: int
    email: str
    org_pk: int
    org_id: str
    org_name: str
    csrf_token: str


class SignInThrottle:
    """Failed sign-ins allowed per email address (5 in 15 minutes) and per client address (30, higher
    because users behind one proxy share an address), counted in this process's memory with the
    ``limits`` library; a successful sign-in clears the email's count.  Past a limit the form is refused
    before the password is checked, so a guesser gets 5 tries per account and window however many
    passwords it sends (each process of a multi-process server counts its own)."""

    PER_EMAIL = parse("5 per 15 minutes")
    PER_CLIENT = parse("30 per 15 minutes")

    def __init__(self) -> None:
        self._window = MovingWindowRateLimiter(MemoryStorage())

    def allowed(self, email: str, client: str) -> bool:
        return self._window.test(self.PER_EMAIL, "email", email.lower()) and self._window.test(
            self.PER_CLIENT, "client", client
        )

    def failed(self, email: str, client: str) -> None:
        self._window.hit(self.PER_EMAIL, "email", email.lower())
        self._window.hit(self.PER_CLIENT, "client", client)

    def succeeded(self, email: str) -> None:
        self._window.clear(self.PER_EMAIL, "email", email.lower())


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_admin(conn: Connection, org_id: str, email: str, password: str, now: int) -> int:
    """A dashboard admin of the organization ``org_id`` (its id or slug)."""
    email = email.strip().lower()
    if "@" not in email or len(email) > 255:
        raise AdminError(f"not an email address: {email!r}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AdminError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    org_pk = admins.org_pk_of(conn, org_id)
    if org_pk is None:
        raise AdminError(f"unknown organization {org_id}")
    if admins.admin_exists(conn, email):
        raise AdminError(f"{email} is already an admin")
    return admins.insert_admin(conn, org_pk, email, _HASHER.hash(password), now)


def authenticate(conn: Connection, email: str, password: str) -> int | None:
    """The admin's pk when the password is right; rehashes a hash made with older parameters."""
    row = admins.admin_credentials(conn, email.strip().lower())
    try:
        _HASHER.verify(row.password_hash if row is not None else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None:
        return None
    if _HASHER.check_needs_rehash(row.password_hash):
        admins.set_password_hash(conn, row.pk, _HASHER.hash(password))
    return row.pk


def start_session(conn: Connection, admin_pk: int, now: int) -> str:
    """A new session for the admin: the cookie's token (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    admins.insert_session(
        conn, _token_hash(token), admin_pk, secrets.token_urlsafe(32), now, now + SESSION_TTL_MS
    )
    return token


def session_admin(conn: Connection, token: str | None, now: int) -> Admin | None:
    if not token:
        return None
    row = admins.session_admin(conn, _token_hash(token), now)
    if row is None:
        return None
    return Admin(row.pk, row.email, row.org_pk, row.org_id, row.org_name, row.csrf_token)


def end_session(conn: Connection, token: str | None) -> None:
    if token:
        admins.delete_session(conn, _token_hash(token))


def same_token(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), str(given).encode())
