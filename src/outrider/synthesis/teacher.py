"""The teacher: a decoder model from the model catalog, asked for JSON through ``GenerationService``.

Going through the service (not the model object) means teacher calls are resolved, scoped to the caller's
model pool, metered and charged like any other generation. Local decoders get the answer's JSON schema as
``json_schema`` (constrained decoding: the answer always parses and matches); upstream models get
``json_mode`` when they declare the ``json`` capability, and the shape described in the prompt either way.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from outrider.core.messages import ChatMessage, GenerationParams
from outrider.core.usage import Usage
from outrider.services.generation import GenerationRequest, GenerationService
from outrider.services.recording import CallContext
from outrider.synthesis.prompts import Ask

UPSTREAM_CONCURRENCY = 8
_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


@dataclass(frozen=True)
class TeacherReply:
    data: dict[str, Any] | None  # the answer as a JSON object; None when it was not one
    usage: Usage
    finish_reason: str


class Teacher:
    """``model_id`` defaults to the context's model id."""

    def __init__(self, generation: GenerationService, ctx: CallContext, model_id: str | None = None) -> None:
        self.generation = generation
        self.ctx = ctx
        self.model_id = model_id or ctx.model_id
        # Checked against the caller when the job was queued; a declared model or one resolved before is in
        # memory, so this reads the database only for a trained teacher not served since start-up.
        spec = generation.catalog.resolve_blocking(self.model_id)
        upstream = spec.source == "upstream" or getattr(spec, "monitor", None) is not None
        self.constrained = not upstream
        self.json_mode = upstream and "json" in getattr(spec, "capabilities", ())
        # A local decoder batches up to decoder_max_batch rows: that many concurrent asks share each step.
        self.concurrency = UPSTREAM_CONCURRENCY if upstream else generation.settings.decoder_max_batch

    async def ask(self, ask: Ask, *, seed: int, temperature: float = 0.9) -> TeacherReply:
        params = GenerationParams(
            max_tokens=ask.max_tokens,
            temperature=temperature,
            top_p=0.95,
            seed=seed,
            json_schema=ask.schema if self.constrained else None,
            json_mode=self.json_mode,
            stream=False,  # the whole answer is parsed at once
        )
        request = GenerationRequest(model_id=self.model_id, messages=[ChatMessage("user", ask.prompt)], params=params)
        outcome = await self.generation.generate(self.ctx, request)
        result = outcome.result
        return TeacherReply(parse_object(result.text), outcome.usage, result.finish_reason)


def parse_object(text: str) -> dict[str, Any] | None:
    """The JSON object in a reply: the whole text, else the outermost braces (a model that added prose or a
    markdown fence around it)."""
    for candidate in (text, *(m.group(0) for m in _JSON_OBJECT.finditer(text))):
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None
