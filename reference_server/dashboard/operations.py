"""The API's operations, run for a signed-in admin: the same validation (the generated request models)
and the same service functions the ``/v1`` routes call, in the admin's organization and chosen env."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from autumn_sdk._generated.operations import OPERATIONS
from reference_server.api.request_guard import check_nulls, describe_validation_error
from reference_server.api.router import EXTRA_OPERATIONS
from reference_server.errors import ApiError
from reference_server.service.context import AppState, Ctx
from reference_server.store.org_tenants import tenant_of

Service = Callable[[Ctx, Any], Any]

_MODELS: dict[str, type[BaseModel] | None] = {
    **{op.qualified_name: op.params_model for op in OPERATIONS},
    **{name: model for name, _, model in EXTRA_OPERATIONS.values()},  # beyond the spec: test clocks...
}


class Operations:
    def __init__(self, state: AppState, services: Mapping[str, Service]) -> None:
        self.state = state
        self.services = dict(services)

    def ctx(self, org_pk: int, env: str, base_url: str | None = None) -> Ctx:
        with self.state.db.read() as conn:
            tenant = tenant_of(conn, org_pk, env)
        public = self.state.public_url or (base_url.rstrip("/") if base_url else "")
        return Ctx(self.state, tenant, base_url=public)  # "": the app's background URL

    def run(self, org_pk: int, env: str, name: str, raw: dict[str, Any], base_url: str | None = None) -> Any:
        """``name`` (e.g. ``billing.attach``) with ``raw`` as if it were the request's JSON body."""
        service = self.services.get(name)
        if service is None:
            raise ApiError(501, "not_implemented", f"{name} is not served by this server")
        body: Any = raw
        model = _MODELS.get(name)
        if model is not None:
            try:
                parsed = model.model_validate(raw)
            except ValidationError as exc:
                raise ApiError(400, "invalid_inputs", describe_validation_error(exc)) from exc
            check_nulls(parsed)
            # As the router: the params model, or its dump for a service still typed for a dict.
            body = parsed.model_dump(mode="json", exclude_unset=True) if _takes_dict(service) else parsed
        return service(self.ctx(org_pk, env, base_url), body)


def _takes_dict(service: Service) -> bool:
    """Whether ``service`` still reads its request as a dict rather than its params model (transitional)."""
    params = list(inspect.signature(service, eval_str=True).parameters.values())
    return len(params) > 1 and params[1].annotation == dict[str, Any]
