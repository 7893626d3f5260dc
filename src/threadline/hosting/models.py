"""``/v1/models``: the one model a threadline server offers, its hosted agent."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from threadline.hosting._json import JSONResponse
from threadline.hosting._request import state_of
from threadline.hosting.errors import ApiError

__all__ = ["routes"]

_CREATED = 1_700_000_000


async def list_models(request: Request) -> Response:
    """``GET /v1/models``."""
    state, _ = state_of(request)
    model = {
        "id": state.config.model_name,
        "object": "model",
        "created": _CREATED,
        "owned_by": "threadline",
    }
    return JSONResponse({"object": "list", "data": [model]})


async def get_model(request: Request) -> Response:
    """``GET /v1/models/{id}``."""
    state, _ = state_of(request)
    model_id = request.path_params["model_id"]
    if model_id != state.config.model_name:
        raise ApiError.not_found("model", model_id)
    return JSONResponse(
        {"id": model_id, "object": "model", "created": _CREATED, "owned_by": "threadline"}
    )


def routes() -> list[Route]:
    """The Models routes."""
    return [
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", get_model, methods=["GET"]),
    ]
