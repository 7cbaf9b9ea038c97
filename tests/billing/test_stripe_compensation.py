"""A Stripe payment the server did not record is given back; expired retry links void the Stripe
invoice; Products follow renamed plans and Stripe objects are kept per Stripe account.

Through the real server over HTTP with localstripe, on SQLite and PostgreSQL.  The failure after
the Stripe payment is the database's own: a trigger the test creates refuses the write that marks the
server invoice paid, either at once (``write``) or at ``COMMIT`` (``commit``: a deferred foreign key on
SQLite, a deferred constraint trigger on PostgreSQL).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
import stripe
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.pool import NullPool

from reference_server.billing.sessions import PAYMENT_RETRY_TTL_MS
from reference_server.processors.compensation import REFUND_KIND, RefundRetrier
from reference_server.processors.stripe.catalog import StripeCatalog, account_key
from reference_server.store.db import MIGRATIONS_DIR, Database
from reference_server.store.stripe_objects import stripe_followups
from reference_server.store.tables.billing import invoices
from reference_server.store.tables.core import organizations
from reference_server.testing import free_port, fresh_database_url, postgres_available

from .helpers import (
    AUTHENTICATE_ALWAYS,
    DECLINING,
    GOOD,
    PG_FUNCTION,
    START,
    Tenant,
    dialect,
    fail_when_opened,
    repair,
    run_sql,
    stripe_invoices_of,
    wait_until,
)

SQLITE_FAILURES = {
    "write": [
        "CREATE TRIGGER autumn_test_fail BEFORE UPDATE OF status ON invoices WHEN NEW.status = 'paid' "
        "BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
    ],
    "commit": [
        "CREATE TABLE autumn_test_guard (org_pk INTEGER REFERENCES organizations(pk) "
        "DEFERRABLE INITIALLY DEFERRED)",
        "CREATE TRIGGER autumn_test_fail AFTER UPDATE OF status ON invoices WHEN NEW.status = 'paid' "
        "BEGIN INSERT INTO autumn_test_guard VALUES (-1); END",
    ],
}
PG_FAILURES = {
    "write": [
        PG_FUNCTION,
        "CREATE TRIGGER autumn_test_fail BEFORE UPDATE ON invoices FOR EACH ROW "
        "WHEN (NEW.status = 'paid') EXECUTE FUNCTION autumn_test_fail()",
    ],
    "commit": [
        PG_FUNCTION,
        "CREATE CONSTRAINT TRIGGER autumn_test_fail AFTER UPDATE ON invoices "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
        "WHEN (NEW.status = 'paid') EXECUTE FUNCTION autumn_test_fail()",
    ],
}
# The database lost when the server keeps a refund it could not make: PostgreSQL drops the server's
# connection (the backend terminates itself), SQLite refuses the row.
LOSE_REFUND_DUE = {
    "sqlite": [
        "CREATE TRIGGER autumn_test_lose BEFORE INSERT ON stripe_followups "
        "WHEN NEW.kind = 'refund' BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
    ],
    "postgres": [
        "CREATE FUNCTION autumn_test_lose() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW; END $$",
        "CREATE TRIGGER autumn_test_lose BEFORE INSERT ON stripe_followups FOR EACH ROW "
        "WHEN (NEW.kind = 'refund') EXECUTE FUNCTION autumn_test_lose()",
    ],
}
KEEP_REFUND_DUE = {
    "sqlite": ["DROP TRIGGER autumn_test_lose"],
    "postgres": ["DROP TRIGGER autumn_test_lose ON stripe_followups"],
}


def fail_when_paid(tenant: Tenant, when: str) -> None:
    postgres = tenant.server.database_url.startswith("postgres")
    run_sql(tenant, (PG_FAILURES if postgres else SQLITE_FAILURES)[when])


def refuse_refunds(tenant: Tenant, count: int) -> None:
    """localstripe answers the next ``count`` refunds with Stripe's 429 ``rate_limit`` error."""
    answer = httpx.post(f"{tenant.api_base}/_config/refunds", data={"fail_next": str(count)})
    assert answer.status_code == 200, answer.text


