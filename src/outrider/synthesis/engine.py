"""``synthesize``: produce ``num_examples`` validated, de-duplicated, label-balanced examples with a teacher.

The run works in waves of concurrent requests (a local decoder decodes up to ``decoder_max_batch`` rows per
step, so a full wave costs little more wall time than one request). Each answer is checked alone
(``tasks``) and then against the set so far (format validation, label quota, exact and near duplicates) as
soon as its request ends; what passes is handed to ``on_examples`` at once, without waiting for the rest of
the wave, so a stop, a failure or a crash loses nothing already accepted. The run ends when enough
examples were accepted, ``should_stop()`` says so, or the attempt budget (``ATTEMPTS_PER_EXAMPLE`` per
requested example) is spent: then it returns what it has and the caller decides whether that is a failure.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from outrider.core.errors import InvalidRequest, OutriderError
from outrider.core.usage import Usage
from outrider.synthesis.balance import LabelCoverage, LabelQuotas
from outrider.synthesis.dedup import DuplicateIndex
from outrider.synthesis.quality import validation_problem
from outrider.synthesis.tasks import (
    NER_LABELS_PER_EXAMPLE,
    Candidate,
    Producer,
    Rejected,
    Slot,
    default_domain,
    produce_classification,
    produce_decoder,
    produce_ner,
)
from outrider.synthesis.teacher import Teacher

log = logging.getLogger(__name__)

TASK_TYPES = ("ner", "classification", "decoder")
ATTEMPTS_PER_EXAMPLE = 4
MIN_ATTEMPTS = 16
FAILED_WAVES_LIMIT = 2  # consecutive waves in which every request failed in the teacher: give up


@dataclass(frozen=True)
class SynthesisRequest:
    task_type: str  # "ner" | "classification" | "decoder"
    num_examples: int
    labels: list[str]
    domain_description: str | None = None
    classified_examples: list[dict] | None = None  # [{"text", "label"}] few-shot
    prompt: str | None = None  # decoder tasks: the instruction that describes what to generate
    seed: int = 0


@dataclass
class SynthesisSummary:
    generated: int = 0
    # Examples refused, by reason: invalid_json, invalid_value, repeated_value, span_not_in_text, unknown_label,
    # empty_text, too_short, placeholder, garbled, prompt_echo, duplicate, near_duplicate, over_quota, teacher_error,
    # invalid_example.
    rejected: dict[str, int] = field(default_factory=dict)
    teacher_tokens: Usage = field(default_factory=lambda: Usage(0, 0))
    attempts: int = 0  # examples attempted (each is one teacher request, two for NER)
    dropped_entities: int = 0  # NER: entity values dropped because the text did not contain them
    unused: int = 0  # passed every check after enough examples were accepted (a full wave overshoots)


def check_request(request: SynthesisRequest) -> None:
    if request.task_type not in TASK_TYPES:
        raise InvalidRequest(f"task_type must be one of {', '.join(TASK_TYPES)}", param="task_type")
    if request.num_examples < 1:
        raise InvalidRequest("num_examples must be at least 1", param="num_examples")
    if request.task_type in ("ner", "classification") and not request.labels:
        raise InvalidRequest(f"labels are required for {request.task_type}", param="labels")
    if request.task_type == "decoder" and not (request.prompt or request.domain_description):
        raise InvalidRequest("decoder generation needs a prompt or a domain_description", param="prompt")


class _Run:
    def __init__(self, teacher: Teacher, request: SynthesisRequest) -> None:
        self.teacher = teacher
        self.request = request
        self.rng = random.Random(request.seed)
        self.labels = list(dict.fromkeys(request.labels))
        self.domain = default_domain(request.domain_description)
        self.producer = Producer(teacher, request.task_type, request.num_examples, self.rng)
        self.quotas = LabelQuotas(self.labels, request.num_examples, self.rng) if self._is("classification") else None
        self.coverage = LabelCoverage(self.labels, self.rng) if self._is("ner") else None
        self.shots = [
            e
            for e in request.classified_examples or []
            if isinstance(e, dict) and isinstance(e.get("text"), str) and e.get("label") in self.labels
        ]
        self.duplicates = DuplicateIndex(seed=request.seed)
        for example in request.classified_examples or []:  # the user's own examples are not new examples
            if isinstance(example, dict) and isinstance(example.get("text"), str):
                self.duplicates.add(example["text"])
        self.max_attempts = max(MIN_ATTEMPTS, ATTEMPTS_PER_EXAMPLE * request.num_examples)
        self.summary = SynthesisSummary()
        self.rejected: Counter[str] = Counter()
        self.failed_waves = 0
        self.wave_errors = 0  # requests of the current wave that failed
        self.last_error: BaseException | None = None

    def _is(self, task_type: str) -> bool:
        return self.request.task_type == task_type

    @property
    def finished(self) -> bool:
        return self.summary.generated >= self.request.num_examples or self.summary.attempts >= self.max_attempts

    def wave_size(self) -> int:
        """Enough requests for what is still missing at the acceptance rate so far, doubled for a local teacher
        (extra rows in a decode batch cost little wall time), within the teacher's concurrency."""
        left = self.max_attempts - self.summary.attempts
        remaining = self.request.num_examples - self.summary.generated
        tried = self.summary.attempts
        rate = (self.summary.generated + self.summary.unused) / tried if tried else 1.0
        need = math.ceil(remaining / max(rate, 0.2)) * (2 if self.teacher.constrained else 1)
        return max(1, min(self.teacher.concurrency, left, need))

    def plan(self) -> list[Slot]:
        slots = []
        for _ in range(self.wave_size()):
            seed = self.request.seed * 1_000_003 + 2 * self.summary.attempts
            self.summary.attempts += 1
            labels: list[str] = []
            if self.quotas is not None:
                labels = [self.quotas.next_label()]
            elif self.coverage is not None:
                labels = self.coverage.next_labels(self.rng.choice(NER_LABELS_PER_EXAMPLE))
            slots.append(self.producer.plan(seed, labels))
        return slots

    async def produce(self, slot: Slot) -> Candidate | Rejected:
        if self._is("ner"):
            return await produce_ner(self.producer, slot, self.domain)
        if self._is("classification"):
            return await produce_classification(self.producer, slot, self.domain, self.labels, self.shots)
        instruction = self.request.prompt or f"Answer questions about {self.domain}."
        return await produce_decoder(self.producer, slot, instruction, self.request.domain_description)

    def admit(self, slot: Slot, outcome: Any) -> tuple[dict | None, BaseException | None]:
        """One finished request: its example if accepted, or an error that must end the run (raised by the
        caller once the rest of the wave is handed over)."""
        self._release(slot)
        if isinstance(outcome, BaseException):
            self.wave_errors += 1
            self.last_error = outcome
            if isinstance(outcome, OutriderError) and outcome.status_code >= 500:
                log.warning("teacher request failed: %s", outcome)
                self.rejected["teacher_error"] += 1
                return None, None
            return None, outcome  # refused (credits, pool, parameters) or a bug: retrying cannot help
        if isinstance(outcome, Rejected):
            self.rejected[outcome.reason] += 1
            return None, None
        self.summary.dropped_entities += outcome.dropped_mentions
        if self.summary.generated >= self.request.num_examples:
            self.summary.unused += 1  # a full wave can overshoot what is still needed
            return None, None
        reason = self._gate(outcome)
        if reason:
            self.rejected[reason] += 1
            return None, None
        self.summary.generated += 1
        return outcome.example, None

    async def wave(
        self, on_examples: Callable[[list[dict]], Awaitable[None]], on_progress: Callable[[int], None] | None
    ) -> BaseException | None:
        """Run one wave of requests and hand over each accepted example as soon as its request ends (those
        that end together as one batch): an example the teacher was paid for is never held back waiting on
        the wave's slowest request, so a failure or a crash meanwhile loses none. Returns the error that must
        end the run, if any, once every request of the wave has ended."""
        slots = self.plan()

        async def attempt(slot: Slot) -> Candidate | Rejected | Exception:
            try:
                return await self.produce(slot)
            except Exception as exc:  # an outcome like any other; cancellation still propagates
                return exc

        running = {asyncio.ensure_future(attempt(slot)): (index, slot) for index, slot in enumerate(slots)}
        fatal: BaseException | None = None
        self.wave_errors = 0
        try:
            pending = set(running)
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                accepted = []
                for task in sorted(done, key=lambda t: running[t][0]):  # in the planned order
                    example, error = self.admit(running[task][1], task.result())
                    if example is not None:
                        accepted.append(example)
                    fatal = fatal or error
                if accepted:
                    await on_examples(accepted)
                    if on_progress is not None:
                        on_progress(self.summary.generated)
        finally:
            for task in running:  # cancelled or failed in on_examples: no teacher call is left running
                task.cancel()
        self.failed_waves = self.failed_waves + 1 if self.wave_errors == len(slots) else 0
        if fatal is None and self.failed_waves >= FAILED_WAVES_LIMIT:
            fatal = self.last_error
        return fatal

    def _gate(self, candidate: Candidate) -> str | None:
        example = candidate.example
        labels = self.labels if self.labels and not self._is("decoder") else None
        reason = validation_problem(self.request.task_type, example, labels)
        if reason:
            return reason
        if self.quotas is not None and self.quotas.remaining(example["label"]) <= 0:
            return "over_quota"
        reason = self.duplicates.add(candidate.key)
        if reason:
            return reason
        if self.quotas is not None:
            self.quotas.accept(example["label"])
        if self.coverage is not None:
            self.coverage.accept(example["entities"])
        return None

    def _release(self, slot: Slot) -> None:
        if self.quotas is not None:
            self.quotas.release(slot.labels[0])
        if self.coverage is not None:
            self.coverage.release(slot.labels)

    def finish(self) -> SynthesisSummary:
        self.summary.rejected = dict(sorted(self.rejected.items()))
        self.summary.teacher_tokens = self.producer.usage
        return self.summary


async def synthesize(
    teacher: Teacher,
    request: SynthesisRequest,
    on_examples: Callable[[list[dict]], Awaitable[None]],
    should_stop: Callable[[], bool] = lambda: False,
    on_progress: Callable[[int], None] | None = None,
) -> SynthesisSummary:
    """Generate ``request.num_examples`` examples with ``teacher``, handing each accepted batch to
    ``on_examples`` as it is produced. Returns counts of what was generated and refused, and the teacher's
    token usage. Raises the teacher's error when it refuses the work (4xx) or keeps failing (5xx)."""
    check_request(request)
    run = _Run(teacher, request)
    topic_source = request.domain_description or (request.prompt if request.task_type == "decoder" else None)
    if topic_source and not should_stop():
        try:
            await run.producer.load_topics(topic_source, seed=request.seed * 1_000_003 - 1)
        except OutriderError as exc:
            if exc.status_code < 500:
                raise
            log.warning("could not get topics from the teacher, using generic ones: %s", exc)
    while not run.finished and not should_stop():
        fatal = await run.wave(on_examples, on_progress)
        if fatal is not None:
            run.finish()
            raise fatal
    return run.finish()
