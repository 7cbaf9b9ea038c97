"""Compatibility with the official SDK's ``from autumn_sdk.utils import RetryConfig, BackoffStrategy``."""

from ._retries import BackoffStrategy, RetryConfig

__all__ = ["BackoffStrategy", "RetryConfig"]
