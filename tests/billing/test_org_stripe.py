"""Each organization's own Stripe key: one tenant pays through Stripe (localstripe), another stays local."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest
import stripe

from reference_server.clock import ManualClock
from reference_server.processors.local.processor import LocalProcessor
from reference_server.processors.registry import Processors, ProcessorSettings
from reference_server.processors.stripe.processor import StripeProcessor
from reference_server.testing import RunningServer, run_server

from .helpers import attach_paid_plan, ms, new_org, org_call, platform
from .localstripe_server import localstripe

START = ms(2026, 4, 1)
ORG_KEY = "sk_test_tenant_a"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[RunningServer, str]]:
    """A server whose default processor is local; only STRIPE_API_BASE points Stripe at localstripe."""
    with localstripe() as api_base:
        monkeypatch.delenv("AUTUMN_PAYMENT_PROCESSOR", raising=False)
        monkeypatch.delenv("STRIPE_SECRET_KEY", raising=False)
        monkeypatch.setenv("STRIPE_API_BASE", api_base)
        with run_server(clock=ManualClock(START)) as running:
            yield running, api_base


def test_an_org_with_a_stripe_key_pays_through_stripe_while_another_stays_local(
    server: tuple[RunningServer, str],
) -> None:
    running, api_base = server
    stripe_slug, stripe_org = new_org(running)
    _local_slug, local_org = new_org(running)
    saved = platform(
        running,
        "organizations/stripe",
        organization_slug=stripe_slug,
        test_secret_key=ORG_KEY,
        test_webhook_secret="whsec_a",
    )
    assert saved.status_code == 200, saved.text

    on_stripe = attach_paid_plan(running, stripe_org, on_stripe=True)
    on_local = attach_paid_plan(running, local_org)

    client = stripe.StripeClient(ORG_KEY, base_addresses={"api": api_base})
    stripe_customer = client.v1.customers.retrieve(on_stripe["processors"]["stripe"]["id"])
    assert stripe_customer.email == "ada@example.com"
    (stripe_invoice,) = on_stripe["invoices"]
    paid = client.v1.invoices.retrieve(stripe_invoice["stripe_id"])
    assert (paid.amount_paid, paid.status, paid.customer) == (2000, "paid", stripe_customer.id)

    assert "processors" not in on_local
    (local_invoice,) = on_local["invoices"]
    assert local_invoice["status"] == "paid" and not local_invoice["stripe_id"].startswith("pi_")
    assert [p["plan_id"] for p in on_stripe["subscriptions"]] == ["pro"]
    assert [p["plan_id"] for p in on_local["subscriptions"]] == ["pro"]
    assert stripe.api_key is None  # keys travel per request, never through the global


def test_platform_rejects_a_key_of_the_wrong_mode(server: tuple[RunningServer, str]) -> None:
    running, _ = server
    slug, _key = new_org(running)
    wrong = platform(running, "organizations/stripe", organization_slug=slug, test_secret_key="sk_live_x")
    assert wrong.status_code == 400 and "test_secret_key" in wrong.json()["message"]


def test_router_gives_each_org_its_own_client_and_connected_accounts_the_platform_key(
    server: tuple[RunningServer, str],
) -> None:
    running, _ = server
    (slug_a, _), (slug_b, _), (slug_c, _) = new_org(running), new_org(running), new_org(running)
    platform(running, "organizations/stripe", organization_slug=slug_a, test_secret_key="sk_test_a")
    platform(running, "organizations/stripe", organization_slug=slug_b, test_secret_key="sk_test_b")
    platform(running, "organizations/stripe", organization_slug=slug_c, test_account_id="acct_c")
    state = running.app.state.autumn
    router = state.processors
    assert isinstance(router, Processors)
    settings = ProcessorSettings(values={**router.settings.values, "STRIPE_SECRET_KEY": "sk_test_platform"})
    with_platform_key = Processors(settings, default=LocalProcessor())
    with state.db.read() as conn:
        orgs = {
            slug.rsplit("_", 1)[1]: int(pk)
            for pk, slug in conn.exec_driver_sql("SELECT pk, slug FROM organizations").all()
            if "_" in slug
        }
        a, b = (router.for_org(conn, orgs[s], "sandbox") for s in (slug_a, slug_b))
        assert isinstance(a, StripeProcessor) and isinstance(b, StripeProcessor) and a is not b
        assert (a.secret_key, b.secret_key) == ("sk_test_a", "sk_test_b")
        assert router.for_org(conn, orgs[slug_a], "sandbox") is a  # clients are reused
        assert router.for_org(conn, orgs[slug_a], "live") is router.default  # no live key saved
        assert router.for_org(conn, orgs[slug_c], "sandbox") is router.default  # no platform key here
        connected = with_platform_key.for_org(conn, orgs[slug_c], "sandbox")
        assert isinstance(connected, StripeProcessor)
        assert (connected.secret_key, connected.stripe_account) == ("sk_test_platform", "acct_c")


def test_the_orgs_stripe_account_delivers_signed_events_to_its_endpoint(
    server: tuple[RunningServer, str],
) -> None:
    """localstripe signs and posts ``payment_intent.succeeded`` itself; the endpoint records it once."""
    running, api_base = server
    slug, key = new_org(running)
    saved = platform(
        running,
        "organizations/stripe",
        organization_slug=slug,
        test_secret_key=ORG_KEY,
        test_webhook_secret="whsec_from_localstripe",
    )
    org_id = saved.json()["organization"]["id"]
    hook = {
        "url": f"{running.url}/webhooks/stripe/{org_id}/sandbox",
        "secret": "whsec_from_localstripe",
        "events": ["payment_intent.succeeded"],
    }
    assert httpx.post(f"{api_base}/_config/webhooks/autumn", json=hook).status_code == 200
    customer = attach_paid_plan(running, key, on_stripe=True)
    (invoice,) = customer["invoices"]

    state = running.app.state.autumn
    delivered: list[tuple[str, str]] = []
    waiting = threading.Event()
    for _ in range(300):  # localstripe posts about a second after the charge
        with state.db.read() as conn:
            delivered = [
                (str(kind), str(event_id))
                for kind, event_id in conn.exec_driver_sql("SELECT event_type, event_id FROM stripe_events")
            ]
        if delivered:
            break
        waiting.wait(0.1)
    assert [kind for kind, _ in delivered] == ["payment_intent.succeeded"]
    assert delivered[0][1].startswith("evt_")
    # Already collected when the charge returned: the event leaves the paid invoice as it was.
    after = org_call(running, key, "customers.get", customer_id="u1", expand=["invoices"])["invoices"]
    assert [(i["stripe_id"], i["status"]) for i in after] == [(invoice["stripe_id"], "paid")]
