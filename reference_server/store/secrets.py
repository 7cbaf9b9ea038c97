"""Encryption at rest for the secrets the server stores (organizations' Stripe keys and webhook secrets).

Values are encrypted with ``cryptography``'s Fernet (AES-128-CBC + HMAC-SHA256, authenticated) through
a :class:`~cryptography.fernet.MultiFernet`: the first configured key encrypts, every key decrypts, so
keys can be rotated (add the new key in front, re-encrypt with ``autumn-server keys rotate-encryption``,
then drop the old one).  A stored value is ``autumn-enc:v1:<fernet token>``; anything without that
prefix is a plaintext value written before encryption existed and is encrypted at the next start.

Where the keys come from (:func:`resolve_keys`), first match wins:

1. ``encryption_keys`` given to ``create_app`` (the CLI's ``--encryption-keys``), or the
   ``AUTUMN_ENCRYPTION_KEYS`` environment variable: comma-separated Fernet keys.
2. SQLite file databases: the key file beside the database (``autumn.db`` -> ``autumn.db.key``,
   same comma-separated format), created with mode 0600 on first start and announced in the log, so the
   one-line quick start needs no configuration.  An in-memory database gets a throwaway key.
3. PostgreSQL without a key: no key at all.  The server still starts (deployments whose organizations
   never bring their own Stripe account need none), but saving a Stripe secret is refused with a clear
   error, and a start with secrets already stored refuses to run.  A key file beside a database server
   makes no sense, and a generated key kept only in memory would lose every secret at the next restart.

Nothing here knows about tables: :mod:`reference_server.store.org_stripe` applies it to its rows.
"""

from __future__ import annotations

import contextlib
import logging
import os
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Connection, Engine
from sqlalchemy.engine import make_url

ENCRYPTED_PREFIX = "autumn-enc:v1:"
"""Marks an encrypted value (Stripe keys start with ``sk_``/``rk_``/``whsec_``, never with this)."""
KEYS_ENV = "AUTUMN_ENCRYPTION_KEYS"
KEY_FILE_SUFFIX = ".key"

log = logging.getLogger("reference_server.secrets")


class EncryptionKeyError(RuntimeError):
    """The encryption key configuration is missing or malformed."""


class SecretDecryptionError(RuntimeError):
    """A stored secret cannot be decrypted with the configured keys (a wrong or missing key)."""


def generate_key() -> str:
    """A new random Fernet key (32 bytes, url-safe base64)."""
    return Fernet.generate_key().decode("ascii")


def parse_keys(text: str) -> list[str]:
    """``"k1, k2"`` (commas or newlines) -> ``["k1", "k2"]``."""
    return [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]


def is_encrypted(value: str) -> bool:
    return value.startswith(ENCRYPTED_PREFIX)


class SecretBox:
    """Encrypts and decrypts stored secrets with a list of Fernet keys (the first one encrypts).

    ``reload`` (key files only) is asked for the current keys once when a value does not decrypt, so a
    running server follows a rotation that ``autumn-server keys rotate-encryption`` wrote to the file.
    """

    def __init__(self, keys: Sequence[str], reload: Callable[[], list[str]] | None = None) -> None:
        self._set_keys(keys)
        self._reload = reload

    def _set_keys(self, keys: Sequence[str]) -> None:
        if not keys:
            raise EncryptionKeyError(f"{KEYS_ENV}: at least one key is needed")
        fernets = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.encode("ascii")))
            except (ValueError, UnicodeEncodeError) as exc:
                raise EncryptionKeyError(
                    f"{KEYS_ENV}: key {position} is not a Fernet key (32 url-safe base64-encoded bytes; "
                    "`autumn-server keys new-encryption-key` prints one)"
                ) from exc
        self._primary = fernets[0]
        self._all = MultiFernet(fernets)
        self.key_count = len(fernets)

    def encrypt(self, plaintext: str) -> str:
        return ENCRYPTED_PREFIX + self._primary.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, stored: str) -> str:
        """The plaintext of a stored value; a legacy plaintext value is returned as it is."""
        if not is_encrypted(stored):
            return stored
        token = stored[len(ENCRYPTED_PREFIX) :].encode("ascii")
        try:
            return self._all.decrypt(token).decode("utf-8")
        except InvalidToken:
            if self._reload is not None and self._reload_keys():
                try:
                    return self._all.decrypt(token).decode("utf-8")
                except InvalidToken:
                    pass
        raise SecretDecryptionError(
            "A stored Stripe secret cannot be decrypted with the configured encryption key(s): "
            f"{KEYS_ENV} (or the key file) must still hold the key it was encrypted with"
        )

    def _reload_keys(self) -> bool:
        assert self._reload is not None
        try:
            self._set_keys(self._reload())
        except (OSError, EncryptionKeyError):
            return False
        return True

    def is_current(self, stored: str) -> bool:
        """Whether ``stored`` is encrypted with the first key (nothing to rotate)."""
        if not is_encrypted(stored):
            return False
        try:
            self._primary.decrypt(stored[len(ENCRYPTED_PREFIX) :].encode("ascii"))
        except InvalidToken:
            return False
        return True

    def reencrypt(self, stored: str) -> str:
        """``stored`` (encrypted with any key, or legacy plaintext) encrypted with the first key."""
        return self.encrypt(self.decrypt(stored))


