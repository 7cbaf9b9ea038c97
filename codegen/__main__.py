"""``python -m codegen``: see :mod:`codegen.cli`."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