def refused_refunds(tenant: Tenant) -> int:
    return len(httpx.get(f"{tenant.api_base}/_config/refunds").json()["refused"])


def refunds_due(tenant: Tenant) -> list[tuple[str, int]]:
    with tenant.server.app.state.autumn.db.read() as conn:
        rows = conn.execute(
            select(stripe_followups.c.key, stripe_followups.c.created_at).where(
                stripe_followups.c.kind == REFUND_KIND
            )
        ).all()
    return [(str(r.key), int(r.created_at)) for r in rows]


def stripe_invoices(tenant: Tenant) -> list[Any]:
    listed = tenant.stripe.v1.invoices.list({"customer": tenant.stripe_customer(), "limit": 100}).data
    return [tenant.invoice(i.id) for i in listed]


def charge_of(tenant: Tenant, stripe_invoice: Any) -> Any:
    intent = tenant.stripe.v1.payment_intents.retrieve(
        stripe_invoice.payments.data[-1].payment.payment_intent, {"expand": ["latest_charge"]}
    )
    return intent.latest_charge


@pytest.mark.parametrize("when", ["write", "commit"])
def test_a_stripe_payment_whose_transaction_fails_is_refunded_and_a_retry_charges_once(
    tenant: Tenant, when: str
) -> None:
    tenant.subscribe("u1", "pro")  # $20 on Stripe Checkout; the card is saved
    fail_when_paid(tenant, when)
    headers = {"Authorization": f"Bearer {tenant.key}"}
    failed = httpx.post(
        f"{tenant.server.url}/v1/billing.attach",
        json={"customer_id": "u1", "plan_id": "boost"},
        headers=headers,
        timeout=30,
    )
    assert failed.status_code == 500, failed.text

    # Stripe was paid before the database refused: the payment is refunded to the cent, the invoice
    # marked, and the server shows nothing of it.
    by_total = {i.total: i for i in stripe_invoices(tenant)}
    assert sorted(by_total) == [1500, 2000]
    lost = by_total[1500]
    assert (lost.status, lost.amount_paid, lost.metadata["autumn_reversal"]) == ("paid", 1500, "refunded")
    charge = charge_of(tenant, lost)
    assert (charge.amount, charge.amount_refunded, charge.refunded) == (1500, 1500, True)
    refunds = tenant.stripe.v1.refunds.list({"payment_intent": charge.payment_intent}).data
    assert [(r.amount, r.status, r.metadata["autumn_reason"]) for r in refunds] == [
        (1500, "succeeded", "not_recorded")
    ]
    assert charge_of(tenant, by_total[2000]).amount_refunded == 0  # the plan's own payment is untouched
    customer = tenant.customer()
    assert [(i["total"], i["status"]) for i in customer["invoices"]] == [(20, "paid")]
    assert [s["plan_id"] for s in customer["subscriptions"]] == ["pro"]
    assert customer["balances"]["messages"]["granted"] == 1000
    with tenant.server.app.state.autumn.db.read() as conn:
        due = conn.execute(select(stripe_followups).where(stripe_followups.c.kind == REFUND_KIND)).all()
    assert due == []  # the refund went through: nothing kept for a retry

    repair(tenant)
    retried = tenant("billing.attach", customer_id="u1", plan_id="boost")["invoice"]
    assert (retried["total"], retried["status"]) == (15, "paid") and retried["stripe_id"] != lost.id
    paid = tenant.invoice(retried["stripe_id"])
    assert (paid.amount_paid, charge_of(tenant, paid).amount_refunded) == (1500, 0)
    assert "autumn_reversal" not in paid.metadata
    customer = tenant.customer()
    assert [(i["total"], i["status"]) for i in customer["invoices"]] == [(15, "paid"), (20, "paid")]
    assert customer["balances"]["messages"]["granted"] == 1500
    kept = sum(
        int(charge_of(tenant, i).amount) - int(charge_of(tenant, i).amount_refunded)
        for i in stripe_invoices(tenant)
    )
    assert kept == 3500  # $20 + $15, once each


