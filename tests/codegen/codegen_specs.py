"""The vendored specs, parsed once per test session (parsing is most of what a generation costs)."""

from __future__ import annotations

import functools

from codegen.spec import DEFAULT_SPECS, SpecDocument, load_spec


@functools.cache
def spec_documents() -> tuple[SpecDocument, ...]:
    """``DEFAULT_SPECS``, loaded as the generator loads them; shared, so never mutate them."""
    return tuple(load_spec(path) for path in DEFAULT_SPECS)
