"""A Stripe organization's plan instances mirrored as Stripe Subscriptions that never collect money.

Through the real server over HTTP, with the organization's own key on localstripe (SQLite and
PostgreSQL): each active recurring paid instance is one Stripe Subscription of the plan's Prices with
payment collection paused (``void``); Stripe's own payments stay exactly the server's invoices, to
the cent, whatever the subscriptions do.
"""

from __future__ import annotations

import time
from typing import Any, cast

import httpx
import pytest
import stripe
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, select, update

from reference_server.processors.stripe import subscriptions as stripe_subscriptions_module
from reference_server.processors.stripe.subscriptions import StripeSubscriptionMirror
from reference_server.store.db import Database
from reference_server.store.stripe_objects import (
    STRIPE_FOLLOWUP_TABLES,
    STRIPE_SUBSCRIPTION_TABLES,
    stripe_followups,
    stripe_objects,
)
from reference_server.store.tables.core import INITIAL_TABLES, customers, metadata
from reference_server.testing import fresh_database_url, postgres_available

from .helpers import DAY, GOOD, MAY, START, Tenant, wait_until


def subscriptions(t: Tenant, customer_id: str = "u1", status: str = "all") -> list[Any]:
    listed = t.stripe.v1.subscriptions.list(
        {"customer": t.stripe_customer(customer_id), "status": status, "limit": 100}
    )
    return sorted(listed.data, key=lambda s: s.created)


def only_active(t: Tenant, customer_id: str = "u1") -> Any:
    (sub,) = subscriptions(t, customer_id, "active")
    return sub


def items(sub: Any) -> dict[str, tuple[str, int]]:
    """Each item as its ``autumn_price`` key: (Stripe Price id, quantity)."""
    return {
        str(item.metadata["autumn_price"]): (str(item.price.id), int(item.quantity))
        for item in sub["items"].data
    }


def catalog_price(t: Tenant, plan_id: str, key: str = "base", version: int = 1) -> str:
    with t.server.app.state.autumn.db.read() as conn:
        found = conn.execute(
            select(stripe_objects.c.stripe_id).where(
                stripe_objects.c.plan_id == plan_id,
                stripe_objects.c.plan_version == version,
                stripe_objects.c.price_key == key,
            )
        ).scalar_one()
    return str(found)


def stripe_books(t: Tenant, customer_id: str = "u1") -> list[tuple[str, int, int]]:
    """Every Stripe invoice of the customer: (status, total, amount paid), oldest first."""
    listed = t.stripe.v1.invoices.list({"customer": t.stripe_customer(customer_id), "limit": 100}).data
    return [
        (str(i.status), int(i.total), int(i.amount_paid)) for i in sorted(listed, key=lambda i: i.created)
    ]


def server_paid(t: Tenant, customer_id: str = "u1") -> int:
    """What the server's invoices took from the card, in cents."""
    return sum(round(float(i["total"]) * 100) for i in t.customer(customer_id)["invoices"] if i["stripe_id"])


def mirror(t: Tenant) -> StripeSubscriptionMirror:
    return cast(StripeSubscriptionMirror, t.server.app.state.billing.subscription_mirror)


def customer_pk(t: Tenant, customer_id: str = "u1") -> int:
    with t.server.app.state.autumn.db.read() as conn:
        return int(conn.execute(select(customers.c.pk).where(customers.c.id == customer_id)).scalar_one())


def cycle(t: Tenant, stripe_id: str) -> dict[str, Any]:
    """Stripe's own period end of the subscription (localstripe_ext/subscriptions)."""
    response = httpx.post(f"{t.api_base}/_config/subscriptions/{stripe_id}/cycle", data={})
    assert response.status_code == 200, response.text
    return dict(response.json())


def invoices_of(t: Tenant, stripe_customer: str) -> list[Any]:
    """Every Stripe invoice of the Stripe customer, deleted or not (localstripe lists no deleted one's)."""
    return [i for i in t.stripe.v1.invoices.list({"limit": 100}).data if i.customer == stripe_customer]


def customer_deleted(t: Tenant, stripe_id: str) -> bool:
    """Whether the Stripe customer was deleted (Stripe answers ``deleted: true``, localstripe a 404)."""
    try:
        found = t.stripe.v1.customers.retrieve(stripe_id)
    except stripe.InvalidRequestError as exc:
        assert exc.http_status == 404
        return True
    return bool(found.to_dict().get("deleted"))


