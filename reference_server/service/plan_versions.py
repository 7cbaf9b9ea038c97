"""A plan's versions on plans.update: the version flags, saving values in place or as the next
version, and carrying a change to other versions (``all_versions``, variants) as a diff."""

from __future__ import annotations

import dataclasses

from sqlalchemy import Connection

from reference_server.errors import invalid
from reference_server.service.context import Ctx
from reference_server.service.plan_items import item_key
from reference_server.service.plan_values import (
    GivenValues,
    PlanValues,
    PricedParts,
    SettingKey,
    plan_from_values,
    priced_parts,
)
from reference_server.store import catalog_writes as catalog_repo
from reference_server.store.catalog import Plan

_SHARED_SETTINGS: tuple[SettingKey, ...] = ("name", "description", "group", "add_on", "config", "metadata")
"""Settings ``all_versions`` copies to every version when the update changed them."""


def check_version_flags(disable_version: bool, force_version: bool, all_versions: bool) -> None:
    for first, second, both in (
        ("force_version", "disable_version", force_version and disable_version),
        ("all_versions", "disable_version", all_versions and disable_version),
        ("all_versions", "force_version", all_versions and force_version),
    ):
        if both:
            raise invalid(f"Cannot use both {first} and {second}", "conflicting_version_flags")


def diffed_values(
    other: Plan, before: Plan, after: PlanValues, settings: tuple[SettingKey, ...]
) -> GivenValues:
    """What an update that turned ``before`` into ``after`` changes on ``other``, as a diff.

    A changed item is removed and added again, matched by its key, so items ``other`` has on its
    own stay; price, free trial and the ``settings`` the update changed are copied.
    """
    before_items = {item_key(i): i for i in before.items}
    after_items = {item_key(i): i for i in after["items"]}
    removed = {k for k, i in before_items.items() if after_items.get(k) != i}
    added = [i for k, i in after_items.items() if before_items.get(k) != i]
    changes: GivenValues = {}
    for key in settings:
        if after[key] != getattr(before, key):
            changes[key] = after[key]
    if after["price"] != before.price:
        changes["price"] = after["price"]
    if after["free_trial"] != before.free_trial:
        changes["free_trial"] = after["free_trial"]
    if removed or added:
        kept = [i for i in other.items if item_key(i) not in removed]
        keys = {item_key(i) for i in kept}
        changes["items"] = kept + [i for i in added if item_key(i) not in keys]
    return changes


def apply_to_other_versions(conn: Connection, others: list[Plan], before: Plan, after: PlanValues) -> None:
    """``all_versions``: apply what this update changed on the latest version to every other version.

    As in Autumn the change is a diff, not a copy: a changed item is removed and added again,
    matched by its key, so items the other versions have on their own stay as they are.
    """
    for other in others:
        values = diffed_values(other, before, after, _SHARED_SETTINGS)
        if values:
            catalog_repo.update_version(conn, other.pk, values)


def pricing_changed(plan: Plan, values: PlanValues) -> bool:
    priced: PricedParts = {
        "price": values["price"],
        "items": values["items"],
        "free_trial": values["free_trial"],
    }
    return priced_parts(plan) != priced


def save_version(ctx: Ctx, conn: Connection, current: Plan, values: PlanValues, *, new_version: bool) -> Plan:
    """Write ``values`` to ``current`` in place, or as its next version (which becomes the latest)."""
    if not new_version:
        catalog_repo.update_version(conn, current.pk, values)
        return dataclasses.replace(current, **values)
    catalog_repo.update_version(conn, current.pk, {"is_latest": False})
    now = ctx.now()
    pk = catalog_repo.insert_plan(
        conn, ctx.tenant, current.id, current.version + 1, now, values, base_plan_id=current.base_plan_id
    )
    return plan_from_values(
        pk, current.id, current.version + 1, now, ctx.tenant.env, values, current.base_plan_id
    )
