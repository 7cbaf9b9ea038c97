"""Tracks of one busy customer, coalesced: the ones that arrive while another is being written wait
in the process and are written together in one statement (PostgreSQL, event-loop fast path).

Without this, a track whose subject another request holds (:class:`SubjectCache` claims one request
per customer and feature set) went to the locked path in a worker thread: several round trips under
the customer's row lock, one track at a time, so a single busy customer ran at a fraction of what
the database can do on one row.  Now the holder, when it is done, hands everything that queued
behind it to the first waiter, which computes those tracks one after another from the cached
subject and writes them with ``autumn_track_apply_batch`` (migration 0025); tracks arriving in the
meantime queue for the next batch.  Each waiter's answer is released only after its batch commits,
so an acknowledged track is never lost; a batch the database declines (a key held or claimed before,
the subject changed) sends each of its tracks down the ordinary path on its own.

Only the event loop touches this object (no lock): the holder is always a fast-path request.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Generic, TypeVar

from reference_server.store.subject_cache import CachedSubject, SubjectKey

T = TypeVar("T")
R = TypeVar("R")


class Waiter(Generic[T, R]):
    """One queued track: what it asks (``item``) and the future its request awaits."""

    def __init__(self, item: T) -> None:
        self.item = item
        self.turn: asyncio.Future[Lead[T, R] | R | None] = asyncio.get_running_loop().create_future()

    def resolve(self, result: R | None) -> None:
        """Release the request with its answer (None: it takes the ordinary path)."""
        if not self.turn.done():
            self.turn.set_result(result)


@dataclass
class Lead(Generic[T, R]):
    """The turn handed to a waiter: the subject as the last writer left it (None: read it afresh)
    and the waiters to write, itself first; it resolves every other one."""

    entry: CachedSubject | None
    batch: list[Waiter[T, R]]


class TrackBatches(Generic[T, R]):
    """Per subject key, the tracks waiting for the one being written; see the module docstring."""

    def __init__(self, max_batch: int = 256) -> None:
        self.max_batch = max_batch
        self._queues: dict[SubjectKey, list[Waiter[T, R]]] = {}

    def lead(self, key: SubjectKey) -> None:
        """The caller holds ``key`` on the fast path: later tracks of the key may queue behind it."""
        self._queues.setdefault(key, [])

    def led(self, key: SubjectKey) -> bool:
        """Whether a fast-path holder of ``key`` will hand it off (so a track may wait for it)."""
        return key in self._queues

    async def wait(self, key: SubjectKey, item: T) -> Lead[T, R] | R | None:
        """Queue behind the holder of ``key`` (only when :meth:`led`): a :class:`Lead` (write this
        batch), the answer a batch made for ``item``, or None (take the ordinary path)."""
        waiter: Waiter[T, R] = Waiter(item)
        self._queues[key].append(waiter)
        return await waiter.turn

    def hand_off(self, key: SubjectKey, entry: CachedSubject | None) -> bool:
        """The holder of ``key`` is done: hand the key (still claimed) and up to ``max_batch``
        queued tracks to the first waiter.  False when nobody waits: the caller releases the key."""
        queue = [w for w in self._queues.get(key, ()) if not w.turn.done()]  # a cancelled request left
        if not queue:
            self._queues.pop(key, None)
            return False
        batch, self._queues[key] = queue[: self.max_batch], queue[self.max_batch :]
        batch[0].turn.set_result(Lead(entry, batch))
        return True
