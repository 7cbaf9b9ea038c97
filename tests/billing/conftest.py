"""Fixtures of the billing tests: the servers the paid scenarios run against (shared helpers are in
:mod:`tests.billing.helpers`).

Every server these tests start is spec-checked (:mod:`tests.spec_conformance`): a test that
receives a response breaking the spec's schemas fails.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reference_server.clock import ManualClock
from reference_server.testing import fresh_database_url, postgres_available, run_server
from tests.spec_conformance import spec_checked_run_server, spec_conformant_responses

from .helpers import PROCESSORS, START, Api, Tenant, running_api
from .localstripe_server import localstripe

__all__ = ["spec_checked_run_server", "spec_conformant_responses"]


@pytest.fixture(scope="module")
def shared_localstripe() -> Iterator[str]:
    """One localstripe for the module's Stripe scenarios (each has its own database, so its own Stripe
    customers, Products and Prices); started once, only when a Stripe scenario runs."""
    with localstripe() as api_base:
        yield api_base


@pytest.fixture(params=PROCESSORS)
def api(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    processor, database = request.param
    with running_api(request, monkeypatch, database, processor) as client:
        client("features.create", feature_id="messages", name="Messages", type="metered", consumable=True)
        client("features.create", feature_id="seats", name="Seats", type="metered", consumable=False)
        month = {"interval": "month"}
        client(
            "plans.create",
            plan_id="free",
            name="Free",
            auto_enable=True,
            items=[{"feature_id": "messages", "included": 100, "reset": month}],
        )
        client(
            "plans.create",
            plan_id="pro",
            name="Pro",
            price={"amount": 20, "interval": "month"},
            items=[{"feature_id": "messages", "included": 1000, "reset": month}],
        )
        client(
            "plans.create",
            plan_id="premium",
            name="Premium",
            price={"amount": 50, "interval": "month"},
            items=[{"feature_id": "messages", "included": 5000, "reset": month}],
        )
        yield client


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def tenant(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Tenant]:
    if request.param == "postgres" and not postgres_available():
        pytest.skip("PostgreSQL is not available")
    with localstripe() as api_base, fresh_database_url(request.param) as url:
        monkeypatch.delenv("AUTUMN_PAYMENT_PROCESSOR", raising=False)
        monkeypatch.delenv("STRIPE_SECRET_KEY", raising=False)
        monkeypatch.setenv("STRIPE_API_BASE", api_base)
        clock = ManualClock(START)
        with run_server(url, clock=clock) as running:
            yield Tenant(running, clock, api_base)
