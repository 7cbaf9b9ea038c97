"""``discounts`` of a billing change: a coupon reward applied to the change's invoice and recorded on the
subscription, then applied to its later invoices while it lasts.

A discount names an Autumn reward (``reward_id``) or one of its promo codes (``promotion_code``, any
case); else, as Autumn's spec allows, a coupon of the organization's payment processor: a Stripe coupon
id (``reward_id``) or Stripe promotion code (``promotion_code``), read from Stripe and applied with the
same terms (:mod:`reference_server.processors.stripe.coupons`; the local processor has none).  One that
names nothing is Autumn's 400 ``invalid_request``, and so is a feature-grant reward (it grants balances,
it takes nothing off an invoice: ``referrals.redeem`` is its way in), a promo code at its
``global_max_redemption``, and a Stripe coupon or promotion code that is no longer valid, expired,
inactive or used up.  The same reward (or coupon) named twice applies once.

How long a coupon lasts is counted in the subscription's invoices that charge something it applies
to: ``one_off`` only the first, ``months`` N the first N (one per billing period, whatever the
interval), ``forever`` every one.  An ``invoice_credits`` coupon is an amount to spend: each invoice
takes what it can and the rest waits for the next ones (within its duration).  The engine computes the
lines (:mod:`reference_server.engine.billing.discounts`); this module resolves rewards and keeps the
record (:mod:`reference_server.store.subscription_discounts`).
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Connection

from autumn_sdk._generated.models import AttachDiscount, AttachRemoveDiscount
from reference_server.billing.processor_choice import processors_of
from reference_server.engine.billing import AttachQuote, InvoiceDraft, NextCycle
from reference_server.engine.billing.discounts import AppliedCoupon, Coupon, CouponKind, apply_coupons
from reference_server.engine.billing.money import major_to_minor, minor_to_major, to_decimal
from reference_server.errors import invalid
from reference_server.service.context import Ctx
from reference_server.store import rewards as rewards_repo
from reference_server.store import subscription_discounts as discounts_repo
from reference_server.store.subscription_discounts import AppliedDiscount


@dataclass(frozen=True)
class CouponTerms:
    """A coupon and how much of it is left: billing periods (None: forever) and invoice credit (minor
    units; None unless an ``invoice_credits`` coupon)."""

    reward_id: str
    name: str
    kind: CouponKind
    value: Decimal
    plan_ids: tuple[str, ...] | None
    duration_type: str
    duration_length: int | None
    periods_left: int | None
    credit_left: int | None
    reward_pk: int | None = None
    promotion_code: str | None = None
    """The promo code it was named by (its use is counted as a redemption of the code)."""
    record_pk: int | None = None
    """Its row when it is already on the subscription (``running``), None for one the request names."""
    currency: str | None = None
    """A processor coupon's fixed amount's own currency (a Stripe ``amount_off``), which the change's
    invoice must be in; None: the invoice's (a reward's amount)."""

    @property
    def running(self) -> bool:
        return self.record_pk is not None

    @property
    def lasts(self) -> bool:
        return (self.periods_left is None or self.periods_left > 0) and (
            self.credit_left is None or self.credit_left > 0
        )

    def coupon(self, currency: str) -> Coupon:
        value = self.value
        if self.kind is CouponKind.INVOICE_CREDITS and self.credit_left is not None:
            value = minor_to_major(self.credit_left, currency)
        plans = frozenset(self.plan_ids) if self.plan_ids is not None else None
        return Coupon(self.reward_id, self.name, self.kind, value, plans, running=self.running)

    def after(self, used: AppliedCoupon, mid_cycle: bool) -> CouponTerms:
        """What is left once an invoice used it (an invoice with nothing it applies to uses nothing; a
        change in the middle of a period it already discounts uses no billing period of it)."""
        if not used.eligible:
            return self
        periods = self.periods_left
        if periods is not None and not (mid_cycle and self.running):
            periods -= 1
        credit = None if self.credit_left is None else self.credit_left - used.amount
        return dataclasses.replace(self, periods_left=periods, credit_left=credit)


def _periods(duration_type: str, length: int | None) -> int | None:
    if duration_type == "forever":
        return None
    if duration_type == "months":
        return max(1, length or 1)
    return 1


def resolve_discounts(
    ctx: Ctx, conn: Connection, discounts: Sequence[AttachDiscount] | None, currency: str
) -> list[CouponTerms]:
    """The coupons the request's ``discounts`` name, in order, each once (400 for what is not one): an
    Autumn reward (by id or promo code) first, else a coupon of the organization's payment processor
    (Stripe: a coupon id or promotion code, :mod:`reference_server.processors.stripe.coupons`)."""
    if not discounts:
        return []
    chosen: list[CouponTerms] = []
    for given in discounts:
        terms = _reward_terms(ctx, conn, given, currency)
        if terms is None:
            terms = _processor_terms(ctx, conn, given)
        if any(c.reward_id == terms.reward_id for c in chosen):
            continue
        chosen.append(terms)
    return chosen


def _reward_terms(ctx: Ctx, conn: Connection, given: AttachDiscount, currency: str) -> CouponTerms | None:
    """The Autumn reward ``given`` names, None when it names none (400 for one that is not a coupon or
    a promo code used up)."""
    code: str | None = None
    if given.reward_id:
        row = rewards_repo.find_reward(conn, ctx.tenant, given.reward_id)
        if row is None:
            return None
    elif given.promotion_code:
        code = given.promotion_code
        found = rewards_repo.reward_by_promo_code(conn, ctx.tenant, code)
        if found is None:
            return None
        row, promo = found
        limit = promo.get("global_max_redemption")
        if limit is not None and rewards_repo.promo_redemptions(conn, row.pk, code) >= int(limit):
            raise invalid(f"Promotion code {code} has reached its maximum number of redemptions")
    else:
        raise invalid("discounts: each discount needs a reward_id or a promotion_code")
    if row.type not in {kind.value for kind in CouponKind}:
        raise invalid(
            f"Reward {row.id} is a feature grant, not a coupon: it cannot be applied as a discount"
            " (redeem its promo code with referrals.redeem instead)"
        )
    kind = CouponKind(row.type)
    value = to_decimal(row.discount_value)
    duration = row.duration_type or "one_off"
    return CouponTerms(
        reward_id=row.id,
        name=row.name or row.id,
        kind=kind,
        value=value,
        plan_ids=tuple(row.plan_ids) if row.plan_ids is not None else None,
        duration_type=duration,
        duration_length=row.duration_length if duration == "months" else None,
        periods_left=_periods(duration, row.duration_length),
        credit_left=major_to_minor(value, currency) if kind is CouponKind.INVOICE_CREDITS else None,
        reward_pk=int(row.pk),
        promotion_code=code,
    )


def _processor_terms(ctx: Ctx, conn: Connection, given: AttachDiscount) -> CouponTerms:
    """The payment processor's coupon ``given`` names (400 when it names none, as for an unknown
    reward, or one that cannot be applied now)."""
    processor = processors_of(ctx.state).for_org(conn, ctx.tenant.org_pk, ctx.tenant.env)
    promotion = not given.reward_id
    ref = given.reward_id or given.promotion_code or ""
    found = processor.find_coupon(conn, ctx.tenant.org_pk, ctx.tenant.env, ref, promotion, ctx.now())
    if found is None:
        if promotion:
            raise invalid(f"No reward has the promotion code {ref}")
        raise invalid(f"No coupon reward with id {ref} to apply as a discount")
    if found.problem is not None:
        raise invalid(found.problem)
    return CouponTerms(
        reward_id=found.id,
        name=found.name,
        kind=found.kind,
        value=found.value,
        plan_ids=found.plan_ids,
        duration_type=found.duration_type,
        duration_length=found.duration_length,
        periods_left=_periods(found.duration_type, found.duration_length),
        credit_left=None,
        currency=found.currency,
    )


def running_discounts(conn: Connection, customer_plan_pk: int) -> list[CouponTerms]:
    """The coupons in force on an instance."""
    return [stored_terms(s) for s in discounts_repo.discounts_of(conn, customer_plan_pk)]


def stored_terms(applied: AppliedDiscount) -> CouponTerms:
    return CouponTerms(
        reward_id=applied.reward_id,
        name=applied.name,
        kind=CouponKind(applied.type),
        value=Decimal(applied.value),
        plan_ids=applied.plan_ids,
        duration_type=applied.duration_type,
        duration_length=applied.duration_length,
        periods_left=applied.periods_left,
        credit_left=applied.credit_left,
        record_pk=applied.pk,
    )


def discount_draft(
    draft: InvoiceDraft, terms: Sequence[CouponTerms], mid_cycle: bool = False
) -> tuple[InvoiceDraft, list[CouponTerms], list[AppliedCoupon]]:
    """``draft`` with the coupons that still last applied; the coupons' terms after it; what each took.
    ``mid_cycle``: the invoice of a change within a period (not a renewal)."""
    lasting = [t for t in terms if t.lasts]
    out, used = apply_coupons(draft, [t.coupon(draft.currency) for t in lasting])
    by_id = {u.reward_id: u for u in used}
    after = [t.after(by_id[t.reward_id], mid_cycle) if t.reward_id in by_id else t for t in terms]
    taken = [by_id.get(t.reward_id, AppliedCoupon(t.reward_id, 0, eligible=False)) for t in terms]
    return out, after, taken


def refuse_unbilled(discounts: Sequence[AttachDiscount] | None, no_billing: bool) -> None:
    """400 ``invalid_request`` for ``discounts`` beside ``no_billing_changes``: a coupon discounts what
    is billed, and nothing is."""
    if discounts and no_billing:
        raise invalid("discounts cannot be used with no_billing_changes: nothing is billed")


def removed_rewards(
    discounts: Sequence[AttachDiscount] | None,
    remove: Sequence[AttachRemoveDiscount] | None,
    no_billing: bool,
) -> set[str]:
    """The reward ids ``remove_discounts`` ends on the subscription (one not on it changes nothing); 400
    ``invalid_request`` when the request also adds one of them, or with ``no_billing_changes``."""
    removed = {r.reward_id for r in remove or []}
    if not removed:
        return removed
    if no_billing:
        raise invalid("remove_discounts cannot be used with no_billing_changes: nothing is billed")
    if any(d.reward_id in removed for d in discounts or []):
        raise invalid("discounts and remove_discounts name the same reward")
    return removed


@dataclass(frozen=True)
class DiscountedChange:
    """A billing change's invoices with its coupons: those already on the subscription, then those the
    request names."""

    due: InvoiceDraft
    next_cycle: NextCycle | None
    terms: list[CouponTerms]
    """The coupons as they stand after the change's own invoice."""
    taken: list[AppliedCoupon]
    """What each took off that invoice."""
    removed: tuple[int, ...] = ()
    """The subscription's coupons ``remove_discounts`` ends (their rows)."""

    def on(self, quote: AttachQuote) -> AttachQuote:
        return dataclasses.replace(quote, due_now=self.due, next_cycle=self.next_cycle)


