"""``python -m reference_server``: the same as ``autumn-server``."""

from reference_server.cli import main

raise SystemExit(main())
