"""Rewards and referral programs, created, read, changed and deleted as Autumn's current API does."""

from __future__ import annotations

from typing import Any

from reference_server.errors import AutumnError
from reference_server.service.context import Ctx


def create_reward(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    raise AutumnError(501, "not_implemented", "create_reward is being built")


def get_reward(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    raise AutumnError(501, "not_implemented", "get_reward is being built")


def list_rewards(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    raise AutumnError(501, "not_implemented", "list_rewards is being built")


def update_reward(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    raise AutumnError(501, "not_implemented", "update_reward is being built")


def delete_reward(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    raise AutumnError(501, "not_implemented", "delete_reward is being built")


def create_referral_program(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    raise AutumnError(501, "not_implemented", "create_referral_program is being built")


def get_referral_program(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    raise AutumnError(501, "not_implemented", "get_referral_program is being built")


def list_referral_programs(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    raise AutumnError(501, "not_implemented", "list_referral_programs is being built")


def update_referral_program(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    raise AutumnError(501, "not_implemented", "update_referral_program is being built")


def delete_referral_program(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    raise AutumnError(501, "not_implemented", "delete_referral_program is being built")
