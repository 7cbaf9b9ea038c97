"""The two loops that execute a :mod:`~autumn_sdk._pipeline` plan: one sync, one async.

They are the only SDK code that does I/O. Each builds the request through the httpx client (so
headers, cookies and hooks configured on an injected client still apply), sends it, reports the
response or transport error back to the plan, and sleeps when the plan asks for a backoff.
``sync_sleep`` / ``async_sleep`` are module attributes so tests can replace them.
"""

from __future__ import annotations

import time
from typing import TypeVar

import httpx

from ._pipeline import CallPlan, Exchange, SendRequest, Sleep

T = TypeVar("T")

sync_sleep = time.sleep


async def async_sleep(seconds: float) -> None:
    """``asyncio.sleep``."""
    # Imported here, not at the top: a program that only uses the sync client never loads asyncio
    # (about 20 ms of a cold start, issue 13); a running async client has it loaded already.
    import asyncio

    await asyncio.sleep(seconds)


def _build(client: httpx.Client | httpx.AsyncClient, step: SendRequest) -> httpx.Request:
    return client.build_request(
        step.method,
        step.url,
        headers=step.headers,
        content=step.content,
        params=step.params,
        timeout=step.timeout,
    )


def run_sync(plan: CallPlan[T], client: httpx.Client) -> T:
    """Drive ``plan`` to completion with a blocking client."""
    outcome: Exchange | None = None
    try:
        while True:
            step = plan.send(outcome)
            if isinstance(step, Sleep):
                sync_sleep(step.seconds)
                outcome = None
                continue
            request = _build(client, step)
            try:
                outcome = Exchange(request, response=client.send(request))
            except httpx.RequestError as exc:
                outcome = Exchange(request, error=exc)
    except StopIteration as done:
        result: T = done.value
        return result
    finally:
        plan.close()


async def run_async(plan: CallPlan[T], client: httpx.AsyncClient) -> T:
    """Drive ``plan`` to completion with an async client."""
    outcome: Exchange | None = None
    try:
        while True:
            step = plan.send(outcome)
            if isinstance(step, Sleep):
                await async_sleep(step.seconds)
                outcome = None
                continue
            request = _build(client, step)
            try:
                outcome = Exchange(request, response=await client.send(request))
            except httpx.RequestError as exc:
                outcome = Exchange(request, error=exc)
    except StopIteration as done:
        result: T = done.value
        return result
    finally:
        plan.close()
