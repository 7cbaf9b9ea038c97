"""Coupons on an invoice draft: the discount lines a reward's coupon gives (``discounts`` of a billing
change, and each later invoice of the subscription while the coupon lasts).

A coupon reduces the draft's **charges** only (positive lines): credits for unused time are never
discounted, as Autumn discounts charges and not refunds.  Its eligible lines are those of its plans
(all lines when it names none).  A percentage takes that share of what is left of the eligible lines,
rounded once, half up (:mod:`.money`); a fixed amount (or what is left of an invoice credit) takes at
most what is left of them.  Several coupons apply in the order given, each to what the earlier ones
left, so percentages stack multiplicatively.  A discount never takes the draft's total below zero.

A coupon already on the subscription (``running``) that is a percentage also takes its share back from
the invoice's credits for its plans: the unused time they credit was paid at the discounted price.

Each coupon's reduction is shared among its eligible lines in proportion to what is left of them
(largest remainder for the odd minor units) and written as one negative :attr:`LineKind.DISCOUNT`
line per plan, so every plan's lines net to what the customer pays for it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

from .invoice import InvoiceDraft, LineDiscount, LineItem, LineKind
from .money import major_to_minor, minor_to_major, round_half_up


class CouponKind(str, Enum):
    PERCENTAGE = "percentage_discount"
    FIXED = "fixed_discount"
    INVOICE_CREDITS = "invoice_credits"
    """A fixed amount to spend across invoices: the caller passes what is left of it as ``value``."""


@dataclass(frozen=True)
class Coupon:
    """A coupon as it applies to one invoice: ``value`` is a percentage (``20`` is 20%) or an amount in
    major units; ``plan_ids`` None applies it to every plan."""

    reward_id: str
    name: str
    kind: CouponKind
    value: Decimal
    plan_ids: frozenset[str] | None = None
    running: bool = False
    """Already on the subscription before this invoice: a percentage then also reduces the invoice's credits
    for its plans (the unused time it credits was paid at the discounted price)."""

    def applies_to(self, line: LineItem) -> bool:
        return self.plan_ids is None or line.plan_id in self.plan_ids


@dataclass(frozen=True)
class AppliedCoupon:
    """What one coupon took off one invoice, in minor units (0 when nothing it applies to was charged)."""

    reward_id: str
    amount: int
    eligible: bool
    """Whether the invoice charged anything the coupon applies to (a billing period it used up)."""
    returned: int = 0
    """What it took back from the invoice's credits (a running percentage: :attr:`Coupon.running`)."""

    @property
    def saved(self) -> int:
        return self.amount - self.returned


def _share(amount: int, weights: Sequence[int]) -> list[int]:
    """``amount`` split in proportion to ``weights`` (all positive), summing exactly to ``amount``."""
    total = sum(weights)
    exact = [Decimal(amount) * w / total for w in weights]
    parts = [int(e) for e in exact]  # (non-negative: int() floors)
    left = amount - sum(parts)
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in by_remainder[:left]:
        parts[i] += 1
    return parts


def _describe(coupon: Coupon, currency: str) -> str:
    if coupon.kind is CouponKind.PERCENTAGE:
        value = coupon.value.normalize()
        return f"{coupon.name} ({value:f}% off)"
    if coupon.kind is CouponKind.FIXED:
        amount = minor_to_major(major_to_minor(coupon.value, currency), currency)
        return f"{coupon.name} ({amount:f} {currency.upper()} off)"
    return f"{coupon.name} (invoice credit)"


def apply_coupons(draft: InvoiceDraft, coupons: Sequence[Coupon]) -> tuple[InvoiceDraft, list[AppliedCoupon]]:
    """``draft`` with the coupons' discount lines appended, and what each coupon took."""
    shares: dict[int, list[LineDiscount]] = {}
    left = {i: line.amount for i, line in enumerate(draft.lines) if line.amount > 0}
    credited = {i: -line.amount for i, line in enumerate(draft.lines) if line.amount < 0}
    total = draft.total
    extra: list[LineItem] = []
    applied: list[AppliedCoupon] = []
    for coupon in coupons:
        per_plan: dict[str, int] = {}  # plan -> what the coupon changes on its lines (negative: off)
        returned = 0
        if coupon.running and coupon.kind is CouponKind.PERCENTAGE:
            credits = [i for i in credited if credited[i] > 0 and coupon.applies_to(draft.lines[i])]
            returned = round_half_up(
                Decimal(sum(credited[i] for i in credits)) * min(coupon.value, Decimal(100)) / 100
            )
            for i, part in zip(credits, _share(returned, [credited[i] for i in credits]), strict=True):
                credited[i] -= part
                plan_id = draft.lines[i].plan_id
                per_plan[plan_id] = per_plan.get(plan_id, 0) + part
                if part:
                    shares.setdefault(i, []).append(_line_share(coupon, part))
            total += returned
        eligible = [i for i in left if coupon.applies_to(draft.lines[i])]
        base = sum(left[i] for i in eligible)
        if coupon.kind is CouponKind.PERCENTAGE:
            wanted = round_half_up(Decimal(base) * coupon.value / 100)
        else:
            wanted = major_to_minor(coupon.value, draft.currency)
        amount = max(0, min(wanted, base, total))
        applied.append(AppliedCoupon(coupon.reward_id, amount, eligible=bool(eligible), returned=returned))
        weighted = [i for i in eligible if left[i] > 0]
        for i, part in zip(weighted, _share(amount, [left[i] for i in weighted]), strict=True):
            left[i] -= part
            plan_id = draft.lines[i].plan_id
            per_plan[plan_id] = per_plan.get(plan_id, 0) - part
            if part:
                shares.setdefault(i, []).append(_line_share(coupon, -part))
        total -= amount
        description = _describe(coupon, draft.currency)
        extra.extend(
            LineItem(
                kind=LineKind.DISCOUNT,
                display_name=coupon.name,
                description=description,
                amount=change,
                plan_id=plan_id,
            )
            for plan_id, change in per_plan.items()
            if change != 0
        )
    lines = tuple(
        dataclasses.replace(line, discounts=line.discounts + tuple(shares[i])) if i in shares else line
        for i, line in enumerate(draft.lines)
    )
    return InvoiceDraft(lines + tuple(extra), draft.currency), applied


def _line_share(coupon: Coupon, amount: int) -> LineDiscount:
    percent = coupon.value if coupon.kind is CouponKind.PERCENTAGE else None
    return LineDiscount(coupon.reward_id, coupon.name, amount, percent)