def followups(t: Tenant) -> list[Any]:
    with t.server.app.state.autumn.db.read() as conn:
        return list(conn.execute(select(stripe_followups).order_by(stripe_followups.c.pk)))


def backoff_passes(t: Tenant) -> None:
    """Every follow-up of the mirror is due now (its backoff is real time: it is moved, not waited)."""
    with t.server.app.state.autumn.db.write() as conn:
        conn.execute(update(stripe_followups).values(next_attempt_at=0))


def stripe_outage(t: Tenant, requests: int) -> None:
    response = httpx.post(f"{t.api_base}/_config/subscriptions", data={"fail_next": str(requests)})
    assert response.status_code == 200, response.text


def test_an_attach_is_one_paused_subscription_of_the_plans_price(tenant: Tenant) -> None:
    tenant.subscribe("u1", "pro")
    sub = only_active(tenant)
    assert items(sub) == {"base": (catalog_price(tenant, "pro"), 1)}
    assert sub["items"].data[0].price.unit_amount == 2000
    assert sub.pause_collection.behavior == "void"
    assert (sub.collection_method, sub.cancel_at_period_end) == ("send_invoice", False)
    assert sub.metadata.to_dict() == {
        "autumn_customer_id": "u1",
        "autumn_plan_id": "pro",
        "autumn_plan_version": "1",
        "autumn_instance_id": tenant.customer()["subscriptions"][0]["id"],
        "autumn_env": "sandbox",
    }
    # Stripe's books are the server's invoice alone: the subscription made none.
    assert stripe_books(tenant) == [("paid", 2000, 2000)] and server_paid(tenant) == 2000

    # Stripe's own period end: the invoice it generates is voided at once, nothing is collected.
    cycle(tenant, sub.id)
    assert stripe_books(tenant) == [("paid", 2000, 2000), ("void", 2000, 0)]
    assert tenant.stripe.v1.subscriptions.retrieve(sub.id).status == "active"

    # A sync with nothing changed calls no Stripe API and changes nothing.
    again = mirror(tenant).sync(customer_pk(tenant))
    assert again is not None and (again.created, again.updated, again.canceled, again.errors) == (
        [],
        [],
        [],
        [],
    )
    assert [s.id for s in subscriptions(tenant)] == [sub.id]


def test_an_upgrade_updates_the_items_and_stripe_takes_only_the_servers_proration(tenant: Tenant) -> None:
    tenant.subscribe("u1", "pro")
    before = only_active(tenant)
    tenant.clock.set(START + 15 * DAY)
    upgrade = tenant("billing.attach", customer_id="u1", plan_id="premium")["invoice"]
    assert (upgrade["total"], upgrade["status"]) == (15, "paid")
    after = only_active(tenant)
    assert after.id == before.id  # the same subscription, its item swapped without proration
    assert items(after) == {"base": (catalog_price(tenant, "premium"), 1)}
    assert after.metadata["autumn_plan_id"] == "premium" and after.pause_collection.behavior == "void"
    assert stripe_books(tenant) == [("paid", 2000, 2000), ("paid", 1500, 1500)]
    assert server_paid(tenant) == 3500


def test_a_prepaid_quantity_change_updates_the_packs(tenant: Tenant) -> None:
    tenant.subscribe("u1", "team", feature_quantities=[{"feature_id": "messages", "quantity": 300}])
    sub = only_active(tenant)
    packs = catalog_price(tenant, "team", "prepaid:messages")
    assert items(sub) == {"base": (catalog_price(tenant, "team"), 1), "prepaid:messages": (packs, 3)}
    tenant(
        "billing.update",
        customer_id="u1",
        plan_id="team",
        feature_quantities=[{"feature_id": "messages", "quantity": 500}],
    )
    after = only_active(tenant)
    assert after.id == sub.id and items(after)["prepaid:messages"] == (packs, 5)
    paid = server_paid(tenant)
    assert [b[2] for b in stripe_books(tenant)] == [2500, paid - 2500]  # only the server's charges
    assert sum(b[2] for b in stripe_books(tenant)) == paid


