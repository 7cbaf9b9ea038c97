"""Autumn plans as Stripe Products and Prices, and each invoice line as a Stripe invoice item.

Each plan version billed through an organization's Stripe account becomes a Stripe Product
(metadata ``autumn_plan_id``, ``autumn_plan_version``, ``autumn_env``), and each of its fixed prices
a Stripe Price on it: the base price, and the price per pack of each prepaid item (flat prices whose
amount is whole minor units).  A recurring price is a recurring Stripe Price with the plan's interval
(quarter and half-year are 3 and 6 months); a one-off price is a one-time Price.  Prices with an
interval Stripe has no recurring form for (minutes, hours) get no Price.  Objects are created once
(with an idempotency key, so two concurrent first charges make one object) and remembered in
``stripe_objects``; a new plan version gets its own objects.

Invoice lines become invoice items of the Stripe invoice:

- a line that is exactly a fixed price (its amount is the unit amount times a whole quantity) of a
  one-time Price references it with ``pricing[price]`` and ``quantity``;
- Stripe refuses recurring Prices on invoice items (only subscriptions bill them, and the server runs
  renewals itself), so a line that is exactly a recurring price is itemized with ``price_data`` on the
  plan's Product (same unit amount and quantity) and names the recurring Price in its metadata
  (``autumn_stripe_price``);
- any other line (prorations, usage, quantity changes, customized prices) is an ``amount`` with the
  product in its metadata (``autumn_stripe_product``).

A plan renamed in place (same version) renames its Product: the name each Product was last given is
read from Stripe once per process and kept, and a plan whose name or description no longer matches
updates it.  Objects are keyed by the Stripe account (``GET /v1/account``), so a rolled secret key of
the same account keeps using them; only when the account cannot be read is a digest of the key used.

Every item carries ``autumn_invoice_id``, ``autumn_plan_id``, ``autumn_plan_version`` and, for
feature lines, ``autumn_feature_id`` in its metadata, and the line's period in seconds.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, Protocol

import stripe
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from reference_server.engine.billing.money import DEFAULT_CURRENCY, exact_minor, to_decimal
from reference_server.store.catalog import Plan
from reference_server.store.plan_records import BasePriceRecord, ItemPriceRecord, PlanItemRecord
from reference_server.store.stripe_products import (
    StoredObject,
    delete_object,
    insert_object,
    object_stripe_id,
    plan_versions_for,
    stored_objects,
)

log = logging.getLogger(__name__)

_RECURRING: dict[str, tuple[str, int]] = {
    "day": ("day", 1),
    "week": ("week", 1),
    "month": ("month", 1),
    "quarter": ("month", 3),
    "semi_annual": ("month", 6),
    "year": ("year", 1),
}
"""Our intervals as Stripe's ``recurring[interval]`` and a multiplier of ``interval_count``."""


@dataclass(frozen=True)
class FixedPrice:
    """One fixed price of a plan version (before it exists in Stripe)."""

    key: str  # "base" or "prepaid:<feature_id>"
    unit_amount: int  # minor units per unit (the base) or per pack (a prepaid item)
    currency: str
    recurring: tuple[str, int] | None  # Stripe interval and count; None for a one-time price
    pack_units: Decimal  # units in one pack (1 for the base price)
    feature_id: str | None


@dataclass(frozen=True)
class StripePrice:
    price: FixedPrice
    stripe_id: str


@dataclass(frozen=True)
class PlanObjects:
    """A plan version's Stripe Product and Prices."""

    plan_id: str
    version: int
    product: str
    prices: dict[str, StripePrice]


def account_key(secret_key: str, stripe_account: str | None) -> str:
    """A digest of the key (and connected account): the account key when the account id cannot be read
    (the key itself is never stored)."""
    return hashlib.sha256(f"{secret_key}\0{stripe_account or ''}".encode()).hexdigest()[:32]


class PricedVersion(Protocol):
    """What :func:`fixed_prices` reads: a plan version (:class:`~reference_server.store.catalog.Plan`)
    or what an instance is billed by (``subscription_state.BilledPlan``)."""

    @property
    def price(self) -> BasePriceRecord | None: ...

    @property
    def items(self) -> Sequence[PlanItemRecord]: ...