def discount_change(
    due: InvoiceDraft,
    next_cycle: NextCycle | None,
    running: Sequence[CouponTerms],
    named: Sequence[CouponTerms],
    billed: bool = True,
    removed: set[str] | None = None,
) -> DiscountedChange:
    """The change's invoice (and its next cycle while they last) with the coupons; ``billed`` False (a
    change made without billing it) leaves the invoices alone and only carries the coupons; ``removed``:
    the reward ids of the subscription's coupons that end now (``remove_discounts``), left off.  400 for a
    named coupon whose own currency is not the invoice's."""
    for t in named:
        if t.currency is not None and t.currency != due.currency.lower():
            raise invalid(
                f"Coupon {t.reward_id} takes {t.currency.upper()} off: it cannot discount an invoice in"
                f" {due.currency.upper()}"
            )
    ended = tuple(t.record_pk for t in running if t.record_pk is not None and t.reward_id in (removed or ()))
    running = [t for t in running if t.reward_id not in (removed or ())]
    named = [t for t in named if all(r.reward_id != t.reward_id for r in running)]
    terms = [*running, *named]
    if not billed:
        unused = [AppliedCoupon(t.reward_id, 0, False) for t in terms]
        return DiscountedChange(due, next_cycle, terms, unused, ended)
    out, after, taken = discount_draft(due, terms, mid_cycle=True)
    if next_cycle is not None:
        invoice, _, _ = discount_draft(next_cycle.invoice, after)
        next_cycle = NextCycle(next_cycle.starts_at, invoice, next_cycle.usage_lines)
    return DiscountedChange(out, next_cycle, after, taken, ended)


