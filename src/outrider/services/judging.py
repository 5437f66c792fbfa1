"""LLM-as-judge: a decoder model grades one inference record (Pioneer's ``llmaj_*`` history fields).

The judge sees the record's input (the text and schema of an extraction, the messages of a generation) and
its output, and answers JSON constrained by ``VERDICT_SCHEMA`` (constrained decoding on local models; the
same schema as ``response_format`` for upstream ones): ``verdict`` (pass / fail / uncertain), ``score``
(0 to 1) and one sentence of ``reasoning``. The call goes through ``GenerationService`` like any other:
it is checked against the caller's key (pool) and charged to the account (usage surface ``judge``). A
judge that fails or answers something unusable leaves the record unjudged with the error recorded on it;
the inference itself is never touched.

Background judging (``judge_queued``, run by the worker's judge queue in ``jobs/judging.py``) judges the records
sampled by a judge configuration (``services/judge_configs.py``) as the account itself: the call is charged to the
account like an on-demand one, and every failure, the caller's kind included (a judge model deleted since, no
credit left), is recorded on the record as ``llmaj_error``.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from outrider.backends.base import ModelSpec
from outrider.core.errors import BackendError, InvalidRequest, OutriderError, RateLimited
from outrider.core.messages import ChatMessage, GenerationParams
from outrider.services.accounts import Principal, account_principal
from outrider.services.catalog import ModelCatalog
from outrider.services.generation import GenerationRequest, GenerationService
from outrider.services.history import HistoryService
from outrider.services.recording import CallContext
from outrider.storage.db import Database
from outrider.storage.queries import inferences as q
from outrider.storage.records import Inference, Judgement, QueuedJudgement

VERDICTS = ("pass", "fail", "uncertain")
VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "verdict": {"type": "string", "enum": list(VERDICTS)},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "reasoning": {"type": "string", "maxLength": 400},
    },
    "required": ["verdict", "score", "reasoning"],
    "additionalProperties": False,
}
SHOWN_CHARS = 4000  # of the input and of the output, each, in the judge's prompt
JUDGE_MAX_TOKENS = 200
SYSTEM = (
    "You grade the output of a model. Decide whether the output is correct and complete for the input: "
    "'pass' when it is, 'fail' when it is wrong or misses something, 'uncertain' when you cannot tell. "
    "Give a score from 0 (useless) to 1 (perfect) and one sentence of reasoning. Answer with JSON only."
)


def _clip(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + " [...]"


def judge_prompt(record: Inference) -> list[ChatMessage]:
    given = record.input or {}
    if record.task == "extract":
        shown = f"Task: extract what the schema asks for from the text.\nSchema: {_clip(given.get('schema'))}\n"
        shown += f"Text: {_clip(given.get('text'))}\n"
    else:
        asked = given.get("messages") or [{"role": "user", "content": given.get("prompt", "")}]
        shown = f"Task: answer the conversation.\nConversation: {_clip(asked)}\n"
    shown += f"Model output: {_clip(record.output)}"
    return [ChatMessage("system", SYSTEM), ChatMessage("user", shown)]


def parse_verdict(text: str) -> tuple[str, float, str]:
    """(verdict, score, reasoning) from the judge's answer; ValueError when it is not one."""
    try:
        answer = json.loads(text)
    except json.JSONDecodeError:  # an unconstrained judge may wrap its JSON in prose or a code fence
        start, end = text.find("{"), text.rfind("}")
        if start == -1 or end <= start:
            raise ValueError("the answer holds no JSON object") from None
        answer = json.loads(text[start : end + 1])
    if not isinstance(answer, dict) or answer.get("verdict") not in VERDICTS:
        raise ValueError(f"the verdict must be one of {', '.join(VERDICTS)}")
    score = answer.get("score")
    if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1:
        raise ValueError("the score must be a number from 0 to 1")
    reasoning = answer.get("reasoning")
    return answer["verdict"], float(score), reasoning if isinstance(reasoning, str) else ""


@dataclass(frozen=True)
class JudgeAttempt:
    """What one judge call left on the record: its verdict, or its error (``failure``) and whether trying
    again later may help (an upstream error or a rate limit; not an unusable answer or a missing model)."""

    judgement: Judgement
    failure: OutriderError | None = None
    retryable: bool = False