def test_cancel_at_period_end_uncancel_and_the_period_end(tenant: Tenant) -> None:
    tenant("plans.create", plan_id="free", name="Free", auto_enable=True, items=[])
    tenant.subscribe("u1", "pro")
    sub = only_active(tenant)
    tenant("billing.update", customer_id="u1", plan_id="pro", cancel_action="cancel_end_of_cycle")
    assert tenant.stripe.v1.subscriptions.retrieve(sub.id).cancel_at_period_end is True
    tenant("billing.update", customer_id="u1", plan_id="pro", cancel_action="uncancel")
    assert tenant.stripe.v1.subscriptions.retrieve(sub.id).cancel_at_period_end is False
    tenant("billing.update", customer_id="u1", plan_id="pro", cancel_action="cancel_end_of_cycle")

    tenant.clock.set(MAY + DAY)  # the server's period ends: pro expires, the free default starts
    plans = {s["plan_id"]: s["status"] for s in tenant.customer()["subscriptions"]}
    assert plans == {"free": "active"}
    ended = tenant.stripe.v1.subscriptions.retrieve(sub.id)
    assert ended.status == "canceled" and ended.canceled_at is not None
    assert [s.id for s in subscriptions(tenant)] == [sub.id]  # the free plan has none
    assert stripe_books(tenant) == [("paid", 2000, 2000)]  # no final invoice, no proration


def test_an_entitys_plan_is_its_own_subscription(tenant: Tenant) -> None:
    tenant.subscribe("u1", "pro")
    tenant("entities.create", customer_id="u1", entity_id="e1", feature_id="seats", name="Seat 1")
    result = tenant("billing.attach", customer_id="u1", entity_id="e1", plan_id="premium")
    assert result["invoice"]["total"] == 50
    subs = subscriptions(tenant, status="active")
    assert len(subs) == 2
    by_plan = {s.metadata["autumn_plan_id"]: s for s in subs}
    assert by_plan["premium"].metadata["autumn_entity_id"] == "e1"
    assert "autumn_entity_id" not in by_plan["pro"].metadata
    assert items(by_plan["premium"]) == {"base": (catalog_price(tenant, "premium"), 1)}
    assert stripe_books(tenant) == [("paid", 2000, 2000), ("paid", 5000, 5000)]

    # The entity's plan ends with the entity: its subscription is canceled once the deletion commits,
    # without a final invoice or proration; the customer's own plan is untouched.
    tenant("entities.delete", customer_id="u1", entity_id="e1")
    gone = tenant.stripe.v1.subscriptions.retrieve(by_plan["premium"].id)
    assert gone.status == "canceled" and gone.canceled_at is not None
    assert [s.id for s in subscriptions(tenant, status="active")] == [by_plan["pro"].id]
    assert stripe_books(tenant) == [("paid", 2000, 2000), ("paid", 5000, 5000)]
    assert customer_pk(tenant) not in mirror(tenant).pending()
    tenant("billing.update", customer_id="u1", plan_id="pro", cancel_action="cancel_end_of_cycle")
    assert tenant.stripe.v1.subscriptions.retrieve(by_plan["pro"].id).cancel_at_period_end is True


@pytest.mark.parametrize("delete_in_stripe", [False, True], ids=["keep_stripe_customer", "delete_in_stripe"])
def test_deleting_the_customer_cancels_its_subscriptions(tenant: Tenant, delete_in_stripe: bool) -> None:
    tenant.subscribe("u1", "pro")
    tenant("entities.create", customer_id="u1", entity_id="e1", feature_id="seats", name="Seat 1")
    tenant("billing.attach", customer_id="u1", entity_id="e1", plan_id="premium")
    stripe_customer = tenant.stripe_customer()
    subs = subscriptions(tenant, status="active")
    assert len(subs) == 2
    books = stripe_books(tenant)
    assert books == [("paid", 2000, 2000), ("paid", 5000, 5000)]

    tenant("customers.delete", customer_id="u1", delete_in_stripe=delete_in_stripe)
    for sub in subs:  # canceled without a final invoice or proration
        ended = tenant.stripe.v1.subscriptions.retrieve(sub.id)
        assert ended.status == "canceled" and ended.canceled_at is not None
    listed = invoices_of(tenant, stripe_customer)
    assert sorted((str(i.status), int(i.total), int(i.amount_paid)) for i in listed) == sorted(books)
    assert mirror(tenant).pending_cleanups() == []
    if delete_in_stripe:
        assert customer_deleted(tenant, stripe_customer)
    else:
        assert not customer_deleted(tenant, stripe_customer)