def test_an_expired_retry_link_voids_the_stripe_invoice_too(tenant: Tenant) -> None:
    tenant.subscribe("u1", "pro")
    tenant.save_card("u1", DECLINING)
    declined = tenant("billing.attach", customer_id="u1", plan_id="boost")
    assert declined["payment_url"] and declined["invoice"]["status"] == "open"
    stripe_id = declined["invoice"]["stripe_id"]
    assert tenant.invoice(stripe_id).status == "open"

    tenant.clock.set(START + PAYMENT_RETRY_TTL_MS + 1)
    assert httpx.get(declined["payment_url"]).status_code == 410
    voided = tenant.customer()["invoices"][0]
    assert (voided["stripe_id"], voided["status"], voided["total"]) == (stripe_id, "void", 15)
    stripe_invoice = tenant.invoice(stripe_id)
    assert (stripe_invoice.status, stripe_invoice.amount_paid) == ("void", 0)


def test_an_expired_retry_link_keeps_an_invoice_stripe_already_collected_open(tenant: Tenant) -> None:
    tenant.subscribe("u1", "pro")
    tenant.save_card("u1", DECLINING)
    declined = tenant("billing.attach", customer_id="u1", plan_id="boost")
    stripe_id = declined["invoice"]["stripe_id"]
    good = tenant.stripe.v1.payment_methods.create(
        {"type": "card", "card": {"number": GOOD, "exp_month": 12, "exp_year": 2034, "cvc": "123"}}
    )
    tenant.stripe.v1.payment_methods.attach(good.id, {"customer": tenant.stripe_customer()})
    tenant.stripe.v1.invoices.pay(stripe_id, {"payment_method": good.id, "off_session": True})

    tenant.clock.set(START + PAYMENT_RETRY_TTL_MS + 1)
    assert httpx.get(declined["payment_url"]).status_code == 410
    kept = tenant.customer()["invoices"][0]
    assert (kept["stripe_id"], kept["status"]) == (stripe_id, "open")  # its payment is not lost
    assert (tenant.invoice(stripe_id).status, tenant.invoice(stripe_id).amount_paid) == ("paid", 1500)


def test_a_plan_renamed_in_place_renames_its_stripe_product(tenant: Tenant) -> None:
    first = tenant.subscribe("u1", "pro")["invoices"][0]
    (line,) = tenant.lines(first["stripe_id"])
    product_id = line.pricing.price_details.product
    assert tenant.stripe.v1.products.retrieve(product_id).name == "Pro"

    tenant("plans.update", plan_id="pro", name="Pro Plus")
    second = tenant.subscribe("u2", "pro")["invoices"][0]
    (second_line,) = tenant.lines(second["stripe_id"])
    assert second_line.pricing.price_details.product == product_id  # the same Product, renamed
    product = tenant.stripe.v1.products.retrieve(product_id)
    assert (product.name, product.metadata["autumn_plan_id"], product.metadata["autumn_plan_version"]) == (
        "Pro Plus",
        "pro",
        "1",
    )
    assert len(tenant.stripe.v1.products.list({"limit": 100}).data) == 1


def test_stripe_objects_are_kept_per_account_so_a_rolled_key_reuses_them(tenant: Tenant) -> None:
    account = tenant.stripe.v1.accounts.retrieve_current().id
    tenant.subscribe("u1", "pro")
    rows = tenant.catalog_rows()
    with tenant.server.app.state.autumn.db.read() as conn:
        keys = set(conn.execute(text("SELECT DISTINCT account_key FROM stripe_objects")).scalars())
    assert keys == {account}

    rolled = tenant.stripe_key + "_rolled"  # a new secret key of the same Stripe account
    assert (
        httpx.post(f"{tenant.api_base}/_config/accounts/{account}", data={"key": rolled}).status_code == 200
    )
    slug = tenant.platform("organizations/stripe", organization_slug=tenant.slug, test_secret_key=rolled)
    assert slug["organization"]["id"] == tenant.org_id
    tenant.subscribe("u2", "pro")
    assert tenant.catalog_rows() == rows  # no new Product or Price
    assert len(tenant.stripe.v1.products.list({"limit": 100}).data) == 1


