"""The ``free_trial`` shorthand of attach and update, as Autumn's newer API takes it.

The official ``autumn-sdk`` 1.2.0 sends a top-level ``free_trial`` on ``billing.attach``, its preview,
``billing.setup_payment``, ``billing.update`` and its preview (an argument beyond Autumn's published spec:
``x-official-arguments`` of ``spec/autumn-sdk-1.2.0-operations.yml``): the plan's trial, as
``customize.free_trial`` gives it, which wins when both are given. :func:`fold_free_trial` moves it there
before the request is resolved, so everything downstream (the trial choice, a checkout's stored request, the
later attach of a setup) reads one place. ``free_trial: null`` attaches without the plan's trial, as
``customize.free_trial: null`` does; on an update it ends a running trial (update_free_trial.py).
"""

from __future__ import annotations

from typing import TypeVar

from autumn_sdk._generated.models import (
    AttachCustomize,
    AttachParams,
    PreviewAttachParams,
    PreviewUpdateParams,
    SetupPaymentParams,
    UpdateSubscriptionParams,
)

Params = TypeVar(
    "Params",
    AttachParams,
    PreviewAttachParams,
    SetupPaymentParams,
    UpdateSubscriptionParams,
    PreviewUpdateParams,
)


def fold_free_trial(params: Params) -> Params:
    """``params`` with its ``free_trial`` moved into ``customize`` (unless ``customize`` names one).

    The folded ``customize.free_trial`` and ``customize`` are marked as set: readers tell a ``null`` trial
    (attach: skip the plan's trial; update: end the running trial) from an absent one by
    ``model_fields_set``. (``model_copy(update=...)`` marks them too; this does not rely on it.)"""
    if "free_trial" not in params.model_fields_set:
        return params
    customize = params.customize
    if customize is not None and "free_trial" in customize.model_fields_set:
        folded = customize
    elif customize is not None:
        folded = customize.model_copy(update={"free_trial": params.free_trial})
        folded.model_fields_set.add("free_trial")
    else:
        folded = AttachCustomize.model_validate({"free_trial": params.free_trial})
    out = params.model_copy(update={"customize": folded, "free_trial": None})
    out.model_fields_set.discard("free_trial")
    out.model_fields_set.add("customize")
    return out
