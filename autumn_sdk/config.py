"""Pricing as code: features and plans in plain Python, checked before anything is sent.

A project's pricing lives in ``autumn_config.py``; the ``autumn`` command (``autumn_cli``) pushes it to
a server and pulls the server's catalogue back into it, as ``atmn`` does for ``autumn.config.ts``::

    from autumn_sdk.config import feature, item, plan

    messages = feature("messages", name="Messages", type="metered", consumable=True)

    pro = plan(
        "pro",
        name="Pro",
        price={"amount": 20, "interval": "month"},
        items=[item(messages, included=1000, reset={"interval": "month"})],
    )

A plan can keep several versions, as in ``atmn``: each is its own ``plan()`` entry with the same id
and a different ``version_slug``, and exactly one is ``active=True``, the version new customers get;
customers on an older version stay on it::

    pro_v1 = plan("pro", version_slug="v1", active=False, name="Pro", price={"amount": 20, ...}, ...)
    pro = plan("pro", version_slug="v2", active=True, name="Pro", price={"amount": 25, ...}, ...)

The shapes are the API's own (the generated request models: ``PlanItemParams``, ``BasePrice``,
``FreeTrialParams``, ...), so a value the config accepts is a value the API accepts. Unlike the API
models, which keep unknown fields for forward compatibility, the config refuses them: a typo such
as ``{"intervall": "month"}`` is an error naming the object and the field, not a silently ignored key.
"""

from __future__ import annotations

import importlib.util
import linecache
import re
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from autumn_sdk._generated import models

__all__ = [
    "ConfigError",
    "Feature",
    "Plan",
    "PlanItem",
    "PricingConfig",
    "feature",
    "item",
    "load_config",
    "plan",
]

DEFAULT_CONFIG_FILE = "autumn_config.py"