def test_a_customer_deletion_stripe_refuses_is_retried_by_the_background_worker(tenant: Tenant) -> None:
    tenant.subscribe("u1", "pro")
    sub = only_active(tenant)
    stripe_customer = tenant.stripe_customer()
    pk = customer_pk(tenant)
    stripe_outage(tenant, 1)  # the cancel's first request fails
    tenant("customers.delete", customer_id="u1", delete_in_stripe=True)  # answered all the same
    assert mirror(tenant).pending_cleanups() == [(pk, [sub.id], stripe_customer)]
    assert tenant.stripe.v1.subscriptions.retrieve(sub.id).status == "active"
    assert not customer_deleted(tenant, stripe_customer)

    ((attempts, error),) = [(r.attempts, r.last_error) for r in followups(tenant)]
    assert attempts == 1 and error and "APIError" in error  # kept with its error, in backoff
    backoff_passes(tenant)  # the background worker retries it
    wait_until(tenant, lambda: not mirror(tenant).pending_cleanups(), "the clean-up retried")
    ended = tenant.stripe.v1.subscriptions.retrieve(sub.id)
    assert ended.status == "canceled"
    assert customer_deleted(tenant, stripe_customer)
    assert [i.status for i in invoices_of(tenant, stripe_customer)] == ["paid"]


def restarted(t: Tenant) -> StripeSubscriptionMirror:
    """A new mirror on the same database, as a restarted server (or a second process) has: it knows
    only what the database holds.  The old server's background worker is stopped first, so what is
    done below is done by the new one."""
    t.server.app.state.billing.worker.stop()
    old = mirror(t)
    return StripeSubscriptionMirror(old.db, old.processor_of, old.now_of, old.processor_for_org)


def test_a_failed_customer_clean_up_survives_a_restart(tenant: Tenant) -> None:
    tenant.subscribe("u1", "pro")
    sub = only_active(tenant)
    stripe_customer = tenant.stripe_customer()
    pk = customer_pk(tenant)
    stripe_outage(tenant, 1)
    tenant("customers.delete", customer_id="u1", delete_in_stripe=True)
    assert tenant.stripe.v1.subscriptions.retrieve(sub.id).status == "active"

    fresh = restarted(tenant)
    assert fresh.pending_cleanups() == [(pk, [sub.id], stripe_customer)]
    assert fresh.run_due() == 0  # still in its backoff
    backoff_passes(tenant)
    assert fresh.run_due() == 1
    assert fresh.pending_cleanups() == [] and followups(tenant) == []
    assert tenant.stripe.v1.subscriptions.retrieve(sub.id).status == "canceled"
    assert customer_deleted(tenant, stripe_customer)


def test_a_failed_sync_survives_a_restart_and_the_worker_repairs_it(tenant: Tenant) -> None:
    tenant.subscribe("u1", "pro")
    sub = only_active(tenant)
    stripe_outage(tenant, 10_000)
    tenant.clock.set(START + 15 * DAY)
    assert tenant("billing.attach", customer_id="u1", plan_id="premium")["invoice"]["total"] == 15
    (due,) = followups(tenant)
    assert (due.kind, due.customer_pk, due.attempts) == ("sync", customer_pk(tenant), 1)
    assert due.last_error and "APIError" in due.last_error
    stripe_outage(tenant, 0)

    # No further billing change: a restarted server's worker syncs it once the backoff has passed.
    fresh = restarted(tenant)
    assert fresh.pending() == {customer_pk(tenant)}
    backoff_passes(tenant)
    assert fresh.run_due() == 1
    assert fresh.pending() == set() and followups(tenant) == []
    repaired = only_active(tenant)
    assert repaired.id == sub.id and items(repaired) == {"base": (catalog_price(tenant, "premium"), 1)}
    assert stripe_books(tenant) == [("paid", 2000, 2000), ("paid", 1500, 1500)]


