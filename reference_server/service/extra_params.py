"""Request models of the operations this server serves beyond the spec.

The spec's operations are validated with the generated models; these few (test clocks,
``invoices.finalize``) had none, so a wrong type reached the service and the database (a number as
an id gave a 500).  The router validates them like the rest: the same 400 ``invalid_inputs``
messages, the same limits from :mod:`request_guard` on the raw body.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Number = int | float
"""A JSON number that stays an integer when sent as one (``10``, not ``10.0``, is echoed back)."""


class _Params(BaseModel):
    model_config = ConfigDict(extra="ignore")


class NoParams(_Params):
    """The request of an operation that reads nothing from its body (``webhooks.list``...)."""


class AdvanceClockParams(_Params):
    """``test_clocks.advance`` and ``customers.advance_test_clock``: a target moment or a step.

    ``frozen_time`` (a target in ms) is what the official SDK's ``customers.advance_test_clock`` sends.
    """

    customer_id: str | None = None
    frozen_time: int | None = None
    advance_to: int | None = None
    advance_by_ms: int | None = None
    days: Number | None = None
    hours: Number | None = None


class FinalizeInvoiceParams(_Params):
    """``invoices.finalize``: an invoice-mode draft by its id."""

    invoice_id: str


class ListPageParams(_Params):
    """The paging of Autumn's cross-customer lists (``balances.list``, ``subscriptions.list``...)."""

    customer_id: str | None = None
    entity_id: str | None = None
    limit: int = Field(50, ge=1, le=200)
    start_cursor: str | None = None


class ListBalancesParams(ListPageParams):
    """``balances.list``; ``plan_id`` null (sent) lists standalone balances only."""

    statuses: list[Literal["active", "expired"]] | None = Field(None, min_length=1)
    plan_id: str | None = None
    feature_id: str | None = None


class ListCustomerPlansParams(ListPageParams):
    """``subscriptions.list`` and ``purchases.list``."""

    statuses: list[Literal["active", "scheduled", "past_due", "expired"]] | None = Field(None, min_length=1)
    plan_id: str | None = None


class VerifyParams(_Params):
    """``billing.verify``: one customer's billing against its processor."""

    customer_id: str
    subscription_ids: list[str] | None = None
    strict: bool | None = None


class LogsRange(_Params):
    start_date: str | None = None
    end_date: str | None = None


class SearchLogsParams(_Params):
    """``logs.search``: a restricted query over the request log, in a time range."""

    query: str | None = Field(None, max_length=4000)
    range: LogsRange | None = None
    limit: int = Field(100, ge=1, le=200)


class StripeConnectionParams(_Params):
    """``platform.get_stripe_connection`` and ``platform.disconnect_stripe``."""

    organization_slug: str
    env: Literal["test", "live"]


class WebhookRefParams(_Params):
    """``webhooks.get`` and ``webhooks.delete``: a webhook by its id."""

    id: str


class WebhookParams(_Params):
    """``webhooks.create`` and ``webhooks.update`` (which leaves out what it keeps), one item of a sync."""

    id: str
    url: str | None = None
    events: list[str] | None = None
    description: str | None = None
    disabled: bool | None = None


class SyncWebhooksParams(_Params):
    """``webhooks.sync`` and ``webhooks.preview_sync``: the webhooks to create or update."""

    webhooks: list[WebhookParams]
    skip_deletions: bool | None = None


class CreateSandboxParams(_Params):
    """``sandboxes.create``: a name unique in the organization, and the dashboard's label."""

    name: str = Field(min_length=1, max_length=200)
    color: str | None = None
    icon: str | None = Field(None, max_length=64)


class SandboxRefParams(_Params):
    """``sandboxes.delete``: a sandbox by its organization id."""

    id: str
