"""Request models of the operations this server serves beyond the spec.

The spec's operations are validated with the generated models; these few (test clocks,
``invoices.finalize``) had none, so a wrong type reached the service and the database (a number as
an id gave a 500).  The router validates them like the rest: the same 400 ``invalid_inputs``
messages, the same limits from :mod:`request_guard` on the raw body.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

Number = int | float
"""A JSON number that stays an integer when sent as one (``10``, not ``10.0``, is echoed back)."""


class _Params(BaseModel):
    model_config = ConfigDict(extra="ignore")


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
