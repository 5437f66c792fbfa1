"""Inference history: listing, reading, and feedback (verdicts and corrections)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from outrider.core.errors import InvalidRequest, NotFound
from outrider.services.accounts import Principal
from outrider.services.corrections import validate_correction
from outrider.storage.db import Database
from outrider.storage.queries import inferences as q
from outrider.storage.queries.inferences import InferenceFilter
from outrider.storage.records import Feedback, Inference

VERDICTS = ("correct", "incorrect")


class HistoryService:
    def __init__(
        self, db: Database, *, on_routed_verdict: Callable[[str, str | None, bool], None] | None = None
    ) -> None:
        self.db = db
        # Told (model, routed task, correct?) for feedback on routed calls: routing learns fit from it.
        self.on_routed_verdict = on_routed_verdict

    async def list(self, f: InferenceFilter, *, limit: int, offset: int) -> tuple[list[Inference], int]:
        def read() -> tuple[list[Inference], int]:
            with self.db.session() as s:
                return q.list_inferences(s, f, limit=limit, offset=offset)

        return await asyncio.to_thread(read)

    async def review_queue(self, f: InferenceFilter, *, limit: int, offset: int) -> tuple[list[Inference], int]:
        """Successful records no one has reviewed yet, those the judge could not vouch for first: never judged,
        the judge failed, judged 'fail', 'uncertain', then by judge score (lowest first)."""
        queued = replace(f, status="success", human_verdict="unreviewed")

        def read() -> tuple[list[Inference], int]:
            with self.db.session() as s:
                return q.review_queue(s, queued, limit=limit, offset=offset)

        return await asyncio.to_thread(read)

    async def get(self, principal: Principal, inference_id: str) -> Inference:
        def read() -> Inference | None:
            with self.db.session() as s:
                return q.get_inference(s, inference_id, account_id=principal.account.id)

        found = await asyncio.to_thread(read)
        if found is None:
            raise NotFound(f"inference '{inference_id}' not found")
        return found

    async def feedback(
        self, principal: Principal, inference_id: str, *, verdict: str, corrected_output: Any, notes: str | None
    ) -> Feedback:
        if verdict not in VERDICTS:
            raise InvalidRequest("verdict must be 'correct' or 'incorrect'", param="verdict")
        inference = await self.get(principal, inference_id)
        if verdict == "incorrect":
            if corrected_output is None:
                raise InvalidRequest(
                    "corrected_output is required when verdict is 'incorrect'", param="corrected_output"
                )
            if inference.status != "success":
                raise InvalidRequest("a failed inference has no output to correct", param="verdict")
            validate_correction(inference.task, inference.input, corrected_output)
        elif corrected_output is not None:
            raise InvalidRequest("corrected_output is only accepted with verdict 'incorrect'", param="corrected_output")

        def write() -> Feedback:
            with self.db.session() as s:
                return q.upsert_feedback(
                    s,
                    inference_id=inference_id,
                    account_id=principal.account.id,
                    verdict=verdict,
                    corrected_output=corrected_output,
                    notes=notes,
                )

        feedback = await asyncio.to_thread(write)
        if self.on_routed_verdict is not None and isinstance(inference.routing, dict):
            self.on_routed_verdict(inference.model_used, inference.routing.get("task"), verdict == "correct")
        return feedback
