"""Organizations' Stripe secrets at rest: encrypted rows, restarts, wrong keys, rotation, legacy rows,
and what moving an environment to another Stripe account does to its customers' Stripe ids.

Every test runs on SQLite and PostgreSQL against the real server; the account move pays on localstripe.
"""

from __future__ import annotations

import base64
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe
from sqlalchemy import insert, text

from reference_server import cli
from reference_server.app import create_app
from reference_server.clock import ManualClock
from reference_server.processors.registry import Processors
from reference_server.processors.stripe.processor import StripeProcessor
from reference_server.service.platform import same_account
from reference_server.store.db import Database
from reference_server.store.org_stripe import stripe_config
from reference_server.store.secrets import (
    ENCRYPTED_PREFIX,
    EncryptionKeyError,
    SecretBox,
    SecretDecryptionError,
    generate_key,
    read_key_file,
)
from reference_server.store.tables.core import organizations
from reference_server.store.tables.stripe import org_stripe_accounts
from reference_server.testing import (
    DEFAULT_TEST_ENCRYPTION_KEY,
    RunningServer,
    fresh_database_url,
    postgres_available,
    run_server,
)

from .helpers import attach_paid_plan, ms, new_org, org_call, platform
from .localstripe_server import localstripe, pay_through_stripe_checkout

START = ms(2026, 4, 1)
KEY_A = "sk_test_tenant_account_a"
KEY_B = "sk_test_tenant_account_b"
KEY_A_ROLLED = "sk_test_tenant_account_a_rolled"
WHSEC = "whsec_tenant_webhook_secret"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "postgres" and not postgres_available():
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL is required in CI")
        pytest.skip("PostgreSQL is not available")
    monkeypatch.delenv("AUTUMN_ENCRYPTION_KEYS", raising=False)
    monkeypatch.delenv("AUTUMN_PAYMENT_PROCESSOR", raising=False)
    monkeypatch.delenv("STRIPE_SECRET_KEY", raising=False)
    with fresh_database_url(request.param) as url:
        yield url


