"""The pure desired state of mirrored Stripe Subscriptions: no database, no Stripe."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from reference_server.processors.stripe.catalog import PlanObjects, StripePrice, fixed_prices
from reference_server.processors.stripe.metadata import SERVER_KEYS
from reference_server.processors.stripe.subscription_state import (
    MIN_ANCHOR_DELAY_S,
    Mirror,
    anchor,
    desired_mirror,
    item_changes,
    packs,
    trial_end,
    wanted_prices,
)

NOW_MS = 1_700_000_000_000
DAY_S = 86_400


def plan(**overrides: Any) -> Any:
    values: dict[str, Any] = {
        "price": {"amount": 20, "interval": "month"},
        "items": [
            {
                "feature_id": "seats",
                "included": 5,
                "price": {"amount": 10, "interval": "month", "billing_method": "prepaid", "billing_units": 5},
            }
        ],
        "config": {"currency": "usd"},
        "version": 2,
        "env": "sandbox",
        "add_on": False,
        "group": "main",
    }
    values.update(overrides)
    return SimpleNamespace(**values)


def instance(**overrides: Any) -> Any:
    values: dict[str, Any] = {
        "pk": 7,
        "plan_id": "pro",
        "subscription_id": "sub_pro",
        "quantity": 1,
        "prepaid_quantities": {"seats": 12},
        "custom_plan": None,
        "entity_pk": None,
        "canceled_at": None,
        "expires_at": None,
        "trial_ends_at": None,
        "current_period_end": NOW_MS + 30 * DAY_S * 1000,
        "processor_metadata": None,
    }
    values.update(overrides)
    return SimpleNamespace(**values)


def objects_of(the_plan: Any) -> PlanObjects:
    prices = {p.key: StripePrice(p, f"price_{p.key.replace(':', '_')}") for p in fixed_prices(the_plan)}
    return PlanObjects("pro", 2, "prod_pro", prices)


def test_packs_count_a_started_pack_and_nothing_within_the_included() -> None:
    assert packs(Decimal(12), Decimal(5), Decimal(5)) == 2
    assert packs(Decimal(10), Decimal(5), Decimal(5)) == 1
    assert packs(Decimal(4), Decimal(5), Decimal(5)) == 0


def test_the_base_price_and_the_prepaid_packs_are_wanted() -> None:
    wanted = wanted_prices(instance(quantity=3), plan())
    assert [(price.key, quantity) for price, quantity in wanted] == [("base", 3), ("prepaid:seats", 2)]
    assert wanted_prices(instance(), plan(price={"amount": 20, "interval": "one_off"}, items=[])) == []


def test_the_catalogue_prices_are_used_and_the_metadata_names_the_instance() -> None:
    the_plan, inst = plan(), instance(entity_pk=3)
    mirror = desired_mirror(
        inst, the_plan, wanted_prices(inst, the_plan), objects_of(the_plan), "u1", "e1", NOW_MS
    )
    assert mirror.items == (
        {"key": "base", "quantity": 1, "price": "price_base"},
        {"key": "prepaid:seats", "quantity": 2, "price": "price_prepaid_seats"},
    )
    assert mirror.metadata == {
        "autumn_customer_id": "u1",
        "autumn_plan_id": "pro",
        "autumn_plan_version": "2",
        "autumn_instance_id": "sub_pro",
        "autumn_env": "sandbox",
        "autumn_entity_id": "e1",
    }
    assert (mirror.group, mirror.recurring, mirror.cancel_at_period_end, mirror.trial_end) == (
        "main",
        ("month", 1),
        False,
        None,
    )


def test_the_callers_metadata_goes_beside_the_servers_keys_which_win() -> None:
    the_plan = plan()
    inst = instance(entity_pk=3, processor_metadata={"order": "42", "autumn_plan_id": "forged"})
    mirror = desired_mirror(
        inst, the_plan, wanted_prices(inst, the_plan), objects_of(the_plan), "u1", "e1", NOW_MS
    )
    assert mirror.metadata["order"] == "42" and mirror.metadata["autumn_plan_id"] == "pro"
    assert mirror.state["metadata"] == mirror.metadata  # a change of the caller's keys is synced
    # what a caller may add is counted against every key the server sets (Stripe takes 50)
    assert set(mirror.metadata) - {"order"} == set(SERVER_KEYS["subscription"])


def test_a_customized_price_is_inline_on_the_plan_product() -> None:
    the_plan = plan()
    inst = instance(custom_plan={"price": {"amount": 25, "interval": "month"}, "items": []})
    mirror = desired_mirror(
        inst, the_plan, wanted_prices(inst, the_plan), objects_of(the_plan), "u1", None, NOW_MS
    )
    assert mirror.items == (
        {
            "key": "base",
            "quantity": 1,
            "price_data": {
                "currency": "usd",
                "product": "prod_pro",
                "unit_amount": 2500,
                "recurring": {"interval": "month", "interval_count": 1},
            },
        },
    )


def test_a_trial_and_a_cancellation_show_in_the_state() -> None:
    the_plan = plan(add_on=True)
    trial_ends = NOW_MS + 7 * DAY_S * 1000
    inst = instance(trial_ends_at=trial_ends, canceled_at=NOW_MS, expires_at=trial_ends)  # with its trial
    mirror = desired_mirror(
        inst, the_plan, wanted_prices(inst, the_plan), objects_of(the_plan), "u1", None, NOW_MS
    )
    assert mirror.group is None and mirror.cancel_at_period_end and mirror.trial_end == trial_ends
    assert mirror.state["trial_end"] == trial_ends and mirror.state["cancel_at_period_end"] is True


def _mirror(period_end: int | None, trial: int | None = None) -> Mirror:
    return Mirror(1, None, "main", (), {}, False, period_end, ("month", 1), trial)


def test_the_anchor_stays_where_stripe_takes_it() -> None:
    real_now = NOW_MS // 1000
    in_ten_days = NOW_MS + 10 * DAY_S * 1000
    assert anchor(_mirror(in_ten_days), real_now) == in_ten_days // 1000
    assert anchor(_mirror(NOW_MS), real_now) == real_now + MIN_ANCHOR_DELAY_S  # not in the past
    assert anchor(_mirror(None), real_now) == real_now + 28 * DAY_S - 60  # before the first natural date
    far = NOW_MS + 3000 * DAY_S * 1000
    assert trial_end(_mirror(None, far), real_now) == real_now + 730 * DAY_S


def test_item_changes_add_replace_resize_and_delete() -> None:
    def stripe_item(item_id: str, price_id: str, quantity: int) -> Any:
        return SimpleNamespace(id=item_id, quantity=quantity, price=SimpleNamespace(id=price_id))

    mirror = Mirror(
        1,
        None,
        "main",
        (
            {"key": "base", "quantity": 1, "price": "price_base"},
            {"key": "prepaid:seats", "quantity": 3, "price": "price_seats"},
            {"key": "prepaid:api", "quantity": 1, "price": "price_api"},
        ),
        {},
        False,
        None,
        ("month", 1),
    )
    existing = {
        "base": stripe_item("si_base", "price_old", 1),
        "prepaid:seats": stripe_item("si_seats", "price_seats", 2),
        "prepaid:gone": stripe_item("si_gone", "price_gone", 1),
    }
    assert item_changes(existing, mirror) == [
        {"id": "si_base", "quantity": 1, "metadata": {"autumn_price": "base"}, "price": "price_base"},
        {"id": "si_seats", "quantity": 3},
        {"quantity": 1, "metadata": {"autumn_price": "prepaid:api"}, "price": "price_api"},
        {"id": "si_gone", "deleted": True},
    ]
    assert len(existing) == 3  # the caller's mapping is left as it was