def product_name(plan: Plan) -> str:
    return str(plan.name) if plan.version == 1 else f"{plan.name} (v{plan.version})"


def _whole_minor(amount: int | float, currency: str) -> int | None:
    exact = exact_minor(to_decimal(amount), currency)
    return int(exact) if exact == exact.to_integral_value() and exact >= 0 else None


def _recurring(price: BasePriceRecord | ItemPriceRecord) -> tuple[str, int] | Literal[False] | None:
    """Stripe's recurrence of a price record; None for one-off, False when Stripe cannot express it."""
    interval = str(price.get("interval") or "month")
    if interval == "one_off":
        return None
    mapped = _RECURRING.get(interval)
    if mapped is None:
        return False
    return mapped[0], mapped[1] * int(price.get("interval_count") or 1)


def fixed_prices(plan: PricedVersion) -> list[FixedPrice]:
    """The fixed prices of a plan version (or of what an instance is billed by) that Stripe can hold
    as Prices.

    In the server's one currency (``DEFAULT_CURRENCY``): a plan keeps none of its own (its ``config``
    is only ``ignore_past_due``, ``service.plan_values.config_value``), and requests naming another
    currency are refused (``api.unsupported_fields``)."""
    currency = DEFAULT_CURRENCY
    out: list[FixedPrice] = []
    candidates: list[tuple[str, int | float, BasePriceRecord | ItemPriceRecord, Decimal, str | None]] = []
    if plan.price:
        candidates.append(("base", plan.price["amount"], plan.price, Decimal(1), None))
    for item in plan.items or []:
        price = item.get("price")
        amount = price.get("amount") if price else None
        if not price or price.get("billing_method") != "prepaid" or price.get("tiers") or amount is None:
            continue
        units = to_decimal(price.get("billing_units") or 1)
        candidates.append((f"prepaid:{item['feature_id']}", amount, price, units, str(item["feature_id"])))
    for key, amount, record, units, feature_id in candidates:
        unit_amount = _whole_minor(amount, currency)
        recurring = _recurring(record)
        if unit_amount is None or recurring is False:
            continue
        out.append(FixedPrice(key, unit_amount, currency, recurring, units, feature_id))
    return out


def _recurring_text(recurring: tuple[str, int] | None) -> str | None:
    return f"{recurring[1]} {recurring[0]}" if recurring else None


