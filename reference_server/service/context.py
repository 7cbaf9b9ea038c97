"""Per-request context: which organization and env the key belongs to, the clock and the caches; and
what the core services ask of billing (:class:`BillingHooks`), typed.

:func:`reference_server.billing.wiring.wire_billing` fills one :class:`BillingHooks` into
``AppState.billing`` when the app is built; until then (and in an ``AppState`` built by hand) every
hook is absent and the services behave as with no paid plan at all.  Billing (which imports
``service/``) installs it, so ``service/`` never imports ``billing/``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Connection

from reference_server.clock import Clock
from reference_server.store.db import Database
from reference_server.store.tenancy import Tenant

if TYPE_CHECKING:
    from autumn_sdk._generated.json_types import (
        FinalizeInvoiceResponseJson,
        PayInvoiceResponseJson,
        TrackResponseJson,
    )
    from autumn_sdk._generated.models import FinalizeInvoiceParams, PayInvoiceParams, VoidInvoiceParams
    from reference_server.engine.entitlements import Source
    from reference_server.jobs import LeaderLease
    from reference_server.processors.registry import Processors
    from reference_server.request_log import RequestLog
    from reference_server.service.track_batches import TrackBatches
    from reference_server.store.async_pool import AsyncPool
    from reference_server.store.catalog import Catalog, CatalogCache, Plan
    from reference_server.store.invoice_pages import InvoiceRow
    from reference_server.store.subject_cache import SubjectCache
    from reference_server.store.subjects import CustomerRow, EntityRow


JSON = dict[str, Any]


class Maintenance(Protocol):
    """Renewals, trial ends and period-end switches, run before the free-plan transitions."""

    def __call__(
        self, ctx: Ctx, conn: Connection, cat: Catalog, customer: CustomerRow, now: int, /
    ) -> None: ...


class PastDueLookup(Protocol):
    """The customers' plan-instance pks whose renewal charge failed (``subscriptions[].past_due``)."""

    def __call__(self, conn: Connection, customer_pks: Sequence[int], /) -> Iterable[int]: ...


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

    def __call__(self, conn: Connection, customer: CustomerRow, /) -> list[InvoiceRow]: ...


class InvoiceFinalizer(Protocol):
    """``invoices.finalize`` served by billing: ``(ctx, params) -> response``."""

    def __call__(self, ctx: Ctx, params: FinalizeInvoiceParams, /) -> FinalizeInvoiceResponseJson: ...


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

    def void(self, ctx: Ctx, params: VoidInvoiceParams) -> PayInvoiceResponseJson: ...

    def pay(self, ctx: Ctx, params: PayInvoiceParams) -> PayInvoiceResponseJson: ...


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


@dataclass(frozen=True)
class CustomerToken:
    """The verified claims of the ``am_jwt_`` token a request was made with (see ``key_ops``)."""

    customer_id: str
    customer_pk: int
    epoch: int
    refresh_kid: int
    audience: str


@dataclass
class AppState:
    """Everything shared by all requests of one app instance."""

    db: Database
    clock: Clock
    catalog_cache: CatalogCache
    demo: bool = False
    billing: BillingHooks = field(default_factory=BillingHooks)
    """What the services call into billing for; installed by ``create_app`` (billing.wiring)."""
    processors: Processors | None = None
    """The payment processors (per organization: its own Stripe account, else the server's default)."""
    customer_jwt_secret: str | None = None
    """The signing secret of ``am_jwt_`` tokens, once read or created (:mod:`.key_ops`)."""
    request_log: RequestLog | None = None
    """The dashboard's recent requests (one per app: the middleware writes it)."""
    subject_cache: SubjectCache | None = None
    track_batches: TrackBatches[Any, TrackResponseJson] | None = None
    """PostgreSQL: tracks waiting for a busy subject, written together (service.track_batches)."""
    """PostgreSQL only: the subjects tracks compute from (one round trip per track)."""
    async_pool: AsyncPool | None = None
    """PostgreSQL only: the event loop's connections for check and track's single statement."""
    public_url: str | None = None
    bind_url: str | None = None
    """The URL of the address the server was configured to listen on (``http://host:port``)."""
    """``AUTUMN_PUBLIC_URL``: the base of checkout and portal links (None: each request's own base URL)."""
    background_lease: LeaderLease | None = None
    """Held while this process runs the background jobs (:mod:`reference_server.jobs`)."""

    @property
    def background_url(self) -> str:
        """The base of links made with no request (renewals, processor events): the configured public
        URL, else the address the server listens on."""
        return self.public_url or self.bind_url or "http://127.0.0.1"


@dataclass(frozen=True)
class KeyedCall:
    """The ``Idempotency-Key`` of a request an event-loop fast path serves (PostgreSQL's track).

    The fast path claims the key in the statement that does the work, storing the answer with it;
    ``seal`` turns the service's response into that answer, exactly as the dispatcher would send it.
    """

    key: str
    request_hash: str
    seal: Callable[[Mapping[str, Any]], tuple[int, str]]
    """The service's response -> (status, JSON body) a replay of the key answers."""


@dataclass
class Ctx:
    """One request's view: state + tenant."""

    state: AppState
    tenant: Tenant
    customer_token: CustomerToken | None = None
    """The verified ``am_jwt_`` token the request was made with (None: a secret key)."""
    base_url: str = ""
    """The base of the links this request hands out (checkout, portal): ``public_url`` when configured,
    else the URL the request came in on (set by the router); "" becomes ``state.background_url``."""

    def __post_init__(self) -> None:
        if not self.base_url:
            self.base_url = self.state.background_url

    @property
    def db(self) -> Database:
        return self.state.db

    def now(self, customer_offset_ms: int = 0) -> int:
        """The tenant's time: the base clock plus the org env's and the customer's test clocks."""
        return self.state.clock.now_ms() + self.tenant.clock_offset_ms + customer_offset_ms
