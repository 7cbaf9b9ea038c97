"""Business-rule failures the API layer turns into ``{message, code}`` responses."""

from __future__ import annotations


class BillingRuleError(Exception):
    """A request the billing rules refuse; ``status`` and ``code`` follow the API's error table."""

    def __init__(self, message: str, code: str = "invalid_request", status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
