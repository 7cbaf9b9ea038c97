"""The autumn-kit distribution itself: what is checked before any of its packages is used.

autumn-kit installs the import package ``autumn_sdk``, as Autumn's official SDK (the ``autumn-sdk``
distribution) does, so that ``from autumn_sdk import Autumn`` works unchanged. pip installs both
without complaint and their files then mix (``autumn_sdk/models.py`` beside the official
``autumn_sdk/models/``, one ``__init__.py`` overwriting the other). Each of the kit's packages calls
:func:`refuse_mixed_install` when imported, so such an environment fails at once with what to run,
instead of half-working.
"""

from __future__ import annotations

import functools
import os
import sys

OFFICIAL_DISTRIBUTION = "autumn-sdk"
KIT_DISTRIBUTION = "autumn-kit"
_OFFICIAL_METADATA_PREFIXES = ("autumn_sdk-", "autumn-sdk-")
"""How installers name the official SDK's metadata folder (``autumn_sdk-1.2.0.dist-info``)."""


class MixedInstallError(ImportError):
    """autumn-kit and the official autumn-sdk are installed in the same environment."""


@functools.cache
def official_sdk_version() -> str | None:
    """The installed version of Autumn's official SDK distribution, or None.

    Reads the folder names on ``sys.path`` the way :mod:`importlib.metadata` finds distributions,
    without importing it (that alone costs more than the rest of ``import autumn_sdk``).
    """
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:  # a zip file, a missing folder
            continue
        for name in names:
            lowered = name.lower()
            if lowered.startswith(_OFFICIAL_METADATA_PREFIXES) and lowered.endswith(
                (".dist-info", ".egg-info")
            ):
                return name[len(_OFFICIAL_METADATA_PREFIXES[0]) :].rsplit(".", 1)[0]
    return None


def refuse_mixed_install() -> None:
    """Raise :class:`MixedInstallError` when the official ``autumn-sdk`` is installed beside the kit."""
    official = official_sdk_version()
    if official is None:
        return
    raise MixedInstallError(
        f"Both {KIT_DISTRIBUTION} (this kit) and {OFFICIAL_DISTRIBUTION} {official} (Autumn's official "
        f"SDK) are installed here. Both install the import package 'autumn_sdk', so their files are "
        f"mixed and neither works reliably. The kit is call-compatible with the official SDK: keep it "
        f"and remove the other with\n"
        f"    pip uninstall -y {OFFICIAL_DISTRIBUTION} && pip install --force-reinstall --no-deps "
        f"{KIT_DISTRIBUTION}\n"
        f"(in a checkout of the kit: pip install --force-reinstall --no-deps -e .). Or uninstall "
        f"{KIT_DISTRIBUTION} to use the official SDK alone."
    )


__all__ = ["MixedInstallError", "official_sdk_version", "refuse_mixed_install"]
