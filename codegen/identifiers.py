"""String helpers that turn spec identifiers into Python identifiers.

Kept free of spec knowledge so the rules (and their corner cases) are testable on their own.
"""

from __future__ import annotations

import keyword
import re

_WORD_SPLIT = re.compile(r"[^0-9A-Za-z]+")
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def words(text: str) -> list[str]:
    """Split ``snake_case``, ``camelCase``, ``dotted.names`` and ``OAuthURL`` into lowercase words."""
    out: list[str] = []
    for chunk in _WORD_SPLIT.split(text):
        out.extend(part.lower() for part in _CAMEL_BOUNDARY.split(chunk) if part)
    return out


def pascal(text: str) -> str:
    """``"auto_topups"`` -> ``"AutoTopups"``; an already PascalCase name is kept as is."""
    if text and text[0].isupper() and _WORD_SPLIT.search(text) is None:
        return text
    return "".join(word[:1].upper() + word[1:] for word in words(text))


def snake(text: str) -> str:
    """``"getOrCreate"`` -> ``"get_or_create"``, ``"generateOAuthURL"`` -> ``"generate_oauth_url"``."""
    return "_".join(words(text.replace("OAuth", "Oauth")))


def upper_snake(text: str) -> str:
    return snake(text).upper()


_IRREGULAR = {"children": "child", "people": "person", "data": "data", "status": "status", "list": "item"}


def singular(word: str) -> str:
    """Singular of the last word of a (snake or Pascal) name, for array items and map values."""
    parts = words(word)
    if not parts:
        return word
    last = parts[-1]
    if last in _IRREGULAR:
        last = _IRREGULAR[last]
    elif last.endswith("ies") and len(last) > 4:
        last = last[:-3] + "y"
    elif last.endswith(("sses", "xes", "ches", "shes", "uses")):
        last = last[:-2]
    elif last.endswith("s") and not last.endswith(("ss", "us", "is")):
        last = last[:-1]
    return "_".join([*parts[:-1], last])


def python_name(wire_name: str) -> str:
    """Keyword argument name for a wire field: keywords (and ``type``, as the official SDK does) get ``_``."""
    if keyword.iskeyword(wire_name) or wire_name == "type":
        return wire_name + "_"
    return wire_name
