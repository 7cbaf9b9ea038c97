"""Standard Webhooks (Svix-compatible) signatures.

The signed content is ``"{id}.{timestamp}.{body}"`` with HMAC-SHA256 under the base64 key after
``whsec_``. Both header families are sent (``webhook-*`` and ``svix-*``) so receivers using either the
``standardwebhooks`` or the ``svix`` library verify the same request.
"""

from __future__ import annotations

import datetime as dt

from standardwebhooks import Webhook


def sign_headers(secret: str, message_id: str, body: str, sent_at: dt.datetime) -> dict[str, str]:
    """Headers for one delivery attempt; ``sent_at`` must be the real time (receivers allow 5 minutes)."""
    signature = Webhook(secret).sign(message_id, sent_at, body)
    timestamp = str(int(sent_at.replace(tzinfo=dt.timezone.utc).timestamp()))
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": signature,
        "svix-id": message_id,
        "svix-timestamp": timestamp,
        "svix-signature": signature,
    }