@pytest.fixture
def stripe_base(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with localstripe() as api_base:
        monkeypatch.setenv("STRIPE_API_BASE", api_base)
        yield api_base


def raw_rows(url: str) -> list[tuple[Any, ...]]:
    db = Database(url)
    try:
        with db.read() as conn:
            rows = conn.execute(
                text("SELECT secret_key, account_id, webhook_secret FROM org_stripe_accounts ORDER BY pk")
            ).all()
            return [tuple(r) for r in rows]
    finally:
        db.dispose()


def org_pk(server: RunningServer, org_id: str) -> int:
    with server.app.state.autumn.db.read() as conn:
        return int(
            conn.execute(text("SELECT pk FROM organizations WHERE id = :id"), {"id": org_id}).scalar_one()
        )


def save_keys(server: RunningServer, slug: str, **fields: str) -> str:
    saved = platform(server, "organizations/stripe", organization_slug=slug, **fields)
    assert saved.status_code == 200, saved.text
    return str(saved.json()["organization"]["id"])


def org_processor(server: RunningServer, pk: int) -> Any:
    router = server.app.state.autumn.processors
    assert isinstance(router, Processors)
    with server.app.state.autumn.db.read() as conn:
        return router.for_org(conn, pk, "sandbox")


def test_secrets_are_encrypted_in_the_row_and_read_back_after_a_restart(db_url: str) -> None:
    responses: list[str] = []
    with run_server(db_url) as server:
        slug, _key = new_org(server)
        saved = platform(
            server,
            "organizations/stripe",
            organization_slug=slug,
            test_secret_key=KEY_A,
            test_webhook_secret=WHSEC,
        )
        assert saved.status_code == 200, saved.text
        org_id = str(saved.json()["organization"]["id"])
        responses.append(saved.text)
        responses.append(platform(server, "organizations/list").text)
        responses.append(platform(server, "users/list", expand="organizations").text)
        created = platform(
            server, "organizations", user_email="o@example.com", name=slug, slug=slug, env="test"
        )
        responses.append(created.text)
    # The platform API never answers with a Stripe secret.
    assert all(KEY_A not in r and WHSEC not in r and "tenant_account" not in r for r in responses)

    ((secret_key, account_id, webhook_secret),) = raw_rows(db_url)
    assert account_id is None
    for stored in (secret_key, webhook_secret):
        assert stored.startswith(ENCRYPTED_PREFIX)
        assert "sk_test" not in stored and "whsec" not in stored and "tenant" not in stored
    box = SecretBox([DEFAULT_TEST_ENCRYPTION_KEY])
    assert (box.decrypt(secret_key), box.decrypt(webhook_secret)) == (KEY_A, WHSEC)

    with run_server(db_url) as again:  # a new process with the same key reads them
        pk = org_pk(again, org_id)
        processor = org_processor(again, pk)
        assert isinstance(processor, StripeProcessor) and processor.secret_key == KEY_A
        with again.app.state.autumn.db.read() as conn:
            config = stripe_config(conn, pk, "sandbox")
        assert config is not None and config.webhook_secret == WHSEC
    assert raw_rows(db_url) == [(secret_key, None, webhook_secret)]  # reading changes nothing


def test_a_wrong_key_stops_the_start_with_a_clear_error(db_url: str) -> None:
    with run_server(db_url) as server:
        slug, _key = new_org(server)
        save_keys(server, slug, test_secret_key=KEY_A)
    before = raw_rows(db_url)
    with pytest.raises(SecretDecryptionError, match=r"1 stored Stripe secret.*AUTUMN_ENCRYPTION_KEYS"):
        create_app(db_url, encryption_keys=generate_key())
    with pytest.raises(EncryptionKeyError, match="key 1 is not a Fernet key"):
        create_app(db_url, encryption_keys="not-a-key")
    with pytest.raises(SecretDecryptionError, match="cannot be decrypted"):
        SecretBox([generate_key()]).decrypt(before[0][0])
    if not db_url.startswith("sqlite"):  # no key at all: a key file only exists for SQLite
        with pytest.raises(EncryptionKeyError, match="no encryption key is configured"):
            create_app(db_url)
    assert raw_rows(db_url) == before


def test_rotation_re_encrypts_every_secret_with_the_first_key(db_url: str) -> None:
    # A URL-safe base64 key whose first character is "-" (byte 0xF8 opens with index 62): the
    # command line must take it like any other key.
    old, new = DEFAULT_TEST_ENCRYPTION_KEY, base64.urlsafe_b64encode(bytes([0xF8]) + os.urandom(31)).decode()
    assert new.startswith("-")
    with run_server(db_url) as server:
        slug_1, _ = new_org(server)
        slug_2, _ = new_org(server)
        org_1 = save_keys(server, slug_1, test_secret_key=KEY_A, test_webhook_secret=WHSEC)
        save_keys(server, slug_2, test_secret_key=KEY_B)
    before = raw_rows(db_url)

    # Without the old key nothing can be re-encrypted, and nothing is changed.
    assert cli.main(["--database-url", db_url, "keys", "--encryption-keys", new, "rotate-encryption"]) == 1
    assert raw_rows(db_url) == before

    assert (
        cli.main(["--database-url", db_url, "keys", "--encryption-keys", f"{new},{old}", "rotate-encryption"])
        == 0
    )
    after = raw_rows(db_url)
    only_new = SecretBox([new])
    assert [(only_new.decrypt(k), only_new.decrypt(w) if w else None) for k, _a, w in after] == [
        (KEY_A, WHSEC),
        (KEY_B, None),
    ]
    with pytest.raises(SecretDecryptionError):
        SecretBox([old]).decrypt(after[0][0])
    with run_server(db_url, encryption_keys=new) as server:  # the old key can go
        processor = org_processor(server, org_pk(server, org_1))
        assert isinstance(processor, StripeProcessor) and processor.secret_key == KEY_A
    # A second rotation with nothing left to do rewrites nothing.
    assert cli.main(["--database-url", db_url, "--encryption-keys", new, "keys", "rotate-encryption"]) == 0
    assert raw_rows(db_url) == after


def test_plaintext_rows_from_before_encryption_are_encrypted_at_start(db_url: str) -> None:
    db = Database(db_url)
    db.migrate()
    with db.write() as conn:  # what revision 0004 wrote
        pk = conn.execute(
            insert(organizations)
            .values(id="org_legacy", name="Legacy", slug="legacy", catalog_version=0, created_at=0)
            .returning(organizations.c.pk)
        ).scalar_one()
        conn.execute(
            insert(org_stripe_accounts).values(
                org_pk=pk, env="sandbox", secret_key=KEY_A, webhook_secret=WHSEC, updated_at=0
            )
        )
    db.dispose()
    if not db_url.startswith("sqlite"):
        with pytest.raises(EncryptionKeyError, match="AUTUMN_ENCRYPTION_KEYS"):
            create_app(db_url)  # PostgreSQL without a key will not start on stored secrets
        assert raw_rows(db_url) == [(KEY_A, None, WHSEC)]

    with run_server(db_url) as server:
        ((secret_key, _account, webhook_secret),) = raw_rows(db_url)
        assert secret_key.startswith(ENCRYPTED_PREFIX) and webhook_secret.startswith(ENCRYPTED_PREFIX)
        processor = org_processor(server, int(pk))
        assert isinstance(processor, StripeProcessor) and processor.secret_key == KEY_A
    box = SecretBox([DEFAULT_TEST_ENCRYPTION_KEY])
    assert (box.decrypt(secret_key), box.decrypt(webhook_secret)) == (KEY_A, WHSEC)


def test_sqlite_without_a_key_uses_a_private_key_file_that_rotation_replaces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AUTUMN_ENCRYPTION_KEYS", raising=False)
    url = f"sqlite:///{tmp_path / 'autumn.db'}"
    key_file = tmp_path / "autumn.db.key"
    with run_server(url, encryption_keys=None) as server:
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        (first_key,) = read_key_file(key_file)
        slug, _ = new_org(server)
        org_id = save_keys(server, slug, test_secret_key=KEY_A)
        ((stored, _a, _w),) = raw_rows(url)
        assert SecretBox([first_key]).decrypt(stored) == KEY_A

        assert cli.main(["--database-url", url, "keys", "rotate-encryption"]) == 0
        (second_key,) = read_key_file(key_file)
        assert second_key != first_key and stat.S_IMODE(key_file.stat().st_mode) == 0o600
        ((rotated, _a, _w),) = raw_rows(url)
        assert SecretBox([second_key]).decrypt(rotated) == KEY_A
        # The running server started with the old key and follows the file.
        processor = org_processor(server, org_pk(server, org_id))
        assert isinstance(processor, StripeProcessor) and processor.secret_key == KEY_A
    with run_server(url, encryption_keys=None) as again:
        processor = org_processor(again, org_pk(again, org_id))
        assert isinstance(processor, StripeProcessor) and processor.secret_key == KEY_A


@pytest.mark.postgres
def test_postgres_without_a_key_starts_but_will_not_store_a_stripe_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PostgreSQL only: SQLite always has a key (the key file beside the database)."""
    if not postgres_available():
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL is required in CI")
        pytest.skip("PostgreSQL is not available")
    monkeypatch.delenv("AUTUMN_ENCRYPTION_KEYS", raising=False)
    with fresh_database_url("postgres") as db_url, run_server(db_url, encryption_keys=None) as server:
        slug, _ = new_org(server)
        refused = platform(server, "organizations/stripe", organization_slug=slug, test_secret_key=KEY_A)
        assert refused.status_code == 503, refused.text
        # platform.yaml allows five codes; a 5xx is internal_error and the message says what to set
        assert refused.json()["code"] == "internal_error"
        assert "AUTUMN_ENCRYPTION_KEYS" in refused.json()["message"]
        assert raw_rows(db_url) == []
        save_keys(server, slug, test_account_id="acct_connected")  # not a secret
        assert raw_rows(db_url) == [(None, "acct_connected", None)]


def stripe_state(server: RunningServer) -> tuple[Any, list[tuple[Any, ...]]]:
    """The customer's Stripe id and its cards (processor id, default)."""
    with server.app.state.autumn.db.read() as conn:
        stripe_id = conn.execute(text("SELECT stripe_id FROM customers WHERE id = 'u1'")).scalar_one()
        cards = conn.execute(
            text(
                "SELECT pm.processor_id, pm.is_default FROM payment_methods pm "
                "JOIN customers c ON c.pk = pm.customer_pk WHERE c.id = 'u1' ORDER BY pm.pk"
            )
        ).all()
    return stripe_id, [(pid, bool(default)) for pid, default in cards]


def rolled_key_of(stripe_base: str, key: str, rolled: str) -> None:
    """Tell localstripe that ``rolled`` is another key of ``key``'s account (localstripe_ext.account)."""
    account = stripe.StripeClient(key, base_addresses={"api": stripe_base}).v1.accounts.retrieve_current()
    assert httpx.post(f"{stripe_base}/_config/accounts/{account.id}", data={"key": rolled}).status_code == 200


def test_moving_to_another_stripe_account_forgets_the_old_customer_and_cards(
    db_url: str, stripe_base: str
) -> None:
    with run_server(db_url, clock=ManualClock(START)) as server:
        slug, key = new_org(server)
        save_keys(server, slug, test_secret_key=KEY_A, test_webhook_secret=WHSEC)
        first = attach_paid_plan(server, key, on_stripe=True)
        old_customer = first["processors"]["stripe"]["id"]
        old_id, old_cards = stripe_state(server)
        assert old_id == old_customer and len(old_cards) == 1
        old_card = old_cards[0][0]
        assert old_card.startswith("pm_") and old_cards[0][1] is True

        # The same key again with a new webhook secret, then a rolled key of the same account (Stripe's
        # GET /v1/account says so): nothing is forgotten.
        save_keys(server, slug, test_secret_key=KEY_A, test_webhook_secret="whsec_rolled")
        assert stripe_state(server) == (old_customer, [(old_card, True)])
        rolled_key_of(stripe_base, KEY_A, KEY_A_ROLLED)
        save_keys(server, slug, test_secret_key=KEY_A_ROLLED)
        assert stripe_state(server) == (old_customer, [(old_card, True)])

        # A key of another account: the customer's Stripe id and its card are forgotten.
        save_keys(server, slug, test_secret_key=KEY_B)
        assert stripe_state(server) == (None, [(None, False)])

        # The next payment starts over on the new account: a hosted page, a new Stripe customer.
        org_call(
            server, key, "plans.create", plan_id="max", name="Max", price={"amount": 50, "interval": "month"}
        )
        attached = org_call(server, key, "billing.attach", customer_id="u1", plan_id="max")
        assert attached["payment_url"], attached
        assert pay_through_stripe_checkout(attached["payment_url"]).status_code == 303
        after = org_call(server, key, "customers.get", customer_id="u1", expand=["invoices"])
        new_customer = after["processors"]["stripe"]["id"]
        assert new_customer.startswith("cus_") and new_customer != old_customer
        new_id, cards = stripe_state(server)
        assert new_id == new_customer
        assert cards[0] == (None, False) and cards[1][0] not in (None, old_card) and cards[1][1] is True
        assert [p["plan_id"] for p in after["subscriptions"]] == ["max"]
        newest = max(after["invoices"], key=lambda i: (i["created_at"], i["total"]))
        assert newest["total"] == 30  # $50 for the month less the unused $20 of pro, at the same instant
        client = stripe.StripeClient(KEY_B, base_addresses={"api": stripe_base})
        invoice = client.v1.invoices.retrieve(newest["stripe_id"])
        assert (invoice.amount_paid, invoice.status, invoice.customer) == (3000, "paid", new_customer)


def test_which_account_changes_count_as_a_move(stripe_base: str) -> None:
    key_a, key_b = ("key", KEY_A), ("key", KEY_B)
    assert same_account(key_a, key_a)
    assert same_account(("connected", "acct_1"), ("connected", "acct_1"))
    assert not same_account(("connected", "acct_1"), ("connected", "acct_2"))
    assert not same_account(("connected", "acct_1"), key_a)
    assert not same_account(None, key_a)  # local payments or the server's own Stripe account before
    assert not same_account(key_a, key_b, stripe_base)  # Stripe names two accounts
    rolled_key_of(stripe_base, KEY_A, KEY_A_ROLLED)
    assert same_account(key_a, ("key", KEY_A_ROLLED), stripe_base)  # Stripe names one account
    # Stripe cannot be asked (a revoked old key, no network): taken as another account.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        assert not same_account(key_a, ("key", KEY_A_ROLLED), f"http://127.0.0.1:{closed.getsockname()[1]}")
