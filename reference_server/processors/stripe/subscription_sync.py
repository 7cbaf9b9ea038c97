"""The server's subscriptions mirrored into the organization's Stripe account, without Stripe billing them.

This module is the API side (Stripe calls, follow-ups, retries); what each Stripe Subscription should
look like is computed without I/O in :mod:`~reference_server.processors.stripe.subscription_state`.

The server bills a Stripe organization itself: its engine renews plans on its own clock and every
charge is an itemized Stripe Invoice (:mod:`~reference_server.processors.stripe.processor`).  A Stripe
user still expects the dashboard to say who is subscribed to what, so each active recurring paid plan
instance of a customer (customer-level or entity-level: one with billing state and at least one
recurring fixed price) is mirrored as one Stripe Subscription:

- items: the plan version's recurring Stripe Prices (:mod:`~reference_server.processors.stripe.catalog`):
  the base price (quantity: the instance's quantity) and each prepaid item's pack price (quantity: the
  packs bought).  A customized instance whose price is not the catalogue's has that item priced inline
  (``price_data`` on the plan's Product).  Each item's metadata names its price (``autumn_price``).
  Stripe bills a subscription's items on one interval, so only the prices on the interval of the first
  one (the base price's, when the plan has one) are mirrored; usage-based prices have no Price at all;
- metadata: ``autumn_customer_id``, ``autumn_plan_id``, ``autumn_plan_version``, ``autumn_instance_id``
  (the subscription id the API shows), ``autumn_entity_id`` for an entity's plan, ``autumn_env``; beside
  them the ``metadata`` of the attaches that made (or re-attached) the instance, under the server's keys.
  An update sets these and unsets only the server's own keys that no longer apply: any other key stays
  (Stripe merges an update's metadata), so a plan handed over to its successor keeps the earlier
  attach's keys, and a key added in the Stripe dashboard is never removed;
- ``cancel_at_period_end`` while the instance is canceled at its period end, and ``cancel_at`` (the
  server's end, at least an hour ahead on Stripe's clock) when it ends at another time (an ``ends_at``,
  a later plan starting), as Autumn sets ``cancel_at`` to when the plan ends; both unset (``cancel_at``
  to ``""``) once the end is removed (uncancel, renew); an
  instance that ended (expired, or deleted with its entity) has its subscription canceled without a
  final invoice or proration (``invoice_now=false``, ``prorate=false``).  An instance replaced by an
  upgrade or downgrade in the same group (and entity) hands its subscription over to its successor,
  whose items replace the old ones (``proration_behavior=none``), as a Stripe upgrade would.
An entity's deletion syncs its customer once it commits (its plans' subscriptions canceled at once);
a customer's deletion (:meth:`StripeSubscriptionMirror.before_customer_delete`) cancels its
subscriptions after the commit the same way, and deletes the Stripe customer with ``delete_in_stripe``.

Stripe must never collect money for these subscriptions (the server already did, once):

1. **creation creates no invoice.**  ``billing_cycle_anchor`` is set to the instance's period end (the
   server's next renewal) with ``proration_behavior=none``: Stripe documents the period up to the
   anchor as free, "similar to a free trial.  Unlike a trial, there is no 0 USD invoice"
   (docs.stripe.com/billing/subscriptions/billing-cycle).  Stripe takes only a future anchor before the
   subscription's first natural billing date, so the anchor is kept between an hour from now and the
   shortest length of one interval from now on Stripe's (real) clock: under a server test clock the
   dashboard's next date is then only close to the server's.  A ``trial_end`` would claim a trial the
   customer does not have, ``payment_behavior=default_incomplete`` still opens a first invoice to pay,
   and no anchor at all makes Stripe invoice the first period at once.  An instance on a free trial
   *is* mirrored as a Stripe trial: ``trial_end`` = the server's trial end (status ``trialing``; Stripe
   makes its 0 invoice of the trial period, paid without collecting anything).  When the server's trial
   ends and the plan is billed, the update sets ``trial_end=now`` (with real clocks Stripe's trial has
   just ended by itself): the invoice Stripe makes for its new period is voided by the pause; a trial
   that falls back to the default plan ends the instance, so its subscription is canceled;
2. **collection is paused with behavior ``void``** right after creation (``pause_collection`` is a
   parameter of the subscription update, not of its creation) and again on every update: every invoice
   Stripe generates for the subscription from then on (its own renewals) is voided at once and
   nothing is collected (docs.stripe.com/billing/subscriptions/pause-payment);
3. **``collection_method=send_invoice``**: should collection ever be resumed by hand in the dashboard
   (or the pause not be set yet, when the update after creation failed and the next sync has not run),
   an invoice Stripe generates is sent to the customer to pay, never charged to a saved card.

:func:`sync_stripe_subscriptions` reconciles one customer: it reads the state each instance should
have, compares it with the state last written to Stripe (table ``stripe_subscriptions``; nothing
changed: no Stripe call at all) and creates, updates or cancels what differs.  It is idempotent: a
subscription is created with an idempotency key derived from the instance and its parameters, and
before creating one the customer's Stripe subscriptions are listed so one created by an earlier sync
whose result was lost (``autumn_instance_id`` in its metadata) is taken over instead.  A subscription
canceled by hand in Stripe while its instance is active is created again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import stripe
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from reference_server.processors.stripe.metadata import RESERVED_PREFIX
from reference_server.processors.stripe.processor import StripeProcessor
from reference_server.processors.stripe.subscription_state import (
    Mirror,
    anchor,
    cancel_at,
    desired_mirror,
    item_changes,
    item_params,
    trial_end,
    wanted_prices,
)
from reference_server.store.customer_lookup import CustomerRef
from reference_server.store.db import Database
from reference_server.store.stripe_mirror import (
    active_instances,
    active_subscriptions,
    customer_row,
    insert_subscription,
    mark_subscription_canceled,
    update_subscription,
    update_subscription_of_instance,
)
from reference_server.store.stripe_mirror import (
    entity_id as entity_id_of,
)
from reference_server.store.stripe_products import org_plan

log = logging.getLogger(__name__)

DAYS_UNTIL_DUE = 30
"""``days_until_due`` Stripe requires of a ``send_invoice`` subscription (never reached: voided)."""


@dataclass
class SyncResult:
    """What a sync did: Stripe subscription ids created, updated and canceled, and the errors met."""

    created: list[str]
    updated: list[str]
    canceled: list[str]
    errors: list[str]

    @property
    def ok(self) -> bool:
        return not self.errors


def _desired(
    conn: Connection, processor: StripeProcessor, customer_pk: int, customer_id: str, now: int
) -> dict[int, Mirror]:
    """Each active recurring paid instance of the customer as it should be in Stripe (Prices created
    the first time they are needed)."""
    out: dict[int, Mirror] = {}
    for inst in active_instances(conn, customer_pk):
        found = org_plan(conn, inst.plan_pk)
        if found is None:
            continue
        plan = found.plan
        wanted = wanted_prices(inst, plan)
        if not wanted:
            continue
        objects = processor.catalog.plan_objects(conn, found.org_pk, plan, now)
        entity_id = None
        if inst.entity_pk is not None:
            entity_id = entity_id_of(conn, inst.entity_pk)
        out[inst.pk] = desired_mirror(inst, plan, wanted, objects, customer_id, entity_id, now)
    return out


def _key(*parts: str) -> str:
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:48]
    return f"autumn-subscription-{digest}"


def ending(mirror: Mirror, current: Any | None) -> dict[str, Any]:
    """The parameters of the subscription's end: one of ``cancel_at`` and ``cancel_at_period_end``,
    never both (Stripe refuses a ``cancel_at`` with ``cancel_at_period_end`` true); an end set
    earlier by ``cancel_at`` (``current``: the subscription as Stripe has it) is unset with ``""``
    (``cancel_at_period_end=false`` unsets one set at the period end)."""
    if mirror.cancel_at is not None:
        return {"cancel_at": cancel_at(mirror, int(time.time()))}
    if (
        not mirror.cancel_at_period_end
        and current is not None
        and current.cancel_at is not None
        and not current.cancel_at_period_end
    ):
        return {"cancel_at": ""}
    return {"cancel_at_period_end": mirror.cancel_at_period_end}


class _Stripe:
    """The Stripe calls of one sync."""

    def __init__(self, processor: StripeProcessor, stripe_customer: str) -> None:
        self.client = processor.client
        self.account = processor.catalog.account
        self.customer = stripe_customer

    def pause(self, stripe_id: str) -> None:
        """Void whatever Stripe invoices from now on (the end is set on creation, with the rest)."""
        self.client.v1.subscriptions.update(
            stripe_id, {"pause_collection": {"behavior": "void"}, "proration_behavior": "none"}
        )

    def _orphan(self, mirror: Mirror) -> Any | None:
        """A subscription an earlier sync created for this instance but could not record."""
        listed = self.client.v1.subscriptions.list({"customer": self.customer, "status": "all", "limit": 100})
        for sub in listed.data:
            meta = sub.metadata.to_dict() if sub.metadata else {}
            if (
                meta.get("autumn_instance_id") == mirror.metadata["autumn_instance_id"]
                and meta.get("autumn_customer_id") == mirror.metadata["autumn_customer_id"]
                and sub.status not in ("canceled", "incomplete_expired")
            ):
                return sub
        return None

    def create(self, mirror: Mirror) -> str:
        orphan = self._orphan(mirror)
        if orphan is not None:
            self.update(str(orphan.id), mirror)
            return str(orphan.id)
        real_now = int(time.time())
        params: dict[str, Any] = {
            "customer": self.customer,
            "items": [item_params(i) for i in mirror.items],
            "metadata": mirror.metadata,
            "collection_method": "send_invoice",
            "days_until_due": DAYS_UNTIL_DUE,
            "proration_behavior": "none",
            **ending(mirror, None),
        }
        if mirror.trial_end is not None:  # trialing until the server's trial end (its cycle anchored there)
            cycle = params["trial_end"] = trial_end(mirror, real_now)
        else:
            cycle = params["billing_cycle_anchor"] = anchor(mirror, real_now)
        state = json.dumps(mirror.state, sort_keys=True)
        key = _key(self.account, self.customer, str(mirror.instance_pk), state, str(cycle // 3600))
        created = self.client.v1.subscriptions.create(params, {"idempotency_key": key})  # type: ignore[arg-type]
        self.pause(str(created.id))
        return str(created.id)

    def update(self, stripe_id: str, mirror: Mirror) -> str:
        """Bring the subscription to ``mirror``; a new one when it was canceled in Stripe meanwhile."""
        current = self.client.v1.subscriptions.retrieve(stripe_id)
        if current.status in ("canceled", "incomplete_expired"):
            return self.create(mirror)
        existing: dict[str, Any] = {}
        for item in current["items"].data:
            meta = item.metadata.to_dict() if item.metadata else {}
            existing[str(meta.get("autumn_price") or item.price.id)] = item
        changes = item_changes(existing, mirror)
        # Only the server's own keys it no longer sets are unset (""); anyone else's stay, as Stripe keeps
        # the keys an update does not name: an earlier attach's metadata, a key added in the dashboard.
        had = current.metadata.to_dict() if current.metadata else {}
        stale = {k for k in had if k.startswith(RESERVED_PREFIX)} - set(mirror.metadata)
        params: dict[str, Any] = {
            "metadata": {**{k: "" for k in stale}, **mirror.metadata},
            **ending(mirror, current),
            "pause_collection": {"behavior": "void"},
            "proration_behavior": "none",
        }
        if changes:
            params["items"] = changes
        if mirror.trial_end is not None:
            ends = trial_end(mirror, int(time.time()))
            if current.status != "trialing" or int(current.trial_end or 0) != ends:
                params["trial_end"] = ends  # the server's trial moved (or began)
        elif current.status == "trialing":
            params["trial_end"] = "now"  # the server's trial ended: Stripe's ends too (its invoice voided)
        self.client.v1.subscriptions.update(stripe_id, params)  # type: ignore[arg-type]
        return stripe_id

    def cancel(self, stripe_id: str) -> bool:
        current = self.client.v1.subscriptions.retrieve(stripe_id)
        if current.status not in ("canceled", "incomplete_expired"):
            self.client.v1.subscriptions.cancel(stripe_id, {"invoice_now": False, "prorate": False})
        return True


def sync_stripe_subscriptions(
    db: Database, processor: StripeProcessor, customer_pk: int, now: int
) -> SyncResult:
    """Make the customer's Stripe subscriptions match its plan instances (see the module docs).

    ``now`` is the server's time for the customer (Prices created meanwhile are stamped with it).
    Each Stripe failure is logged and kept in the result; what failed is left as it was in the table,
    so the next sync does it again.  Raises only when the database fails."""
    result = SyncResult([], [], [], [])
    with db.write() as conn:
        customer = customer_row(conn, customer_pk)
        if customer is None:
            return result
        customer_id = str(customer.id or f"cus_{customer.pk}")
        account = processor.catalog.account
        rows = {int(r.customer_plan_pk): r for r in active_subscriptions(conn, customer_pk, account)}
        try:
            desired = _desired(conn, processor, customer_pk, customer_id, now)
        except stripe.StripeError as exc:  # a Product or Price could not be created
            log.warning("Stripe subscriptions of customer %s not synced: %s", customer_id, exc)
            result.errors.append(f"{type(exc).__name__}: {exc}")
            return result
        stripe_customer = customer.stripe_id
        if desired and not stripe_customer:
            ref = CustomerRef(customer.pk, customer_id, customer.email, customer.name, None)
            try:
                stripe_customer = processor.ensure_customer(conn, ref)
            except stripe.StripeError as exc:
                result.errors.append(f"{type(exc).__name__}: {exc}")
                return result
    if not desired and not rows:
        return result
    calls = _Stripe(processor, str(stripe_customer or ""))
    ended = {pk: row for pk, row in rows.items() if pk not in desired}
    # (instance pk, previous row pk or None, Stripe id, state) of each subscription written
    written: list[tuple[int, int | None, str, dict[str, Any]]] = []
    canceled: list[int] = []

    def attempt(what: str, call: Callable[..., Any], *args: Any) -> Any:
        try:
            return call(*args)
        except stripe.StripeError as exc:
            log.warning("Stripe subscription sync of customer %s: %s failed: %s", customer_id, what, exc)
            result.errors.append(f"{what}: {type(exc).__name__}: {exc}"[:500])
            return None

    for pk, mirror in desired.items():
        row = rows.get(pk)
        if row is not None:
            if dict(row.synced) == mirror.state:
                continue
            row_id = row.stripe_id
            stripe_id = attempt(f"update {row_id}", calls.update, str(row_id), mirror)
            if stripe_id is not None:
                written.append((pk, int(row.pk), str(stripe_id), mirror.state))
                (result.updated if stripe_id == row.stripe_id else result.created).append(str(stripe_id))
            continue
        heir = next(
            (
                (old_pk, old)
                for old_pk, old in ended.items()
                if mirror.group is not None
                and old.synced.get("group") == mirror.group
                and old.synced.get("entity_pk") == mirror.entity_pk
            ),
            None,
        )
        if heir is not None:  # an upgrade or downgrade: the old plan's subscription carries on
            old_pk, old = heir
            del ended[old_pk]
            old_id = old.stripe_id
            stripe_id = attempt(f"hand over {old_id}", calls.update, str(old_id), mirror)
            if stripe_id is not None:
                written.append((pk, int(old.pk), str(stripe_id), mirror.state))
                result.updated.append(str(stripe_id))
            else:
                ended[old_pk] = old  # kept for the next sync
            continue
        stripe_id = attempt(f"create for instance {pk}", calls.create, mirror)
        if stripe_id is not None:
            written.append((pk, None, str(stripe_id), mirror.state))
            result.created.append(str(stripe_id))
    for row in ended.values():
        stripe_id = str(row.stripe_id)
        if attempt(f"cancel {stripe_id}", calls.cancel, stripe_id):
            canceled.append(int(row.pk))
            result.canceled.append(stripe_id)
    if not written and not canceled:
        return result
    stamp = int(time.time() * 1000)
    with db.write() as conn:
        for done in canceled:
            mark_subscription_canceled(conn, done, stamp)
        for instance_pk, row_pk, stripe_id, state in written:
            values = {
                "customer_plan_pk": instance_pk,
                "stripe_id": stripe_id,
                "status": "active",
                "synced": state,
            }
            if row_pk is not None:
                update_subscription(conn, row_pk, values, stamp)
                continue
            try:
                with conn.begin_nested():
                    insert_subscription(conn, values, customer_pk, account, stamp)
            except IntegrityError:  # a concurrent sync recorded it first: the same subscription
                update_subscription_of_instance(conn, account, instance_pk, values, stamp)
    return result
