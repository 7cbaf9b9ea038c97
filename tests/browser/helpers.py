"""The built test page of the browser tests: where it lives, and the autumn-js builds web/package.json
pins (shared by conftest.py's fixtures and the tests that check the installed versions).
"""

from __future__ import annotations

import json
from pathlib import Path

WEB = Path(__file__).parent / "web"


def _pinned_autumn_js() -> dict[str, Path]:
    """autumn-js version -> the build of the test page made with it, from web/package.json's pins."""
    dependencies = json.loads((WEB / "package.json").read_text(encoding="utf-8"))["dependencies"]
    latest = dependencies["autumn-js-latest"].removeprefix("npm:autumn-js@")
    return {dependencies["autumn-js"]: WEB / "dist", latest: WEB / "dist-latest"}


AUTUMN_JS_BUILDS = _pinned_autumn_js()
