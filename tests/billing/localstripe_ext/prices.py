"""Stripe's Price object (``/v1/prices``) for localstripe, and invoice items priced by a Price.

localstripe 1.15 predates Prices: it has Products and the legacy Plans only.  This module adds
the Price resource as Stripe documents it (https://docs.stripe.com/api/prices): create, retrieve,
update (``active``, ``metadata``, ``nickname``, ``lookup_key``; a price's amount never changes) and
list (filters ``active``, ``currency``, ``product``, ``type``), with Stripe's error bodies for missing or
invalid parameters and unknown ids.  Only ``billing_scheme=per_unit`` prices are modelled.

Invoice items gain the modern parameters the Stripe processor sends: ``pricing[price]`` (a one-time
Price; Stripe refuses recurring ones on invoice items), ``price_data`` (an inline one-time price of a
product), ``quantity`` and ``period[start|end]``.  An item created with ``invoice=`` a draft invoice is
added to that invoice's lines, as on Stripe (localstripe only collected pending items).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from localstripe import resources
from localstripe.errors import UserError
from localstripe.resources import (
    InvoiceItem,
    InvoiceLineItem,
    List,
    Product,
    StripeObject,
    extra_apis,
    store,
    try_convert_to_bool,
    try_convert_to_int,
)

INTERVALS = ("day", "week", "month", "year")


def stripe_error(status: int, message: str, code: str | None = None, param: str | None = None) -> UserError:
    """A ``UserError`` whose body is Stripe's error object (``type`` is always invalid_request_error)."""
    contents: dict[str, Any] = {}
    if code is not None:
        contents["code"] = code
    if param is not None:
        contents["param"] = param
    return UserError(status, message, contents)


def unknown_parameters(kwargs: dict[str, Any]) -> None:
    if kwargs:
        name = sorted(kwargs)[0]
        raise stripe_error(400, f"Received unknown parameter: {name}", "parameter_unknown", name)


def missing(param: str) -> UserError:
    return stripe_error(400, f"Missing required param: {param}.", "parameter_missing", param)


def invalid_integer(param: str, value: Any) -> UserError:
    return stripe_error(400, f"Invalid integer: {value}", "parameter_invalid_integer", param)


def _product(product: Any, param: str = "product") -> Product:
    if not isinstance(product, str) or not product:
        raise missing(param)
    found = store.get("product:" + product)
    if found is None:
        raise stripe_error(400, f"No such product: '{product}'", "resource_missing", param)
    return found  # type: ignore[no-any-return]


def _amount(value: Any, param: str) -> int:
    amount = try_convert_to_int(value)
    if type(amount) is not int:
        raise invalid_integer(param, value)
    if amount < 0:
        raise stripe_error(
            400,
            f"This value must be greater than or equal to 0 ({param}).",
            "parameter_invalid_integer",
            param,
        )
    return amount


def _currency(value: Any, param: str = "currency") -> str:
    if value is None or value == "":
        raise missing(param)
    if not isinstance(value, str) or len(value) != 3 or not value.isalpha():
        raise stripe_error(400, f"Invalid currency: {value}", "parameter_invalid_string", param)
    return value.lower()


def _recurring(value: Any) -> dict[str, Any] | None:
    if value is None or value == "":
        return None
    if not isinstance(value, dict):
        raise stripe_error(400, "Invalid object", "parameter_invalid_string", "recurring")
    rest = {k: v for k, v in value.items() if k not in ("interval", "interval_count", "usage_type")}
    if rest:
        name = "recurring[" + sorted(rest)[0] + "]"
        raise stripe_error(400, f"Received unknown parameter: {name}", "parameter_unknown", name)
    interval = value.get("interval")
    if interval is None:
        raise missing("recurring[interval]")
    if interval not in INTERVALS:
        raise stripe_error(
            400,
            f"Invalid recurring[interval]: must be one of {', '.join(INTERVALS[:-1])}, or {INTERVALS[-1]}",
            "parameter_invalid_string",
            "recurring[interval]",
        )
    count = try_convert_to_int(value.get("interval_count", 1))
    if type(count) is not int:
        raise invalid_integer("recurring[interval_count]", value.get("interval_count"))
    limit = {"day": 1095, "week": 156, "month": 36, "year": 3}[interval]
    if count < 1 or count > limit:
        raise stripe_error(
            400,
            "Invalid recurring[interval_count]: the maximum billing frequency is three years "
            f"({limit} {interval}s)",
            "parameter_invalid_integer",
            "recurring[interval_count]",
        )
    usage_type = value.get("usage_type", "licensed")
    if usage_type not in ("licensed", "metered"):
        raise stripe_error(
            400,
            "Invalid recurring[usage_type]: must be one of licensed or metered",
            "parameter_invalid_string",
            "recurring[usage_type]",
        )
    return {
        "interval": interval,
        "interval_count": count,
        "meter": None,
        "trial_period_days": None,
        "usage_type": usage_type,
    }


