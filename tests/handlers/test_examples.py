"""The example apps work as documented: sign in, then the hooks' routes answer for that customer.

Each example is loaded from ``examples/`` and driven with its framework's test client against the
reference server (``AUTUMN_URL``/``AUTUMN_SECRET_KEY``, as a user would set them).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import flask
import pytest
from litestar.testing import TestClient as LitestarTestClient
from starlette.testclient import TestClient as StarletteTestClient

from .live import FREE_PLAN, LiveAutumn

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # frameworks resolve annotations through the module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def autumn_env(reference: LiveAutumn, monkeypatch: pytest.MonkeyPatch) -> LiveAutumn:
    monkeypatch.setenv("AUTUMN_URL", reference.url)
    monkeypatch.setenv("AUTUMN_SECRET_KEY", reference.secret_key)
    return reference


@pytest.mark.parametrize("name", ["flask_app", "starlette_app", "litestar_app"])
def test_example_signs_in_and_serves_the_hooks(name: str, autumn_env: LiveAutumn) -> None:
    app = load_example(name).create_app()
    user = autumn_env.new_customer_id("ada-lovelace")
    client: Any
    if isinstance(app, flask.Flask):
        client = app.test_client()
    elif name == "starlette_app":
        client = StarletteTestClient(app)
    else:
        client = LitestarTestClient(app)

    anonymous = client.post("/api/autumn/getOrCreateCustomer", json={})
    assert anonymous.status_code == 401

    if isinstance(app, flask.Flask):
        signed_in = client.post("/login", data={"user": user})
    else:
        signed_in = client.post("/login", data={"user": user}, follow_redirects=False)
    assert signed_in.status_code in (302, 303)

    customer = client.post("/api/autumn/getOrCreateCustomer", json={})
    assert customer.status_code == 200
    body = customer.get_json() if isinstance(app, flask.Flask) else customer.json()
    assert body["id"] == user
    assert body["name"] == user.replace("-", " ").title()

    attached = client.post("/api/autumn/attach", json={"planId": FREE_PLAN})
    assert attached.status_code == 200
    plans = client.post("/api/autumn/listPlans", json={})
    listed = plans.get_json() if isinstance(app, flask.Flask) else plans.json()
    assert FREE_PLAN in [plan["id"] for plan in listed["list"]]
