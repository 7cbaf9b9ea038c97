"""The server's catalogue as config objects, the comparison with a config, and applying the difference.

Everything goes through :class:`autumn_sdk.Autumn`, so the same code serves Autumn's cloud and the
reference server. Two operations are the reference server's own (beyond Autumn's spec) and optional:
``/v1/catalog.internal_ids`` gives the stable internal id of each feature and plan (what lets a rename
be recognized as one) and ``/v1/organizations.current`` names the organization; against a server
without them, renames are seen as an archive plus a create and ``autumn env`` shows the key only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from autumn_sdk import Autumn, models
from autumn_sdk._generated import operations as ops
from autumn_sdk._operation import Operation
from autumn_sdk.config import ConfigError, Feature, Plan, PlanItem, PricingConfig
from autumn_sdk.errors import NotFoundError


def _extra_operation(name: str) -> Operation:
    return Operation(
        operation_id=name,
        group=None,
        name=name,
        http_method="POST",
        path=f"/v1/{name}",
        params_model_ref=None,
        response_model_ref=None,
        success_statuses=(200,),
        error_statuses=(),
        api="v1",
        body_style="request",
        # The server's own operations: as the SDK treats any unnamed write (no retry without a key).
        read_only=False,
        writes_when=(),
        fail_open=False,
        timeout_class="default",
        rate_limit_group="other",
        locks_customer=False,
        hot_path=False,
        long_read=False,
        handler_route=None,
        handler_fail_open=False,
        handler_requires_customer=False,
    )


CATALOG_INTERNAL_IDS = _extra_operation("catalog.internal_ids")
ORGANIZATIONS_CURRENT = _extra_operation("organizations.current")
TEST_CLOCKS_ADVANCE = _extra_operation("test_clocks.advance")
CUSTOMERS_ADVANCE_TEST_CLOCK = _extra_operation("customers.advance_test_clock")


def call_extra(client: Autumn, op: Operation, body: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Call an operation beyond Autumn's spec; ``None`` when the server does not have it."""
    try:
        res = client.call(op, body or {})
    except NotFoundError:
        return None
    return dict(res.model_extra or {})


# ---------------------------------------------------------------- the server's catalogue


@dataclass
class Remote:
    """The server's features and plans (archived included), as config objects."""

    features: list[Feature] = field(default_factory=list)
    plans: list[Plan] = field(default_factory=list)
    """Each plan's latest version: the one new customers get."""
    versions: dict[str, list[Plan]] = field(default_factory=dict)
    """Plan id -> every version the server keeps, oldest first (the latest last)."""
    has_internal_ids: bool = False

    def versions_of(self, latest: Plan) -> list[Plan]:
        return self.versions.get(latest.plan_id) or [latest]


