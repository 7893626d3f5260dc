"""OpenAI-style ``response_format`` for the embedded model: a JSON schema becomes a grammar.

Callers ask every client for structured output the same way, with OpenAI's
``{"type": "json_schema", "json_schema": {"schema": ...}}`` (or ``{"type": "json_object"}``, with
an optional ``"schema"``) in ``additional_properties["response_format"]``. llama.cpp has no such
option on raw completions, but it can constrain sampling with a GBNF grammar built from the schema,
which is stronger than asking nicely: the small default model then cannot answer anything but the
promised JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, cast

from threadline.exceptions import ClientError

__all__ = ["response_format_to_grammar"]

_ANY_JSON_OBJECT: Mapping[str, Any] = {"type": "object"}


def response_format_to_grammar(kwargs: dict[str, Any]) -> None:
    """Replace ``kwargs["response_format"]`` (if any) with the equivalent llama.cpp ``grammar``.

    Raises:
        ClientError: the response format is not one of OpenAI's forms, or its schema cannot be
            turned into a grammar.
    """
    response_format = kwargs.pop("response_format", None)
    if response_format is None:
        return
    schema = _schema_of(response_format)
    if schema is None:
        return  # {"type": "text"}: no constraint
    from llama_cpp import LlamaGrammar

    try:
        kwargs["grammar"] = LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
    except Exception as exc:  # llama.cpp raises plain ValueError/RuntimeError for odd schemas
        raise ClientError(f"cannot turn the response_format's JSON schema into a grammar: {exc}")  # noqa: B904


def _schema_of(response_format: object) -> Mapping[str, Any] | None:
    if not isinstance(response_format, Mapping):
        raise ClientError(f"response_format must be an object, got {response_format!r}")
    fmt: Mapping[str, Any] = response_format  # pyright: ignore[reportUnknownVariableType]
    kind = fmt.get("type")
    schema: object
    if kind == "text":
        return None
    if kind == "json_object":
        schema = fmt.get("schema", _ANY_JSON_OBJECT)
    elif kind == "json_schema":
        spec: object = fmt.get("json_schema")
        schema = (
            cast("Mapping[str, Any]", spec).get("schema") if isinstance(spec, Mapping) else None
        )
    else:
        raise ClientError(
            f"response_format type {kind!r} is not supported; use 'json_schema', 'json_object' "
            "or 'text'"
        )
    if not isinstance(schema, Mapping):
        raise ClientError(f"response_format has no JSON schema object: {response_format!r}")
    return schema  # pyright: ignore[reportUnknownVariableType]