def record_discounts(
    ctx: Ctx,
    conn: Connection,
    customer_pk: int,
    customer_plan_pk: int,
    discounted: DiscountedChange,
    currency: str,
    now: int,
) -> None:
    """Keep the coupons on the instance the change leaves (those already on the subscription move to it),
    as its invoice left them; end those ``remove_discounts`` names; count the promo codes used."""
    for pk in discounted.removed:
        discounts_repo.end_discount(conn, pk, now)
    for terms, taken in zip(discounted.terms, discounted.taken, strict=True):
        if terms.record_pk is not None:
            discounts_repo.record_use(
                conn,
                terms.record_pk,
                amount=taken.saved,
                periods_left=terms.periods_left,
                credit_left=terms.credit_left,
                ended_at=None if terms.lasts else now,
                customer_plan_pk=customer_plan_pk,
            )
            continue
        discounts_repo.add_discount(
            conn,
            customer_pk,
            customer_plan_pk,
            {
                "reward_id": terms.reward_id,
                "name": terms.name,
                "type": terms.kind.value,
                "value": str(terms.value),
                "plan_ids": list(terms.plan_ids) if terms.plan_ids is not None else None,
                "currency": currency,
                "duration_type": terms.duration_type,
                "duration_length": terms.duration_length,
                "periods_left": terms.periods_left,
                "credit_left": terms.credit_left,
                "total_discount": taken.saved,
                "started_at": now,
                "ended_at": None if terms.lasts else now,
            },
        )
        if terms.promotion_code is not None and terms.reward_pk is not None:
            rewards_repo.insert_redemption(
                conn,
                ctx.tenant,
                {
                    "id": "rd_" + secrets.token_hex(10),
                    "kind": "promo",
                    "reward_pk": terms.reward_pk,
                    "code": terms.promotion_code.upper(),
                    "customer_pk": customer_pk,
                    "applied": True,
                    "created_at": now,
                },
            )


def discount_invoice(
    conn: Connection, customer_plan_pk: int, draft: InvoiceDraft, at: int, mid_cycle: bool = False
) -> InvoiceDraft:
    """A later invoice of the instance (a renewal, a scheduled start; ``mid_cycle``: its final usage,
    which uses no billing period) with its coupons in force, each used as the invoice uses it."""
    stored = discounts_repo.discounts_of(conn, customer_plan_pk)
    if not stored:
        return draft
    out, after, taken = discount_draft(draft, [stored_terms(s) for s in stored], mid_cycle=mid_cycle)
    for record, terms, used in zip(stored, after, taken, strict=True):
        if not used.eligible and used.returned == 0:
            continue
        discounts_repo.record_use(
            conn,
            record.pk,
            amount=used.saved,
            periods_left=terms.periods_left,
            credit_left=terms.credit_left,
            ended_at=None if terms.lasts else at,
        )
    return out