def test_the_account_falls_back_to_a_digest_of_the_key_when_stripe_cannot_be_read() -> None:
    unreachable = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    client = stripe.StripeClient(
        "sk_test_offline", base_addresses={"api": unreachable}, max_network_retries=0
    )
    catalog = StripeCatalog(client, "sk_test_offline")
    assert catalog.account == account_key("sk_test_offline", None)
    connected = StripeCatalog(client, "sk_test_offline", "acct_connected")
    assert connected.account == "acct_connected"  # a connected account is named, never read


def test_a_refund_stripe_refuses_is_kept_and_the_background_worker_completes_it_once(tenant: Tenant) -> None:
    tenant.subscribe("u1", "pro")
    fail_when_paid(tenant, "write")
    refuse_refunds(tenant, 2)  # the refund after the failed transaction, and the worker's first retry
    headers = {"Authorization": f"Bearer {tenant.key}"}
    failed = httpx.post(
        f"{tenant.server.url}/v1/billing.attach",
        json={"customer_id": "u1", "plan_id": "boost"},
        headers=headers,
        timeout=30,
    )
    assert failed.status_code == 500, failed.text
    assert set(failed.json()) >= {"message", "code"}

    # Stripe refused the refund: the server answer and books are as if nothing was paid, and the
    # refund is kept as due from the server's now.
    by_total = {i.total: i for i in stripe_invoices(tenant)}
    lost = by_total[1500]
    assert (lost.status, lost.amount_paid, lost.metadata["autumn_reversal"]) == ("paid", 1500, "refunding")
    assert charge_of(tenant, lost).amount_refunded == 0
    server_id = lost.metadata["autumn_invoice_id"]
    started = tenant.clock.now_ms()
    assert refunds_due(tenant) == [(f"{lost.id} {server_id}", started)]
    customer = tenant.customer()
    assert [(i["total"], i["status"]) for i in customer["invoices"]] == [(20, "paid")]
    assert customer["balances"]["messages"]["granted"] == 1000
    assert refused_refunds(tenant) == 1

    retrier: RefundRetrier = tenant.server.app.state.billing.refunds
    assert retrier.run_due() == 0  # the first retry waits its backoff
    ((_, waiting),) = retrier.state().items()  # kept with Stripe's refusal, for operators
    assert (waiting.attempts, waiting.next_attempt_at) == (0, started + retrier.policy.base_delay_ms)
    assert waiting.last_error is not None and "rate limit" in waiting.last_error.lower()
    repair(tenant)

    # The worker's first retry: refused again, recorded with its error and the next (longer) backoff.
    first_retry = started + retrier.policy.base_delay_ms
    tenant.clock.set(first_retry)
    wait_until(tenant, lambda: [s.attempts for s in retrier.state().values()] == [1], "a first retry")
    ((ident, state),) = retrier.state().items()
    assert ident[2] == f"{lost.id} {server_id}"
    assert (state.attempts, state.next_attempt_at) == (1, first_retry + retrier.policy.delay_after(1))
    assert state.last_error is not None and "rate limit" in state.last_error.lower()
    assert refused_refunds(tenant) == 2 and charge_of(tenant, lost).amount_refunded == 0
    assert retrier.run_due() == 0  # backing off
    restarted = RefundRetrier(retrier.engine, retrier.reverser_for, retrier.clock, retrier.policy)
    assert restarted.state() == retrier.state()  # a restarted server carries on where it stopped
    assert restarted.run_due() == 0

    tenant.clock.set(state.next_attempt_at)
    wait_until(tenant, lambda: refunds_due(tenant) == [], "the refund")
    assert retrier.state() == {}
    lost = tenant.invoice(lost.id)
    assert lost.metadata["autumn_reversal"] == "refunded"
    charge = charge_of(tenant, lost)
    assert (charge.amount, charge.amount_refunded, charge.refunded) == (1500, 1500, True)
    refunds = tenant.stripe.v1.refunds.list({"payment_intent": charge.payment_intent}).data
    assert [(r.amount, r.status, r.metadata["autumn_reason"]) for r in refunds] == [
        (1500, "succeeded", "not_recorded")
    ]
    assert refused_refunds(tenant) == 2
    kept = sum(
        int(charge_of(tenant, i).amount) - int(charge_of(tenant, i).amount_refunded)
        for i in stripe_invoices(tenant)
    )
    assert kept == 2000  # the plan's own payment only
    assert [(i["total"], i["status"]) for i in tenant.customer()["invoices"]] == [(20, "paid")]


