"""Attach's ``free_trial`` shorthand, as Autumn's newer API takes it.

The official ``autumn-sdk`` 1.2.0 sends a top-level ``free_trial`` on ``billing.attach``, its preview and
``billing.setup_payment`` (an argument beyond Autumn's published spec: ``x-official-arguments`` of
``spec/autumn-sdk-1.2.0-operations.yml``): the plan's trial for this attach, as ``customize.free_trial``
gives it, which wins when both are given. :func:`fold_free_trial` moves it there before the attach is
resolved, so everything downstream (the trial choice, a checkout's stored request, the later attach of a
setup) reads one place; ``free_trial: null`` attaches without the plan's trial, as ``customize.free_trial:
null`` does.
"""

from __future__ import annotations

from typing import TypeVar

from autumn_sdk._generated.models import (
    AttachCustomize,
    AttachParams,
    PreviewAttachParams,
    SetupPaymentParams,
)

Params = TypeVar("Params", AttachParams, PreviewAttachParams, SetupPaymentParams)


def fold_free_trial(params: Params) -> Params:
    """``params`` with its ``free_trial`` moved into ``customize`` (unless ``customize`` names one)."""
    if "free_trial" not in params.model_fields_set:
        return params
    customize = params.customize
    if customize is not None and "free_trial" in customize.model_fields_set:
        folded = customize
    elif customize is not None:
        folded = customize.model_copy(update={"free_trial": params.free_trial})
    else:
        folded = AttachCustomize.model_validate({"free_trial": params.free_trial})
    out = params.model_copy(update={"customize": folded, "free_trial": None})
    out.model_fields_set.discard("free_trial")
    return out