def feature_from_api(f: models.Feature, internal_id: str | None) -> Feature:
    values: dict[str, Any] = {"feature_id": f.id, "name": f.name, "type": f.type}
    if f.type == "metered":
        values["consumable"] = f.consumable
    if f.type == "credit_system" and f.credit_schema:
        values["credit_schema"] = [
            {"metered_feature_id": e.metered_feature_id, "credit_cost": e.credit_cost}
            for e in f.credit_schema
        ]
    if f.event_names:
        values["event_names"] = list(f.event_names)
    if f.display is not None and f.display.singular and f.display.plural:
        values["display"] = {"singular": f.display.singular, "plural": f.display.plural}
    if f.archived:
        values["archived"] = True
    if internal_id:
        values["internal_id"] = internal_id
    return Feature.model_validate(values)


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def item_from_api(it: models.PlanItem, feature: Feature | None) -> PlanItem:
    values: dict[str, Any] = {"feature_id": it.feature_id}
    if feature is not None and feature.type == "boolean":
        return PlanItem.model_validate(values)
    if it.unlimited:
        values["unlimited"] = True
    elif it.included:
        values["included"] = it.included
    if it.reset is not None:
        values["reset"] = {"interval": it.reset.interval}
        if it.reset.interval_count not in (None, 1):
            values["reset"]["interval_count"] = it.reset.interval_count
    if it.price is not None:
        p = it.price
        price: dict[str, Any] = {}
        if p.tiers:
            price["tiers"] = [_drop_none(t if isinstance(t, dict) else dict(t.model_dump())) for t in p.tiers]
            if p.tier_behavior not in (None, "graduated"):
                price["tier_behavior"] = p.tier_behavior
        else:
            price["amount"] = p.amount
        price["interval"] = p.interval
        if p.interval_count not in (None, 1):
            price["interval_count"] = p.interval_count
        if p.billing_units not in (None, 1):
            price["billing_units"] = p.billing_units
        price["billing_method"] = p.billing_method
        if p.max_purchase is not None:
            price["max_purchase"] = p.max_purchase
        values["price"] = price
    if it.proration is not None:
        values["proration"] = it.proration.model_dump(mode="json")
    if it.rollover is not None:
        values["rollover"] = _drop_none(it.rollover.model_dump(exclude_unset=True))
        values["rollover"].setdefault("max", None)
        if values["rollover"]["max"] is None:
            del values["rollover"]["max"]
    return PlanItem.model_validate(values)


def plan_from_api(
    p: models.Plan | models.ListPlansItem, features: dict[str, Feature], internal_id: str | None
) -> Plan:
    values: dict[str, Any] = {"plan_id": p.id, "name": p.name}
    if p.description:
        values["description"] = p.description
    if p.group:
        values["group"] = p.group
    if p.add_on:
        values["add_on"] = True
    if p.auto_enable:
        values["auto_enable"] = True
    if p.price is not None:
        values["price"] = {"amount": p.price.amount, "interval": p.price.interval}
        if p.price.interval_count not in (None, 1):
            values["price"]["interval_count"] = p.price.interval_count
    values["items"] = [item_from_api(it, features.get(it.feature_id)) for it in p.items]
    if p.free_trial is not None:
        values["free_trial"] = {
            "duration_length": p.free_trial.duration_length,
            "duration_type": p.free_trial.duration_type,
            "card_required": p.free_trial.card_required,
        }
        if p.free_trial.on_end not in (None, "bill"):
            values["free_trial"]["on_end"] = p.free_trial.on_end
    if p.config.ignore_past_due:
        values["config"] = {"ignore_past_due": True}
    values["version"] = int(p.version)
    if p.archived:
        values["archived"] = True
    if internal_id:
        values["internal_id"] = internal_id
    return Plan.model_validate(values)


def fetch_remote(client: Autumn) -> Remote:
    ids = call_extra(client, CATALOG_INTERNAL_IDS) or {}
    feature_ids: dict[str, str] = {e["feature_id"]: e["internal_id"] for e in ids.get("features", [])}
    plan_ids: dict[str, str] = {e["plan_id"]: e["internal_id"] for e in ids.get("plans", [])}
    features = [feature_from_api(f, feature_ids.get(f.id)) for f in client.features.list().list]
    by_id = {f.feature_id: f for f in features}
    listed = client.plans.list(request={"include_archived": True, "all_versions": True}).list
    grouped: dict[str, dict[int, models.Plan | models.ListPlansItem]] = {}
    for p in listed:
        grouped.setdefault(p.id, {})[int(p.version)] = p
    versions: dict[str, list[Plan]] = {}
    for plan_id, found in grouped.items():
        # A server that lists only the latest version still serves the older ones by number.
        for number in range(1, max(found)):
            if number not in found:
                try:
                    found[number] = client.plans.get(plan_id=plan_id, version=number)
                except NotFoundError:
                    continue
        versions[plan_id] = [plan_from_api(found[n], by_id, plan_ids.get(plan_id)) for n in sorted(found)]
    plans = [vs[-1] for vs in versions.values()]
    return Remote(features=features, plans=plans, versions=versions, has_internal_ids=bool(ids))