def localstripe_event(tenant: Tenant, kind: str, object_id: str) -> dict[str, Any]:
    """The event localstripe recorded for ``object_id`` (what Stripe delivers to the endpoint)."""
    listed = httpx.get(
        f"{tenant.api_base}/v1/events", params={"type": kind, "limit": 100}, auth=(tenant.stripe_key, "")
    )
    assert listed.status_code == 200, listed.text
    (event,) = [e for e in listed.json()["data"] if e["data"]["object"]["id"] == object_id]
    return dict(json.loads(json.dumps(event)))


def test_a_paid_stripe_invoice_the_server_lost_is_refunded_once_by_its_invoice_paid_event(
    tenant: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    """The server's process dies between the Stripe payment and the COMMIT: nothing on the server knows
    the Stripe invoice.  Here the server keeps running, but nothing it could do after the transaction
    leaves a trace either: the transaction fails (a trigger), Stripe refuses the refund (localstripe)
    and the database is lost when the refund due is kept (PostgreSQL drops the connection, SQLite
    refuses the row), which the server logs at ERROR.  Stripe's invoice.paid event then refunds it."""
    tenant.subscribe("u1", "pro")
    fail_when_paid(tenant, "write")
    run_sql(tenant, LOSE_REFUND_DUE[dialect(tenant)])
    refuse_refunds(tenant, 1)
    headers = {"Authorization": f"Bearer {tenant.key}"}
    with caplog.at_level(logging.ERROR, logger="reference_server.processors.compensation"):
        failed = httpx.post(
            f"{tenant.server.url}/v1/billing.attach",
            json={"customer_id": "u1", "plan_id": "boost"},
            headers=headers,
            timeout=30,
        )
    assert failed.status_code == 500, failed.text

    lost = {i.total: i for i in stripe_invoices(tenant)}[1500]
    assert (lost.status, lost.amount_paid) == ("paid", 1500)
    errors = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.ERROR and r.name == "reference_server.processors.compensation"
    ]
    assert len(errors) == 1 and lost.id in errors[0] and "1500 minor units" in errors[0], errors
    assert refunds_due(tenant) == [] and charge_of(tenant, lost).amount_refunded == 0
    server_id = lost.metadata["autumn_invoice_id"]
    with tenant.server.app.state.autumn.db.read() as conn:
        assert conn.execute(select(invoices.c.pk).where(invoices.c.id == server_id)).first() is None
    run_sql(tenant, KEEP_REFUND_DUE[dialect(tenant)])
    repair(tenant)

    event = localstripe_event(tenant, "invoice.paid", lost.id)
    assert event["data"]["object"]["metadata"]["autumn_invoice_id"] == server_id
    assert tenant.send(event)["result"] == "orphan_refunded"
    assert tenant.send(event) == {"received": True, "duplicate": True}
    again = {**event, "id": event["id"] + "_again"}  # the same payment announced under another id
    assert tenant.send(again)["result"] == "orphan_refunded"

    lost = tenant.invoice(lost.id)
    assert (lost.status, lost.metadata["autumn_reversal"]) == ("paid", "refunded")
    charge = charge_of(tenant, lost)
    assert (charge.amount, charge.amount_refunded, charge.refunded) == (1500, 1500, True)
    refunds = tenant.stripe.v1.refunds.list({"payment_intent": charge.payment_intent}).data
    assert [(r.amount, r.status, r.metadata["autumn_reason"]) for r in refunds] == [
        (1500, "succeeded", "not_recorded")
    ]
    assert refunds_due(tenant) == []
    customer = tenant.customer()
    assert [(i["total"], i["status"]) for i in customer["invoices"]] == [(20, "paid")]
    assert customer["balances"]["messages"]["granted"] == 1000


