"""The dashboard over real HTTP on SQLite and PostgreSQL: sign-in, CSRF, isolation, every area's actions."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator

import httpx
import pytest

from .helpers import ADMIN, RIVAL_ADMIN, Browser, Seeded, create_admin_cli, form_token, seeded_server

PAGES = [
    "/dashboard/sandbox",
    "/dashboard/sandbox/customers",
    "/dashboard/sandbox/customers/ada",
    "/dashboard/sandbox/catalog",
    "/dashboard/sandbox/developers",
    "/dashboard/live",
    "/dashboard/settings",
]
ACTIONS = [
    "/dashboard/sandbox/customers/ada/attach",
    "/dashboard/sandbox/customers/ada/balance",
    "/dashboard/sandbox/catalog/feature",
    "/dashboard/sandbox/developers/create-key",
    "/dashboard/settings",
    "/dashboard/logout",
]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def seeded(request: pytest.FixtureRequest) -> Iterator[Seeded]:
    with seeded_server(request.param) as seeded, pytest.MonkeyPatch.context() as patch:
        database_url = seeded.server.database_url
        assert create_admin_cli(database_url, "org_default", *ADMIN, patch) == 0
        assert create_admin_cli(database_url, "org_rival", *RIVAL_ADMIN, patch) == 0
        yield seeded


@pytest.fixture
def admin(seeded: Seeded) -> Iterator[Browser]:
    browser = Browser(seeded.url)
    assert browser.sign_in(*ADMIN).status_code == 303
    yield browser
    browser.close()


def test_the_cli_refuses_bad_accounts(
    seeded: Seeded, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = seeded.server.database_url
    assert create_admin_cli(url, "org_default", "short@acme.test", "too short", monkeypatch) == 1
    assert "at least 12 characters" in capsys.readouterr().err
    assert create_admin_cli(url, "org_default", ADMIN[0], "another long password", monkeypatch) == 1
    assert "already an admin" in capsys.readouterr().err
    assert create_admin_cli(url, "org_nowhere", "x@acme.test", "a long enough password", monkeypatch) == 1
    assert "unknown organization" in capsys.readouterr().err


def test_nothing_is_reachable_without_signing_in(seeded: Seeded) -> None:
    with httpx.Client(base_url=seeded.url, timeout=30) as anonymous:
        for path in PAGES:
            response = anonymous.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/dashboard/login?next=")
        for path in ACTIONS:
            assert anonymous.post(path, data={"csrf_token": "x"}).status_code == 403, path
        forged = anonymous.get(PAGES[0], headers={"Cookie": "autumn_dashboard=not-a-session"})
        assert forged.status_code == 303


def test_failed_sign_ins_are_throttled_per_account(seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    """Five wrong passwords for one account: the sixth try is refused before the password is checked,
    the right one included; another account is not affected."""
    email, password = "throttled@acme.test", "a long enough password"
    assert create_admin_cli(seeded.server.database_url, "org_default", email, password, monkeypatch) == 0
    browser = Browser(seeded.url)
    try:
        for _ in range(5):
            assert browser.sign_in(email, "wrong password!").status_code == 401
        refused = browser.sign_in(email, password)
        assert refused.status_code == 429
        assert "Too many failed sign-ins" in refused.text
        assert browser.sign_in(*ADMIN).status_code == 303
    finally:
        browser.close()


def test_sign_in_errors_and_cookie_flags(seeded: Seeded) -> None:
    browser = Browser(seeded.url)
    try:
        assert browser.sign_in(ADMIN[0], "wrong password!").status_code == 401
        assert browser.sign_in("nobody@acme.test", ADMIN[1]).status_code == 401
        page = browser.http.get("/dashboard/login")
        missing_csrf = browser.http.post("/dashboard/login", data={"email": ADMIN[0], "password": ADMIN[1]})
        assert missing_csrf.status_code == 403
        empty = browser.http.post(
            "/dashboard/login", data={"csrf_token": form_token(page.text), "email": "", "password": ""}
        )
        assert empty.status_code == 400 and "Enter your email address." in empty.text
        ok = browser.sign_in(*ADMIN)
        cookie = next(c for c in ok.headers.get_list("set-cookie") if c.startswith("autumn_dashboard="))
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/dashboard" in cookie
        assert "Secure" not in cookie  # plain http on a loopback address: local development only
        # Any other host gets a Secure cookie.
        remote_host = {"Host": "dashboard.example.com"}
        page = httpx.get(f"{seeded.url}/dashboard/login", headers=remote_host)
        login_cookie = page.headers["set-cookie"].split(";")[0]
        assert "Secure" in page.headers["set-cookie"]
        remote = httpx.post(
            f"{seeded.url}/dashboard/login",
            headers={**remote_host, "Cookie": login_cookie},
            data={"csrf_token": form_token(page.text), "email": ADMIN[0], "password": ADMIN[1]},
        )
        remote_cookie = next(
            c for c in remote.headers.get_list("set-cookie") if c.startswith("autumn_dashboard=")
        )
        assert "Secure" in remote_cookie and "HttpOnly" in remote_cookie
        # Signing out ends the session on the server: the old cookie no longer works.
        old = dict(browser.http.cookies)
        assert browser.post("/dashboard/logout").status_code == 303
        with httpx.Client(base_url=seeded.url, cookies=old) as replaying:
            replay = replaying.get("/dashboard/sandbox")
        assert replay.status_code == 303 and "/dashboard/login" in replay.headers["location"]
    finally:
        browser.close()


def test_csrf_and_cross_origin_posts_are_refused(seeded: Seeded, admin: Browser) -> None:
    before = seeded.api("customers.get", customer_id="bob").json()["balances"]["messages"]["remaining"]
    no_token = admin.http.post(
        "/dashboard/sandbox/customers/bob/balance", data={"feature_id": "messages", "amount": "5"}
    )
    wrong = admin.http.post(
        "/dashboard/sandbox/customers/bob/balance",
        data={"csrf_token": "forged", "feature_id": "messages", "amount": "5"},
    )
    cross = admin.http.post(
        "/dashboard/sandbox/customers/bob/balance",
        headers={"Origin": "https://evil.example"},
        data={"csrf_token": admin.csrf, "feature_id": "messages", "amount": "5"},
    )
    for response in (no_token, wrong, cross):
        assert response.status_code == 403 and "Refused" in response.text
    after = seeded.api("customers.get", customer_id="bob").json()["balances"]["messages"]["remaining"]
    assert after == before
    header = admin.http.post(
        "/dashboard/sandbox/customers/bob/balance",
        headers={"X-CSRF-Token": admin.csrf},
        data={"feature_id": "messages", "amount": "5"},
    )
    assert header.status_code == 303  # htmx sends the token as a header


def test_one_organization_never_sees_another(seeded: Seeded, admin: Browser) -> None:
    assert admin.http.get("/dashboard/sandbox/customers/rival_customer").status_code == 404
    listing = admin.http.get("/dashboard/sandbox/customers", params={"q": "rival"}).text
    assert "secret@rival.test" not in listing
    assert (
        admin.post(
            "/dashboard/sandbox/customers/rival_customer/balance", feature_id="messages", amount="1"
        ).status_code
        == 404
    )
    rival = Browser(seeded.url)
    try:
        assert rival.sign_in(*RIVAL_ADMIN).status_code == 303
        assert rival.http.get("/dashboard/sandbox/customers/ada").status_code == 404
        own = rival.http.get("/dashboard/sandbox/customers").text
        assert "rival_customer" in own and "ada@example.com" not in own
        catalog = rival.http.get("/dashboard/sandbox/catalog").text
        assert 'id="plan-pro"' not in catalog
    finally:
        rival.close()


def test_customers_search_page_and_actions(seeded: Seeded, admin: Browser) -> None:
    found = admin.http.get("/dashboard/sandbox/customers", params={"q": "ada@"})
    assert "Ada Lovelace" in found.text and "bob@example.com" not in found.text
    fragment = admin.http.get(
        "/dashboard/sandbox/customers", params={"q": "bob"}, headers={"HX-Request": "true"}
    )
    assert fragment.text.lstrip().startswith("<tr>") and "bob@example.com" in fragment.text
    seeded.api(
        "customers.update",
        customer_id="ada",
        billing_controls={"spend_limits": [{"feature_id": "messages", "enabled": True, "overage_limit": 50}]},
    ).raise_for_status()
    page = admin.http.get("/dashboard/sandbox/customers/ada").text
    assert 'id="remaining-messages">70' in page and 'aria-valuenow="30"' in page
    assert "overage limit: 50" in page.split('id="billing-controls"', 1)[1]
    assert 'id="usage-data"' in page and "messages" in page
    expected = seeded.api("billing.preview_attach", customer_id="ada", plan_id="pro").json()
    preview = admin.http.get("/dashboard/sandbox/customers/ada/attach-preview", params={"plan_id": "pro"})
    assert f"{float(expected['total']):.2f}" in preview.text and 'id="confirm-attach"' in preview.text
    refused = admin.http.get("/dashboard/sandbox/customers/ada/attach-preview", params={"plan_id": "nope"})
    assert refused.status_code == 400 and 'id="preview-error"' in refused.text
    attached = admin.post("/dashboard/sandbox/customers/ada/attach", plan_id="pro")
    # Ada has no card: the API hands out a checkout link, shown to the admin.
    assert (
        attached.status_code == 200 and 'id="payment-url"' in attached.text and "/checkout/" in attached.text
    )
    adjusted = admin.post("/dashboard/sandbox/customers/ada/balance", feature_id="messages", amount="25")
    assert adjusted.status_code == 303
    assert seeded.api("customers.get", customer_id="ada").json()["balances"]["messages"]["remaining"] == 95
    bad = admin.post("/dashboard/sandbox/customers/ada/balance", feature_id="nope", amount="x")
    assert bad.status_code == 400 and "must be a number" in bad.text
    unknown_feature = admin.post("/dashboard/sandbox/customers/ada/balance", feature_id="nope", amount="1")
    assert unknown_feature.status_code in (400, 404) and 'id="error"' in unknown_feature.text
    clock = admin.post("/dashboard/sandbox/customers/bob/advance-clock", days="40")
    assert clock.status_code == 303
    live_clock = admin.post("/dashboard/live/customers/bob/advance-clock", days="1")
    assert live_clock.status_code == 404  # bob is a sandbox customer: live has no such customer


def test_cancel_through_the_api_code_path(seeded: Seeded, admin: Browser) -> None:
    setup = seeded.api("billing.setup_payment", customer_id="bob").json()
    httpx.post(setup["url"], data={"card_number": "4242424242424242", "expiry": "12/34", "cvc": "123"})
    attached = admin.post(
        "/dashboard/sandbox/customers/bob/attach", plan_id="pro"
    )  # a card on file: charged now
    assert attached.status_code == 303 and "notice=attached" in attached.headers["location"]
    invoices = seeded.api("customers.get", customer_id="bob", expand=["invoices"]).json()["invoices"]
    assert [(i["total"], i["status"]) for i in invoices] == [(20, "paid")]
    page = admin.http.get("/dashboard/sandbox/customers/bob").text
    assert 'id="cancel-pro"' in page
    assert admin.post("/dashboard/sandbox/customers/bob/cancel", plan_id="pro").status_code == 303
    subs = {s["plan_id"]: s for s in seeded.api("customers.get", customer_id="bob").json()["subscriptions"]}
    assert subs["pro"]["canceled_at"] is not None


def test_catalog_counts_versions_and_validates_like_the_api(seeded: Seeded, admin: Browser) -> None:
    page = admin.http.get("/dashboard/sandbox/catalog").text
    assert 'id="plan-free-v1">v1: ' in page and 'id="plan-pro"' in page
    created = admin.post(
        "/dashboard/sandbox/catalog/feature", feature_id="seats", name="Seats", type="metered"
    )
    assert created.status_code == 303
    assert seeded.api("features.get", feature_id="seats").status_code == 200
    duplicate = admin.post(
        "/dashboard/sandbox/catalog/feature", feature_id="seats", name="Seats", type="metered"
    )
    api_refusal = seeded.api(
        "features.create", feature_id="seats", name="Seats", type="metered", consumable=False
    )
    assert duplicate.status_code == api_refusal.status_code
    assert api_refusal.json()["message"] in duplicate.text.replace("&#39;", "'").replace(
        "&#34;", '"'
    ).replace("&quot;", '"')
    plan = admin.post(
        "/dashboard/sandbox/catalog/plan",
        mode="create",
        plan_id="team",
        name="Team",
        price="99",
        interval="month",
        item_feature_id="messages",
        included="5000",
    )
    assert plan.status_code == 303
    team = seeded.api("plans.get", plan_id="team").json()
    assert team["price"]["amount"] == 99 and team["items"][0]["included"] == 5000
    invalid = admin.post("/dashboard/sandbox/catalog/plan", mode="create", plan_id="", name="")
    assert invalid.status_code == 400 and 'id="error"' in invalid.text


def test_a_feature_is_renamed_and_archived_through_features_update(seeded: Seeded, admin: Browser) -> None:
    seeded.api(
        "features.create", feature_id="exports", name="Exports", type="metered", consumable=True
    ).raise_for_status()
    saved = admin.post(
        "/dashboard/sandbox/catalog/feature-edit", feature_id="exports", name="CSV exports", archived="true"
    )
    assert saved.status_code == 303 and saved.headers["location"].endswith("notice=feature_saved")
    feature = seeded.api("features.get", feature_id="exports").json()
    assert feature["name"] == "CSV exports" and feature["archived"] is True
    page = admin.http.get("/dashboard/sandbox/catalog").text
    assert re.search(r'id="feature-exports">.*?exports · archived', page)
    renamed = admin.post(
        "/dashboard/sandbox/catalog/feature-edit", feature_id="exports", new_feature_id="csv", archived=""
    )
    assert renamed.status_code == 303
    assert seeded.api("features.get", feature_id="csv").json()["archived"] is True  # left unchanged
    unarchived = admin.post("/dashboard/sandbox/catalog/feature-edit", feature_id="csv", archived="false")
    assert unarchived.status_code == 303
    assert seeded.api("features.get", feature_id="csv").json()["archived"] is False
    taken = admin.post("/dashboard/sandbox/catalog/feature-edit", feature_id="csv", new_feature_id="messages")
    api_refusal = seeded.api("features.update", feature_id="csv", new_feature_id="messages")
    assert taken.status_code == api_refusal.status_code and api_refusal.status_code >= 400
    assert api_refusal.json()["message"] in html.unescape(taken.text)


def test_a_customers_page_shows_each_entitys_balances(seeded: Seeded, admin: Browser) -> None:
    """An entity's balances as entities.get answers them: the customer's plus its own grants."""
    seeded.api(
        "features.create", feature_id="desks", name="Desks", type="metered", consumable=False
    ).raise_for_status()
    seeded.api("customers.get_or_create", customer_id="erin").raise_for_status()
    seeded.api(
        "entities.create", customer_id="erin", entity_id="desk_1", feature_id="desks", name="Desk one"
    ).raise_for_status()
    seeded.api(
        "balances.create", customer_id="erin", entity_id="desk_1", feature_id="messages", included_grant=20
    ).raise_for_status()
    entity = seeded.api("entities.get", customer_id="erin", entity_id="desk_1").json()
    granted = entity["balances"]["messages"]["granted"]
    page = admin.http.get("/dashboard/sandbox/customers/erin")
    assert page.status_code == 200
    shown = re.search(r'<ul class="entity-balances" id="entity-balances-desk_1">(.*?)</ul>', page.text)
    assert shown is not None
    assert f"messages: 0 of {granted}" in shown.group(1) and f"{granted} left" in shown.group(1)


def test_a_plan_is_edited_whole_with_its_items_prefilled(seeded: Seeded, admin: Browser) -> None:
    """The edit page shows the latest version (items as JSON, as plans.update takes them) and the
    customers per version; saving goes through plans.update, so a plan customers hold gets a new
    version, and a refusal keeps what the admin typed."""
    seeded.api(
        "plans.create",
        plan_id="edited",
        name="Edited",
        items=[{"feature_id": "messages", "included": 300, "reset": {"interval": "month"}}],
    ).raise_for_status()
    seeded.api("customers.get_or_create", customer_id="edith").raise_for_status()
    seeded.api("billing.attach", customer_id="edith", plan_id="edited").raise_for_status()
    page = admin.http.get("/dashboard/sandbox/catalog/plans/edited")
    assert page.status_code == 200
    items_json = re.search(r'<textarea id="edit-items"[^>]*>([^<]*)</textarea>', page.text)
    assert items_json is not None
    prefilled = json.loads(html.unescape(items_json.group(1)))
    assert prefilled == [
        {
            "feature_id": "messages",
            "included": 300,
            "unlimited": False,
            "reset": {"interval": "month", "interval_count": 1},
        }
    ]
    assert 'id="version-warning"' in page.text and "v1: 1 customer" in page.text
    two_items = [{**prefilled[0], "included": 500}, {"feature_id": "sso"}]
    saved = admin.post(
        "/dashboard/sandbox/catalog/plans/edited",
        name="Edited plus",
        price="15",
        interval="month",
        items=json.dumps(two_items),
    )
    assert saved.status_code == 303
    latest = seeded.api("plans.get", plan_id="edited").json()
    assert latest["name"] == "Edited plus" and latest["price"]["amount"] == 15
    assert [item["feature_id"] for item in latest["items"]] == ["messages", "sso"]
    assert latest["version"] == 2  # edith keeps version 1
    again = admin.http.get("/dashboard/sandbox/catalog/plans/edited").text
    assert "v1: 1 customer" in again and "v2: 0 customers" in again
    not_json = admin.post("/dashboard/sandbox/catalog/plans/edited", name="X", price="", items="[{")
    assert not_json.status_code == 400 and "Items are not valid JSON" in not_json.text
    assert "[{" in html.unescape(not_json.text)  # what was typed is kept
    unknown = json.dumps([{"feature_id": "nope", "included": 1}])
    refused = admin.post("/dashboard/sandbox/catalog/plans/edited", name="X", price="", items=unknown)
    api_refusal = seeded.api("plans.update", plan_id="edited", items=[{"feature_id": "nope", "included": 1}])
    assert refused.status_code == api_refusal.status_code == 404
    assert api_refusal.json()["message"] in html.unescape(refused.text)
    assert admin.http.get("/dashboard/sandbox/catalog/plans/no_such_plan").status_code == 404


def test_developers_keys_reveal_once_and_revoke(seeded: Seeded, admin: Browser) -> None:
    created = admin.post("/dashboard/sandbox/developers/create-key", name="ci")
    secret = re.search(r'id="revealed-secret">([^<]+)<', created.text)
    assert secret is not None
    key = secret.group(1)
    key_id = re.search(r"New key <strong>([^<]+)</strong>", created.text)
    assert key_id is not None
    assert seeded.api("customers.list", key=key).status_code == 200
    listing = admin.http.get("/dashboard/sandbox/developers").text
    assert key not in listing and f'id="key-{key_id.group(1)}"' in listing  # shown once, never again
    assert admin.post("/dashboard/sandbox/developers/revoke-key", key_id=key_id.group(1)).status_code == 303
    assert seeded.api("customers.list", key=key).status_code == 401
    rival_key_id = admin.post("/dashboard/sandbox/developers/revoke-key", key_id="key_of_someone_else")
    assert rival_key_id.status_code == 404


def test_branding_from_settings_reaches_the_hosted_pages(seeded: Seeded, admin: Browser) -> None:
    http_logo = admin.post(
        "/dashboard/settings", name="Acme", logo_url="http://cdn.example.com/a.png", website_url=""
    )
    assert http_logo.status_code == 400 and "https" in http_logo.text
    saved = admin.post(
        "/dashboard/settings",
        name="Acme Cloud",
        logo_url="https://cdn.example.com/acme.png",
        website_url="https://app.acme.test/",
    )
    assert saved.status_code == 303
    portal = seeded.api("billing.open_customer_portal", customer_id="ada").json()["url"]
    page = httpx.get(portal).text
    assert 'id="brand-name">Acme Cloud<' in page and 'src="https://cdn.example.com/acme.png"' in page
    assert 'href="https://app.acme.test/"' in page


def test_dashboard_pages_send_the_security_headers(admin: Browser) -> None:
    for path in [*PAGES, "/dashboard/login"]:
        response = admin.http.get(path)
        assert response.status_code == 200, path
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
    script = admin.http.get("/dashboard/static/htmx.min.js")
    assert script.status_code == 200 and script.headers["x-content-type-options"] == "nosniff"


def test_recent_api_requests_are_logged_per_organization_and_bounded(
    seeded: Seeded, admin: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert seeded.api("customers.get", customer_id="nobody_here").status_code == 404
    assert seeded.api("customers.get", customer_id="ada").status_code == 200
    assert seeded.api("events.list", key=seeded.rival_key).status_code == 200
    page = admin.http.get("/dashboard/sandbox/developers").text
    requests_table = page.split('id="api-requests"', 1)[1]
    assert "POST /v1/customers.get" in requests_table
    assert ">404<" in requests_table and ">200<" in requests_table
    assert "events.list" not in requests_table.split("</table>", 1)[0]  # the rival's request is theirs
    monkeypatch.setattr("reference_server.request_log.REQUEST_LOG_KEEP", 3)
    for _ in range(5):
        seeded.api("customers.get", customer_id="ada")
    trimmed = admin.http.get("/dashboard/sandbox/developers").text.split('id="api-requests"', 1)[1]
    assert trimmed.split("</table>", 1)[0].count("<tr><td>") == 3


def test_webhook_deliveries_are_listed_and_resent(seeded: Seeded, admin: Browser) -> None:
    endpoint = seeded.api(
        "webhooks.create_endpoint", url="http://127.0.0.1:9/hook", event_types=["billing.updated"]
    )
    assert endpoint.status_code in (200, 201), endpoint.text
    seeded.api("customers.get_or_create", customer_id="erin", email="erin@example.com").raise_for_status()
    setup = seeded.api("billing.setup_payment", customer_id="erin").json()
    httpx.post(setup["url"], data={"card_number": "4242424242424242", "expiry": "12/34", "cvc": "123"})
    seeded.api("billing.attach", customer_id="erin", plan_id="pro").raise_for_status()
    page = admin.http.get("/dashboard/sandbox/developers").text
    assert "http://127.0.0.1:9/hook" in page
    deliveries = page.split('id="deliveries"', 1)[1].split("</table>", 1)[0]
    assert "billing.updated" in deliveries and "erin" in deliveries  # the payload is shown
    delivery = re.search(r'id="delivery-(\d+)"', deliveries)
    assert delivery is not None
    resent = admin.post("/dashboard/sandbox/developers/resend", delivery=delivery.group(1))
    assert resent.status_code == 303 and "notice=resent" in resent.headers["location"]
    rival = Browser(seeded.url)
    try:
        assert rival.sign_in(*RIVAL_ADMIN).status_code == 303
        assert "billing.updated" not in rival.http.get("/dashboard/sandbox/developers").text
        assert (
            rival.post("/dashboard/sandbox/developers/resend", delivery=delivery.group(1)).status_code == 404
        )
    finally:
        rival.close()