_SLUG_NUMBER = re.compile(r"^v(\d+)$")


def resolve_versions(entries: list[Plan], server: list[Plan]) -> dict[str, int | None]:
    """Which server version each config entry of one plan describes (entry key -> number, or None for
    a version the server does not have yet).

    The server numbers versions and keeps no names, so the config holds the link: ``version=N``
    (recorded by push and pull); else a slug ``"vN"`` names version N; else a plan's only entry is its
    latest version.
    """
    numbers = {int(v.version or 1) for v in server}
    out: dict[str, int | None] = {}
    claimed: set[int] = set()
    for e in entries:
        if e.version is not None and e.version in numbers:
            out[e.key] = e.version
            claimed.add(e.version)
    for e in entries:
        if e.key in out:
            continue
        if e.version is None and len(entries) == 1 and server:
            n: int | None = max(numbers)
        else:
            m = _SLUG_NUMBER.match(e.version_slug or "") if e.version is None else None
            n = int(m.group(1)) if m else None
        if n is not None and (n not in numbers or n in claimed):
            n = None
        if n is not None:
            claimed.add(n)
        out[e.key] = n
    return out


def remote_entries(remote: Remote, plans: list[Plan]) -> list[Plan]:
    """Config entries for ``plans`` (latest versions) with their older versions: a plan the server
    keeps in several versions gets one entry per version, named ``v<N>``, the latest active."""
    out: list[Plan] = []
    for latest in plans:
        versions = remote.versions_of(latest)
        if len(versions) == 1:
            out.append(latest)
            continue
        for v in versions:
            out.append(
                v.model_copy(
                    update={
                        "version_slug": f"v{v.version}",
                        "active": v.version == latest.version,
                        "internal_id": latest.internal_id,
                    }
                )
            )
    return out


# ---------------------------------------------------------------- canonical forms


def canonical_item(it: models.PlanItemParams, feature: Feature | None) -> dict[str, Any]:
    """An item with the server's defaults filled in, so equal meaning compares equal."""
    if feature is not None and feature.type == "boolean":
        return {"feature_id": it.feature_id}
    consumable = feature is None or feature.type == "credit_system" or bool(feature.consumable)
    out: dict[str, Any] = {
        "feature_id": it.feature_id,
        "included": it.included or 0,
        "unlimited": bool(it.unlimited),
        "reset": None,
        "price": None,
        "proration": it.proration.model_dump() if it.proration else None,
        "rollover": None,
    }
    if it.reset is not None and consumable:
        out["reset"] = {"interval": it.reset.interval, "interval_count": it.reset.interval_count or 1}
    if it.price is not None:
        p = it.price
        out["price"] = {
            "amount": None if p.tiers else p.amount,
            "tiers": [_drop_none(t.model_dump()) for t in p.tiers] if p.tiers else None,
            "tier_behavior": (p.tier_behavior or "graduated") if p.tiers else None,
            "interval": p.interval,
            "interval_count": p.interval_count or 1,
            "billing_units": p.billing_units or 1,
            "billing_method": p.billing_method,
            "max_purchase": p.max_purchase,
        }
        if out["reset"] is None and consumable and p.interval != "one_off":
            out["reset"] = {"interval": p.interval, "interval_count": p.interval_count or 1}
    if it.rollover is not None:
        ro = it.rollover
        out["rollover"] = {
            "max": ro.max,
            "max_percentage": ro.max_percentage,
            "expiry_duration_type": ro.expiry_duration_type,
            "expiry_duration_length": ro.expiry_duration_length,
        }
    return out


def canonical_feature(f: Feature) -> dict[str, Any]:
    return {
        "name": f.name,
        "type": f.type,
        "consumable": False if f.type == "boolean" else True if f.type == "credit_system" else f.consumable,
        "event_names": sorted(f.event_names or []),
        "credit_schema": [e.model_dump() for e in f.credit_schema or []],
        "display": f.display.model_dump() if f.display else None,
        "archived": f.archived,
    }


