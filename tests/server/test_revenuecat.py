"""The platform's RevenueCat operations over real HTTP on SQLite and PostgreSQL.

This server reaches none of RevenueCat's servers, so no organization is ever linked: linking is
refused with a 501 that says why, syncing gets Autumn's refusal for an unlinked organization, and
reading keys gets Autumn's answer for one (no apps, no token).  An unknown organization is a 404.
The platform paths answer the platform error codes (``not_found``, ``invalid_input``, ...).
"""

from __future__ import annotations

import secrets

from .helpers import Api


def _tenant(api: Api) -> str:
    slug = "rc-" + secrets.token_hex(4)
    api(
        "platform.create_organization",
        name="Mobile Co",
        slug=slug,
        user_email="owner@mobile.test",
        env="test",
    )
    return slug


def test_get_keys_of_an_unlinked_organization_is_empty(api: Api) -> None:
    slug = _tenant(api)
    for env in ("test", "sandbox", "live"):
        assert api("platform.get_revenue_cat_keys", organization_slug=slug, env=env) == {
            "apps": [],
            "oauth_access_token": None,
        }


def test_sync_is_refused_until_revenuecat_is_linked(api: Api) -> None:
    slug = _tenant(api)
    err = api.error("platform.sync_revenue_cat", organization_slug=slug, env="test", product_ids=["pro"])
    assert err.status == 400
    assert err.code == "invalid_input"
    assert "Connect RevenueCat" in err.body["message"]


def test_link_says_it_needs_revenuecats_servers(api: Api) -> None:
    slug = _tenant(api)
    err = api.error(
        "platform.link_revenue_cat",
        organization_slug=slug,
        env="test",
        project_name="mobile",
        redirect_url="https://app.example.com/revenuecat",
    )
    assert err.status == 501
    assert "RevenueCat" in err.body["message"]
    # nothing was linked: keys stay empty
    assert api("platform.get_revenue_cat_keys", organization_slug=slug, env="test")["apps"] == []


def test_unknown_organizations_and_bad_input(api: Api) -> None:
    for op, body in (
        ("platform.get_revenue_cat_keys", {"env": "test"}),
        ("platform.sync_revenue_cat", {"env": "live"}),
        (
            "platform.link_revenue_cat",
            {"env": "live", "project_name": "p", "redirect_url": "https://x.example.com/cb"},
        ),
    ):
        err = api.error(op, organization_slug="no-such-org", **body)
        assert (err.status, err.code) == (404, "not_found"), op
    slug = _tenant(api)
    err = api.error("platform.get_revenue_cat_keys", organization_slug=slug, env="staging")
    assert err.status == 400
    err = api.error(
        "platform.link_revenue_cat", organization_slug=slug, env="test", project_name="", redirect_url="nope"
    )
    assert err.status == 400
