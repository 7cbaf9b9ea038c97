"""What a quoted ``billing.update`` brings in and takes out, as its previews list them.

``billing.preview_update`` (:mod:`.update`) and each subscription of ``billing.preview_multi_update``
(:mod:`.multi_update`) answer the same ``incoming`` and ``outgoing`` for the same update, as Autumn
builds both with one ``billingPlanToChanges``; the rule is the engine's
(:func:`reference_server.engine.billing.preview.update_changes_json`), this module feeds it a quote.
"""

from __future__ import annotations

from autumn_sdk._generated.json_types import PreviewAttachIncomingJson
from reference_server.billing.plan_changes import group_default
from reference_server.billing.quoted_update import QuotedUpdate
from reference_server.engine.billing.preview import update_changes_json

Changes = tuple[list[PreviewAttachIncomingJson], list[PreviewAttachIncomingJson]]


def update_changes(q: QuotedUpdate) -> Changes:
    """``(incoming, outgoing)`` of the update ``q``: a cancelled main plan brings back its group's
    free default, as ``update_apply.apply_update`` activates or schedules it (an add-on brings none);
    a customization or another version comes in as quoted (its switch), the plan as it stood goes out."""
    plan, inst = q.plan, q.inst
    default = None if plan.add_on else group_default(q.cat, plan.group, plan.id)
    return update_changes_json(
        q.intent,
        inst.plan_id,
        q.now,
        dict(q.sub.prepaid_quantities),
        ends_at=q.ends_at,
        default_plan_id=default.id if default is not None else None,
        cancellation=(inst.canceled_at, inst.expires_at),
        new_quantities=q.quantities.prepaid_quantities if q.quantities is not None else None,
        switch=q.customization.switch if q.customization is not None else None,
    )