class JudgeService:
    def __init__(
        self, db: Database, catalog: ModelCatalog, generation: GenerationService, history: HistoryService
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.generation = generation
        self.history = history

    async def judge(self, principal: Principal, inference_id: str, judge_model: str) -> Judgement:
        """Grade one of the caller's records now (a 404 for another account's). The caller's mistakes (an unknown
        model, an encoder, its pool, its credit) are answered as they are; a failed judge is recorded on the
        record and answered as a 502."""
        record = await self.history.get(principal, inference_id)
        if record.status != "success":
            raise InvalidRequest("a failed inference has no output to judge", param="inference_id")
        spec = await self.catalog.for_call(principal, judge_model, "decoder", param="judge_model")
        attempt = await self._grade(principal, record, judge_model, spec, record_caller_errors=False)
        if attempt.failure is not None:
            raise attempt.failure
        return attempt.judgement

    async def judge_queued(self, queued: QueuedJudgement) -> JudgeAttempt | None:
        """Grade a sampled record in the background, as its account; None when the record or the account is
        gone. Nothing is raised: a failure is recorded on the record and returned."""

        def read() -> tuple[Principal | None, Inference | None]:
            with self.db.session() as s:
                return (
                    account_principal(s, queued.account_id),
                    q.get_inference(s, queued.inference_id, account_id=queued.account_id),
                )

        principal, record = await asyncio.to_thread(read)
        if principal is None or record is None or record.status != "success":
            return None
        try:
            spec = await self.catalog.for_call(principal, queued.judge_model, "decoder", param="judge_model")
        except OutriderError as exc:
            return await self._failed(principal, record.id, queued.judge_model, exc)
        return await self._grade(principal, record, queued.judge_model, spec, record_caller_errors=True)

    async def _grade(
        self, principal: Principal, record: Inference, judge_model: str, spec: ModelSpec, *, record_caller_errors: bool
    ) -> JudgeAttempt:
        # Local decoders decode under the schema; an upstream one gets it as response_format when it declares
        # JSON support, else only the prompt's instructions (and its answer is looked for in the text).
        constrained = not spec.capabilities or "json" in spec.capabilities
        request = GenerationRequest(
            model_id=judge_model,
            messages=judge_prompt(record),
            params=GenerationParams(
                max_tokens=JUDGE_MAX_TOKENS,
                temperature=0.0,
                json_schema=VERDICT_SCHEMA if constrained else None,
                stream=False,
            ),
        )
        ctx = CallContext(principal, "judge", judge_model, store=False)
        try:
            outcome = await self.generation.generate(ctx, request)
            verdict, score, reasoning = parse_verdict(outcome.result.text)
        except OutriderError as exc:
            if exc.status_code < 500 and not record_caller_errors:
                raise
            return await self._failed(principal, record.id, judge_model, exc)
        except ValueError as exc:
            failure = BackendError(f"judge '{judge_model}' gave no usable verdict: {exc}", param="judge_model")
            return await self._failed(principal, record.id, judge_model, failure, retryable=False)
        saved = await self._save(principal, record.id, judge_model, verdict=verdict, score=score, reasoning=reasoning)
        return JudgeAttempt(saved)

    async def _failed(
        self,
        principal: Principal,
        inference_id: str,
        judge_model: str,
        failure: OutriderError,
        *,
        retryable: bool | None = None,
    ) -> JudgeAttempt:
        saved = await self._save(principal, inference_id, judge_model, error=failure.message)
        if retryable is None:
            retryable = failure.status_code >= 500 or isinstance(failure, RateLimited)
        return JudgeAttempt(saved, failure, retryable)

    async def _save(
        self,
        principal: Principal,
        inference_id: str,
        judge_model: str,
        *,
        verdict: str | None = None,
        score: float | None = None,
        reasoning: str | None = None,
        error: str | None = None,
    ) -> Judgement:
        def write() -> Judgement:
            with self.db.session() as s:
                return q.upsert_judgement(
                    s,
                    inference_id=inference_id,
                    account_id=principal.account.id,
                    judge_model=judge_model,
                    verdict=verdict,
                    score=score,
                    reasoning=reasoning,
                    error=error,
                )

        return await asyncio.to_thread(write)
