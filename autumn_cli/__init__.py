"""The ``autumn`` command and its pytest plugin: pricing as code and tests against Autumn."""

from __future__ import annotations

from autumn_kit import refuse_mixed_install

refuse_mixed_install()  # before autumn_sdk, which the official SDK's files may have replaced