PRICING_FIELDS = ("price", "items", "free_trial")
"""What makes the server start a new version of a plan that has customers."""


def canonical_plan(p: Plan, features: dict[str, Feature]) -> dict[str, Any]:
    trial = p.free_trial
    items = [canonical_item(it, features.get(it.feature_id)) for it in p.items or []]
    items.sort(key=lambda i: (i["feature_id"], str((i.get("reset") or {}).get("interval"))))
    return {
        "name": p.name,
        "description": p.description or None,
        "group": p.group or "",
        "add_on": bool(p.add_on),
        "auto_enable": bool(p.auto_enable),
        "price": {
            "amount": p.price.amount,
            "interval": p.price.interval,
            "interval_count": p.price.interval_count or 1,
        }
        if p.price
        else None,
        "items": items,
        "free_trial": {
            "duration_length": trial.duration_length,
            "duration_type": trial.duration_type or "month",
            "card_required": True if trial.card_required is None else trial.card_required,
            "on_end": trial.on_end or "bill",
        }
        if trial
        else None,
        "ignore_past_due": bool(p.config and p.config.ignore_past_due),
        "archived": p.archived,
    }


# ---------------------------------------------------------------- the plan of changes

Action = Literal["create", "update", "version", "archive"]


@dataclass
class Change:
    """One change push would make, described for a person."""

    action: Action
    kind: Literal["feature", "plan"]
    id: str
    local: Feature | Plan | None = None
    remote: Feature | Plan | None = None
    details: list[str] = field(default_factory=list)
    renamed_from: str | None = None
    new_version: int | None = None
    """The server's number for the version this change adds (``version``), or edits in place."""
    entries: list[Plan] = field(default_factory=list)
    """A new plan's versions in the order they are created, the active one last (``create``)."""
    customers: int = 0
    """Customers on the version the change is measured against (plans only)."""

    @property
    def customer_note(self) -> str | None:
        if self.kind != "plan" or not self.customers:
            return None
        n = f"{self.customers} customer{'s' if self.customers != 1 else ''}"
        old = self.remote.version if isinstance(self.remote, Plan) else None
        if self.action == "version":
            verb = "stays" if self.customers == 1 else "stay"
            return f"new version {self.new_version}: {n} {verb} on version {old}"
        if self.action == "archive":
            return f"{n} keep it; new customers cannot get it"
        return f"applies to {n} already on version {old}"


@dataclass
class ChangePlan:
    changes: list[Change]
    remote: Remote
    config: PricingConfig
    matches: dict[str, Feature | Plan] = field(default_factory=dict)
    """``"feature:<local id>"`` / ``"plan:<local id>"`` -> the server object it corresponds to."""
    numbers: dict[str, int | None] = field(default_factory=dict)
    """Each plan entry's key -> the server version it describes (None until push creates it)."""

    @property
    def empty(self) -> bool:
        return not self.changes


def match_objects(local: list[Any], remote: list[Any], id_of: Any) -> tuple[dict[str, Any], list[Any]]:
    """Pair local objects with remote ones: internal id first, then id. Returns pairs and unmatched remote."""
    by_internal = {r.internal_id: r for r in remote if r.internal_id}
    by_id = {id_of(r): r for r in remote}
    taken: set[int] = set()
    pairs: dict[str, Any] = {}
    for obj in local:
        found = by_internal.get(obj.internal_id) if obj.internal_id else None
        if found is None:
            candidate = by_id.get(id_of(obj))
            # An id taken by another internal id is a different object (a rename swapped them).
            if candidate is not None and not (
                obj.internal_id and candidate.internal_id and candidate.internal_id != obj.internal_id
            ):
                found = candidate
        if found is not None and id(found) not in taken:
            taken.add(id(found))
            pairs[id_of(obj)] = found
    return pairs, [r for r in remote if id(r) not in taken]


def _fmt(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items() if v is not None) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, str) else str(value)


