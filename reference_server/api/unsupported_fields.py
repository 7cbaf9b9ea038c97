"""Fields of Autumn's current API that this server accepts in the spec but does not act on yet.

The generated models take every field of the current spec, so without this table a request using
one of these would succeed while silently ignoring it (a multi-currency attach billed in the
default currency, a usage limit that never limits). Instead the request is refused with a 400
``unsupported_field`` naming the field, before anything is written; a value that asks for nothing
(``null``, ``false``, ``[]``, ``{}``) passes. A field leaves this table
when the server implements it; the README lists what is still here.

Paths are dotted field names of the request body; ``[]`` steps into every item of a list.
``checkout_session_params``, whose keys are Stripe Checkout's, is refused key by key: every key but
those :mod:`reference_server.billing.checkout_session_params` serves (:data:`OPEN_OBJECTS`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from reference_server.billing.checkout_session_params import SERVED_KEYS as CHECKOUT_SESSION_KEYS
from reference_server.errors import ApiError

_CUSTOMIZE = (
    "customize.billing_controls",
    "customize.items[].pooled",
    "customize.add_items[].pooled",
    "customize.items[].price.additional_currencies",
    "customize.add_items[].price.additional_currencies",
    "customize.items[].price.tiers[].additional_currencies",
    "customize.add_items[].price.tiers[].additional_currencies",
    "customize.price.additional_currencies",
)
# Autumn's invoice templates (footer, memo and default net terms) are configured in its dashboard's billing
# settings, which no operation of the spec reaches; this server has none, so no id can name one.
_INVOICE_MODE = ("invoice_mode.invoice_template_id",)
# Autumn's ``create_in_stripe`` creates the Stripe customer at once; this server creates it when billing
# first needs it, so an eager creation is not asked for here.
_CUSTOMER_DATA = ("customer_data.currency", "customer_data.create_in_stripe")
# ``discounts`` (rewards, coupons, promotion codes) are served on attach, multi-attach, update, their
# previews, schedules and setup_payment's attach (billing/discounts.py); a new Stripe subscription rather
# than the existing one is not. (``checkout_session_params`` is refused key by key: see OPEN_OBJECTS.)
# An ``adjustable`` quantity is one the customer may change on Autumn's checkout page (Stripe Checkout's
# adjustable quantity); this server's checkout page sells the quantities the request names, as they are.
_ADJUSTABLE = "feature_quantities[].adjustable"
# A multi-attach's request-wide ``free_trial`` (Autumn's one trial for all its plans) is served
# (billing/multi_attach.py).
_MULTI_ATTACH = (
    "currency",
    "new_billing_subscription",
    "plans[].customize.items[].pooled",
    "plans[].customize.items[].price.additional_currencies",
    "plans[].customize.items[].price.tiers[].additional_currencies",
    "plans[].customize.price.additional_currencies",
    f"plans[].{_ADJUSTABLE}",
    *_CUSTOMER_DATA,
    *_INVOICE_MODE,
)
_LICENSE_LINKS = (
    "customize.upsert_licenses[].customize.add_items",
    "customize.upsert_licenses[].customize.remove_items",
    "customize.upsert_licenses[].customize.price.additional_currencies",
    "customize.upsert_licenses[].metadata",
)
"""What a per-customer license link cannot carry here: changes to the license plan's items (a seat
gets the license plan as it is) and link metadata; its included seats and seat price are served."""
# An attach here bills on its own anchor (the engine's lines, or the caller's ``custom_line_items`` for a
# change of an existing subscription) and puts no tax rate on what it bills (its ``no_billing_changes`` is
# served: billing/no_billing.py);
# nor can it adopt an existing Stripe subscription (``processor_subscription_id``). Its ``metadata`` is
# served on Stripe (billing/stripe_metadata.py; refused there for a local-processor organization). Its
# ``starts_at`` and ``ends_at`` are served (billing/attach_dates.py); what of them this server does not
# model is refused there: access before a later start's billing (``enable_plan_immediately``) and a new
# start or end for a canceling plan being re-attached (which keeps its running cycle).
# Its ``discounts`` are served (billing/discounts.py).
_ATTACH_OPTIONS = (
    "new_billing_subscription",
    "processor_subscription_id",
    "tax_rate_id",
    _ADJUSTABLE,
)
_ATTACH = ("currency", *_CUSTOMIZE, *_INVOICE_MODE, *_LICENSE_LINKS, *_ATTACH_OPTIONS)
# An update's ``no_billing_changes`` and ``discounts`` are served (billing/no_billing.py,
# billing/discounts.py), and so are its ``version`` and ``recalculate_balances`` (billing/update_quote.py,
# billing/update_request.py).
_UPDATE = (
    *_CUSTOMIZE,
    *_INVOICE_MODE,
    *_LICENSE_LINKS,
    _ADJUSTABLE,
)
# What billing.setup_payment's later attach takes is its plan, scope, quantities, customization,
# removals, metadata, no_billing_changes and discounts (``customer_pages.SETUP_ATTACH_KEYS``); its other
# attach fields would be dropped.
_SETUP_PAYMENT = (
    "currency",
    *_CUSTOMIZE,
    *_LICENSE_LINKS,
    *(path for path in _ATTACH_OPTIONS if path != "new_billing_subscription"),  # (no such field here)
    "custom_line_items",
    "billing_cycle_anchor",
    "starts_at",
    "ends_at",
    "version",
    "proration_behavior",
    "subscription_id",
    "carry_over_balances",
    "carry_over_usages",
    "enable_plan_immediately",
)
_CUSTOMER = ("currency",)
_PLAN = (
    "price.additional_currencies",
    "items[].pooled",
    "items[].price.additional_currencies",
    "items[].price.tiers[].additional_currencies",
)
# Autumn's ``migration.draft`` records a migration draft that its dashboard reviews and runs (plans.update
# itself never moves customers); this server has no migration drafts, so a draft is refused.
_VARIANT = (
    "variants[].migration.draft",
    "variants[].customize.price.additional_currencies",
    "variants[].customize.add_items[].pooled",
    "variants[].customize.add_items[].price.additional_currencies",
    "variants[].customize.add_items[].price.tiers[].additional_currencies",
)
_PLAN_UPDATE = (
    "migration.draft",
    "update_license_parents",
    *_VARIANT,
    *_PLAN,
)

# A schedule's ``discounts`` (on its immediate phase, through the multi-attach: billing/discounts.py) and
# its ``no_billing_changes`` are served (billing/no_billing.py); ``billing_cycle_anchor: "now"``,
# which the official SDK always sends, is served by billing/schedules.py (refused there only where it
# would ask for more than attaching now does); a plan's customize is refused where attach's is.
_SCHEDULE = (
    "currency",
    *(f"phases[].plans[].{path}" for path in _CUSTOMIZE),
    *(f"unscheduled_plans[].{path}" for path in _CUSTOMIZE),
    f"phases[].plans[].{_ADJUSTABLE}",
    f"unscheduled_plans[].{_ADJUSTABLE}",
    *_INVOICE_MODE,
)

# The official SDK's arguments beyond Autumn's spec (spec/autumn-sdk-1.2.0-operations.yml,
# ``x-official-arguments``) that no operation here acts on: Stripe customer billing details (address, tax
# ids, exemption) and a request's tax choice, which no invoice here carries; lines added to or removed
# from the invoice a change bills, and setup_payment's discounts removed by reward (attach's and update's
# ``remove_discounts`` are served: billing/discounts.py); Stripe subscription parameters. (Attach's
# ``free_trial``, its preview's and setup_payment's are served: billing/free_trial_shorthand.py; an
# update's ``free_trial`` and ``custom_line_items``: billing/update_free_trial.py and
# billing/update_custom_lines.py; a multi-update's ``refund_last_payment``: billing/multi_update.py.)
_BILLING_DETAILS = "billing_details"
_LINE_CHANGES = ("add_lines", "remove_lines")
_ATTACH_ARGUMENTS = (*_LINE_CHANGES, _BILLING_DETAILS, "tax")
_UPDATE_ARGUMENTS = (*_LINE_CHANGES, "subscription_params")
_MULTI_UPDATE_ARGUMENTS = ("subscription_params",)
# A feature's ``combine`` (how grants of several plans add up: max or min rather than sum) is not modelled:
# grants always add up here.
_FEATURE_ARGUMENTS = ("combine",)

UNSUPPORTED_FIELDS: dict[str, tuple[str, ...]] = {
    "billing.attach": (*_ATTACH, *_ATTACH_ARGUMENTS),
    "billing.preview_attach": (*_ATTACH, *_ATTACH_ARGUMENTS),
    "billing.setup_payment": (*_SETUP_PAYMENT, *_ATTACH_ARGUMENTS, "remove_discounts"),
    # Autumn hands ``configuration_id`` to Stripe's billing portal; this server's portal has none.
    "billing.open_customer_portal": ("configuration_id",),
    "billing.update": (*_UPDATE, *_UPDATE_ARGUMENTS),
    "billing.preview_update": (*_UPDATE, *_UPDATE_ARGUMENTS),
    "billing.multi_update": _MULTI_UPDATE_ARGUMENTS,
    "billing.preview_multi_update": _MULTI_UPDATE_ARGUMENTS,
    "billing.multi_attach": _MULTI_ATTACH,
    "billing.preview_multi_attach": _MULTI_ATTACH,
    "billing.create_schedule": _SCHEDULE,
    "customers.get_or_create": (*_CUSTOMER, "create_in_stripe", _BILLING_DETAILS),
    "customers.update": (*_CUSTOMER, _BILLING_DETAILS),
    "entities.create": _CUSTOMER_DATA,
    "features.create": _FEATURE_ARGUMENTS,
    "features.update": _FEATURE_ARGUMENTS,
    # Autumn's ``internal_id`` addresses an existing program by a second, internal id; programs here have
    # one id, ``id``.
    "referrals.create_program": ("internal_id",),
    "plans.create": _PLAN,
    "plans.update": _PLAN_UPDATE,
}
"""Qualified operation name -> the request fields refused with ``unsupported_field``."""


# Autumn spreads ``checkout_session_params`` into its Stripe Checkout Session.  Here the payer checks out
# on the server's own summary page and enters a card on it (local processor) or on a setup-mode Stripe
# Checkout (Stripe), so only the keys both can honour, or Stripe Checkout can for an organization charged
# through Stripe, are served; the rest (promotion codes, tax, subscription and payment intent data,
# invoice creation, shipping, custom fields and text, consent, phone numbers, expiry...) ask for what
# neither page does, and the ones Autumn overrides itself (customer, mode, line_items, success_url,
# discounts) are no-ops even there.
OPEN_OBJECTS: dict[str, tuple[tuple[str, frozenset[str]], ...]] = {
    operation: (("checkout_session_params", CHECKOUT_SESSION_KEYS),)
    for operation in (
        "billing.attach",
        "billing.preview_attach",
        "billing.multi_attach",
        "billing.preview_multi_attach",
        "billing.create_schedule",
        "billing.setup_payment",
    )
}
"""Qualified operation name -> (free-form object field, the keys of it served): any other key is refused."""

_KEY_HINTS = {"success_url": "the request's own success_url is where the payer returns"}


def _asks(value: Any) -> bool:
    """Whether a sent value asks for something: ``null``, ``false``, ``[]`` and ``{}`` do not (the
    official SDK sends a field's default, such as ``pooled: false``, on every item)."""
    return value is not None and value is not False and value != [] and value != {}


def _present(value: Any, steps: list[str]) -> Iterator[None]:
    """Yield once for every place ``steps`` reaches a sent value that asks for something."""
    if not steps:
        if _asks(value):
            yield None
        return
    step, rest = steps[0], steps[1:]
    many = step.endswith("[]")
    name = step.removesuffix("[]")
    if not isinstance(value, dict) or name not in value:
        return
    child = value[name]
    if many:
        for item in child if isinstance(child, list) else []:
            yield from _present(item, rest)
    else:
        yield from _present(child, rest)


def watches_unsupported(operation: str) -> bool:
    """Whether ``operation`` has fields this server refuses (only then is the body walked)."""
    return operation in UNSUPPORTED_FIELDS or operation in OPEN_OBJECTS


def _refuse(shown: str, hint: str | None = None) -> ApiError:
    advice = f"{hint}; leave it out" if hint else "leave it out"
    return ApiError(
        400,
        "unsupported_field",
        f"{shown} is part of Autumn's API but the reference server does not support it yet; "
        f"{advice} (see the README's list of unsupported fields)",
    )


def refuse_unsupported(operation: str, body: dict[str, Any]) -> None:
    """Raise 400 ``unsupported_field`` if ``body`` sets a field this server does not act on yet."""
    for path in UNSUPPORTED_FIELDS.get(operation, ()):
        if any(True for _ in _present(body, path.split("."))):
            raise _refuse(path.replace("[]", "[*]"))
    for field, served in OPEN_OBJECTS.get(operation, ()):
        given = body.get(field)
        if not isinstance(given, dict):
            continue
        for key in sorted(given):
            if key not in served and _asks(given[key]):
                raise _refuse(f"{field}.{key}", _KEY_HINTS.get(key))
