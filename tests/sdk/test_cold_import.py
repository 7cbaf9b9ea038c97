"""A cold ``import`` plus a first ``check`` builds only the models that check touches.

The generated models defer their pydantic schemas (``defer_build``): building all ~360 at import
was most of the SDK's cold-start time and memory (issue 13; ``python -m bench --only cold_import``).
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
from autumn_sdk._generated import models
from autumn_sdk._model import AutumnModel

def built() -> list[str]:
    return sorted(
        name for name, value in vars(models).items()
        if isinstance(value, type) and issubclass(value, AutumnModel) and value.__pydantic_complete__
    )

print(built())
with Autumn(sys.argv[1], server_url=sys.argv[2]) as autumn:
    print(autumn.check(customer_id="cus_1", feature_id="messages").allowed)
print(built())
"""


@pytest.fixture(scope="module")
def stub_url() -> Iterator[str]:
    with serve() as url:
        yield url


def test_first_check_builds_only_its_own_models(stub_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, TEST_KEY, stub_url], capture_output=True, text=True, check=True
    )
    before, allowed, after = result.stdout.splitlines()
    assert before == "[]"
    assert allowed in ("True", "False")
    built = ast.literal_eval(after)
    assert "CheckParams" in built and "CheckResponse" in built
    assert "Customer" not in built and len(built) < 20


def test_generated_models_have_no_string_annotations() -> None:
    from autumn_sdk._generated import models

    assert models.CheckParams.__annotations__ and all(
        not isinstance(hint, str) for hint in models.CheckParams.__annotations__.values()
    )
