"""Per-request context: which organization and env the key belongs to, the clock and the caches."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from reference_server.clock import Clock
from reference_server.service.billing_hooks import BillingHooks
from reference_server.store.db import Database
from reference_server.store.tenancy import Tenant

if TYPE_CHECKING:
    from reference_server.jobs import LeaderLease
    from reference_server.processors.registry import Processors
    from reference_server.request_log import RequestLog
    from reference_server.store.async_pool import AsyncPool
    from reference_server.store.catalog import CatalogCache
    from reference_server.store.subject_cache import SubjectCache


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
