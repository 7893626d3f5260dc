"""JSON encoding for responses: orjson when installed (several times faster), stdlib otherwise.

Encoding is a large share of the server's per-response CPU, above all when streaming, where every
event is a JSON document; the ``server`` extra therefore brings orjson along.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import JSONResponse as _StarletteJSONResponse

__all__ = ["JSONResponse", "dumps"]

try:
    import orjson

    def dumps(value: Any) -> bytes:
        """``value`` as compact UTF-8 JSON."""
        try:
            return orjson.dumps(value)
        except TypeError:  # e.g. an integer beyond 64 bits echoed from a request
            return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()

except ImportError:  # pragma: no cover - depends on the environment

    def dumps(value: Any) -> bytes:
        """``value`` as compact UTF-8 JSON."""
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


class JSONResponse(_StarletteJSONResponse):
    """Starlette's JSON response, encoded with :func:`dumps`."""

    def render(self, content: Any) -> bytes:
        """Encode the body."""
        return dumps(content)
