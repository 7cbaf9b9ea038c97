"""Every example the specs carry, paired with the generated model that must accept it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from codegen_specs import spec_documents
from pydantic import BaseModel

from autumn_sdk._generated.operations import OPERATIONS_BY_ROUTE, WEBHOOK_EVENTS
from autumn_sdk._model import AutumnModel
from autumn_sdk._operation import model_named
from codegen.spec import HTTP_METHODS


@dataclass(frozen=True)
class SpecExample:
    where: str
    model: type[AutumnModel]
    value: Any


def _autumn_model(model: type[BaseModel]) -> type[AutumnModel]:
    assert issubclass(model, AutumnModel), model
    return model


def _media_examples(media: dict[str, Any]) -> Iterator[Any]:
    if "example" in media:
        yield media["example"]
    examples = media.get("examples")
    if isinstance(examples, dict):  # OpenAPI named examples: {name: {value: ...}}
        for named in examples.values():
            if isinstance(named, dict) and "value" in named:
                yield named["value"]
    schema = media.get("schema") or {}
    if isinstance(schema.get("examples"), list):  # JSON Schema examples: [value, ...]
        yield from schema["examples"]
    if "example" in schema:
        yield schema["example"]


def _json_media(holder: Any) -> dict[str, Any]:
    if not isinstance(holder, dict):
        return {}
    media = (holder.get("content") or {}).get("application/json")
    return media if isinstance(media, dict) else {}


_CURL_BODY = re.compile(r"-d '(?P<body>\{.*?\})'", re.DOTALL)
_CURL_URL = re.compile(r"curl -X \w+ '(?P<url>[^']+)'")


def _query_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _curl_examples(op_spec: dict[str, Any]) -> Iterator[Any]:
    """platform.yaml carries its examples only as curl samples: the -d body, or the query string."""
    for sample in op_spec.get("x-code-samples") or []:
        source = str(sample.get("source", ""))
        body = _CURL_BODY.search(source)
        if body:
            yield json.loads(body["body"])
            continue
        url = _CURL_URL.search(source)
        if url and urlsplit(url["url"]).query:
            yield {key: _query_value(value) for key, value in parse_qsl(urlsplit(url["url"]).query)}


def spec_examples() -> list[SpecExample]:
    found: list[SpecExample] = []
    for document in spec_documents():
        prefix = document.server_path_prefix
        for route, item in (document.data.get("paths") or {}).items():
            for method in HTTP_METHODS:
                op_spec = item.get(method)
                if not isinstance(op_spec, dict):
                    continue
                op = OPERATIONS_BY_ROUTE[(method.upper(), prefix + route)]
                if op.params_model is not None:
                    request_examples = [
                        *_media_examples(_json_media(op_spec.get("requestBody"))),
                        *_curl_examples(op_spec),
                    ]
                    if op.body_style == "items":  # an array body: each item is one params model
                        request_examples = [
                            item
                            for example in request_examples
                            for item in (example if isinstance(example, list) else [example])
                        ]
                    for n, value in enumerate(request_examples):
                        found.append(
                            SpecExample(
                                f"{op.qualified_name} request #{n}", _autumn_model(op.params_model), value
                            )
                        )
                for status, response in (op_spec.get("responses") or {}).items():
                    if int(status) not in op.success_statuses or op.response_model is None:
                        continue
                    for n, value in enumerate(_media_examples(_json_media(response))):
                        found.append(
                            SpecExample(
                                f"{op.qualified_name} {status} #{n}", _autumn_model(op.response_model), value
                            )
                        )
        for event_type, item in (document.data.get("webhooks") or {}).items():
            model = model_named(WEBHOOK_EVENTS[event_type])
            media = _json_media(item["post"].get("requestBody"))
            for n, value in enumerate(_media_examples(media)):
                found.append(SpecExample(f"webhook {event_type} #{n}", _autumn_model(model), value))
            data_schema = (media.get("schema") or {}).get("properties", {}).get("data", {})
            data_model = model.model_fields["data"].annotation
            assert isinstance(data_model, type) and issubclass(data_model, BaseModel)
            for n, value in enumerate(data_schema.get("examples", [])):
                found.append(SpecExample(f"webhook {event_type} data #{n}", _autumn_model(data_model), value))
    return found
