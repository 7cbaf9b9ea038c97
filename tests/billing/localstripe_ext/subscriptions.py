"""Subscriptions of Prices, with paused collection, for localstripe: TEST INFRASTRUCTURE ONLY.

localstripe 1.15's Subscription takes one legacy ``plan`` item and charges its first invoice on
creation; it knows nothing of Prices, ``pause_collection``, ``collection_method`` or canceling with
parameters.  This module replaces it with Stripe's documented behaviour of what the server uses
(https://docs.stripe.com/api/subscriptions), keeping it in localstripe's store (``subscription:<id>``):

- create: ``customer``, ``items[]`` (``price`` of a recurring Price from :mod:`.prices`, or inline
  ``price_data`` with ``product``, ``currency``, ``unit_amount`` and ``recurring``; ``quantity``;
  ``metadata``), ``metadata``, ``description``, ``collection_method`` (``send_invoice`` needs
  ``days_until_due``), ``cancel_at_period_end``, ``cancel_at`` (a future timestamp; not with
  ``cancel_at_period_end`` true), ``billing_cycle_anchor`` (a future time before the
  first natural billing date: "The anchor must be a future UNIX timestamp before the next natural
  subscription billing date") and ``proration_behavior``.  All items bill on one interval.  With an
  anchor and ``proration_behavior=none`` the period up to the anchor is free and no invoice is made;
  a subscription that Stripe would invoice at once (no anchor, or prorations until the anchor) is not
  modelled and refused with a 400 saying so (the server never creates one).  ``trial_end`` (a future
  timestamp, at most 730 days away; not with an anchor) starts a trial instead: status ``trialing``,
  the period (and the cycle's anchor) ending at ``trial_end``, and, as Stripe does, one invoice of the
  trial period at 0 (lines "Trial period for ...") finalized and so paid at once, nothing collected;
- update: ``items[]`` (by ``id``: a new ``price``/``price_data``, a ``quantity``, ``deleted``; without:
  a new item), ``metadata`` (merged; ``""`` unsets a key), ``cancel_at_period_end`` (true sets
  ``cancel_at`` to the period end, as Stripe shows it; false unsets the end), ``cancel_at`` (a future
  timestamp, not with ``cancel_at_period_end`` true; ``""`` unsets the end),
  ``pause_collection[behavior]`` (``keep_as_draft``, ``mark_uncollectible`` or ``void``; ``""`` resumes),
  ``proration_behavior`` (only ``none`` is modelled when the items change: prorations refused),
  ``trial_end`` (a future timestamp: the trial moved or started, nothing invoiced; ``now`` on a trialing
  subscription: the trial ends at once, the status becomes ``active`` and a new period starts now,
  invoiced at once like a period end, so voided when collection is paused ``void``);
- ``DELETE /v1/subscriptions/{id}`` cancels at once (``invoice_now``/``prorate`` true are refused as
  not modelled); retrieve and list (``customer``, ``status``: by default every status but canceled);
- ``POST /_config/subscriptions/{id}/cycle`` plays what Stripe does when the current period (or the
  trial: ``trialing`` becomes ``active``) ends: canceled when ``cancel_at_period_end`` or a
  ``cancel_at`` up to the period end (not prorated: the server never asks it), else an invoice
  for the next period of every item, which with collection paused ``void`` is voided at once (nothing
  collected), with ``send_invoice`` left open for the customer, and with ``charge_automatically``
  charged to the customer's default card;
- ``POST /_config/subscriptions`` with ``fail_next=N`` makes the next N subscription API requests
  answer HTTP 500 ``api_error`` before doing anything (a Stripe outage); ``fail_next=0`` clears it.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

from dateutil.relativedelta import relativedelta
from localstripe import resources
from localstripe.resources import (
    Customer,
    Event,
    Invoice,
    InvoiceItem,
    List,
    StripeObject,
    Subscription,
    extra_apis,
    store,
    try_convert_to_bool,
    try_convert_to_int,
)

from . import invoices
from .prices import Price, _metadata, missing, stripe_error, unknown_parameters

_FAILING = {"left": 0}


def _maybe_fail() -> None:
    if _FAILING["left"] > 0:
        _FAILING["left"] -= 1
        error = stripe_error(500, "An unknown error occurred (simulated outage).", "api_error")
        error.body["error"]["type"] = "api_error"
        raise error


def _bool(value: Any, param: str) -> bool | None:
    if value is None:
        return None
    converted = try_convert_to_bool(value)
    if type(converted) is not bool:
        raise stripe_error(400, f"Invalid boolean: {value}", "parameter_invalid_boolean", param)
    return converted


def _int(value: Any, param: str) -> int:
    converted = try_convert_to_int(value)
    if type(converted) is not int:
        raise stripe_error(400, f"Invalid integer: {value}", "parameter_invalid_integer", param)
    return converted


def _list_param(value: Any, param: str) -> list[dict[str, Any]]:
    """Form-encoded arrays arrive as lists or as dicts keyed by index."""
    if isinstance(value, dict):
        value = [value[k] for k in sorted(value, key=lambda k: int(k))]
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise stripe_error(400, "Invalid array", "parameter_invalid_string", param)
    return value


def _price(item: dict[str, Any], param: str) -> Price:
    if item.get("price") and item.get("price_data"):
        raise stripe_error(
            400,
            "You may only specify one of these parameters: price, price_data.",
            "parameter_invalid_string",
            param,
        )
    if item.get("price"):
        price = store.get("price:" + str(item["price"]))
        if price is None:
            raise stripe_error(
                400, f"No such price: '{item['price']}'", "resource_missing", param + "[price]"
            )
        if price.type != "recurring":
            raise stripe_error(
                400,
                "The price specified is set to `type=one_time` but this field only accepts prices with "
                "`type=recurring`.",
                "parameter_invalid_string",
                param + "[price]",
            )
        return price  # type: ignore[no-any-return]
    data = item.get("price_data")
    if not isinstance(data, dict):
        raise missing(param + "[price]")
    if not data.get("recurring"):
        raise missing(param + "[price_data][recurring]")
    allowed = ("currency", "product", "unit_amount", "unit_amount_decimal", "recurring", "tax_behavior")
    unknown = sorted(k for k in data if k not in allowed)
    if unknown:
        name = f"{param}[price_data][{unknown[0]}]"
        raise stripe_error(400, f"Received unknown parameter: {name}", "parameter_unknown", name)
    return Price(**data, _inline=True)


class PricedSubscriptionItem(StripeObject):  # type: ignore[misc]
    object = "subscription_item"
    _id_prefix = "si_"

    def __init__(self, subscription: str, price: Price, quantity: int, metadata: dict[str, str]) -> None:
        super().__init__()
        self.subscription = subscription
        self.price = price
        self.quantity = quantity
        self.metadata = metadata


def _quantity(value: Any, param: str) -> int:
    quantity = _int(1 if value is None else value, param)
    if quantity < 0:
        raise stripe_error(400, "Invalid quantity: must be at least 0", "parameter_invalid_integer", param)
    return quantity


def _natural_end(start: int, recurring: dict[str, Any]) -> int:
    count = int(recurring["interval_count"])
    step = {
        "day": relativedelta(days=count),
        "week": relativedelta(weeks=count),
        "month": relativedelta(months=count),
        "year": relativedelta(years=count),
    }[recurring["interval"]]
    return int((datetime.fromtimestamp(start, tz=timezone.utc) + step).timestamp())


def _cancel_at(value: Any, now: int, at_period_end: bool | None) -> int:
    """A ``cancel_at`` timestamp: in the future, not beside ``cancel_at_period_end`` true."""
    if at_period_end:
        raise stripe_error(
            400,
            "You may only specify one of these parameters: cancel_at, cancel_at_period_end.",
            "parameter_invalid_integer",
            "cancel_at",
        )
    end = _int(value, "cancel_at")
    if end <= now:
        raise stripe_error(
            400, "Invalid timestamp: must be in the future.", "parameter_invalid_integer", "cancel_at"
        )
    return end


def _trial_end(value: Any, now: int) -> int:
    """A ``trial_end`` timestamp: in the future, at most two years away (Stripe's limit)."""
    end = _int(value, "trial_end")
    if end <= now or end > now + 730 * 86_400:
        raise stripe_error(
            400,
            "Invalid timestamp: must be an integer Unix timestamp in the future and at most 730 days away.",
            "parameter_invalid_integer",
            "trial_end",
        )
    return end


class PricedSubscription(StripeObject):  # type: ignore[misc]
    object = "subscription"
    _id_prefix = "sub_"

    def __init__(
        self,
        customer: Any = None,
        items: Any = None,
        metadata: Any = None,
        description: Any = None,
        collection_method: Any = None,
        days_until_due: Any = None,
        cancel_at_period_end: Any = None,
        cancel_at: Any = None,
        billing_cycle_anchor: Any = None,
        proration_behavior: Any = None,
        trial_end: Any = None,
        **kwargs: Any,
    ) -> None:
        unknown_parameters(kwargs)
        if not isinstance(customer, str) or not customer:
            raise missing("customer")
        if store.get("customer:" + customer) is None:
            raise stripe_error(400, f"No such customer: '{customer}'", "resource_missing", "customer")
        if items is None:
            raise missing("items")
        wanted = _list_param(items, "items")
        if not wanted:
            raise missing("items")
        if collection_method not in (None, "charge_automatically", "send_invoice"):
            raise stripe_error(
                400,
                "Invalid collection_method: must be one of charge_automatically or send_invoice",
                "parameter_invalid_string",
                "collection_method",
            )
        due_days = None
        if collection_method == "send_invoice":
            if days_until_due is None:
                raise missing("days_until_due")
            due_days = _int(days_until_due, "days_until_due")
        elif days_until_due is not None:
            raise stripe_error(
                400,
                "days_until_due can only be set when collection_method=send_invoice.",
                "parameter_invalid_integer",
                "days_until_due",
            )
        if proration_behavior not in (None, "create_prorations", "none", "always_invoice"):
            raise stripe_error(
                400,
                "Invalid proration_behavior",
                "parameter_invalid_string",
                "proration_behavior",
            )
        priced: list[tuple[Price, int, dict[str, str]]] = []
        for index, item in enumerate(wanted):
            param = f"items[{index}]"
            unknown_parameters(
                {k: v for k, v in item.items() if k not in ("price", "price_data", "quantity", "metadata")}
            )
            priced.append(
                (
                    _price(item, param),
                    _quantity(item.get("quantity"), param + "[quantity]"),
                    _metadata(item.get("metadata")),
                )
            )
        recurring = {(p.recurring["interval"], p.recurring["interval_count"]) for p, _, _ in priced}
        currencies = {p.currency for p, _, _ in priced}
        if len(recurring) > 1 or len(currencies) > 1:
            raise stripe_error(
                400,
                "All prices on a subscription must have the same `recurring.interval` and "
                "`recurring.interval_count` and currency.",
                "parameter_invalid_string",
                "items",
            )
        now = int(time.time())
        natural = _natural_end(now, priced[0][0].recurring)
        anchor = None
        if billing_cycle_anchor is not None:
            anchor = _int(billing_cycle_anchor, "billing_cycle_anchor")
            if anchor <= now or anchor > natural:
                raise stripe_error(
                    400,
                    "billing_cycle_anchor cannot be later than next natural billing date "
                    f"({natural}) for plan, and must be in the future.",
                    "parameter_invalid_integer",
                    "billing_cycle_anchor",
                )
        trial = None
        if trial_end is not None:
            if billing_cycle_anchor is not None or trial_end == "now":
                raise stripe_error(
                    400,
                    "Not modelled by this test double: a trial with a billing_cycle_anchor, or "
                    "trial_end=now on creation.",
                    "parameter_invalid_integer",
                    "trial_end",
                )
            trial = _trial_end(trial_end, now)
        if trial is None and (anchor is None or proration_behavior != "none"):
            raise stripe_error(
                400,
                "Not modelled by this test double: a subscription invoiced on creation (set "
                "billing_cycle_anchor with proration_behavior=none).",
                "parameter_missing",
                "billing_cycle_anchor",
            )
        cancel = _bool(cancel_at_period_end, "cancel_at_period_end")
        ends = None if cancel_at is None else _cancel_at(cancel_at, now, cancel)

        # All exceptions must be raised before this point.
        super().__init__()
        self.customer = customer
        self.metadata = _metadata(metadata)
        self.description = description
        self.collection_method = collection_method or "charge_automatically"
        self.days_until_due = due_days
        self.cancel_at_period_end = bool(cancel)
        self.canceled_at = None
        self.ended_at = None
        self.status = "trialing" if trial is not None else "active"
        self.pause_collection = None
        self.billing_cycle_anchor = trial if trial is not None else anchor
        self.start_date = now
        self.trial_end = trial
        self.trial_start = now if trial is not None else None
        self.currency = priced[0][0].currency
        self.current_period_start = now
        self.current_period_end = self.billing_cycle_anchor
        self.cancel_at = self.current_period_end if cancel else ends
        self.latest_invoice = None
        self.items = List("/v1/subscription_items?subscription=" + self.id)
        for price, quantity, meta in priced:
            self.items._list.append(PricedSubscriptionItem(self.id, price, quantity, meta))
        if trial is not None:  # Stripe invoices the trial period at 0 (paid at once, nothing collected)
            self._invoice(now, trial, trial=True)
        resources.schedule_webhook(Event("customer.subscription.created", self))

    # hooks localstripe's Invoice calls on invoices of a subscription
    def _on_initial_payment_success(self, invoice: Any) -> None:
        pass

    def _on_recurring_payment_failure(self, invoice: Any) -> None:
        self.status = "past_due"

    def _on_initial_payment_failure_now(self, invoice: Any) -> None:
        self.status = "past_due"

    def _on_initial_payment_failure_later(self, invoice: Any) -> None:
        self.status = "past_due"

    def _on_initial_payment_voided(self, invoice: Any) -> None:
        pass

    def _apply_update(
        self,
        items: Any = None,
        metadata: Any = None,
        cancel_at_period_end: Any = None,
        cancel_at: Any = None,
        pause_collection: Any = None,
        proration_behavior: Any = None,
        description: Any = None,
        trial_end: Any = None,
        **kwargs: Any,
    ) -> None:
        unknown_parameters(kwargs)
        if self.status == "canceled":
            raise stripe_error(
                400,
                "A canceled subscription can only update its cancellation_details and metadata.",
                "resource_missing",
            )
        now = int(time.time())
        trial = None if trial_end in (None, "now") else _trial_end(trial_end, now)
        pause: Any = self.pause_collection
        if pause_collection is not None:
            if pause_collection == "":
                pause = None
            elif not isinstance(pause_collection, dict) or pause_collection.get("behavior") not in (
                "keep_as_draft",
                "mark_uncollectible",
                "void",
            ):
                raise stripe_error(
                    400,
                    "Invalid pause_collection[behavior]: must be one of keep_as_draft, "
                    "mark_uncollectible, or void",
                    "parameter_invalid_string",
                    "pause_collection[behavior]",
                )
            else:
                resumes = pause_collection.get("resumes_at")
                pause = {
                    "behavior": pause_collection["behavior"],
                    "resumes_at": _int(resumes, "pause_collection[resumes_at]") if resumes else None,
                }
        cancel = _bool(cancel_at_period_end, "cancel_at_period_end")
        ends = None if cancel_at in (None, "") else _cancel_at(cancel_at, now, cancel)
        current = {item.id: item for item in self.items._list}
        kept = list(self.items._list)
        added: list[PricedSubscriptionItem] = []
        changes: list[tuple[PricedSubscriptionItem, Price | None, int | None, dict[str, str] | None]] = []
        removed: set[str] = set()
        for index, item in enumerate(_list_param(items, "items") if items is not None else []):
            param = f"items[{index}]"
            allowed = ("id", "price", "price_data", "quantity", "metadata", "deleted")
            unknown_parameters({k: v for k, v in item.items() if k not in allowed})
            if item.get("id"):
                found = current.get(str(item["id"]))
                if found is None:
                    raise stripe_error(
                        400, f"No such subscription item: '{item['id']}'", "resource_missing", param + "[id]"
                    )
                if _bool(item.get("deleted"), param + "[deleted]"):
                    removed.add(found.id)
                    continue
                price = _price(item, param) if item.get("price") or item.get("price_data") else None
                quantity = _quantity(item["quantity"], param + "[quantity]") if "quantity" in item else None
                meta = _metadata(item.get("metadata")) if "metadata" in item else None
                changes.append((found, price, quantity, meta))
            else:
                price = _price(item, param)
                added.append(
                    PricedSubscriptionItem(
                        self.id,
                        price,
                        _quantity(item.get("quantity"), param + "[quantity]"),
                        _metadata(item.get("metadata")),
                    )
                )
        if (changes or added or removed) and proration_behavior not in ("none",):
            for obj in added:  # nothing may be left behind by a refused request
                store.pop("subscription_item:" + obj.id, None)
            raise stripe_error(
                400,
                "Not modelled by this test double: prorations (use proration_behavior=none).",
                "parameter_invalid_string",
                "proration_behavior",
            )
        final = [i for i in kept if i.id not in removed] + added
        if not final:
            raise stripe_error(
                400, "A subscription must have at least one item.", "parameter_missing", "items"
            )

        # All exceptions must be raised before this point.
        for found, price, quantity, meta in changes:
            if price is not None:
                found.price = price
            if quantity is not None:
                found.quantity = quantity
            if meta is not None:
                found.metadata = {k: v for k, v in {**found.metadata, **meta}.items() if v != ""}
        for gone in removed:
            store.pop("subscription_item:" + gone, None)
        self.items._list = final
        if metadata is not None:
            merged = {**self.metadata, **_metadata(metadata)}
            self.metadata = {k: v for k, v in merged.items() if v != ""}
        if cancel is not None:
            self.cancel_at_period_end = cancel
            self.cancel_at = self.current_period_end if cancel else None
        if cancel_at == "":
            self.cancel_at_period_end, self.cancel_at = False, None
        elif ends is not None:
            self.cancel_at_period_end, self.cancel_at = ends == self.current_period_end, ends
        if description is not None:
            self.description = description or None
        self.pause_collection = pause
        if trial_end == "now" and self.status == "trialing":
            # The trial ends at once: a new period starts now, invoiced now (billing_cycle_anchor reset).
            self.status = "active"
            self.trial_end = now
            self.billing_cycle_anchor = now
            self._start_period(now)
        elif trial is not None:  # a trial (extended, or added): nothing is invoiced until it ends
            self.status = "trialing"
            self.trial_start = self.trial_start or now
            self.trial_end = self.current_period_end = self.billing_cycle_anchor = trial
        resources.schedule_webhook(Event("customer.subscription.updated", self))

    def _cancel(self, invoice_now: Any = None, prorate: Any = None, **kwargs: Any) -> PricedSubscription:
        unknown_parameters({k: v for k, v in kwargs.items() if k not in ("cancellation_details",)})
        if _bool(invoice_now, "invoice_now") or _bool(prorate, "prorate"):
            raise stripe_error(
                400,
                "Not modelled by this test double: a final invoice on cancel.",
                "parameter_invalid_boolean",
                "invoice_now",
            )
        if self.status == "canceled":
            raise stripe_error(
                400, f"No such subscription: '{self.id}' is already canceled", "resource_missing", "id"
            )
        now = int(time.time())
        self.status = "canceled"
        self.canceled_at = now
        self.ended_at = now
        resources.schedule_webhook(Event("customer.subscription.deleted", self))
        return self

    def _cycle(self) -> PricedSubscription:
        """What Stripe does when the current period (or the trial) ends."""
        if self.status == "canceled":
            raise stripe_error(400, "The subscription is canceled.", "resource_missing", "id")
        if self.cancel_at_period_end or (
            self.cancel_at is not None and self.cancel_at <= int(self.current_period_end or 0)
        ):
            self.status = "canceled"
            self.canceled_at = self.ended_at = int(time.time())
            resources.schedule_webhook(Event("customer.subscription.deleted", self))
            return self
        if self.status == "trialing":
            self.status = "active"
        return self._start_period(int(self.current_period_end or time.time()))

    def _start_period(self, start: int) -> PricedSubscription:
        """A new period from ``start``, invoiced for every item (collected as ``pause_collection`` and
        ``collection_method`` say)."""
        end = _natural_end(start, self.items._list[0].price.recurring)
        obj = self._invoice(start, end, trial=False)
        self.current_period_start, self.current_period_end = start, end
        pause = (self.pause_collection or {}).get("behavior")
        if pause == "keep_as_draft":
            return self
        invoices._finalize(obj.id)
        if obj.status == "paid":
            return self
        if pause == "void":
            invoices._void(obj.id)
        elif pause == "mark_uncollectible":
            obj.metadata["uncollectible"] = "true"
        elif self.collection_method == "charge_automatically":
            try:
                invoices._pay(obj.id)
            except Exception:  # a decline leaves the invoice open, the subscription past due
                self.status = "past_due"
        return self

    def _invoice(self, start: int, end: int, trial: bool) -> Any:
        """The subscription's invoice of a period (a trial's lines at 0, finalized: paid at once)."""
        obj = invoices._create(
            customer=self.customer,
            currency=self.currency,
            collection_method=self.collection_method,
            days_until_due=self.days_until_due,
            metadata={},
        )
        obj.subscription = self.id
        for item in self.items._list:
            if item.quantity == 0:
                continue
            InvoiceItem(
                invoice=obj.id,
                customer=self.customer,
                amount=0 if trial else item.price.unit_amount * item.quantity,
                currency=self.currency,
                period={"start": start, "end": end},
                description=(
                    f"Trial period for {item.price.product}"
                    if trial
                    else f"{item.quantity} x {item.price.product}"
                ),
            )
        self.latest_invoice = obj.id
        if trial:
            invoices._finalize(obj.id)
        return obj


def _retrieve(id: str) -> PricedSubscription:
    found = store.get("subscription:" + id)
    if not isinstance(found, PricedSubscription):
        raise stripe_error(404, f"No such subscription: '{id}'", "resource_missing", "id")
    return found


def _create(**data: Any) -> PricedSubscription:
    _maybe_fail()
    return PricedSubscription(**data)


def _api_retrieve(id: str) -> PricedSubscription:
    _maybe_fail()
    return _retrieve(id)


def _update(id: str, **data: Any) -> PricedSubscription:
    _maybe_fail()
    obj = _retrieve(id)
    obj._apply_update(**data)
    return obj


def _cancel_route(id: str, **data: Any) -> PricedSubscription:
    _maybe_fail()
    return _retrieve(id)._cancel(**data)


def _list(
    url: str | None = None,
    customer: Any = None,
    status: Any = None,
    limit: Any = None,
    starting_after: Any = None,
    **kwargs: Any,
) -> List:
    _maybe_fail()
    unknown_parameters(kwargs)
    li = List(url or "/v1/subscriptions", limit=limit, starting_after=starting_after)
    subs = [
        v for k, v in store.items() if k.startswith("subscription:") and isinstance(v, PricedSubscription)
    ]
    if customer is not None:
        Customer._api_retrieve(str(customer))
        subs = [s for s in subs if s.customer == customer]
    if status is None:
        subs = [s for s in subs if s.status not in ("canceled", "incomplete_expired")]
    elif status != "all":
        subs = [s for s in subs if s.status == status]
    li._list = sorted(subs, key=lambda s: s.created, reverse=True)
    return li


def _cycle_route(id: str, **data: Any) -> PricedSubscription:
    return _retrieve(id)._cycle()


Subscription._api_create = classmethod(lambda cls, **data: _create(**data))  # type: ignore[method-assign,assignment]
Subscription._api_retrieve = classmethod(lambda cls, id: _api_retrieve(id))  # type: ignore[method-assign,assignment]
Subscription._api_update = classmethod(lambda cls, id, **data: _update(id, **data))  # type: ignore[method-assign,assignment]
Subscription._api_list_all = classmethod(  # type: ignore[method-assign,assignment]
    lambda cls, url=None, **data: _list(url, **data)
)
extra_apis.extend(
    (
        ("DELETE", "/v1/subscriptions/{id}", _cancel_route),
        ("POST", "/v1/subscriptions/{id}/cancel", _cancel_route),
        ("POST", "/_config/subscriptions/{id}/cycle", _cycle_route),
    )
)
_ = Invoice  # invoices of a subscription name it in ``subscription`` (localstripe's Invoice)


def install(app: Any) -> None:
    from aiohttp import web

    async def configure(request: Any) -> Any:
        data = await request.post()
        try:
            count = int(str(data.get("fail_next", "")))
        except ValueError:
            return web.json_response({"error": {"message": "fail_next: a count"}}, status=400)
        _FAILING["left"] = max(0, count)
        return web.json_response({"left": _FAILING["left"]})

    app.router.add_post("/_config/subscriptions", configure)
