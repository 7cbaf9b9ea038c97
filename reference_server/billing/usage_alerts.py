"""Billing around a track: paid seats, usage alerts, limit reached and auto top-ups.

The core calls the watcher (``AppState.billing.track_watcher``) with the subject's sources before and
after a deduction. Seats tracked on a priced continuous feature (positive or negative) are billed like
entity-created seats, per the item's proration (:func:`reference_server.billing.seats.bill_seat_changes`);
an unpaid seat charge raises, so the track (deduction and event) does not happen (402
``invoice_payment_failed``) and only its voided invoice is kept
(:func:`reference_server.service.entities.with_seat_charge`). Events go to the webhook outbox in
the track's own transaction; an auto top-up is charged through the payment processor and added to the
one-off prepaid source of the feature.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from reference_server.billing.convert import engine_item
from reference_server.billing.plan_changes import customer_ref
from reference_server.billing.seats import bill_seat_changes
from reference_server.engine.billing.controls import (
    Allowance,
    BalanceState,
    BillingControls,
    auto_topup_due,
    controls_from_api,
    crossed_alerts,
    limit_reached,
    resolve_controls,
)
from reference_server.engine.billing.money import minor_to_json, to_decimal
from reference_server.engine.entitlements import Source
from reference_server.processors.contract import PaymentProcessor
from reference_server.service.context import AppState, Ctx
from reference_server.service.plan_controls import instance_defaults
from reference_server.service.subscriptions import load_instances
from reference_server.store.catalog import Catalog
from reference_server.store.customers import record_topup, topup_count, topup_purchase_times
from reference_server.store.plan_instances import set_prepaid_and_balance
from reference_server.store.subjects import CustomerRow, EntityRow, source_price
from reference_server.webhooks import (
    AUTO_TOPUP_SUCCEEDED,
    LIMIT_REACHED,
    USAGE_ALERT_TRIGGERED,
    auto_topup_succeeded,
    enqueue,
    list_endpoints,
    usage_alert_triggered,
)
from reference_server.webhooks import limit_reached as limit_reached_event
from reference_server.webhooks.events import AUTO_TOPUP_FAILED, auto_topup_failed

ENDPOINT_CACHE_SECONDS = 5.0


def _d(value: float) -> Decimal:
    return to_decimal(float(value))


def snapshot(
    sources: Sequence[Source], feature_id: str, now: int, controls: BillingControls
) -> tuple[BalanceState, Allowance]:
    """The aggregated balance and the check inputs of one feature over the subject's sources."""
    rows = [s for s in sources if s.feature_id == feature_id and not s.is_flag and s.is_live(now)]
    rollovers = [r for s in rows for r in s.live_rollovers(now)]
    granted = sum((_d(s.allowance + s.adjustment + s.prepaid) for s in rows), Decimal(0))
    granted += sum((_d(r.balance + r.usage) for r in rollovers), Decimal(0))
    remaining = sum((max(Decimal(0), _d(s.balance)) for s in rows), Decimal(0))
    remaining += sum((_d(r.balance) for r in rollovers), Decimal(0))
    usage = sum((_d(s.usage) for s in rows), Decimal(0)) + sum((_d(r.usage) for r in rollovers), Decimal(0))
    unlimited = any(s.unlimited for s in rows)
    paid = [s for s in rows if s.usage_allowed]
    limits = [s.max_purchase for s in paid]
    spend = controls.spend_limit_for(feature_id)
    allowance = Allowance(
        remaining=remaining,
        unlimited=unlimited,
        pay_per_use=bool(paid),
        overage_control=controls.overage_for(feature_id),
        spend_limit=spend.cap(
            sum(
                (_d(s.allowance) for s in rows if s.customer_plan_pk is not None and not s.is_addon),
                Decimal(0),
            )
        )
        if spend
        else None,
        max_purchase_total=sum((_d(m) for m in limits if m is not None), Decimal(0))
        if limits and all(m is not None for m in limits)
        else None,
        current_overage=sum((max(Decimal(0), -_d(s.balance)) for s in rows), Decimal(0)),
    )
    return BalanceState(granted, remaining, usage, unlimited), allowance


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