def _metadata(value: Any) -> dict[str, str]:
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise stripe_error(400, "Invalid object", "parameter_invalid_string", "metadata")
    return {str(k): str(v) for k, v in value.items()}


class Price(StripeObject):  # type: ignore[misc]
    """A Stripe Price: a unit amount in one currency for a product, one-time or recurring."""

    object = "price"
    _id_prefix = "price_"

    def __init__(
        self,
        currency: Any = None,
        product: Any = None,
        product_data: Any = None,
        unit_amount: Any = None,
        unit_amount_decimal: Any = None,
        recurring: Any = None,
        active: Any = True,
        metadata: Any = None,
        nickname: Any = None,
        lookup_key: Any = None,
        tax_behavior: Any = None,
        billing_scheme: Any = "per_unit",
        _inline: bool = False,
        **kwargs: Any,
    ) -> None:
        unknown_parameters(kwargs)
        currency = _currency(currency)
        if product is not None and product_data is not None:
            raise stripe_error(
                400,
                "You may only specify one of these parameters: product, product_data.",
                "parameter_invalid_string",
                "product",
            )
        if product is None and product_data is None:
            raise missing("product")
        if product is not None:
            _product(product)
        elif not isinstance(product_data, dict) or not product_data.get("name"):
            raise missing("product_data[name]")
        if billing_scheme != "per_unit":
            raise stripe_error(
                400, "Only per_unit prices are supported here", "parameter_invalid_string", "billing_scheme"
            )
        if unit_amount is not None and unit_amount_decimal is not None:
            raise stripe_error(
                400,
                "You may only specify one of these parameters: unit_amount, unit_amount_decimal.",
                "parameter_invalid_string",
                "unit_amount",
            )
        if unit_amount is None and unit_amount_decimal is None:
            raise missing("unit_amount")
        decimal_amount: Decimal
        if unit_amount is not None:
            decimal_amount = Decimal(_amount(unit_amount, "unit_amount"))
        else:
            try:
                decimal_amount = Decimal(str(unit_amount_decimal))
            except InvalidOperation:
                raise stripe_error(
                    400,
                    f"Invalid decimal: {unit_amount_decimal}",
                    "parameter_invalid_string",
                    "unit_amount_decimal",
                ) from None
            if decimal_amount < 0:
                raise stripe_error(
                    400, "Invalid unit_amount_decimal", "parameter_invalid_string", "unit_amount_decimal"
                )
        recurring_obj = _recurring(recurring)
        active = try_convert_to_bool(active)
        if type(active) is not bool:
            raise stripe_error(400, f"Invalid boolean: {active}", "parameter_invalid_boolean", "active")
        if tax_behavior not in (None, "inclusive", "exclusive", "unspecified"):
            raise stripe_error(
                400,
                "Invalid tax_behavior: must be one of exclusive, inclusive, or unspecified",
                "parameter_invalid_string",
                "tax_behavior",
            )
        if lookup_key is not None and any(
            getattr(p, "lookup_key", None) == lookup_key
            for key, p in store.items()
            if key.startswith("price:")
        ):
            raise stripe_error(
                400,
                f"A price (with lookup_key '{lookup_key}') already exists.",
                "lookup_key_exists",
                "lookup_key",
            )
        meta = _metadata(metadata)

        # All exceptions must be raised before this point.
        if product is None:
            product = Product(name=product_data["name"], metadata=product_data.get("metadata")).id
        super().__init__()
        self.active = active and not _inline
        self.billing_scheme = "per_unit"
        self.currency = currency
        self.custom_unit_amount = None
        self.lookup_key = lookup_key
        self.metadata = meta
        self.nickname = nickname
        self.product = product
        self.recurring = recurring_obj
        self.tax_behavior = tax_behavior or "unspecified"
        self.tiers_mode = None
        self.transform_quantity = None
        self.type = "recurring" if recurring_obj else "one_time"
        integral = decimal_amount == decimal_amount.to_integral_value()
        self.unit_amount = int(decimal_amount) if integral else None
        self.unit_amount_decimal = format(decimal_amount.normalize(), "f")

        resources.schedule_webhook(resources.Event("price.created", self))

    @classmethod
    def _api_create(cls, **data: Any) -> Price:
        return cls(**data)

    @classmethod
    def _api_retrieve(cls, id: str) -> Price:
        found = store.get("price:" + id)
        if found is None:
            raise stripe_error(404, f"No such price: '{id}'", "resource_missing", "id")
        return found  # type: ignore[no-any-return]

    @classmethod
    def _api_update(cls, id: str, **data: Any) -> Price:
        obj = cls._api_retrieve(id)
        allowed = {"active", "metadata", "nickname", "lookup_key", "tax_behavior"}
        unknown_parameters({k: v for k, v in data.items() if k not in allowed})
        if "active" in data:
            active = try_convert_to_bool(data["active"])
            if type(active) is not bool:
                raise stripe_error(400, f"Invalid boolean: {active}", "parameter_invalid_boolean", "active")
            obj.active = active
        if "metadata" in data:
            obj.metadata = {**obj.metadata, **_metadata(data["metadata"])}
            obj.metadata = {k: v for k, v in obj.metadata.items() if v != ""}
        for field in ("nickname", "lookup_key", "tax_behavior"):
            if field in data:
                setattr(obj, field, data[field] or None)
        resources.schedule_webhook(resources.Event("price.updated", obj))
        return obj

    @classmethod
    def _api_list_all(
        cls,
        url: str,
        active: Any = None,
        currency: Any = None,
        product: Any = None,
        type: Any = None,
        limit: Any = None,
        starting_after: Any = None,
        **kwargs: Any,
    ) -> List:
        unknown_parameters(kwargs)
        active = try_convert_to_bool(active)
        if active is not None and not isinstance(active, bool):
            raise stripe_error(400, f"Invalid boolean: {active}", "parameter_invalid_boolean", "active")
        if type not in (None, "one_time", "recurring"):
            raise stripe_error(
                400, "Invalid type: must be one of one_time or recurring", "parameter_invalid_string", "type"
            )
        li = List(url, limit=limit, starting_after=starting_after)
        prices = [v for k, v in store.items() if k.startswith("price:")]
        if active is not None:
            prices = [p for p in prices if p.active == active]
        if currency is not None:
            prices = [p for p in prices if p.currency == str(currency).lower()]
        if product is not None:
            prices = [p for p in prices if p.product == product]
        if type is not None:
            prices = [p for p in prices if p.type == type]
        li._list = sorted(prices, key=lambda p: p.created, reverse=True)
        return li


