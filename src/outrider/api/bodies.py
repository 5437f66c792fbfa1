"""The base of every JSON request body: text must be valid Unicode, numbers finite, nesting bounded.

One check for all surfaces, before any field is validated: the raw body is walked once (a few microseconds
for a chat request) and the first offending value is reported as a validation error at its own location
(``body.messages.0.content``), so each surface renders it in its envelope like any other invalid field.
Only top-level request models inherit this; the models nested inside them are covered by that one walk.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from outrider.core.text import find_invalid


class CheckedBody(BaseModel):
    @model_validator(mode="before")
    @classmethod
    def _checked_text(cls, data: Any) -> Any:
        found = find_invalid(data)
        if found is None:
            return data
        path, problem = found
        error = PydanticCustomError("invalid_value", "{problem}", {"problem": problem})
        # A ValidationError raised here is merged into the body's errors with ``path`` as its location.
        raise ValidationError.from_exception_data(cls.__name__, [InitErrorDetails(type=error, loc=path, input=None)])