@dataclass(frozen=True)
class KeySource:
    """Where the keys were found: ``configured`` (argument or environment), ``key_file``, ``ephemeral``."""

    kind: str
    keys: list[str]
    path: Path | None = None
    created: bool = False


def sqlite_key_file(database_url: str) -> Path | None:
    """``sqlite:///dir/autumn.db`` -> ``dir/autumn.db.key``; None for in-memory or non-SQLite URLs."""
    url = make_url(database_url)
    if not url.drivername.startswith("sqlite"):
        return None
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database + KEY_FILE_SUFFIX)


def read_key_file(path: Path) -> list[str]:
    return parse_keys(path.read_text(encoding="ascii"))


def write_key_file(path: Path, keys: Sequence[str]) -> None:
    """Replace the key file atomically (a temporary file with mode 0600, then rename)."""
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(",\n".join(keys) + "\n")
    os.replace(tmp, path)


def _create_key_file(path: Path) -> tuple[list[str], bool]:
    """The keys of ``path``, creating it (mode 0600) with a new key when it does not exist."""
    key = generate_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first
        return read_key_file(path), False
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(key + "\n")
    return [key], True


def resolve_keys(database_url: str, configured: str | Sequence[str] | None = None) -> KeySource | None:
    """The keys for ``database_url`` (see the module docstring); None for PostgreSQL without one."""
    if configured is None:
        configured = os.environ.get(KEYS_ENV) or None
    if configured is not None:
        keys = parse_keys(configured) if isinstance(configured, str) else [k.strip() for k in configured]
        if not keys:
            raise EncryptionKeyError(f"{KEYS_ENV}: no key given")
        return KeySource("configured", keys)
    if not make_url(database_url).drivername.startswith("sqlite"):
        return None
    path = sqlite_key_file(database_url)
    if path is None:
        return KeySource("ephemeral", [generate_key()])
    if path.exists():
        if path.stat().st_mode & 0o077:
            log.warning("Encryption key file %s is readable by other users: chmod 600 it", path)
        return KeySource("key_file", read_key_file(path), path)
    keys, created = _create_key_file(path)
    if created:
        log.warning(
            "Generated an encryption key for stored Stripe secrets in %s (mode 0600). Keep it with the "
            "database (the secrets cannot be read without it) or set %s instead.",
            path.resolve(),
            KEYS_ENV,
        )
    return KeySource("key_file", keys, path, created)


def box_for_source(source: KeySource) -> SecretBox:
    path = source.path
    if source.kind == "key_file" and path is not None:
        return SecretBox(source.keys, reload=lambda: read_key_file(path))
    return SecretBox(source.keys)


# The box of each database engine: the store reads secrets from a Connection, which knows its engine.
_BOXES: weakref.WeakKeyDictionary[Engine, SecretBox] = weakref.WeakKeyDictionary()


def install_box(engine: Engine, box: SecretBox | None) -> None:
    if box is None:
        _BOXES.pop(engine, None)
    else:
        _BOXES[engine] = box


def box_of(conn: Connection) -> SecretBox | None:
    """The box installed for the connection's database (``create_app`` installs it), if any."""
    return _BOXES.get(conn.engine)
