"""Autumn's error model: an HTTP status plus ``{message, code, env}``."""

from __future__ import annotations


class ApiError(Exception):
    """A business or validation failure that becomes an Autumn error response."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def invalid(message: str, code: str = "invalid_request", status: int = 400) -> ApiError:
    return ApiError(status, code, message)


def customer_not_found(customer_id: str) -> ApiError:
    return ApiError(404, "customer_not_found", f"Customer {customer_id} not found")


def feature_not_found(feature_id: str) -> ApiError:
    return ApiError(404, "feature_not_found", f"Feature {feature_id} not found")


def plan_not_found(plan_id: str) -> ApiError:
    return ApiError(404, "product_not_found", f"Product {plan_id} not found")


def entity_not_found(entity_id: str) -> ApiError:
    return ApiError(404, "entity_not_found", f"Entity {entity_id} not found")
