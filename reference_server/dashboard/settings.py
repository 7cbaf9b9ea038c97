"""The settings screen: the organization's branding on the hosted pages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from reference_server.store.tables.dashboard import branding_of, set_branding

from .base import PREFIX, DashboardBase


class SettingsScreens(DashboardBase):
    """The settings page and saving the branding."""

    def settings_page(self, request: Request, error: str | None = None, status_code: int = 200) -> Response:
        admin = self.require(request)
        with self.ctx.db.read() as conn:
            brand = branding_of(conn, admin.org_pk)
        return self.render(
            request,
            "settings.html",
            admin,
            status_code,
            env="sandbox",
            section="settings",
            brand=brand,
            error=error,
        )

    def settings_save(self, request: Request, form: Mapping[str, Any]) -> Response:
        admin = self.require(request, form)
        name = str(form.get("name", "")).strip()[:255]
        logo = str(form.get("logo_url", "")).strip()
        website = str(form.get("website_url", "")).strip()
        for label, url in (("Logo URL", logo), ("App URL", website)):
            if url and (
                urlsplit(url).scheme not in ("https", "http") or not urlsplit(url).netloc or len(url) > 2000
            ):
                return self.settings_page(request, f"{label} must be an http(s) address.", 400)
        if logo and urlsplit(logo).scheme != "https":
            return self.settings_page(
                request,
                "Logo URL must be an https address (the pages' security policy loads no other images).",
                400,
            )
        with self.ctx.db.write() as conn:
            set_branding(conn, admin.org_pk, name, logo, website, self.ctx.now())
        return RedirectResponse(f"{PREFIX}/settings?notice=branding", 303)
