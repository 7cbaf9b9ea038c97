"""Coupons on an invoice draft (engine/billing/discounts.py): percentage and fixed discounts of the
eligible charges, the cap at what is charged, credits left alone, stacking and rounding."""

from __future__ import annotations

from decimal import Decimal

from reference_server.engine.billing import InvoiceDraft, LineItem, LineKind
from reference_server.engine.billing.discounts import Coupon, CouponKind, apply_coupons


def _line(amount: int, plan_id: str = "pro", kind: LineKind = LineKind.BASE) -> LineItem:
    return LineItem(kind=kind, display_name=plan_id, description=plan_id, amount=amount, plan_id=plan_id)


def _coupon(
    kind: CouponKind, value: str, plan_ids: frozenset[str] | None = None, reward_id: str = "promo"
) -> Coupon:
    return Coupon(reward_id, "Promo", kind, Decimal(value), plan_ids)


def _discounts(draft: InvoiceDraft) -> list[tuple[str, int]]:
    return [(line.plan_id, line.amount) for line in draft.lines if line.kind is LineKind.DISCOUNT]


def test_percentage_of_all_charges_rounded_half_up_once() -> None:
    draft = InvoiceDraft((_line(1999), _line(1001, "addon")))
    out, applied = apply_coupons(draft, [_coupon(CouponKind.PERCENTAGE, "12.5")])
    # 12.5% of 30.00 is 3.75: shared 19.99:10.01 between the plans, one line each.
    assert out.total == 3000 - 375
    assert sum(amount for _, amount in _discounts(out)) == -375
    assert {plan for plan, _ in _discounts(out)} == {"pro", "addon"}
    assert applied[0].amount == 375 and applied[0].eligible
    half = apply_coupons(InvoiceDraft((_line(5),)), [_coupon(CouponKind.PERCENTAGE, "50")])[0]
    assert half.total == 2  # 2.5 cents off rounds half up to 3


def test_only_the_coupons_plans_are_discounted() -> None:
    draft = InvoiceDraft((_line(2000), _line(1000, "addon")))
    out, applied = apply_coupons(draft, [_coupon(CouponKind.PERCENTAGE, "50", frozenset({"addon"}))])
    assert _discounts(out) == [("addon", -500)]
    assert out.total == 2500
    none, applied = apply_coupons(draft, [_coupon(CouponKind.PERCENTAGE, "50", frozenset({"other"}))])
    assert none == draft
    assert applied[0].amount == 0 and not applied[0].eligible


def test_fixed_amount_is_capped_at_the_eligible_charges() -> None:
    draft = InvoiceDraft((_line(2000), _line(1000, "addon")))
    out, applied = apply_coupons(draft, [_coupon(CouponKind.FIXED, "15", frozenset({"addon"}))])
    assert _discounts(out) == [("addon", -1000)]
    assert applied[0].amount == 1000
    out, _ = apply_coupons(draft, [_coupon(CouponKind.FIXED, "7.505")])
    assert out.total == 3000 - 751  # major units rounded half up to the cent


def test_credits_are_never_discounted_and_the_total_never_goes_negative() -> None:
    draft = InvoiceDraft((_line(-1500, kind=LineKind.UNUSED_TIME), _line(2000, kind=LineKind.REMAINING_TIME)))
    out, applied = apply_coupons(draft, [_coupon(CouponKind.FIXED, "100")])
    assert out.total == 0
    assert applied[0].amount == 500
    pct, _ = apply_coupons(draft, [_coupon(CouponKind.PERCENTAGE, "50")])
    assert pct.total == 0  # half of the 20.00 charge, capped at the 5.00 total
    credit_only = InvoiceDraft((_line(-1500, kind=LineKind.UNUSED_TIME),))
    out, applied = apply_coupons(credit_only, [_coupon(CouponKind.PERCENTAGE, "50")])
    assert out == credit_only and not applied[0].eligible


def test_coupons_stack_on_what_the_earlier_ones_left() -> None:
    draft = InvoiceDraft((_line(10000),))
    out, applied = apply_coupons(
        draft,
        [
            _coupon(CouponKind.PERCENTAGE, "50", reward_id="a"),
            _coupon(CouponKind.PERCENTAGE, "50", reward_id="b"),
        ],
    )
    assert [a.amount for a in applied] == [5000, 2500]
    assert out.total == 2500
    out, applied = apply_coupons(
        draft, [_coupon(CouponKind.FIXED, "80", reward_id="a"), _coupon(CouponKind.INVOICE_CREDITS, "50")]
    )
    assert [a.amount for a in applied] == [8000, 2000]
    assert out.total == 0


def test_zero_decimal_currency() -> None:
    draft = InvoiceDraft((_line(1000),), "jpy")
    out, _ = apply_coupons(draft, [_coupon(CouponKind.FIXED, "300")])
    assert out.total == 700
    assert out.lines[-1].description == "Promo (300 JPY off)"


def test_a_running_percentage_also_reduces_the_credits_of_its_plans() -> None:
    draft = InvoiceDraft(
        (
            _line(-1000, "pro", LineKind.UNUSED_TIME),
            _line(2500, "premium", LineKind.REMAINING_TIME),
            _line(-300, "other", LineKind.UNUSED_TIME),
        )
    )
    coupon = Coupon("loyal", "Loyal", CouponKind.PERCENTAGE, Decimal(20), frozenset({"pro", "premium"}), True)
    out, applied = apply_coupons(draft, [coupon])
    # The $10 Pro credit was paid at 20% off: $2 of it comes back; $25 Premium less 20%.
    assert sorted(_discounts(out)) == [("premium", -500), ("pro", 200)]
    assert (applied[0].amount, applied[0].returned, applied[0].saved) == (500, 200, 300)
    assert out.total == 1200 - 300
    fresh, _ = apply_coupons(draft, [Coupon("new", "New", CouponKind.PERCENTAGE, Decimal(20))])
    assert fresh.total == 1200 - 500  # a coupon new on this invoice leaves the credits alone


def test_each_line_carries_its_share_for_previews() -> None:
    draft = InvoiceDraft((_line(1999), _line(1001, "addon"), _line(-500, kind=LineKind.UNUSED_TIME)))
    out, _ = apply_coupons(draft, [_coupon(CouponKind.PERCENTAGE, "10")])
    shares = [[(d.reward_id, d.amount, d.percent_off) for d in line.discounts] for line in out.lines[:3]]
    # 10% of 30.00 shared 19.99:10.01; the credit (a new coupon's) is left alone.
    assert shares == [[("promo", -200, Decimal(10))], [("promo", -100, Decimal(10))], []]
    assert [line.amount for line in out.lines[:3]] == [1999, 1001, -500]  # the lines before the coupon
    assert sum(d.amount for line in out.lines for d in line.discounts) == sum(_d for _, _d in _discounts(out))
