"""Typed Python SDK for the Autumn billing API."""