def _diff(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    lines = []
    for key in after:
        if key == "items":
            old = {(i["feature_id"], str((i.get("reset") or {}).get("interval"))): i for i in before[key]}
            new = {(i["feature_id"], str((i.get("reset") or {}).get("interval"))): i for i in after[key]}
            for k in new.keys() - old.keys():
                lines.append(f"item {k[0]} added")
            for k in old.keys() - new.keys():
                lines.append(f"item {k[0]} removed")
            for k in new.keys() & old.keys():
                for sub in new[k]:
                    if new[k][sub] != old[k][sub]:
                        lines.append(f"item {k[0]}: {sub} {_fmt(old[k][sub])} -> {_fmt(new[k][sub])}")
        elif before.get(key) != after[key]:
            lines.append(f"{key}: {_fmt(before.get(key))} -> {_fmt(after[key])}")
    return sorted(lines) if lines else lines


def count_customers(client: Autumn, plan_id: str, version: int | None) -> int:
    filt: dict[str, Any] = {"id": plan_id}
    if version is not None:
        filt["versions"] = [version]
    return len(client.customers.list(plans=[filt], limit=1000).list)


def plan_changes(client: Autumn, config: PricingConfig, remote: Remote | None = None) -> ChangePlan:
    """Compare ``config`` with the server: what push would create, update and archive."""
    remote = remote or fetch_remote(client)
    changes: list[Change] = []
    matches: dict[str, Feature | Plan] = {}

    fpairs, f_unmatched = match_objects(config.features, remote.features, lambda f: f.feature_id)
    for f in config.features:
        r = fpairs.get(f.feature_id)
        if r is None:
            changes.append(Change("create", "feature", f.feature_id, local=f))
            continue
        matches[f"feature:{f.feature_id}"] = r
        before, after = canonical_feature(r), canonical_feature(f)
        renamed = r.feature_id if r.feature_id != f.feature_id else None
        if before != after or renamed:
            details = _diff(before, after)
            if renamed:
                details.insert(0, f"renamed from {renamed!r}")
            changes.append(Change("update", "feature", f.feature_id, f, r, details, renamed_from=renamed))
    for r in f_unmatched:
        if not r.archived:
            changes.append(Change("archive", "feature", r.feature_id, remote=r))

    numbers: dict[str, int | None] = {}
    active = config.active_plans
    ppairs, p_unmatched = match_objects(active, remote.plans, lambda p: p.plan_id)
    for a in active:
        entries = config.versions(a.plan_id)
        rp = ppairs.get(a.plan_id)
        if rp is None:
            ordered = [e for e in entries if not e.is_active] + [a]
            details = (
                [f"versions {', '.join(str(e.version_slug) for e in ordered)}"] if len(ordered) > 1 else []
            )
            changes.append(Change("create", "plan", a.plan_id, local=a, details=details, entries=ordered))
            numbers.update({e.key: None for e in entries})
            continue
        assert isinstance(rp, Plan)
        matches[f"plan:{a.plan_id}"] = rp
        changes += _version_changes(client, config, a, entries, rp, remote, numbers)
    for rp in p_unmatched:
        if not rp.archived:
            change = Change("archive", "plan", rp.plan_id, remote=rp)
            change.customers = count_customers(client, rp.plan_id, rp.version)
            changes.append(change)
    return ChangePlan(changes, remote, config, matches, numbers)


def _version_changes(
    client: Autumn,
    config: PricingConfig,
    active: Plan,
    entries: list[Plan],
    latest: Plan,
    remote: Remote,
    numbers: dict[str, int | None],
) -> list[Change]:
    """One plan's entries against the versions the server keeps, mapped onto the current API: the
    latest version is edited in place (``disable_version``), a new entry becomes a new latest version
    (``force_version``); older versions and new inactive ones beside an existing active one cannot be
    written, so they are refused rather than pushed wrong."""
    where = str(config.path) if config.path else None
    server = remote.versions_of(latest)
    by_number = {int(v.version or 1): v for v in server}
    top = int(latest.version or 1)
    resolved = resolve_versions(entries, server)
    numbers.update(resolved)
    remote_features = {f.feature_id: f for f in remote.features}
    local_features = {f.feature_id: f for f in config.features}
    renamed = latest.plan_id if latest.plan_id != active.plan_id else None
    n_active = resolved[active.key]
    if n_active is not None and n_active != top:
        raise ConfigError(
            f"plan {active.label}: is the server's version {n_active}, which cannot become the version new "
            f"customers get again: the current API gives them a plan's latest version ({top}). Copy it "
            "into a new entry (a new version_slug, no version=) to offer its pricing as a new version",
            file=where,
        )
    out: list[Change] = []
    edited_latest = False
    for e in entries:
        n = resolved[e.key]
        if n is None:
            continue
        before = canonical_plan(by_number[n], remote_features)
        after = canonical_plan(e, local_features)
        if not e.is_active:  # archived is the plan's, stated on its active entry
            before.pop("archived")
            after.pop("archived")
        if before == after and not (renamed and n == top):
            continue
        if n != top:
            raise ConfigError(
                f"plan {e.label}: differs from the server's version {n}, which cannot be changed: the "
                f"current API edits only a plan's latest version ({top}). Pull to restore it, or add a "
                "new version",
                file=where,
            )
        details = _diff(before, after)
        if renamed:
            details.insert(0, f"renamed from {renamed!r}")
        change = Change("update", "plan", active.plan_id, e, by_number[n], details, renamed_from=renamed)
        change.new_version = n
        change.customers = count_customers(client, latest.plan_id, n)
        out.append(change)
        edited_latest = True
    new = [e for e in entries if resolved[e.key] is None]
    if not new:
        return out
    if resolved[active.key] is not None:
        names = ", ".join(repr(e.version_slug) for e in new)
        raise ConfigError(
            f"plan {active.plan_id!r}: version(s) {names} are new but not active: the current API "
            "gives new customers each version it adds, so a new version must be the active one",
            file=where,
        )
    if renamed and not edited_latest:
        rename = Change("update", "plan", active.plan_id, latest, latest, [f"renamed from {renamed!r}"])
        rename.renamed_from = renamed
        rename.new_version = top
        out.append(rename)
    ordered = [e for e in new if not e.is_active] + [active]
    base = canonical_plan(latest, remote_features)
    base.pop("archived")
    customers = count_customers(client, latest.plan_id, top)
    for i, e in enumerate(ordered):
        after = canonical_plan(e, local_features)
        after.pop("archived")
        details = [
            f"version {e.version_slug or 'new'}: the one new customers get"
            if e.is_active
            else f"version {e.version_slug}: kept, not the one new customers get"
        ]
        details += _diff(base, after)
        change = Change("version", "plan", active.plan_id, e, latest, details)
        change.new_version = top + 1 + i
        change.customers = customers if e.is_active else 0
        out.append(change)
    return out


# ---------------------------------------------------------------- applying


def _feature_body(f: Feature) -> dict[str, Any]:
    body = f.model_dump(mode="json", exclude_none=True, exclude={"internal_id", "archived"})
    if f.type != "metered":
        body.pop("consumable", None)
    return body


def _plan_body(p: Plan) -> dict[str, Any]:
    return p.model_dump(
        mode="json",
        exclude_none=True,
        exclude={"internal_id", "version", "version_slug", "active", "archived"},
    )


def _cleared(body: dict[str, Any]) -> dict[str, Any]:
    """An update body that also removes what the entry leaves out (an update keeps what it omits)."""
    for key, cleared in (("description", ""), ("group", ""), ("price", None), ("free_trial", None)):
        body.setdefault(key, cleared)
    body.setdefault("add_on", False)
    body.setdefault("auto_enable", False)
    return body


def _credit_systems_last(changes: list[Change]) -> list[Change]:
    def rank(c: Change) -> int:
        obj = c.local or c.remote
        return 1 if isinstance(obj, Feature) and obj.type == "credit_system" else 0

    return sorted(changes, key=rank)


def apply_changes(client: Autumn, plan: ChangePlan) -> dict[str, Feature | Plan]:
    """Apply ``plan`` in dependency order; returns the server's objects after the push, by local key."""
    features = _credit_systems_last(
        [c for c in plan.changes if c.kind == "feature" and c.action != "archive"]
    )
    for c in features:
        assert isinstance(c.local, Feature)
        body = _feature_body(c.local)
        if c.action == "create":
            client.call(ops.FEATURES_CREATE, body)
            if c.local.archived:
                client.call(ops.FEATURES_UPDATE, {"feature_id": c.local.feature_id, "archived": True})
        else:
            assert isinstance(c.remote, Feature)
            body["feature_id"] = c.remote.feature_id
            if c.renamed_from:
                body["new_feature_id"] = c.local.feature_id
            body["archived"] = c.local.archived
            client.call(ops.FEATURES_UPDATE, body)
    for c in plan.changes:
        if c.kind != "plan" or c.action == "archive":
            continue
        assert isinstance(c.local, Plan)
        if c.action == "create":
            for i, e in enumerate(c.entries):
                body = _plan_body(e)
                if i == 0:
                    res = client.call(ops.PLANS_CREATE, body)
                else:
                    res = client.call(ops.PLANS_UPDATE, {**_cleared(body), "force_version": True})
                plan.numbers[e.key] = int(getattr(res, "version", None) or i + 1)
            if c.local.archived:
                client.call(ops.PLANS_UPDATE, {"plan_id": c.local.plan_id, "archived": True})
        elif c.action == "update":
            assert isinstance(c.remote, Plan)
            body = _cleared(_plan_body(c.local))
            body["plan_id"] = c.remote.plan_id
            if c.renamed_from:
                body["new_plan_id"] = c.id
            if c.local.is_active:
                body["archived"] = c.local.archived
            body["disable_version"] = True  # an entry edited in place: for everyone on that version
            client.call(ops.PLANS_UPDATE, body)
        else:
            body = _cleared(_plan_body(c.local))
            body["plan_id"] = c.id
            body["force_version"] = True  # even with no customers: the older version is kept
            res = client.call(ops.PLANS_UPDATE, body)
            plan.numbers[c.local.key] = int(getattr(res, "version", None) or c.new_version or 1)
            if c.local.is_active and c.local.archived:
                client.call(ops.PLANS_UPDATE, {"plan_id": c.id, "archived": True})
    for c in plan.changes:
        if c.action == "archive" and c.kind == "plan":
            client.call(ops.PLANS_UPDATE, {"plan_id": c.id, "archived": True})
    for c in plan.changes:
        if c.action == "archive" and c.kind == "feature":
            client.call(ops.FEATURES_UPDATE, {"feature_id": c.id, "archived": True})
    after = fetch_remote(client)
    out: dict[str, Feature | Plan] = {}
    for f in after.features:
        out[f"feature:{f.feature_id}"] = f
    for p in after.plans:
        out[f"plan:{p.plan_id}"] = p
    return out


# ---------------------------------------------------------------- reset


def reset_sandbox(client: Autumn) -> tuple[int, int, int]:
    """Delete every customer, plan and feature of the key's environment; returns the three counts."""
    customers = 0
    for _ in range(10_000):
        page = [c for c in client.customers.list(limit=100).list if c.id is not None]
        if not page:
            break
        for cus in page:
            assert cus.id is not None
            client.customers.delete(customer_id=cus.id)
            customers += 1
    plans = client.plans.list(request={"include_archived": True}).list
    for p in plans:
        client.plans.delete(plan_id=p.id, all_versions=True)
    features = sorted(client.features.list().list, key=lambda f: f.type != "credit_system")
    for f in features:
        client.features.delete(feature_id=f.id)
    return customers, len(plans), len(features)
