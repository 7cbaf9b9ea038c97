"""Verify and parse the webhooks Autumn sends (Svix / Standard Webhooks signatures).

    from autumn_sdk.webhooks import Webhook

    event = Webhook("whsec_...").verify(request.body, request.headers)
    if event.type == "billing.updated":
        ...  # event is a BillingUpdatedEvent

Autumn delivers through Svix: headers ``svix-id``, ``svix-timestamp``, ``svix-signature`` (the
Standard Webhooks names ``webhook-id``/``-timestamp``/``-signature`` are accepted too), signed with an
HMAC-SHA256 over ``"{id}.{timestamp}.{body}"``. The signature arithmetic is the ``standardwebhooks``
library's; this module adds header handling, a configurable timestamp tolerance and typed payloads
(the event ``type`` selects the generated model; unknown types parse as :class:`UnknownWebhookEvent`).
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from pydantic import BaseModel, ValidationError
from standardwebhooks.webhooks import EmptyWebhookSecretError
from standardwebhooks.webhooks import Webhook as _StandardWebhook

from ._generated.operations import WEBHOOK_EVENTS
from ._model import AutumnModel
from ._operation import model_named
from .errors import WebhookVerificationError

__all__ = ["DEFAULT_TOLERANCE", "UnknownWebhookEvent", "Webhook", "WebhookVerificationError", "parse", "sign"]

DEFAULT_TOLERANCE = timedelta(minutes=5)
"""How far a delivery's timestamp may be from now (replay protection), as Svix recommends."""

_HEADER_PREFIXES = ("svix", "webhook")


class UnknownWebhookEvent(AutumnModel):
    """A delivery whose ``type`` this SDK version does not know; the payload is kept as is."""

    type: str
    data: Any = None


def _as_text(payload: bytes | str) -> str:
    if isinstance(payload, bytes):
        try:
            return payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise WebhookVerificationError("webhook payload is not UTF-8") from exc
    return payload


def parse(payload: bytes | str | Mapping[str, Any]) -> BaseModel:
    """Parse a webhook payload into its typed event model WITHOUT verifying it.

    Only for payloads that were verified elsewhere (or tests): anyone can forge an unverified body.
    """
    if isinstance(payload, Mapping):
        data: Any = dict(payload)
    else:
        try:
            data = json.loads(_as_text(payload))
        except json.JSONDecodeError as exc:
            raise WebhookVerificationError("webhook payload is not JSON") from exc
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise WebhookVerificationError("webhook payload has no string 'type'")
    model_name = WEBHOOK_EVENTS.get(data["type"])
    model = UnknownWebhookEvent if model_name is None else model_named(model_name)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise WebhookVerificationError(
            f"webhook payload of type {data['type']!r} does not match {model.__name__}"
        ) from exc


def _header(headers: Mapping[str, str], suffix: str) -> str | None:
    lowered = {key.lower(): value for key, value in headers.items()}
    for prefix in _HEADER_PREFIXES:
        value = lowered.get(f"{prefix}-{suffix}")
        if value:
            return value
    return None


class Webhook:
    """Verifier (and signer) for one endpoint's signing secret (``whsec_...``)."""

    def __init__(self, secret: str | bytes, *, tolerance: timedelta | float = DEFAULT_TOLERANCE) -> None:
        try:
            self._signer = _StandardWebhook(secret)
        except (EmptyWebhookSecretError, ValueError) as exc:
            raise WebhookVerificationError(f"invalid webhook secret: {exc}") from exc
        self.tolerance = tolerance if isinstance(tolerance, timedelta) else timedelta(seconds=tolerance)

    def verify_payload(self, payload: bytes | str, headers: Mapping[str, str]) -> dict[str, Any]:
        """Check signature and timestamp; return the decoded JSON body (untyped)."""
        text = _as_text(payload)
        msg_id = _header(headers, "id")
        timestamp_header = _header(headers, "timestamp")
        signature_header = _header(headers, "signature")
        if not (msg_id and timestamp_header and signature_header):
            raise WebhookVerificationError(
                "missing webhook headers: expected svix-id, svix-timestamp and svix-signature "
                "(or webhook-id, webhook-timestamp and webhook-signature)"
            )
        try:
            sent_at = datetime.fromtimestamp(int(timestamp_header), tz=timezone.utc)
        except (ValueError, OverflowError, OSError) as exc:
            raise WebhookVerificationError(f"invalid webhook timestamp {timestamp_header!r}") from exc
        skew = datetime.now(tz=timezone.utc) - sent_at
        if skew > self.tolerance:
            raise WebhookVerificationError(f"webhook timestamp too old ({int(skew.total_seconds())} s)")
        if -skew > self.tolerance:
            raise WebhookVerificationError("webhook timestamp is in the future")
        expected = self._signer.sign(msg_id=msg_id, timestamp=sent_at, data=text).split(",", 1)[1]
        for candidate in signature_header.split():
            version, _, signature = candidate.partition(",")
            if version == "v1" and hmac.compare_digest(signature.encode(), expected.encode()):
                break
        else:
            raise WebhookVerificationError("webhook signature does not match (wrong secret or altered body)")
        try:
            body = json.loads(text)
        except json.JSONDecodeError as exc:
            raise WebhookVerificationError("webhook payload is not JSON") from exc
        if not isinstance(body, dict):
            raise WebhookVerificationError("webhook payload is not a JSON object")
        return body

    def verify(self, payload: bytes | str, headers: Mapping[str, str]) -> BaseModel:
        """Verify a delivery and return its typed event (e.g. ``BillingUpdatedEvent``).

        ``payload`` must be the raw request body, byte for byte: re-serialised JSON will not verify.
        """
        return parse(self.verify_payload(payload, headers))

    def sign(
        self,
        payload: bytes | str,
        *,
        msg_id: str | None = None,
        timestamp: datetime | float | None = None,
        header_prefix: str = "svix",
    ) -> dict[str, str]:
        """Headers that make ``payload`` verify against this secret (for tests and webhook senders)."""
        if header_prefix not in _HEADER_PREFIXES:
            raise ValueError(f"header_prefix must be one of {_HEADER_PREFIXES}")
        msg_id = msg_id or f"msg_{secrets.token_hex(12)}"
        if timestamp is None:
            timestamp = time.time()
        if isinstance(timestamp, datetime):
            when = timestamp.astimezone(timezone.utc)
        else:
            when = datetime.fromtimestamp(timestamp, tz=timezone.utc)
        signature = self._signer.sign(msg_id=msg_id, timestamp=when, data=_as_text(payload))
        return {
            f"{header_prefix}-id": msg_id,
            f"{header_prefix}-timestamp": str(int(when.timestamp())),
            f"{header_prefix}-signature": signature,
        }


def sign(secret: str | bytes, payload: bytes | str, **options: Any) -> dict[str, str]:
    """Shortcut for ``Webhook(secret).sign(payload, ...)``."""
    return Webhook(secret).sign(payload, **options)


def generate_secret() -> str:
    """A fresh ``whsec_`` signing secret (24 random bytes, base64), as Svix issues them."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
