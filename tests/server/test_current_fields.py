"""Fields of Autumn's current API (2026-08-22) on existing operations, acted on by the server."""

from __future__ import annotations

from typing import Any

from .conftest import Api


def _ids(page: dict[str, Any]) -> list[str]:
    return [str(c["id"]) for c in page["list"]]


def _customers_a_second_apart(api: Api, count: int) -> list[int]:
    created = []
    for i in range(count):
        created.append(int(api.customer(f"c{i}")["created_at"]))
        api.advance(1000)
    return created


def test_customers_list_sorts_newest_first_by_default(api: Api) -> None:
    _customers_a_second_apart(api, 5)
    assert _ids(api("customers.list")) == ["c4", "c3", "c2", "c1", "c0"]
    assert _ids(api("customers.list", sort_order="desc")) == ["c4", "c3", "c2", "c1", "c0"]
    assert _ids(api("customers.list", sort_order="asc")) == ["c0", "c1", "c2", "c3", "c4"]


def test_customers_list_pages_in_either_order(api: Api) -> None:
    _customers_a_second_apart(api, 5)
    api.customer("c5")  # c5 and c6 share a created_at: the tie is broken by creation order
    api.customer("c6")
    oldest_first = [f"c{i}" for i in range(7)]
    for order, expected in (("asc", oldest_first), ("desc", oldest_first[::-1])):
        seen: list[str] = []
        cursor = ""
        while True:
            page = api("customers.list", limit=2, start_cursor=cursor, sort_order=order)
            seen += _ids(page)
            if page["next_cursor"] is None:
                break
            cursor = str(page["next_cursor"])
        assert seen == expected, order


def test_customers_list_created_at_range_is_inclusive(api: Api) -> None:
    created = _customers_a_second_apart(api, 5)
    rng = {"start": created[1], "end": created[3]}
    assert _ids(api("customers.list", created_at_range=rng)) == ["c3", "c2", "c1"]
    assert _ids(api("customers.list", created_at_range=rng, sort_order="asc")) == ["c1", "c2", "c3"]
    assert _ids(api("customers.list", created_at_range={"start": created[3]})) == ["c4", "c3"]
    assert _ids(api("customers.list", created_at_range={"end": created[0]})) == ["c0"]
    assert _ids(api("customers.list", created_at_range={"start": created[4] + 1})) == []
    assert _ids(api("customers.list", created_at_range={})) == ["c4", "c3", "c2", "c1", "c0"]
    page = api("customers.list", created_at_range=rng, limit=2)
    assert _ids(page) == ["c3", "c2"]
    rest = api("customers.list", created_at_range=rng, limit=2, start_cursor=page["next_cursor"])
    assert (_ids(rest), rest["next_cursor"]) == (["c1"], None)


def test_customers_list_bad_sort_and_cursor_are_400(api: Api) -> None:
    error = api.error("customers.list", sort_order="sideways")
    assert error.status == 400
    error = api.error("customers.list", start_cursor="not-a-cursor")
    assert (error.status, error.code) == (400, "invalid_inputs")


def test_entities_list_filters_by_customer(api: Api) -> None:
    api.feature("seats", "metered", consumable=False)
    for cid in ("a", "b"):
        api.customer(cid)
        for n in (1, 2):
            api("entities.create", customer_id=cid, entity_id=f"{cid}-e{n}", feature_id="seats")
    listed = api("entities.list", customer_id="b")["list"]
    assert [(e["id"], e["customer_id"]) for e in listed] == [("b-e1", "b"), ("b-e2", "b")]
    assert len(api("entities.list")["list"]) == 4
    assert api.error("entities.list", customer_id="nobody").code == "customer_not_found"