# Invoice mode: the failure comes after the send_invoice Stripe invoice exists, when the server invoice
# first names it (``write``: that very statement, before its items; ``commit``: at COMMIT, once it is
# itemized and, unless ``finalize: false``, finalized).
def refuse_voids(tenant: Tenant, count: int) -> None:
    """localstripe answers the next ``count`` invoice voids or draft deletions with Stripe's 429."""
    answer = httpx.post(f"{tenant.api_base}/_config/invoice_voids", data={"fail_next": str(count)})
    assert answer.status_code == 200, answer.text


def refused_voids(tenant: Tenant) -> list[str]:
    return list(httpx.get(f"{tenant.api_base}/_config/invoice_voids").json()["refused"])


def attach_by_invoice(tenant: Tenant, **invoice_mode: Any) -> httpx.Response:
    return httpx.post(
        f"{tenant.server.url}/v1/billing.attach",
        json={"customer_id": "u1", "plan_id": "pro", "invoice_mode": {"enabled": True, **invoice_mode}},
        headers={"Authorization": f"Bearer {tenant.key}"},
        timeout=30,
    )


@pytest.mark.parametrize("finalize", [True, False], ids=["open", "draft"])
@pytest.mark.parametrize("when", ["write", "commit"])
def test_an_invoice_mode_stripe_invoice_whose_transaction_fails_is_voided(
    tenant: Tenant, when: str, finalize: bool
) -> None:
    tenant("customers.get_or_create", customer_id="u1", email="u1@example.com")
    fail_when_opened(tenant, when)
    failed = attach_by_invoice(tenant, finalize=finalize, enable_plan_immediately=True)
    assert failed.status_code == 500, failed.text
    assert set(failed.json()) >= {"message", "code"}

    # Nothing the customer could pay is left on Stripe: an open invoice is voided, a draft deleted.
    left = [(i.status, i.total, i.collection_method) for i in stripe_invoices_of(tenant, "u1")]
    if when == "commit" and finalize:
        assert left == [("void", 2000, "send_invoice")]
        (voided,) = stripe_invoices_of(tenant, "u1")
        server_id = voided.metadata["autumn_invoice_id"]
        with tenant.server.app.state.autumn.db.read() as conn:
            assert conn.execute(select(invoices.c.pk).where(invoices.c.id == server_id)).first() is None
    else:
        assert left == []  # the draft (itemized or not yet) was deleted
    assert refunds_due(tenant) == []
    customer = tenant.customer()
    assert customer["invoices"] == [] and customer["subscriptions"] == []

    repair(tenant)
    opened = attach_by_invoice(tenant, finalize=finalize)
    assert opened.status_code == 200, opened.text
    invoice = opened.json()["invoice"]
    assert (invoice["status"], invoice["total"]) == ("open" if finalize else "draft", 20)
    stripe_invoice = tenant.invoice(invoice["stripe_id"])
    assert (stripe_invoice.status, stripe_invoice.total) == ("open" if finalize else "draft", 2000)


