"""The customers screens: the list, one customer (plans, balances, usage chart) and its actions."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from reference_server.errors import ApiError
from reference_server.store.catalog_listing import current_plan_names, feature_names

from .base import DashboardBase, form_number

ENTITIES_SHOWN = 25
"""A customer's page shows the balances of its first entities (one entities.get each)."""


def balance_rows(balances: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Balances as the page shows them: each with the percentage of its grant used."""
    rows = []
    for bal in balances.values():
        granted = float(bal.get("granted") or 0)
        usage = float(bal.get("usage") or 0)
        percent = 0 if bal.get("unlimited") or granted <= 0 else min(100, round(100 * usage / granted))
        rows.append({**bal, "percent": percent})
    return rows


class CustomerScreens(DashboardBase):
    """The customers list, a customer's page, the attach preview and the customer actions."""

    def customers_page(self, request: Request) -> Response:
        admin = self.require(request)
        env = self.env_of(request)
        search = request.query_params.get("q", "").strip()[:200]
        status = request.query_params.get("status", "")
        body: dict[str, Any] = {"limit": 100}
        if search:
            body["search"] = search
        if status in ("active", "scheduled"):
            body["subscription_status"] = status
        result = self.ctx.ops.run(admin.org_pk, env, "customers.list", body)
        rows = result["list"]
        template = "customers_rows.html" if request.headers.get("hx-request") else "customers.html"
        return self.render(
            request,
            template,
            admin,
            env=env,
            section="customers",
            customers=rows,
            q=search,
            status_filter=status,
        )

    def customer_page(
        self,
        request: Request,
        error: str | None = None,
        status_code: int = 200,
        preview: Any = None,
        payment_url: str | None = None,
    ) -> Response:
        admin = self.require(request)
        env = self.env_of(request)
        customer_id = str(request.path_params["customer_id"])
        try:
            customer = self.ctx.ops.run(
                admin.org_pk,
                env,
                "customers.get",
                {"customer_id": customer_id, "expand": ["invoices", "entities", "payment_method"]},
            )
        except ApiError as exc:
            if exc.status == 404:
                return self.not_found(request, admin, f"Customer {customer_id}")
            raise
        events = self.ctx.ops.run(
            admin.org_pk, env, "events.list", {"customer_id": customer_id, "limit": 50}
        )["list"]
        feature_ids = [fid for fid in customer["balances"]]
        chart: dict[str, Any] = {"x": [], "series": {}}
        if feature_ids:
            agg = self.ctx.ops.run(
                admin.org_pk,
                env,
                "events.aggregate",
                {"customer_id": customer_id, "feature_id": feature_ids[:5], "range": "30d"},
            )
            chart["x"] = [int(p["period"]) // 1000 for p in agg["list"]]
            for fid in feature_ids[:5]:
                chart["series"][fid] = [float(p["values"].get(fid, 0) or 0) for p in agg["list"]]
        with self.ctx.db.read() as conn:
            catalog = current_plan_names(conn, admin.org_pk, env)
            feature_rows = feature_names(conn, admin.org_pk, env)
        balances = balance_rows(customer["balances"])
        entity_balances = {
            entity["id"]: balance_rows(
                self.ctx.ops.run(
                    admin.org_pk, env, "entities.get", {"customer_id": customer_id, "entity_id": entity["id"]}
                ).get("balances")
                or {}
            )
            for entity in (customer.get("entities") or [])[:ENTITIES_SHOWN]
        }
        return self.render(
            request,
            "customer.html",
            admin,
            status_code,
            env=env,
            section="customers",
            customer=customer,
            balances=balances,
            entity_balances=entity_balances,
            entities_shown=ENTITIES_SHOWN,
            events=events,
            chart=json.dumps(chart).replace("<", "\\u003c"),
            plans=catalog,
            features=feature_rows,
            error=error,
            preview=preview,
            payment_url=payment_url,
        )

    def attach_preview(self, request: Request) -> Response:
        admin = self.require(request)
        env = self.env_of(request)
        customer_id = str(request.path_params["customer_id"])
        plan_id = request.query_params.get("plan_id", "")
        try:
            preview = self.ctx.ops.run(
                admin.org_pk,
                env,
                "billing.preview_attach",
                {"customer_id": customer_id, "plan_id": plan_id},
                str(request.base_url),
            )
        except ApiError as exc:
            return self.render(
                request,
                "attach_preview.html",
                admin,
                400,
                env=env,
                error=exc.message,
                preview=None,
                customer_id=customer_id,
                plan_id=plan_id,
            )
        return self.render(
            request,
            "attach_preview.html",
            admin,
            env=env,
            preview=preview,
            customer_id=customer_id,
            plan_id=plan_id,
        )

    def customer_action(self, request: Request, form: Mapping[str, Any]) -> Response:
        admin = self.require(request, form)
        env = self.env_of(request)
        customer_id = str(request.path_params["customer_id"])
        action = str(request.path_params["action"])
        path = f"/{env}/customers/{quote(customer_id)}"
        base_url = str(request.base_url)
        try:
            if action == "attach":
                out = self.ctx.ops.run(
                    admin.org_pk,
                    env,
                    "billing.attach",
                    {"customer_id": customer_id, "plan_id": str(form.get("plan_id", ""))},
                    base_url,
                )
                if out.get("payment_url"):
                    return self.customer_page(request, payment_url=str(out["payment_url"]))
                return self.back(path, "attached")
            if action == "cancel":
                self.ctx.ops.run(
                    admin.org_pk,
                    env,
                    "billing.update",
                    {
                        "customer_id": customer_id,
                        "plan_id": str(form.get("plan_id", "")),
                        "cancel_action": "cancel_end_of_cycle",
                    },
                    base_url,
                )
                return self.back(path, "canceled")
            if action == "balance":
                amount = form_number(form.get("amount"), "Amount")
                self.ctx.ops.run(
                    admin.org_pk,
                    env,
                    "balances.update",
                    {
                        "customer_id": customer_id,
                        "feature_id": str(form.get("feature_id", "")),
                        "add_to_balance": amount,
                    },
                )
                return self.back(path, "balance")
            if action == "advance-clock":
                if env != "sandbox":
                    raise ApiError(400, "invalid_request", "Test clocks exist only in the sandbox.")
                days = form_number(form.get("days"), "Days")
                self.ctx.ops.run(
                    admin.org_pk,
                    env,
                    "customers.advance_test_clock",
                    {"customer_id": customer_id, "days": days},
                )
                return self.back(path, "clock")
        except ApiError as exc:
            if exc.status == 404 and "customer" in exc.code:
                return self.not_found(request, admin, f"Customer {customer_id}")
            return self.customer_page(
                request, error=exc.message, status_code=exc.status if 400 <= exc.status < 500 else 400
            )
        return self.not_found(request, admin)