class ConfigError(Exception):
    """A pricing config that cannot be used: names the file, the object and the field."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None) -> None:
        self.message = message
        self.file = file
        self.line = line
        super().__init__(self.__str__())

    def __str__(self) -> str:
        if self.file and self.line:
            return f"{self.file}:{self.line}: {self.message}"
        return f"{self.file}: {self.message}" if self.file else self.message


def _unknown_fields(value: Any, path: str) -> list[str]:
    """Dotted paths of fields a nested API model accepted only because API models keep extras."""
    found: list[str] = []
    if isinstance(value, BaseModel):
        found += [f"{path}.{key}" if path else key for key in value.model_extra or {}]
        for name in type(value).model_fields:
            found += _unknown_fields(getattr(value, name), f"{path}.{name}" if path else name)
    elif isinstance(value, list):
        for i, entry in enumerate(value):
            found += _unknown_fields(entry, f"{path}[{i}]")
    return found


class _Strict(BaseModel):
    """Refuses unknown fields here and in the nested API models it holds."""

    @model_validator(mode="after")
    def _no_unknown_fields(self) -> _Strict:
        unknown = [p for name in type(self).model_fields for p in _unknown_fields(getattr(self, name), name)]
        if unknown:
            raise ValueError(f"unknown field(s): {', '.join(unknown)}")
        return self


class Feature(models.CreateFeatureParams, _Strict):
    """A feature as the config declares it: the API's create params plus the CLI's bookkeeping."""

    model_config = ConfigDict(extra="forbid")

    archived: bool = False
    internal_id: str | None = Field(
        None, description="The server's id for this feature, written by `autumn push`; lets a rename be one."
    )

    @model_validator(mode="after")
    def _type_rules(self) -> Feature:
        if self.type == "metered" and self.consumable is None:
            raise ValueError("consumable: required for a metered feature (True: used up, False: allocated)")
        if self.type == "boolean" and self.consumable:
            raise ValueError("consumable: a boolean feature is not consumable")
        if self.type == "credit_system" and not self.credit_schema:
            raise ValueError("credit_schema: required for a credit_system feature")
        if self.type != "credit_system" and self.credit_schema:
            raise ValueError("credit_schema: only a credit_system feature has one")
        return self


class PlanItem(models.PlanItemParams, _Strict):
    """One feature of a plan: included units, reset, price, proration, rollover (the API's item)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _item_rules(self) -> PlanItem:
        if self.unlimited and self.included:
            raise ValueError("included: an unlimited item includes no fixed amount")
        p = self.price
        if p is not None and (p.amount is None) == (not p.tiers):
            raise ValueError("price: give exactly one of amount or tiers")
        if p is not None and p.tiers and p.tiers[-1].to != "inf":
            raise ValueError("price.tiers: the last tier must go to 'inf'")
        return self


VERSION_SLUG = re.compile(r"^[a-zA-Z0-9_.-]+$")


class Plan(models.CreatePlanParams, _Strict):
    """A plan as the config declares it (one version of it): the API's create params, the version's
    name and whether it is the one new customers get, and the CLI's bookkeeping."""

    model_config = ConfigDict(extra="forbid")

    version_slug: str | None = Field(
        None,
        description="This version's name in the config, e.g. 'v2' (atmn's versionSlug). Required when a "
        "plan has more than one entry; 'v<N>' also names the server's version N until push records it.",
    )
    active: bool | None = Field(
        None,
        description="Whether this is the version new customers get; exactly one entry of a plan is. "
        "Omitted on a plan's only entry, which is the active one.",
    )
    archived: bool = False
    version: int | None = Field(
        None, description="The server's version this entry describes (written by push and pull)."
    )
    internal_id: str | None = Field(
        None, description="The server's id for this plan, written by `autumn push`; lets a rename be one."
    )

    @property
    def is_active(self) -> bool:
        return self.active is not False

    @property
    def key(self) -> str:
        """``plan:<id>``, or ``plan:<id>@<slug>`` for a named version: what names this entry."""
        return f"plan:{self.plan_id}" + (f"@{self.version_slug}" if self.version_slug else "")

    @property
    def label(self) -> str:
        """``'pro'`` or ``'pro' (v2)``, for messages."""
        return repr(self.plan_id) + (f" ({self.version_slug})" if self.version_slug else "")

    @model_validator(mode="after")
    def _plan_rules(self) -> Plan:
        if self.version_slug is not None and not VERSION_SLUG.match(self.version_slug):
            raise ValueError("version_slug: letters, digits, '_', '-' and '.' only")
        if self.version is not None and self.version < 1:
            raise ValueError("version: the server numbers versions from 1")
        seen: set[tuple[str, str | None]] = set()
        for i, it in enumerate(self.items or []):
            key = (it.feature_id, it.reset.interval if it.reset else None)
            if key in seen:
                raise ValueError(f"items[{i}]: feature {it.feature_id!r} appears twice with the same reset")
            seen.add(key)
        return self


_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(
            _CAMEL.sub("_", p).lower() if isinstance(p, str) else f"[{p}]"
            for p in err["loc"]
            if not str(p).startswith("function-after")
        ).replace(".[", "[")
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def _feature_id(value: Feature | str) -> str:
    return value.feature_id if isinstance(value, Feature) else value


def feature(
    feature_id: str,
    *,
    name: str,
    type: Literal["boolean", "metered", "credit_system"],
    consumable: bool | None = None,
    credit_schema: Sequence[models.CreditSchemaEntry | dict[str, Any]] | None = None,
    event_names: Sequence[str] | None = None,
    display: models.FeatureUnitNames | dict[str, Any] | None = None,
    archived: bool = False,
    internal_id: str | None = None,
) -> Feature:
    """Declare a feature.

    ``credit_schema`` entries are ``{"metered_feature_id": ..., "credit_cost": ...}``."""
    values: dict[str, Any] = {"feature_id": feature_id, "name": name, "type": type}
    for key, value in (
        ("consumable", consumable),
        ("credit_schema", list(credit_schema) if credit_schema is not None else None),
        ("event_names", list(event_names) if event_names is not None else None),
        ("display", display),
        ("internal_id", internal_id),
    ):
        if value is not None:
            values[key] = value
    if archived:
        values["archived"] = True
    try:
        return Feature.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(f"feature {feature_id!r}: {_describe(exc)}") from None


def item(
    feature: Feature | str,
    *,
    included: float | None = None,
    unlimited: bool | None = None,
    reset: models.PlanItemReset | dict[str, Any] | None = None,
    price: models.PlanItemPriceParams | dict[str, Any] | None = None,
    proration: models.PlanItemProration | dict[str, Any] | None = None,
    rollover: models.PlanItemRolloverParams | dict[str, Any] | None = None,
) -> PlanItem:
    """One plan item for ``feature`` (the feature object, or its id).

    ``reset={"interval": "month"}``; ``price={"amount": 1, "billing_units": 100, "interval": "month",
    "billing_method": "usage_based"}`` or with ``"tiers": [{"to": 1000, "amount": 0.01}, {"to": "inf",
    "amount": 0.005}]``; ``proration={"on_increase": ..., "on_decrease": ...}``;
    ``rollover={"max": 500, "expiry_duration_type": "month"}``.
    """
    values: dict[str, Any] = {"feature_id": _feature_id(feature)}
    for key, value in (
        ("included", included),
        ("unlimited", unlimited),
        ("reset", reset),
        ("price", price),
        ("proration", proration),
        ("rollover", rollover),
    ):
        if value is not None:
            values[key] = value
    try:
        return PlanItem.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(f"item for feature {values['feature_id']!r}: {_describe(exc)}") from None


def plan(
    plan_id: str,
    *,
    name: str,
    description: str | None = None,
    group: str | None = None,
    add_on: bool | None = None,
    auto_enable: bool | None = None,
    price: models.BasePrice | dict[str, Any] | None = None,
    items: Sequence[models.PlanItemParams | dict[str, Any]] = (),
    free_trial: models.FreeTrialParams | dict[str, Any] | None = None,
    config: models.PlanConfig | dict[str, Any] | None = None,
    version_slug: str | None = None,
    active: bool | None = None,
    version: int | None = None,
    archived: bool = False,
    internal_id: str | None = None,
) -> Plan:
    """Declare a plan, or one version of it. ``price={"amount": 20, "interval": "month"}``;
    ``free_trial={"duration_length": 14, "duration_type": "day", "card_required": True}``; ``group``
    makes plans replace each other, ``add_on=True`` lets it sit beside them, ``auto_enable=True`` gives
    it to every new customer. Several entries with one ``plan_id`` are its versions: each names itself
    with ``version_slug``, and the one with ``active=True`` is the version new customers get."""
    try:
        checked = [
            it
            if isinstance(it, PlanItem)
            else PlanItem.model_validate(
                it.model_dump(exclude_unset=True) if isinstance(it, BaseModel) else it
            )
            for it in items
        ]
    except ValidationError as exc:
        raise ConfigError(f"plan {plan_id!r}: items: {_describe(exc)}") from None
    values: dict[str, Any] = {"plan_id": plan_id, "name": name, "items": checked}
    for key, value in (
        ("description", description),
        ("group", group),
        ("add_on", add_on),
        ("auto_enable", auto_enable),
        ("price", price),
        ("free_trial", free_trial),
        ("config", config),
        ("version_slug", version_slug),
        ("active", active),
        ("version", version),
        ("internal_id", internal_id),
    ):
        if value is not None:
            values[key] = value
    if archived:
        values["archived"] = True
    try:
        return Plan.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(f"plan {plan_id!r}: {_describe(exc)}") from None


@dataclass
class PricingConfig:
    """What a config file declares, in file order, with the variable each object is bound to."""

    path: Path | None = None
    features: list[Feature] = field(default_factory=list)
    plans: list[Plan] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    """``"feature:<id>"`` / ``"plan:<id>"`` / ``"plan:<id>@<slug>"`` -> the module-level name it is bound
    to (:attr:`Plan.key`)."""

    def feature(self, feature_id: str) -> Feature:
        return next(f for f in self.features if f.feature_id == feature_id)

    def plan(self, plan_id: str, version_slug: str | None = None) -> Plan:
        """The plan's active entry, or the entry of one of its versions by slug."""
        entries = self.versions(plan_id)
        if version_slug is not None:
            return next(p for p in entries if p.version_slug == version_slug)
        return next(p for p in entries if p.is_active)

    def versions(self, plan_id: str) -> list[Plan]:
        """Every entry of a plan, in file order."""
        return [p for p in self.plans if p.plan_id == plan_id]

    @property
    def active_plans(self) -> list[Plan]:
        """One entry per plan: the version new customers get."""
        return [p for p in self.plans if p.is_active]

    def validate(self) -> None:
        """Rules across objects: unique ids, items and credit schemas naming declared features."""
        where = str(self.path) if self.path else None
        seen: set[str] = set()
        for f in self.features:
            if f.feature_id in seen:
                raise ConfigError(f"feature {f.feature_id!r}: declared twice", file=where)
            seen.add(f.feature_id)
        by_id = {f.feature_id: f for f in self.features}
        for f in self.features:
            for i, entry in enumerate(f.credit_schema or []):
                target = by_id.get(entry.metered_feature_id)
                if target is None:
                    raise ConfigError(
                        f"feature {f.feature_id!r}: credit_schema[{i}].metered_feature_id: "
                        f"{entry.metered_feature_id!r} is not a feature of this config",
                        file=where,
                    )
                if target.type != "metered" or not target.consumable:
                    raise ConfigError(
                        f"feature {f.feature_id!r}: credit_schema[{i}].metered_feature_id: "
                        f"{entry.metered_feature_id!r} must be a consumable metered feature",
                        file=where,
                    )
        for plan_id in dict.fromkeys(p.plan_id for p in self.plans):
            self._validate_versions(plan_id, where)
        for p in self.plans:
            for i, it in enumerate(p.items or []):
                target = by_id.get(it.feature_id)
                if target is None:
                    raise ConfigError(
                        f"plan {p.label}: items[{i}].feature_id: {it.feature_id!r} is not a feature "
                        "of this config",
                        file=where,
                    )
                if it.rollover is not None and not target.consumable:
                    raise ConfigError(
                        f"plan {p.label}: items[{i}].rollover: {it.feature_id!r} is not consumable",
                        file=where,
                    )

    def _validate_versions(self, plan_id: str, where: str | None) -> None:
        """A plan's entries: one, or several named versions of which exactly one is active."""
        entries = self.versions(plan_id)
        if len(entries) == 1:
            if entries[0].active is False:
                raise ConfigError(
                    f"plan {plan_id!r}: its only version is active=False; a plan's versions need one "
                    "active version (archive a plan with archived=True)",
                    file=where,
                )
            return
        slugs = [p.version_slug for p in entries]
        if None in slugs:
            raise ConfigError(
                f"plan {plan_id!r}: declared {len(entries)} times; entries of one plan are its versions "
                "and each needs a version_slug",
                file=where,
            )
        for slug in dict.fromkeys(s for s in slugs if slugs.count(s) > 1):
            raise ConfigError(f"plan {plan_id!r}: version {slug!r} declared twice", file=where)
        active = [p.version_slug for p in entries if p.is_active]
        if len(active) != 1:
            named = ", ".join(repr(s) for s in active) if active else "none"
            raise ConfigError(
                f"plan {plan_id!r}: exactly one version must be active=True (the one new customers "
                f"get); active: {named}",
                file=where,
            )
        numbers = [p.version for p in entries if p.version is not None]
        for n in dict.fromkeys(n for n in numbers if numbers.count(n) > 1):
            raise ConfigError(f"plan {plan_id!r}: two versions record server version {n}", file=where)
        for p in entries:
            if p.archived and not p.is_active:
                raise ConfigError(
                    f"plan {p.label}: archived is the plan's, set it on its active version", file=where
                )


def _config_line(exc: BaseException, path: Path) -> int | None:
    """The line of the config file where ``exc`` was raised (the innermost frame in that file)."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename).resolve() == path.resolve():
            line = frame.lineno
    return line


def load_config(path: str | Path = DEFAULT_CONFIG_FILE) -> PricingConfig:
    """Run a config file and collect the features and plans bound at its top level, in order.

    Raises :class:`ConfigError` naming the file (and line) for a mistake in it.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError("no such config file (run `autumn init` to create one)", file=str(path))
    name = f"_autumn_config_{abs(hash(path.resolve()))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError("cannot be loaded as a Python module", file=str(path))
    module = importlib.util.module_from_spec(spec)
    linecache.checkcache(str(path))
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except ConfigError as exc:
        raise ConfigError(exc.message, file=str(path), line=_config_line(exc, path)) from None
    except Exception as exc:
        line = _config_line(exc, path)
        raise ConfigError(f"{type(exc).__name__}: {exc}", file=str(path), line=line) from exc
    finally:
        sys.modules.pop(name, None)
    config = PricingConfig(path=path)
    seen: set[int] = set()

    def collect(value: Any, var: str | None) -> None:
        if isinstance(value, (Feature, Plan)) and id(value) not in seen:
            seen.add(id(value))
            if isinstance(value, Feature):
                config.features.append(value)
                key = f"feature:{value.feature_id}"
            else:
                config.plans.append(value)
                key = value.key
            if var is not None:
                config.variables.setdefault(key, var)

    for var, value in vars(module).items():
        if isinstance(value, (list, tuple)):
            for entry in value:  # e.g. ``plans = [plan(...), ...]``: declared, though not named
                collect(entry, None)
        else:
            collect(value, var)
    config.validate()
    return config
