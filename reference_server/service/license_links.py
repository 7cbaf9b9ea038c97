"""A plan's ``licenses`` links (``plans.create`` / ``plans.update``), validated as Autumn links them.

Kept apart from the license operations so the catalogue operations can use it without an import cycle.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection

from autumn_sdk._generated.models import CreatePlanLicense
from reference_server.errors import invalid, plan_not_found
from reference_server.store import licenses as store
from reference_server.store.catalog import Catalog, Plan
from reference_server.store.plan_records import BasePriceRecord, ItemPriceRecord


def _recurring_interval(plan: Plan) -> tuple[str, int] | None:
    prices: list[BasePriceRecord | ItemPriceRecord] = [plan.price] if plan.price else []
    prices += [p for i in plan.items if (p := i.get("price"))]
    for price in prices:
        interval = price.get("interval")
        if interval and interval != "one_off":
            return str(interval), int(price.get("interval_count") or 1)
    return None


def parse_links(links: Sequence[CreatePlanLicense], cat: Catalog, parent: Plan) -> list[store.LicenseLink]:
    """The ``licenses`` of a plans.create / plans.update request, validated as Autumn links them."""
    parent_plan_id = parent.id
    seen: set[str] = set()
    out: list[store.LicenseLink] = []
    for link in links:
        license_plan_id = link.license_plan_id
        if license_plan_id in seen:
            raise invalid(f"License plan {license_plan_id} appears twice in licenses.")
        seen.add(license_plan_id)
        if license_plan_id == parent_plan_id:
            raise invalid(f"A plan cannot be linked as a license to itself ({license_plan_id}).")
        license_plan = cat.plans.get(license_plan_id)
        if license_plan is None:
            raise plan_not_found(license_plan_id)
        if license_plan.archived:
            raise invalid(f"License plan {license_plan_id} is archived and cannot be linked.")
        if link.customize is not None:
            raise invalid(
                "licenses[].customize is not supported by this server: link the license plan as it is",
                "invalid_inputs",
            )
        mine, theirs = _recurring_interval(parent), _recurring_interval(license_plan)
        if mine is not None and theirs is not None and mine != theirs:
            raise invalid(
                f"License plan {license_plan_id} bills {theirs[0]} but {parent_plan_id} bills "
                f"{mine[0]}. Billing intervals must match."
            )
        if link.prepaid_only is False:
            raise invalid(
                "License overflow billing (prepaid_only: false) is not yet available. "
                "Set prepaid_only to true."
            )
        if link.included is None:
            raise invalid(
                f"licenses[].included: is required (license plan {license_plan_id})", "invalid_inputs"
            )
        out.append(store.LicenseLink(license_plan_id, link.included, link.prepaid_only))
    return out


def save_plan_links(
    conn: Connection,
    cat: Catalog,
    parent: Plan,
    licenses: Sequence[CreatePlanLicense] | None,
    *,
    now: int,
    previous_pk: int | None = None,
) -> None:
    """Store a created or updated plan version's license links.

    ``licenses`` (the request's; None when not given) replaces the links; without it, a new version
    (``previous_pk`` set and different) keeps the links of the version it replaces, as Autumn copies
    links forward.
    """
    if licenses is not None:
        store.replace_links(conn, parent.pk, parse_links(licenses, cat, parent), now)
    elif previous_pk is not None and previous_pk != parent.pk:
        store.replace_links(conn, parent.pk, store.links_of(conn, previous_pk), now)
