"""The caller's metadata for the Stripe objects of a billing change: ``billing.attach``'s ``metadata``
(its preview's, and ``billing.setup_payment``'s, whose attach once the card is set up carries it) and
``checkout_session_params.metadata``.

Autumn puts an attach's ``metadata`` on the Stripe subscription it creates or updates, on the invoice it
creates and on the Checkout Session it creates (under ``checkout_session_params.metadata``), its own
keys winning, and strips the caller's keys starting ``autumn_`` (reserved) without a word; it checks
nothing else, so what Stripe refuses fails at Stripe.  Here, for an organization charged through Stripe:

- the mirrored Stripe Subscription of each plan instance the attach makes (or re-attaches) carries it
  (:mod:`reference_server.processors.stripe.subscription_sync`; kept as the instance's
  ``processor_metadata``, so every later sync writes it too);
- the Stripe invoice of what the attach bills now (charged, or sent in invoice mode) carries it (the
  server invoice's ``processor_metadata``, so a retry's new Stripe invoice does too);
- the setup-mode Stripe Checkout Session where the payer of the attach's checkout enters a card
  carries it, under ``checkout_session_params.metadata``.

The request is checked before anything is written: after the reserved keys are stripped, what is left
must fit Stripe's limits on every object beside the server's own keys
(:func:`~reference_server.processors.stripe.metadata.room_for`), else 400 ``invalid_inputs`` naming the
field.  An organization whose processor writes no metadata
(:meth:`~reference_server.processors.contract.PaymentProcessor.writes_metadata`: the local processor has
no object to carry it, and Autumn's answers show metadata on none of the server's own invoices or
subscriptions) is then refused it: 400 ``unsupported_field`` (a ``metadata`` that asks for nothing,
``{}`` or only reserved keys, passes).

Stripe's limits are checked here, for every organization, rather than by the organization's processor:
they are the limits of Autumn's API, whose metadata always lands on Stripe, so a value Autumn would
refuse is ``invalid_inputs`` whichever processor the reference server charges with, before the
processor is asked whether it can carry metadata at all, as ``checkout_session_params``' values
(``locale``: Stripe's list) are (:mod:`reference_server.billing.checkout_session_params`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from autumn_sdk._generated.models import AttachParams, PreviewAttachParams, SetupPaymentParams
from reference_server.billing.plan_changes import AttachState
from reference_server.billing.processor_choice import processors_of
from reference_server.engine.billing import ChangeKind
from reference_server.errors import ApiError, invalid
from reference_server.processors.stripe.metadata import (
    STRIPE_MAX_KEY_LENGTH,
    STRIPE_MAX_KEYS,
    STRIPE_MAX_VALUE_LENGTH,
    caller_metadata,
    metadata_value,
    room_for,
)
from reference_server.service.context import Ctx
from reference_server.store.instance_billing import merge_processor_metadata

MetadataRequest = AttachParams | PreviewAttachParams | SetupPaymentParams
"""The requests whose ``metadata`` is the attach's."""

ATTACH_ROOM = room_for("subscription", "invoice", "checkout_session")
"""The keys an attach's ``metadata`` may have: what every object it lands on leaves beside the server's."""
CHECKOUT_ROOM = room_for("checkout_session")
"""The keys the caller may put on a Checkout Session (``checkout_session_params.metadata`` and the
attach's ``metadata`` together)."""


def check_metadata(field: str, value: Any, room: int) -> dict[str, str]:
    """Refuse (400 ``invalid_inputs`` naming ``field``) a caller's metadata Stripe would refuse on an
    object that keeps ``room`` keys for the caller; the metadata as Stripe stores it."""
    if not isinstance(value, dict):
        raise invalid(f"{field}: must be an object", "invalid_inputs")
    if len(value) > room:
        raise invalid(
            f"{field}: at most {room} keys (Stripe takes {STRIPE_MAX_KEYS} on an object; the server's own "
            "autumn_* keys take the rest)",
            "invalid_inputs",
        )
    for key, item in value.items():
        if not key or len(key) > STRIPE_MAX_KEY_LENGTH or "[" in key or "]" in key:
            raise invalid(
                f"{field}: key {key!r} must be 1 to {STRIPE_MAX_KEY_LENGTH} characters, without [ ]",
                "invalid_inputs",
            )
        if not isinstance(item, (str, int, float)) or len(metadata_value(item)) > STRIPE_MAX_VALUE_LENGTH:
            raise invalid(
                f"{field}: {key}: a string (or number) of at most {STRIPE_MAX_VALUE_LENGTH} characters",
                "invalid_inputs",
            )
    return {str(key): metadata_value(item) for key, item in value.items()}


def attach_metadata(params: MetadataRequest) -> dict[str, str]:
    """The request's ``metadata`` as it is written on Stripe: its ``autumn_*`` keys stripped."""
    return caller_metadata(params.metadata)


def action_metadata(action: dict[str, Any]) -> dict[str, str]:
    """The attach's ``metadata`` of a hosted session's action (the request's JSON, as stored with it)."""
    return caller_metadata((action.get("body") or {}).get("metadata"))


def check_attach_metadata(
    ctx: Ctx, conn: Connection, params: MetadataRequest, on_checkout: bool = True
) -> None:
    """Refuse (400) what of the request's ``metadata`` cannot be written, before anything is: Stripe's
    limits (``on_checkout``: also beside ``checkout_session_params.metadata`` on the Checkout Session),
    and any of it for an organization whose processor writes none (the local processor)."""
    if not params.metadata:
        return
    given = check_metadata("metadata", attach_metadata(params), ATTACH_ROOM)
    if not given:
        return  # only reserved keys: stripped, as Autumn does
    processor = processors_of(ctx.state).for_org(conn, ctx.tenant.org_pk, ctx.tenant.env)
    if not processor.writes_metadata():
        raise ApiError(
            400,
            "unsupported_field",
            "metadata is part of Autumn's API but the reference server writes it only on the Stripe "
            "subscription, invoice and Checkout Session of an organization charged through Stripe; this "
            f"organization is charged by the {processor.name} processor, which has none: leave it out (see "
            "the README's list of unsupported fields)",
        )
    session_params = getattr(params, "checkout_session_params", None)
    on_session = session_params.get("metadata") if isinstance(session_params, dict) else None
    if on_checkout and isinstance(on_session, dict):
        keys = set(given) | {str(key) for key in on_session}
        if len(keys) > CHECKOUT_ROOM:
            raise invalid(
                f"metadata: with checkout_session_params.metadata, at most {CHECKOUT_ROOM} keys on the "
                f"Stripe Checkout Session (Stripe takes {STRIPE_MAX_KEYS}; the server's own autumn_* keys "
                "take the rest)",
                "invalid_inputs",
            )


def keep_attach_metadata(
    conn: Connection, state: AttachState, kind: ChangeKind, created: list[int], metadata: dict[str, str]
) -> None:
    """The attach's ``metadata`` goes with the plan instances it made (``created``), or the one it
    re-attached (a ``SAME`` attach makes none), over the keys they already carry, so the mirrored
    Stripe Subscription carries it from the next sync on."""
    if not metadata:
        return
    pks = list(created)
    if not pks and kind is ChangeKind.SAME and state.current is not None:
        pks = [state.current.pk]
    merge_processor_metadata(conn, pks, metadata)


__all__ = [
    "ATTACH_ROOM",
    "CHECKOUT_ROOM",
    "MetadataRequest",
    "action_metadata",
    "attach_metadata",
    "check_attach_metadata",
    "check_metadata",
    "keep_attach_metadata",
]
