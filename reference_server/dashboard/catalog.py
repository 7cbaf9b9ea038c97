"""The catalogue screens: features and plans, their versions, and editing a plan."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from reference_server.errors import ApiError
from reference_server.store.catalog_listing import active_customers_per_version, features_of, plan_versions

from .base import DashboardBase, form_number

PRICE_INTERVALS = ("month", "year", "quarter", "semi_annual", "week", "one_off")


def without_nulls(value: Any) -> Any:
    """A stored plan item as ``plans.update`` takes it back: the ``null`` fields it fills in left out."""
    if isinstance(value, dict):
        return {key: without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [without_nulls(item) for item in value]
    return value


class CatalogScreens(DashboardBase):
    """The catalogue page, its actions (new feature, feature edit, new plan) and the plan editor."""

    def catalog_page(self, request: Request, error: str | None = None, status_code: int = 200) -> Response:
        admin = self.require(request)
        env = self.env_of(request)
        with self.ctx.db.read() as conn:
            feature_rows = features_of(conn, admin.org_pk, env)
            counts = active_customers_per_version(conn, admin.org_pk, env)
            plan_rows = plan_versions(conn, admin.org_pk, env)
        grouped: dict[str, dict[str, Any]] = {}
        for row in plan_rows:
            entry = grouped.setdefault(row.id, {"id": row.id, "versions": []})
            entry["versions"].append(
                {"version": row.version, "customers": int(counts.get(row.pk, 0)), "latest": row.is_latest}
            )
            if row.is_latest:
                entry.update(
                    name=row.name,
                    price=row.price,
                    items=row.items,
                    archived=row.archived,
                    group=row.group,
                    add_on=row.add_on,
                )
        return self.render(
            request,
            "catalog.html",
            admin,
            status_code,
            env=env,
            section="catalog",
            features=feature_rows,
            plans=list(grouped.values()),
            error=error,
        )

    def catalog_action(self, request: Request, form: Mapping[str, Any]) -> Response:
        admin = self.require(request, form)
        env = self.env_of(request)
        action = str(request.path_params["action"])
        try:
            if action == "feature":
                body: dict[str, Any] = {
                    "feature_id": str(form.get("feature_id", "")).strip(),
                    "name": str(form.get("name", "")).strip(),
                    "type": str(form.get("type", "metered")),
                }
                if body["type"] == "metered":
                    body["consumable"] = form.get("consumable") == "on"
                self.ctx.ops.run(admin.org_pk, env, "features.create", body)
                return self.back(f"/{env}/catalog", "feature")
            if action == "feature-edit":
                body = {"feature_id": str(form.get("feature_id", ""))}
                for field_name in ("name", "new_feature_id"):
                    value = str(form.get(field_name, "")).strip()
                    if value:
                        body[field_name] = value
                if form.get("archived") in ("true", "false"):
                    body["archived"] = form.get("archived") == "true"
                self.ctx.ops.run(admin.org_pk, env, "features.update", body)
                return self.back(f"/{env}/catalog", "feature_saved")
            if action == "plan":
                body = {
                    "plan_id": str(form.get("plan_id", "")).strip(),
                    "name": str(form.get("name", "")).strip(),
                }
                amount = str(form.get("price", "")).strip()
                if amount:
                    body["price"] = {
                        "amount": form_number(amount, "Price"),
                        "interval": str(form.get("interval", "month")),
                    }
                feature_id = str(form.get("item_feature_id", "")).strip()
                if feature_id:
                    item: dict[str, Any] = {"feature_id": feature_id}
                    included = str(form.get("included", "")).strip()
                    if included:
                        item["included"] = form_number(included, "Included")
                        item["reset"] = {
                            "interval": str(form.get("interval", "month"))
                            if form.get("interval") != "one_off"
                            else "month"
                        }
                    body["items"] = [item]
                op = "plans.update" if form.get("mode") == "edit" else "plans.create"
                self.ctx.ops.run(admin.org_pk, env, op, body)
                return self.back(f"/{env}/catalog", "plan")
        except ApiError as exc:
            return self.catalog_page(request, exc.message, exc.status if 400 <= exc.status < 500 else 400)
        return self.not_found(request, admin)

    def plan_edit_page(
        self,
        request: Request,
        error: str | None = None,
        status_code: int = 200,
        typed: Mapping[str, str] | None = None,
    ) -> Response:
        """A plan's edit form, filled with its latest version (items as ``plans.update`` takes them),
        and how many customers each version has."""
        admin = self.require(request)
        env = self.env_of(request)
        plan_id = str(request.path_params["plan_id"])
        with self.ctx.db.read() as conn:
            rows = plan_versions(conn, admin.org_pk, env, plan_id)
            counts = active_customers_per_version(conn, admin.org_pk, env, plan_id)
        latest = next((row for row in rows if row.is_latest), None)
        if latest is None:
            return self.not_found(request, admin, f"Plan {plan_id}")
        versions = [{"version": row.version, "customers": int(counts.get(row.pk, 0))} for row in rows]
        price = latest.price or {}
        form = typed or {
            "name": latest.name or "",
            "price": "" if price.get("amount") is None else f"{price['amount']:g}",
            "interval": str(price.get("interval") or "month"),
            "items": json.dumps([without_nulls(item) for item in latest.items or []], indent=2),
        }
        return self.render(
            request,
            "plan_edit.html",
            admin,
            status_code,
            env=env,
            section="catalog",
            plan_id=plan_id,
            versions=versions,
            latest_customers=int(counts.get(latest.pk, 0)),
            intervals=PRICE_INTERVALS,
            form=form,
            error=error,
        )

    def plan_edit_save(self, request: Request, form: Mapping[str, Any]) -> Response:
        """``plans.update`` with the form's name, base price and items: the API's validation and its
        versioning (a new version when customers hold the current one)."""
        admin = self.require(request, form)
        env = self.env_of(request)
        typed = {key: str(form.get(key, "")) for key in ("name", "price", "interval", "items")}
        body: dict[str, Any] = {"plan_id": str(request.path_params["plan_id"]), "name": typed["name"].strip()}
        try:
            amount = typed["price"].strip()
            body["price"] = (
                {"amount": form_number(amount, "Base price"), "interval": typed["interval"]}
                if amount
                else None
            )
            try:
                items = json.loads(typed["items"] or "[]")
            except ValueError as exc:
                raise ApiError(400, "invalid_inputs", f"Items are not valid JSON: {exc}") from None
            if not isinstance(items, list):
                raise ApiError(400, "invalid_inputs", "Items must be a JSON list of plan items.")
            body["items"] = items
            self.ctx.ops.run(admin.org_pk, env, "plans.update", body)
        except ApiError as exc:
            status = exc.status if 400 <= exc.status < 500 else 400
            return self.plan_edit_page(request, exc.message, status, typed)
        return self.back(f"/{env}/catalog", "plan")