class StripeCatalog:
    """Creates (once) and finds the Stripe objects of an organization's plans in one Stripe account."""

    def __init__(
        self, client: stripe.StripeClient, secret_key: str, stripe_account: str | None = None
    ) -> None:
        self.client = client
        self._connected = stripe_account
        self._fallback = account_key(secret_key, stripe_account)
        self._account: str | None = stripe_account  # a connected account is its own id
        self._names: dict[str, tuple[str, str | None]] = {}  # product id -> name, description in Stripe
        self._lock = threading.Lock()

    @property
    def account(self) -> str:
        """The Stripe account id objects are kept under (``GET /v1/account``, read once); a digest of the
        key while it cannot be read (Stripe unreachable), tried again next time."""
        if self._account is not None:
            return self._account
        try:
            account = self.client.v1.accounts.retrieve_current()
        except stripe.StripeError as exc:
            log.warning("cannot read the Stripe account (%s): objects keyed by the key's digest", exc)
            return self._fallback
        with self._lock:
            self._account = str(account.id)
        return self._account

    def _sync_product(self, product: str, plan: Plan) -> None:
        """Give the Product the plan's current name and description (a plan renamed in place)."""
        wanted = (product_name(plan), str(plan.description) if plan.description else None)
        known = self._names.get(product)
        if known is None:
            current = self.client.v1.products.retrieve(product)
            known = (str(current.name), getattr(current, "description", None) or None)
        if known != wanted:
            params: dict[str, Any] = {"name": wanted[0]}
            if wanted[1] is not None or known[1] is not None:
                params["description"] = wanted[1] or ""
            self.client.v1.products.update(product, params)  # type: ignore[arg-type]
        with self._lock:
            self._names[product] = wanted

    # stored objects ------------------------------------------------------------------------------------
    def _stored(
        self, conn: Connection, org_pk: int, env: str, plan_id: str, version: int
    ) -> dict[str, StoredObject]:
        rows = stored_objects(conn, org_pk, env, self.account, plan_id, version)
        return {r.price_key: r for r in rows}

    def _remember(self, conn: Connection, values: dict[str, Any]) -> str:
        """Store a created object; a concurrent first charge may have stored the same one already."""
        try:
            with conn.begin_nested():
                insert_object(conn, values)
        except IntegrityError:
            return object_stripe_id(conn, values)
        return str(values["stripe_id"])

    def _idempotency(self, org_pk: int, env: str, plan: Plan, key: str) -> dict[str, Any]:
        price = next((f for f in fixed_prices(plan) if f.key == key), None)
        amount = f"{price.unit_amount}:{price.currency}:{price.recurring}" if price else ""
        raw = f"{self.account}:{org_pk}:{env}:{plan.pk}:{key}:{amount}"
        digest = hashlib.sha256(raw.encode()).hexdigest()[:40]
        return {"idempotency_key": f"autumn-catalog-{digest}"}

    def plan_objects(self, conn: Connection, org_pk: int, plan: Plan, now: int) -> PlanObjects:
        """The Product and Prices of organization ``org_pk``'s plan version, created in Stripe the first
        time they are needed."""
        env, version = plan.env, plan.version
        account = self.account
        stored = self._stored(conn, org_pk, env, plan.id, version)
        base = {
            "org_pk": org_pk,
            "env": env,
            "account_key": account,
            "plan_id": plan.id,
            "plan_version": version,
            "created_at": now,
        }
        product_row = stored.get("")
        if product_row is not None:
            product = str(product_row.stripe_id)
            self._sync_product(product, plan)
        else:
            params: dict[str, Any] = {
                "name": product_name(plan),
                "metadata": {
                    "autumn_plan_id": plan.id,
                    "autumn_plan_version": str(version),
                    "autumn_env": env,
                },
            }
            if plan.description:
                params["description"] = plan.description
            created = self.client.v1.products.create(params, self._idempotency(org_pk, env, plan, ""))  # type: ignore[arg-type]
            product = self._remember(
                conn, {**base, "price_key": "", "object_type": "product", "stripe_id": created.id}
            )
            if product == created.id:
                with self._lock:
                    self._names[product] = (product_name(plan), plan.description or None)
            else:  # a concurrent first charge stored its own Product
                self._sync_product(product, plan)
        prices: dict[str, StripePrice] = {}
        for fixed in fixed_prices(plan):
            row = stored.get(fixed.key)
            same = row is not None and (row.unit_amount, row.currency, row.recurring) == (
                fixed.unit_amount,
                fixed.currency,
                _recurring_text(fixed.recurring),
            )
            if row is not None and same:
                prices[fixed.key] = StripePrice(fixed, str(row.stripe_id))
                continue
            if row is not None:  # the version was edited in place (no customers yet): a new Price
                self.client.v1.prices.update(str(row.stripe_id), {"active": False})
                delete_object(conn, row.pk)
            price_params: dict[str, Any] = {
                "product": product,
                "currency": fixed.currency,
                "unit_amount": fixed.unit_amount,
                "metadata": {
                    "autumn_plan_id": plan.id,
                    "autumn_plan_version": str(version),
                    "autumn_price": fixed.key,
                    "autumn_env": env,
                },
            }
            if fixed.recurring:
                price_params["recurring"] = {
                    "interval": fixed.recurring[0],
                    "interval_count": fixed.recurring[1],
                }
            created_price = self.client.v1.prices.create(
                price_params,  # type: ignore[arg-type]
                self._idempotency(org_pk, env, plan, fixed.key),  # type: ignore[arg-type]
            )
            stripe_id = self._remember(
                conn,
                {
                    **base,
                    "price_key": fixed.key,
                    "object_type": "price",
                    "stripe_id": created_price.id,
                    "unit_amount": fixed.unit_amount,
                    "currency": fixed.currency,
                    "recurring": _recurring_text(fixed.recurring),
                },
            )
            prices[fixed.key] = StripePrice(fixed, stripe_id)
        return PlanObjects(plan.id, version, product, prices)

    # invoice lines -----------------------------------------------------------------------------------------
    def _plan_versions(self, conn: Connection, customer_pk: int, plan_id: str) -> tuple[int, list[Plan]]:
        """The plan's organization and versions, most likely first: the customer's own instances (newest
        first), then the latest version, then the older ones."""
        found = plan_versions_for(conn, customer_pk, plan_id)
        by_pk = {p.pk: p for p in found.versions}
        ordered: list[Plan] = []
        for pk in found.owned:
            plan = by_pk.get(pk)
            if plan is not None and plan not in ordered:
                ordered.append(plan)
        rest = sorted(found.versions, key=lambda p: (not p.is_latest, -p.version))
        ordered.extend(p for p in rest if p not in ordered)
        return found.org_pk, ordered

    def item_params(
        self,
        conn: Connection,
        customer_pk: int,
        line: Any,
        currency: str,
        now: int,
        cache: dict[int, PlanObjects],
    ) -> dict[str, Any]:
        """The invoice item (without ``customer``/``invoice``) for one ``invoice_lines`` row."""
        metadata: dict[str, str] = {"autumn_plan_id": str(line.plan_id), "autumn_line_kind": str(line.kind)}
        if line.feature_id:
            metadata["autumn_feature_id"] = str(line.feature_id)
        params: dict[str, Any] = {"description": str(line.description or line.display_name)[:500]}
        if line.period_start is not None and line.period_end is not None:
            params["period"] = {"start": int(line.period_start) // 1000, "end": int(line.period_end) // 1000}
        org_pk, versions = 0, list[Plan]()  # no plan: no versions, no organization to look in
        if line.plan_id:
            org_pk, versions = self._plan_versions(conn, customer_pk, str(line.plan_id))
        chosen: PlanObjects | None = None
        match: tuple[StripePrice, int] | None = None
        for plan in versions:
            found = self._match(line, currency, fixed_prices(plan))
            if found is not None:
                chosen = self._objects(conn, org_pk, plan, now, cache)
                match = (chosen.prices[found[0].key], found[1]) if found[0].key in chosen.prices else None
                break
        if chosen is None and versions:
            chosen = self._objects(conn, org_pk, versions[0], now, cache)
        if chosen is not None:
            metadata["autumn_plan_version"] = str(chosen.version)
            metadata["autumn_stripe_product"] = chosen.product
        if match is not None and chosen is not None:
            price, quantity = match
            if price.price.recurring is None:
                params["pricing"] = {"price": price.stripe_id}
            else:
                metadata["autumn_stripe_price"] = price.stripe_id
                params["price_data"] = {
                    "currency": currency,
                    "product": chosen.product,
                    "unit_amount": price.price.unit_amount,
                }
            params["quantity"] = quantity
        else:
            params["amount"] = int(line.amount)
            params["currency"] = currency
        params["metadata"] = metadata
        return params

    def _objects(
        self, conn: Connection, org_pk: int, plan: Plan, now: int, cache: dict[int, PlanObjects]
    ) -> PlanObjects:
        objects = cache.get(plan.pk)
        if objects is None:
            objects = self.plan_objects(conn, org_pk, plan, now)
            cache[plan.pk] = objects
        return objects

    @staticmethod
    def _match(line: Any, currency: str, prices: list[FixedPrice]) -> tuple[FixedPrice, int] | None:
        """The fixed price the line is exactly (a whole quantity of it), with that quantity."""
        key = {"base": "base", "prepaid": f"prepaid:{line.feature_id}"}.get(str(line.kind))
        for price in prices:
            if price.key != key or price.currency != currency or price.unit_amount <= 0:
                continue
            units = Decimal(str(line.quantity)) / price.pack_units
            if units != units.to_integral_value() or units <= 0:
                continue
            quantity = int(units)
            if price.unit_amount * quantity == int(line.amount):
                return price, quantity
        return None


__all__ = ["PlanObjects", "PricedVersion", "StripeCatalog", "account_key", "fixed_prices"]