def _route_list(**data: Any) -> List:
    return Price._api_list_all("/v1/prices", **data)


def _route_update(id: str, **data: Any) -> Price:
    return Price._api_update(id, **data)


def _route_retrieve(id: str, **data: Any) -> Price:
    unknown_parameters(data)
    return Price._api_retrieve(id)


extra_apis.extend(
    (
        ("POST", "/v1/prices", Price._api_create),
        ("GET", "/v1/prices", _route_list),
        ("GET", "/v1/prices/{id}", _route_retrieve),
        ("POST", "/v1/prices/{id}", _route_update),
    )
)


# Invoice items priced by a Price ------------------------------------------------------------------------

_item_init = InvoiceItem.__init__
_line_init = InvoiceLineItem.__init__


def _item_price(pricing: Any, price: Any, price_data: Any, currency: Any) -> Price | None:
    given = [
        name for name, value in (("pricing", pricing), ("price", price), ("price_data", price_data)) if value
    ]
    if len(given) > 1:
        raise stripe_error(
            400,
            f"You may only specify one of these parameters: {', '.join(given)}.",
            "parameter_invalid_string",
            given[0],
        )
    if pricing:
        if not isinstance(pricing, dict) or not pricing.get("price"):
            raise missing("pricing[price]")
        price = pricing["price"]
    if price:
        found = store.get("price:" + str(price))
        if found is None:
            raise stripe_error(400, f"No such price: '{price}'", "resource_missing", "pricing[price]")
        if found.type != "one_time":
            raise stripe_error(
                400,
                "The price specified is set to `type=recurring` but this field only accepts prices with "
                "`type=one_time`.",
                "parameter_invalid_string",
                "pricing[price]",
            )
        if not found.active:
            raise stripe_error(
                400,
                f"The price specified is inactive: '{price}'",
                "parameter_invalid_string",
                "pricing[price]",
            )
        if currency is not None and str(currency).lower() != found.currency:
            raise stripe_error(
                400,
                f"The currency of the price ({found.currency}) does not match the invoice item's currency.",
                "parameter_invalid_string",
                "currency",
            )
        return found  # type: ignore[no-any-return]
    if price_data:
        if not isinstance(price_data, dict):
            raise stripe_error(400, "Invalid object", "parameter_invalid_string", "price_data")
        unknown = {
            k: v
            for k, v in price_data.items()
            if k not in ("currency", "product", "unit_amount", "unit_amount_decimal", "tax_behavior")
        }
        if unknown:
            name = "price_data[" + sorted(unknown)[0] + "]"
            raise stripe_error(400, f"Received unknown parameter: {name}", "parameter_unknown", name)
        _product(price_data.get("product"), "price_data[product]")
        return Price(**price_data, _inline=True)
    return None


