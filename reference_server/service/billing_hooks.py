"""What the core services ask of billing, typed: billing (which imports service/) installs it.

:func:`reference_server.billing.wiring.wire_billing` fills one :class:`BillingHooks` into
``AppState.billing`` when the app is built; until then (and in an ``AppState`` built by hand) every
hook is absent and the services behave as with no paid plan at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Connection

if TYPE_CHECKING:
    from reference_server.engine.entitlements import Source
    from reference_server.service.context import Ctx
    from reference_server.service.extra_params import FinalizeInvoiceParams
    from reference_server.store.catalog import Catalog, Plan
    from reference_server.store.subjects import CustomerRow, EntityRow

JSON = dict[str, Any]


class Maintenance(Protocol):
    """Renewals, trial ends and period-end switches, run before the free-plan transitions."""

    def __call__(
        self, ctx: Ctx, conn: Connection, cat: Catalog, customer: CustomerRow, now: int, /
    ) -> None: ...


class PastDueLookup(Protocol):
    """The plan-instance pks whose renewal charge failed (``subscriptions[].past_due``)."""

    def __call__(self, conn: Connection, customer: CustomerRow, /) -> Iterable[int]: ...


class PaymentMethodLookup(Protocol):
    """The customer's default card for ``expand: ["payment_method"]`` (None without one)."""

    def __call__(self, conn: Connection, customer: CustomerRow, /) -> JSON | None: ...


class TrialUsedLookup(Protocol):
    """Whether the plan's trial is used up (per customer, or per fingerprint when the trial says so)."""

    def __call__(self, conn: Connection, customer: CustomerRow, plan: Plan, /) -> bool: ...


class SeatBilling(Protocol):
    """Invoices an entity created or deleted on a feature with a usage-based seat price
    (``changes``: plan-instance pk -> balance before and after)."""

    def __call__(
        self,
        ctx: Ctx,
        conn: Connection,
        cat: Catalog,
        customer: CustomerRow,
        feature_id: str,
        changes: Mapping[int, tuple[float, float]],
        now: int,
        /,
    ) -> None: ...


class InvoiceLister(Protocol):
    """``customer.invoices`` for ``expand: ["invoices"]``."""

    def __call__(self, conn: Connection, customer: CustomerRow, /) -> list[JSON]: ...


class InvoiceFinalizer(Protocol):
    """``invoices.finalize`` served by billing: ``(ctx, params) -> response``."""

    def __call__(self, ctx: Ctx, params: FinalizeInvoiceParams, /) -> JSON: ...


class TrackWatch(Protocol):
    """Around one track: usage alerts, limit reached, auto top-ups."""

    def before(self, subject: Sequence[Source], now: int) -> None: ...

    def after(self, subject: Sequence[Source], now: int) -> None: ...


class TrackWatcher(Protocol):
    """A :class:`TrackWatch` for a track of ``feature_ids`` (None: nothing to watch)."""

    cache: dict[tuple[int, str], tuple[float, bool]]
    """Whether an org env has webhook endpoints; cleared when they change."""

    def __call__(
        self,
        ctx: Ctx,
        conn: Connection,
        customer: CustomerRow,
        entity: EntityRow | None,
        feature_ids: set[str],
    ) -> TrackWatch | None: ...


class SubscriptionMirror(Protocol):
    """The processor's subscriptions that follow plan instances (Stripe), synced after commit."""

    def after_change(self, conn: Connection, customer_pk: int) -> None: ...

    def before_customer_delete(self, conn: Connection, customer_pk: int, delete_in_stripe: bool) -> None: ...


class InvoiceActions(Protocol):
    """``invoices.void`` and ``invoices.pay``."""

    def void(self, ctx: Ctx, params: FinalizeInvoiceParams) -> JSON: ...

    def pay(self, ctx: Ctx, params: FinalizeInvoiceParams) -> JSON: ...


@dataclass
class BillingHooks:
    """The billing work the core services call into (None: not installed)."""

    maintenance: Maintenance | None = None
    past_due: PastDueLookup | None = None
    payment_method: PaymentMethodLookup | None = None
    trial_used: TrialUsedLookup | None = None
    seat_billing: SeatBilling | None = None
    invoice_lister: InvoiceLister | None = None
    invoice_finalizer: InvoiceFinalizer | None = None
    """``POST /v1/invoices.finalize``."""
    invoice_actions: InvoiceActions | None = None
    track_watcher: TrackWatcher | None = None
    subscription_mirror: SubscriptionMirror | None = None