def test_a_void_stripe_refuses_is_kept_and_the_background_worker_voids_it(tenant: Tenant) -> None:
    tenant("customers.get_or_create", customer_id="u1", email="u1@example.com")
    fail_when_opened(tenant, "commit")
    refuse_voids(tenant, 1)
    failed = attach_by_invoice(tenant)
    assert failed.status_code == 500, failed.text

    # Stripe refused the void: the invoice is still open there, kept due from the server's now.
    (stale,) = stripe_invoices_of(tenant, "u1")
    assert (stale.status, stale.total, stale.amount_paid) == ("open", 2000, 0)
    assert refused_voids(tenant) == [stale.id]
    server_id = stale.metadata["autumn_invoice_id"]
    started = tenant.clock.now_ms()
    assert refunds_due(tenant) == [(f"{stale.id} {server_id}", started)]
    assert tenant.customer()["invoices"] == []
    repair(tenant)

    retrier: RefundRetrier = tenant.server.app.state.billing.refunds
    assert retrier.run_due() == 0  # the first retry waits its backoff
    tenant.clock.set(started + retrier.policy.base_delay_ms)
    wait_until(tenant, lambda: refunds_due(tenant) == [], "the void")
    assert retrier.state() == {}
    voided = tenant.invoice(stale.id)
    assert (voided.status, voided.amount_paid) == ("void", 0)
    assert refused_voids(tenant) == [stale.id]  # voided once, by the retry
    assert tenant.customer()["invoices"] == []


# A charge the card refuses (declined, or waiting for 3-D Secure): the Stripe invoice is left open for a
# retry, and the failure comes when the server records the failed attempt (``write``: that very insert;
# ``commit``: at COMMIT).
UNPAID = "NEW.status IN ('failed', 'requires_action')"
SQLITE_UNPAID_FAILURES = {
    "write": [
        f"CREATE TRIGGER autumn_test_fail BEFORE INSERT ON charges WHEN {UNPAID} "
        "BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
    ],
    "commit": [
        "CREATE TABLE autumn_test_guard (org_pk INTEGER REFERENCES organizations(pk) "
        "DEFERRABLE INITIALLY DEFERRED)",
        f"CREATE TRIGGER autumn_test_fail AFTER INSERT ON charges WHEN {UNPAID} "
        "BEGIN INSERT INTO autumn_test_guard VALUES (-1); END",
    ],
}
PG_UNPAID_FAILURES = {
    "write": [
        PG_FUNCTION,
        f"CREATE TRIGGER autumn_test_fail BEFORE INSERT ON charges FOR EACH ROW WHEN ({UNPAID}) "
        "EXECUTE FUNCTION autumn_test_fail()",
    ],
    "commit": [
        PG_FUNCTION,
        "CREATE CONSTRAINT TRIGGER autumn_test_fail AFTER INSERT ON charges "
        f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN ({UNPAID}) EXECUTE FUNCTION autumn_test_fail()",
    ],
}
UNPAID_REPAIR = {
    "sqlite": ["DROP TRIGGER autumn_test_fail"],
    "postgres": ["DROP TRIGGER autumn_test_fail ON charges"],
}