def _invoice_item_init(
    self: Any,
    invoice: Any = None,
    pricing: Any = None,
    price: Any = None,
    price_data: Any = None,
    quantity: Any = None,
    period: Any = None,
    discountable: Any = None,
    **kwargs: Any,
) -> None:
    if invoice is not None:
        target = store.get("invoice:" + str(invoice))
        if target is None:
            raise stripe_error(400, f"No such invoice: '{invoice}'", "resource_missing", "invoice")
        if target.status != "draft":
            raise stripe_error(
                400,
                f"You can only add invoice items to draft invoices; invoice {invoice} is {target.status}.",
                "invoice_not_editable",
                "invoice",
            )
    count = try_convert_to_int(1 if quantity is None else quantity)
    if type(count) is not int or count < 0:
        raise invalid_integer("quantity", quantity)
    if isinstance(period, dict):
        if "start" not in period or "end" not in period:
            raise missing("period[start]" if "start" not in period else "period[end]")
        start, end = try_convert_to_int(period["start"]), try_convert_to_int(period["end"])
        if type(start) is not int or type(end) is not int or end < start:
            raise stripe_error(
                400,
                "The period end must be on or after the period start.",
                "parameter_invalid_integer",
                "period",
            )
        kwargs["period_start"], kwargs["period_end"] = start, end
    priced = None
    if pricing or price or price_data:
        if kwargs.get("amount") is not None:
            raise stripe_error(
                400,
                "You may only specify one of these parameters: amount, pricing.",
                "parameter_invalid_string",
                "amount",
            )
        if kwargs.get("customer") is None:
            raise missing("customer")
        priced = _item_price(pricing, price, price_data, kwargs.get("currency"))
        assert priced is not None
        if priced.unit_amount is None:
            raise stripe_error(
                400,
                "Prices with a decimal unit amount are not supported here",
                "parameter_invalid_string",
                "pricing",
            )
        kwargs["amount"] = priced.unit_amount * count
        kwargs["currency"] = priced.currency
    elif quantity is not None and count != 1:
        raise stripe_error(
            400,
            "quantity is only allowed with pricing[price] or price_data.",
            "parameter_invalid_integer",
            "quantity",
        )
    if kwargs.get("amount") is None:
        raise missing("amount")
    if kwargs.get("currency") is None:
        raise missing("currency")
    _item_init(self, invoice=invoice, **kwargs)
    self.quantity = count
    self.discountable = True if discountable is None else bool(try_convert_to_bool(discountable))
    self.pricing = (
        {
            "type": "price_details",
            "price_details": {"price": priced.id, "product": priced.product},
            "unit_amount_decimal": priced.unit_amount_decimal,
        }
        if priced is not None
        else None
    )
    self.price = priced.id if priced is not None else None
    if invoice is not None:
        target = store["invoice:" + str(invoice)]
        target.lines._list.append(InvoiceLineItem(self))
        if len(target.lines._list) == 1:
            target.currency = self.currency


def _line_item_init(self: Any, item: Any) -> None:
    _line_init(self, item)
    if isinstance(item, InvoiceItem):
        self.pricing = getattr(item, "pricing", None)
        self.price = getattr(item, "price", None)
        self.parent = {
            "type": "invoice_item_details",
            "invoice_item_details": {"invoice_item": item.id, "proration": item.proration},
        }


def _list_items(
    url: str | None = None,
    customer: Any = None,
    invoice: Any = None,
    pending: Any = None,
    limit: Any = None,
    starting_after: Any = None,
    **kwargs: Any,
) -> List:
    """Stripe lists every invoice item; ``pending=true`` only those on no invoice yet, ``invoice=`` one
    invoice's (localstripe listed pending ones only)."""
    unknown_parameters(kwargs)
    pending = try_convert_to_bool(pending)
    li = List(url or "/v1/invoiceitems", limit=limit, starting_after=starting_after)
    items = [v for k, v in store.items() if k.startswith("invoiceitem:")]
    if customer is not None:
        if store.get("customer:" + str(customer)) is None:
            raise stripe_error(400, f"No such customer: '{customer}'", "resource_missing", "customer")
        items = [i for i in items if i.customer == customer]
    if invoice is not None:
        items = [i for i in items if i.invoice == invoice]
    if pending is not None:
        items = [i for i in items if (i.invoice is None) == pending]
    li._list = sorted(items, key=lambda i: i.date, reverse=True)
    return li


InvoiceItem.__init__ = _invoice_item_init  # type: ignore[method-assign]
InvoiceItem._api_list_all = classmethod(  # type: ignore[method-assign,assignment]
    lambda cls, url=None, **data: _list_items(url, **data)
)
InvoiceLineItem.__init__ = _line_item_init  # type: ignore[method-assign]