def test_a_change_whose_sync_never_ran_is_synced_by_the_background_worker(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that stopped between a billing change's commit and its sync: the sync is due in the
    database from the commit on, and the background worker does it."""
    tenant.subscribe("u1", "pro")
    sub = only_active(tenant)
    with monkeypatch.context() as patched:  # the after-commit sync never runs, as in a crash
        patched.setattr(stripe_subscriptions_module, "after_transaction", lambda conn, callback: True)
        tenant("billing.update", customer_id="u1", plan_id="pro", cancel_action="cancel_end_of_cycle")
    assert mirror(tenant).pending() == {customer_pk(tenant)}
    assert only_active(tenant).cancel_at_period_end is False  # Stripe is behind
    backoff_passes(tenant)
    wait_until(tenant, lambda: not mirror(tenant).pending(), "the sync due done")
    again = only_active(tenant)
    assert again.id == sub.id and again.cancel_at_period_end is True


def test_two_processes_never_take_the_same_follow_up(tenant: Tenant) -> None:
    tenant.subscribe("u1", "pro")
    stripe_outage(tenant, 10_000)
    tenant("billing.update", customer_id="u1", plan_id="pro", cancel_action="cancel_end_of_cycle")
    stripe_outage(tenant, 0)
    first, second = restarted(tenant), restarted(tenant)
    backoff_passes(tenant)
    (due,) = followups(tenant)
    assert first._claim(int(due.pk), int(due.next_attempt_at)) is True
    assert second._claim(int(due.pk), int(due.next_attempt_at)) is False
    assert second.run_due() == 0  # claimed by the first: left to it
    first.sync(customer_pk(tenant))
    assert followups(tenant) == [] and only_active(tenant).cancel_at_period_end is True


def test_a_rolled_back_customer_deletion_leaves_its_subscriptions(tenant: Tenant) -> None:
    tenant.subscribe("u1", "pro")
    sub = only_active(tenant)
    db = tenant.server.app.state.autumn.db
    pk = customer_pk(tenant)
    with pytest.raises(RuntimeError), db.write() as conn:
        mirror(tenant).before_customer_delete(conn, pk, True)
        raise RuntimeError("the deletion does not commit")
    assert tenant.stripe.v1.subscriptions.retrieve(sub.id).status == "active"
    assert not customer_deleted(tenant, tenant.stripe_customer())
    assert mirror(tenant).pending_cleanups() == []


def test_a_stripe_outage_never_fails_billing_and_the_next_sync_repairs(tenant: Tenant) -> None:
    tenant.subscribe("u1", "pro")
    sub = only_active(tenant)
    stripe_outage(tenant, 10_000)  # every subscription request fails until cleared
    tenant.clock.set(START + 15 * DAY)
    upgrade = tenant("billing.attach", customer_id="u1", plan_id="premium")["invoice"]
    assert (upgrade["total"], upgrade["status"]) == (15, "paid")  # billed once, as usual
    assert customer_pk(tenant) in mirror(tenant).pending()
    stripe_outage(tenant, 0)
    assert items(tenant.stripe.v1.subscriptions.retrieve(sub.id))["base"][0] == catalog_price(tenant, "pro")

    # The next billing change of the customer syncs everything that is behind.
    tenant("billing.update", customer_id="u1", plan_id="premium", cancel_action="cancel_end_of_cycle")
    repaired = only_active(tenant)
    assert repaired.id == sub.id and items(repaired) == {"base": (catalog_price(tenant, "premium"), 1)}
    assert repaired.cancel_at_period_end is True and repaired.metadata["autumn_plan_id"] == "premium"
    assert customer_pk(tenant) not in mirror(tenant).pending()
    assert stripe_books(tenant) == [("paid", 2000, 2000), ("paid", 1500, 1500)]


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_migrations_0007_and_0008_build_the_stripe_subscription_tables(kind: str) -> None:
    if kind == "postgres" and not postgres_available():
        pytest.skip("PostgreSQL is not available")
    with fresh_database_url(kind) as url:
        db = Database(url)
        db.migrate()
        core = MetaData(naming_convention=metadata.naming_convention)
        ours_tables = (*STRIPE_SUBSCRIPTION_TABLES, *STRIPE_FOLLOWUP_TABLES)
        for table in (*INITIAL_TABLES, *ours_tables):
            table.to_metadata(core)
        names = {t.name for t in ours_tables}

        def ours(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
            """Only these revisions' tables (customers is here for its foreign key)."""
            table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
            return table in names

        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": ours})
            diffs = compare_metadata(context, core)
            version = context.get_current_revision()
        db.dispose()
    assert diffs == [] and version is not None


def trial_plan(t: Tenant, plan_id: str, card_required: bool) -> None:
    t(
        "plans.create",
        plan_id=plan_id,
        name=plan_id.title(),
        price={"amount": 20, "interval": "month"},
        items=[{"feature_id": "messages", "included": 1000, "reset": {"interval": "month"}}],
        free_trial={"duration_length": 7, "duration_type": "day", "card_required": card_required},
    )


def real_now_ms(t: Tenant) -> int:
    """Stripe's (real) time, whole seconds, never before the server's: the server's clock is moved there
    so its trial end is one Stripe takes as it is (Stripe refuses a trial_end in its past)."""
    return max(t.clock.now_ms(), (int(time.time()) + 1) * 1000)


def test_a_trial_is_mirrored_as_trialing_until_the_servers_trial_end_then_billed(tenant: Tenant) -> None:
    trial_plan(tenant, "trial_pro", card_required=True)
    start = real_now_ms(tenant)
    tenant.clock.set(start)
    tenant("customers.get_or_create", customer_id="u1", email="u1@example.com")
    tenant.save_card("u1", GOOD)
    tenant("billing.attach", customer_id="u1", plan_id="trial_pro")
    trial_end = tenant.customer()["subscriptions"][0]["trial_ends_at"]
    assert trial_end == start + 7 * DAY

    (sub,) = subscriptions(tenant)
    assert sub.status == "trialing" and subscriptions(tenant, status="active") == []
    assert (sub.trial_start, sub.trial_end) == (sub.start_date, trial_end // 1000)
    assert sub.current_period_end == trial_end // 1000  # Stripe's first period is the trial
    assert items(sub) == {"base": (catalog_price(tenant, "trial_pro"), 1)}
    assert (sub.collection_method, sub.pause_collection.behavior) == ("send_invoice", "void")
    assert sub.metadata["autumn_plan_id"] == "trial_pro"
    # Stripe's trial invoice is 0, paid without collecting anything; the server charged nothing.
    assert stripe_books(tenant) == [("paid", 0, 0)] and server_paid(tenant) == 0

    # Canceling during the trial: Stripe's trial carries on, canceled at its end; uncancel undoes it.
    tenant("billing.update", customer_id="u1", plan_id="trial_pro", cancel_action="cancel_end_of_cycle")
    canceled = tenant.stripe.v1.subscriptions.retrieve(sub.id)
    assert (canceled.status, canceled.cancel_at_period_end) == ("trialing", True)
    tenant("billing.update", customer_id="u1", plan_id="trial_pro", cancel_action="uncancel")
    assert tenant.stripe.v1.subscriptions.retrieve(sub.id).cancel_at_period_end is False

    # The server's trial ends: it charges the first month; Stripe's trial ends with it and the invoice
    # Stripe makes for its new period is voided (collection paused): Stripe took the server's $20 alone.
    tenant.clock.set(trial_end + 1)
    customer = tenant.customer()
    assert [(i["total"], i["status"]) for i in customer["invoices"]] == [(20, "paid")]
    assert customer["subscriptions"][0]["trial_ends_at"] in (None, trial_end)
    after = only_active(tenant)
    assert after.id == sub.id and after.status == "active" and after.pause_collection.behavior == "void"
    assert after.trial_end is not None and after.trial_end <= int(time.time())
    assert sorted(stripe_books(tenant)) == [("paid", 0, 0), ("paid", 2000, 2000), ("void", 2000, 0)]
    assert sum(b[2] for b in stripe_books(tenant)) == server_paid(tenant) == 2000
    assert customer_pk(tenant) not in mirror(tenant).pending()


def test_a_trial_that_falls_back_to_the_default_plan_cancels_its_subscription(tenant: Tenant) -> None:
    tenant("plans.create", plan_id="free", name="Free", auto_enable=True, items=[])
    trial_plan(tenant, "try", card_required=False)
    start = real_now_ms(tenant)
    tenant.clock.set(start)
    tenant("customers.get_or_create", customer_id="u1", email="u1@example.com")
    assert tenant("billing.attach", customer_id="u1", plan_id="try")["payment_url"] is None
    (sub,) = subscriptions(tenant)
    assert (sub.status, sub.trial_end) == ("trialing", (start + 7 * DAY) // 1000)
    assert sub.metadata["autumn_plan_id"] == "try"

    tenant.clock.set(start + 7 * DAY + 1)  # no card: the trial ends into the free default plan
    assert {s["plan_id"]: s["status"] for s in tenant.customer()["subscriptions"]} == {"free": "active"}
    ended = tenant.stripe.v1.subscriptions.retrieve(sub.id)
    assert ended.status == "canceled" and ended.canceled_at is not None
    assert [s.id for s in subscriptions(tenant)] == [sub.id]  # the free plan has none
    assert stripe_books(tenant) == [("paid", 0, 0)]  # the trial's invoice alone: nothing collected
    assert tenant.customer()["invoices"] == []
