"""A cold ``import`` plus a first ``check`` loads only the models of the client's own operations,
and builds only those that check touches.

The generated models live in one module per API group, imported when first used, and defer their
pydantic schemas (``defer_build``): creating all ~360 classes at import, then building them, was
most of the SDK's cold-start time and memory (issue 13; ``python -m bench --only cold_import``).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator

import pytest

from .helpers import TEST_KEY
from .stub_server import serve

PROBE = """
import sys
from autumn_sdk import Autumn
from autumn_sdk._model import AutumnModel

PACKAGE = "autumn_sdk._generated.models."

def loaded() -> list[str]:
    return sorted(name[len(PACKAGE):] for name in sys.modules if name.startswith(PACKAGE))

def built() -> list[str]:
    return sorted(
        name
        for module in loaded()
        for name, value in vars(sys.modules[PACKAGE + module]).items()
        if isinstance(value, type) and issubclass(value, AutumnModel) and value.__pydantic_complete__
    )

print(loaded(), built())
with Autumn(sys.argv[1], server_url=sys.argv[2]) as autumn:
    print(autumn.check(customer_id="cus_1", feature_id="messages").allowed)
print(loaded())
print(built())
# The response TypedDicts are the server's: the SDK never loads them.
assert "autumn_sdk._generated.json_types" not in sys.modules
"""


@pytest.fixture(scope="module")
def stub_url() -> Iterator[str]:
    with serve() as url:
        yield url


def test_first_check_builds_only_its_own_models(stub_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, TEST_KEY, stub_url], capture_output=True, text=True, check=True
    )
    before, allowed, modules, after = result.stdout.splitlines()
    assert before == "[] []"
    assert allowed in ("True", "False")
    assert ast.literal_eval(modules) == ["root"]
    built = ast.literal_eval(after)
    assert "CheckParams" in built and "CheckResponse" in built
    assert "Customer" not in built and len(built) < 20


def test_generated_models_have_no_string_annotations() -> None:
    from autumn_sdk._generated import models

    assert models.CheckParams.__annotations__ and all(
        not isinstance(hint, str) for hint in models.CheckParams.__annotations__.values()
    )