class TrackWatch:
    """One track's before/after comparison."""

    def __init__(
        self,
        ctx: Ctx,
        conn: Connection,
        customer: CustomerRow,
        entity: EntityRow | None,
        feature_ids: set[str],
        controls: BillingControls,
        customer_controls: BillingControls,
        processor_of: Callable[[Connection, int], PaymentProcessor],
        base_url: str,
        emit: bool,
        catalog: Catalog | None = None,
        seat_features: frozenset[str] = frozenset(),
    ) -> None:
        self.ctx, self.conn, self.customer, self.entity = ctx, conn, customer, entity
        self.feature_ids = sorted(feature_ids)
        self.controls = controls
        self.customer_controls = customer_controls
        self.processor_of = processor_of
        self.base_url = base_url
        self.emit = emit
        self.catalog = catalog
        self.seat_features = seat_features
        self._processor: PaymentProcessor | None = None
        self._before: dict[str, tuple[BalanceState, Allowance]] = {}
        self._seats_before: dict[int, float] = {}

    @property
    def processor(self) -> PaymentProcessor:
        """The customer's processor, chosen the first time a charge needs it (most tracks never do)."""
        if self._processor is None:
            self._processor = self.processor_of(self.conn, self.customer.pk)
        return self._processor

    def _seat_sources(self, subject: Sequence[Source]) -> list[Source]:
        return [
            s
            for s in subject
            if s.feature_id in self.seat_features
            and s.continuous
            and not s.is_flag
            and s.customer_plan_pk is not None
        ]

    def before(self, subject: Sequence[Source], now: int) -> None:
        self._before = {fid: snapshot(subject, fid, now, self.controls) for fid in self.feature_ids}
        self._seats_before = {s.pk: s.balance for s in self._seat_sources(subject)}

    def _bill_seats(self, subject: Sequence[Source], now: int) -> None:
        """Seats tracked on plan instances with a seat price: billed as one invoice, or the track fails."""
        if self.catalog is None:
            return
        changes: dict[str, dict[int, tuple[float, float]]] = {}
        for s in self._seat_sources(subject):
            before = self._seats_before.get(s.pk)
            if before is None or before == s.balance or s.customer_plan_pk is None:
                continue
            changes.setdefault(s.feature_id, {})[s.customer_plan_pk] = (before, s.balance)
        if changes:
            bill_seat_changes(
                self.conn, self.catalog, self.customer, changes, now, self.processor, self.base_url
            )

    def _enqueue(
        self, event_type: str, data: dict[str, Any], now: int, extra: dict[str, Any] | None = None
    ) -> None:
        if self.emit:
            enqueue(
                self.conn, self.ctx.tenant.org_pk, self.ctx.tenant.env, event_type, data, now, extra=extra
            )

    def after(self, subject: Sequence[Source], now: int) -> None:
        self._bill_seats(subject, now)
        if not self.emit and not any(self.customer_controls.auto_topup_for(f) for f in self.feature_ids):
            return
        entity_id = self.entity.id if self.entity else None
        for fid in self.feature_ids:
            if not any(s.feature_id == fid for s in subject):
                continue
            old_state, old_allow = self._before[fid]
            new_state, new_allow = snapshot(subject, fid, now, self.controls)
            for alert in crossed_alerts(self.controls.alerts_for(fid), old_state, new_state):
                self._enqueue(
                    USAGE_ALERT_TRIGGERED,
                    usage_alert_triggered(self.customer.id or "", fid, alert.as_payload(), entity_id),
                    now,
                )
            reason = limit_reached(old_allow, new_allow)
            if reason is not None:
                self._enqueue(
                    LIMIT_REACHED, limit_reached_event(self.customer.id or "", fid, reason, entity_id), now
                )
            self._auto_topup(subject, fid, new_state, now)

    def _auto_topup(self, subject: Sequence[Source], fid: str, state: BalanceState, now: int) -> None:
        rule = self.customer_controls.auto_topup_for(fid)
        if rule is None:
            return
        target = next(
            (
                s
                for s in subject
                if s.feature_id == fid
                and s.entity_pk is None
                and s.price
                and s.price.get("billing_method") == "prepaid"
                and s.price.get("interval") == "one_off"
                and s.customer_plan_pk is not None
            ),
            None,
        )
        if target is None:
            return
        item = engine_item({"feature_id": fid, "included": 0, "price": source_price(target)})
        history = topup_purchase_times(self.conn, self.customer.pk, fid)
        ref = customer_ref(self.customer)
        pm = self.processor.default_payment_method(self.conn, ref)
        counted = topup_count(self.conn, self.customer.pk, fid)
        purchase = auto_topup_due(
            rule,
            item,
            state.remaining,
            now,
            history,
            pm is not None,
            target.plan_id or "",
            counted=(int(counted.purchase_count), int(counted.set_at)) if counted is not None else None,
        )
        if purchase is None:
            return
        outcome = self.processor.charge(self.conn, ref, purchase.invoice, "auto_topup", now, self.base_url)
        if not outcome.succeeded:
            self._enqueue(
                AUTO_TOPUP_FAILED,
                auto_topup_failed(
                    self.customer.id or "", fid, outcome.failure_message or outcome.status.value
                ),
                now,
            )
            return
        units = float(purchase.units)
        target.prepaid += units
        target.balance += units
        set_prepaid_and_balance(self.conn, target.pk, target.prepaid, target.balance)
        invoice_pk = outcome.invoice.pk if outcome.invoice else None
        record_topup(self.conn, self.customer.pk, fid, str(purchase.units), invoice_pk, now)
        invoice = outcome.invoice
        invoice_json = {
            "stripe_id": invoice.processor_id or invoice.id if invoice else None,
            "status": invoice.status if invoice else "paid",
            "total": minor_to_json(invoice.total, invoice.currency) if invoice else 0,
            "currency": invoice.currency if invoice else "usd",
            "hosted_invoice_url": invoice.hosted_url if invoice else None,
        }
        data = auto_topup_succeeded(
            self.customer.id or "",
            fid,
            _number(purchase.units),
            _number(rule.threshold),
            _number(state.remaining + purchase.units),
            invoice_json,
            rule.invoice_mode,
        )
        self._enqueue(
            AUTO_TOPUP_SUCCEEDED,
            data,
            now,
            extra={"id": "evt_auto_topup_" + secrets.token_hex(10), "occurred_at": now},
        )