@pytest.mark.parametrize("card", [DECLINING, AUTHENTICATE_ALWAYS], ids=["declined", "3ds"])
@pytest.mark.parametrize("when", ["write", "commit"])
def test_an_unpaid_charge_whose_transaction_fails_leaves_no_open_stripe_invoice(
    tenant: Tenant, when: str, card: str
) -> None:
    tenant.subscribe("u1", "pro")  # $20 paid on Stripe Checkout
    tenant.save_card("u1", card)
    run_sql(tenant, (PG_UNPAID_FAILURES if dialect(tenant) == "postgres" else SQLITE_UNPAID_FAILURES)[when])
    failed = httpx.post(
        f"{tenant.server.url}/v1/billing.attach",
        json={"customer_id": "u1", "plan_id": "boost"},
        headers={"Authorization": f"Bearer {tenant.key}"},
        timeout=30,
    )
    assert failed.status_code == 500, failed.text
    assert set(failed.json()) >= {"message", "code"}

    # The $15 Stripe invoice the card did not pay is voided: nothing is left open for the customer.
    by_total = {i.total: i for i in stripe_invoices(tenant)}
    assert sorted(by_total) == [1500, 2000]
    lost = by_total[1500]
    assert (lost.status, lost.amount_due, lost.amount_paid) == ("void", 1500, 0)
    with tenant.server.app.state.autumn.db.read() as conn:
        server_id = lost.metadata["autumn_invoice_id"]
        assert conn.execute(select(invoices.c.pk).where(invoices.c.id == server_id)).first() is None
    assert (by_total[2000].status, by_total[2000].amount_paid) == ("paid", 2000)
    assert refunds_due(tenant) == []
    customer = tenant.customer()
    assert [(i["total"], i["status"]) for i in customer["invoices"]] == [(20, "paid")]
    assert [s["plan_id"] for s in customer["subscriptions"]] == ["pro"]

    # Once the database is repaired, the same refusal commits and its Stripe invoice stays open for
    # the retry (or 3-D Secure), as usual.
    run_sql(tenant, UNPAID_REPAIR[dialect(tenant)])
    kept = httpx.post(
        f"{tenant.server.url}/v1/billing.attach",
        json={"customer_id": "u1", "plan_id": "boost"},
        headers={"Authorization": f"Bearer {tenant.key}"},
        timeout=30,
    )
    assert kept.status_code in (200, 402), kept.text
    (opened,) = [i for i in tenant.customer()["invoices"] if i["total"] == 15]
    assert opened["status"] == "open" and opened["stripe_id"] != lost.id
    still = tenant.invoice(opened["stripe_id"])
    assert (still.status, still.amount_due, still.amount_paid) == ("open", 1500, 0)
    assert tenant.invoice(lost.id).status == "void"
    paid = sum(int(i.amount_paid) for i in stripe_invoices(tenant))
    assert paid == 2000  # Stripe took the plan's $20 alone


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_migration_0008_moves_the_refunds_due_and_back(kind: str) -> None:
    """A server upgraded with refunds still due (kept by 0007 and before as ``idempotency_keys`` rows
    of scope ``refund_due``) still gives them back: the rows move to ``stripe_followups``."""
    if kind == "postgres" and not postgres_available():
        pytest.skip("PostgreSQL is not available")
    key = "in_lost pay_server_1"
    with fresh_database_url(kind) as url:
        db = Database(url)
        engine = db.engine if not db.is_sqlite else create_engine(db.url, poolclass=NullPool)

        def migrate(step: str, revision: str) -> None:
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
            with engine.begin() as conn:
                cfg.attributes["connection"] = conn
                getattr(command, step)(cfg, revision)

        migrate("upgrade", "0007_stripe_subscriptions")
        with engine.begin() as conn:
            conn.execute(insert(organizations).values(id="org_x", name="X", slug="x", created_at=1))
            org_pk = conn.execute(select(organizations.c.pk)).scalar_one()
            row = {"org_pk": org_pk, "env": "sandbox", "scope": "refund_due", "key": key, "created_at": 5}
            conn.execute(
                text(
                    "INSERT INTO idempotency_keys (org_pk, env, scope, key, created_at) "
                    "VALUES (:org_pk, :env, :scope, :key, :created_at)"
                ),
                row,
            )
        migrate("upgrade", "head")
        with engine.begin() as conn:
            moved = conn.execute(select(stripe_followups)).one()
            left = conn.execute(text("SELECT count(*) FROM idempotency_keys")).scalar_one()
        assert (moved.kind, moved.key, moved.org_pk, moved.env) == (REFUND_KIND, key, org_pk, "sandbox")
        assert (moved.attempts, moved.next_attempt_at, moved.created_at, left) == (0, 5, 5, 0)
        migrate("downgrade", "0007_stripe_subscriptions")
        with engine.begin() as conn:
            back = conn.execute(text("SELECT scope, key, created_at FROM idempotency_keys")).one()
        assert tuple(back) == ("refund_due", key, 5)
        if engine is not db.engine:
            engine.dispose()
        db.dispose()
