"""Tool definitions and choices as each surface sends them are parsed here, not by the request model: a bad one is
the 400 OpenAI and Anthropic answer (``InvalidTools``), in the surface's envelope, instead of a body-wide 422."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from outrider.core.errors import InvalidTools

Wire = TypeVar("Wire", bound=BaseModel)


def parse_wire(model: type[Wire], value: Any, where: str) -> Wire:
    """``value`` as ``model``; the first problem, named by its place (``tools[1].function.name: Field required``)."""
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        error = exc.errors()[0]
        place = ".".join([where, *(str(part) for part in error.get("loc", ()))])
        raise InvalidTools(f"{place}: {error.get('msg')}", param=where) from None