class TrackWatcher:
    """The hook the core calls on every track; returns None (no work) unless something could fire."""

    def __init__(
        self, processor_of: Callable[[Connection, int], PaymentProcessor], base_url: Callable[[], str]
    ) -> None:
        self.processor_of = processor_of
        self.base_url = base_url
        self.cache: dict[tuple[int, str], tuple[float, bool]] = {}

    def has_endpoints(self, conn: Connection, org_pk: int, env: str) -> bool:
        key = (org_pk, env)
        cached = self.cache.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        present = bool(list_endpoints(conn, org_pk, env))
        self.cache[key] = (time.monotonic() + ENDPOINT_CACHE_SECONDS, present)
        return present

    def __call__(
        self,
        ctx: Ctx,
        conn: Connection,
        customer: CustomerRow,
        entity: EntityRow | None,
        feature_ids: set[str],
    ) -> TrackWatch | None:
        customer_controls = controls_from_api(customer.billing_controls)
        catalog = ctx.state.catalog_cache.get(conn, ctx.tenant)
        plan_layer = _plan_layer(conn, catalog, customer, entity)
        if plan_layer is not None:  # the customer's entries over its current plans' defaults
            customer_controls = resolve_controls(None, customer_controls, [plan_layer])
        wants_topup = any(customer_controls.auto_topup_for(fid) for fid in feature_ids)
        emit = self.has_endpoints(conn, ctx.tenant.org_pk, ctx.tenant.env)
        # Continuous features may carry a seat price (a customized plan can add one), so their tracks
        # always take the locked path where seats are billed.
        seats = frozenset(
            fid
            for fid in feature_ids
            if (f := catalog.features.get(fid)) is not None and f.type == "metered" and not f.consumable
        )
        if not emit and not wants_topup and not seats:
            return None
        entity_controls = controls_from_api(entity.billing_controls) if entity else None
        resolved = resolve_controls(entity_controls, customer_controls)
        return TrackWatch(
            ctx,
            conn,
            customer,
            entity,
            feature_ids,
            resolved,
            customer_controls,
            self.processor_of,
            self.base_url(),
            emit,
            catalog,
            seats,
        )


def _plan_layer(
    conn: Connection, catalog: Catalog, customer: CustomerRow, entity: EntityRow | None
) -> BillingControls | None:
    """The billing controls the subject's active plans give it (most recent plan first), if any plan
    of the catalogue has controls at all (else without a statement)."""
    if not any(plan.billing_controls for plan in catalog.plans_by_pk.values()):
        return None
    scope = {None, entity.pk if entity is not None else None}
    current = [i for i in load_instances(conn, customer.pk) if i.status == "active" and i.entity_pk in scope]
    current.sort(key=lambda inst: (-inst.created_at, -inst.pk))
    merged = instance_defaults(catalog, [inst.plan_pk for inst in current])
    return controls_from_api(merged) if merged is not None else None


def make_track_watcher(
    state: AppState, processor_of: Callable[[Connection, int], PaymentProcessor], base_url: Callable[[], str]
) -> TrackWatcher:
    """The watcher installed as ``AppState.billing.track_watcher``."""
    return TrackWatcher(processor_of, base_url)
