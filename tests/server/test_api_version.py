"""x-api-version: the forms Autumn accepts are served, anything else is 400 invalid_api_version."""

from __future__ import annotations

import pytest

from reference_server.api.api_version import parse_api_version

from .helpers import Api

ACCEPTED = {
    "2.5.0": "2.5.0",  # what the official Python SDK 1.2.0 sends
    "2.3.0": "2.3.0",
    "2.3": "2.3.0",
    "2": "2.0.0",
    "2025-04-17": "1.1.0",
    "2025-04-17.clover": "1.1.0",
    "2026-04-01": "2.1.0",
    "beta": "beta",
    "1.1": "1.1.0",
    "0.2": "0.2.0",
    "1.4": "beta",
}
REFUSED = ["banana", "x", "9.9.9", "2.03", "2026-13-01", "2024-01-01", "v2.3.0", "-1"]


@pytest.mark.parametrize(("header", "version"), ACCEPTED.items())
def test_autumns_version_forms_resolve(header: str, version: str) -> None:
    assert parse_api_version(header) == version


@pytest.mark.parametrize("header", REFUSED)
def test_what_autumn_refuses_resolves_to_nothing(header: str) -> None:
    assert parse_api_version(header) is None


def test_the_server_serves_every_form_and_refuses_the_rest(api: Api) -> None:
    api.feature("messages")
    api.customer("u1")
    body = {"customer_id": "u1", "feature_id": "messages"}
    for header in ACCEPTED:
        for path in ("/v1/features.list", "/v1/balances.check"):  # a route and a hot path
            r = api.raw(path, body if path.endswith("check") else {}, **{"x-api-version": header})
            assert r.status_code == 200, (header, path, r.text)
    empty = api.raw("/v1/balances.check", body, **{"x-api-version": ""})
    assert empty.status_code == 200, empty.text  # an empty header is no header, as for Autumn
    for header in REFUSED:
        r = api.raw("/v1/balances.check", body, **{"x-api-version": header})
        assert r.status_code == 400, (header, r.text)
        assert r.json() == {
            "message": f"Invalid API version: {header}",
            "code": "invalid_api_version",
            "env": "sandbox",
        }
