"""``balances.batch_track``: up to 1000 tracks in one request, answered 202 ``{"success": true}``.

Autumn validates every item up front (each one's feature or event name must resolve), then
enqueues the items for background workers.  This server never loses an acknowledged track, so it
applies every item before it answers: all of them in one write transaction, each exactly as
``balances.track`` applies it (:func:`reference_server.service.track.track_in`: the same
deduction order, overage behaviour, event row and billing watchers).  Either the whole batch is
applied or none of it is, so a client that sees an error may retry the batch as it is.

Items are applied grouped by customer, customers in the order of their ids and each customer's items
in request order (Autumn's queue keeps one FIFO group per customer and entity), so concurrent
batches lock the customers they share in the same order and cannot deadlock.
"""

from __future__ import annotations

from autumn_sdk._generated.json_types import BatchTrackResponseJson
from autumn_sdk._generated.models import BatchTrackItem
from reference_server.errors import ApiError
from reference_server.service.context import Ctx
from reference_server.service.entities import with_seat_charge
from reference_server.service.track import track_args, track_features, track_in


def _at(index: int, exc: ApiError) -> ApiError:
    """The item's error, its message naming the item."""
    return ApiError(exc.status, exc.code, f"Item {index}: {exc.message}")


def batch_track(ctx: Ctx, items: list[BatchTrackItem]) -> BatchTrackResponseJson:
    """Apply ``items`` (1 to 1000: the router holds the body to the spec's bounds) or none of them."""
    args = []
    for index, item in enumerate(items):
        try:
            args.append(track_args(item))
        except ApiError as exc:
            raise _at(index, exc) from exc
    with ctx.db.read() as conn:
        cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
    for index, item in enumerate(items):
        try:
            track_features(cat, item)
        except ApiError as exc:
            raise _at(index, exc) from exc
    order = sorted(range(len(items)), key=lambda i: (items[i].customer_id, i))

    def apply() -> None:
        with ctx.db.write() as conn:
            for index in order:
                value, behavior, lock, expand = args[index]
                try:
                    track_in(ctx, conn, items[index], value, behavior, lock, expand)
                except ApiError as exc:
                    raise _at(index, exc) from exc

    with_seat_charge(ctx, apply)
    return {"success": True}
