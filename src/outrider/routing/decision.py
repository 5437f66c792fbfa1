"""One routing decision, and the Router that makes them: classify, score the pool, pick the best.

The Router is synchronous and CPU-only: a decision takes a fraction of a millisecond (docs/routing.md),
so callers on the event loop may call :meth:`Router.decide` directly. The first call in a process loads the
classifier (about 0.2 s from its cache; minutes-long builds happen once per machine), so load it at start-up
with :func:`outrider.routing.classifier.load_classifier` in a thread.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from outrider.core.errors import InvalidRequest
from outrider.core.messages import ChatMessage
from outrider.routing.classifier import TaskClassifier, load_classifier
from outrider.routing.scorer import (
    CandidateModel,
    FitTable,
    LatencyTracker,
    ScoredCandidate,
    score_candidates,
)
from outrider.routing.taxonomy import Complexity, OptimizeMode, TaskType, normalize_mode, normalize_task

if TYPE_CHECKING:
    from outrider.config import Settings

EVENT_KEYS = ("object", "task", "complexity", "confidence", "model", "routing_time_ms")


@dataclass(frozen=True)
class RoutingDecision:
    task: TaskType
    complexity: Complexity
    confidence: float  # the classifier's probability for ``task``; 1.0 when the request named the task
    model: str
    candidates: tuple[ScoredCandidate, ...]  # the whole pool, best first; ``candidates[0].model_id == model``
    routing_time_ms: float
    mode: OptimizeMode
    pool: tuple[str, ...]
    task_source: Literal["classifier", "override"] = "classifier"
    task_probabilities: dict[str, float] = field(default_factory=dict)
    complexity_confidence: float = 0.0
    prompt_tokens: int = 0

    def to_event(self) -> dict[str, Any]:
        """The decision as the first SSE event of a routed stream (and the field on non-streamed responses)."""
        return {
            "object": "routing",
            "task": self.task,
            "complexity": self.complexity,
            "confidence": round(self.confidence, 4),
            "model": self.model,
            "routing_time_ms": round(self.routing_time_ms, 3),
        }

    @property
    def fallbacks(self) -> tuple[str, ...]:
        """The next-best models, in the order to try them when the chosen one fails."""
        return tuple(c.model_id for c in self.candidates[1:])

    @property
    def unknowns(self) -> tuple[str, ...]:
        """What the ranking had no evidence for, in words (empty when every input was known)."""
        notes = []
        for c in self.candidates:
            if c.fit_unknown_share:
                tasks = ", ".join(f.task for f in c.task_fits if not f.estimate.known)
                notes.append(f"{c.model_id}: fit unknown for {tasks}")
            if not c.cost_known:
                notes.append(f"{c.model_id}: price unknown")
            if not c.latency_known:
                notes.append(f"{c.model_id}: latency unknown")
        return tuple(notes)

    def to_record(self) -> dict[str, Any]:
        """Everything about the decision as JSON-ready data, for storing with the inference record."""
        return {
            **self.to_event(),
            "mode": self.mode,
            "pool": list(self.pool),
            "task_source": self.task_source,
            "task_probabilities": {t: round(p, 4) for t, p in self.task_probabilities.items()},
            "complexity_confidence": round(self.complexity_confidence, 4),
            "prompt_tokens": self.prompt_tokens,
            "unknowns": list(self.unknowns),
            "candidates": [
                {
                    "model": c.model_id,
                    "rank": c.rank,
                    "total": round(c.total, 4),
                    "fit": round(c.fit, 4),
                    "cost": round(c.cost, 4),
                    "latency": round(c.latency, 4),
                    "penalty": round(c.penalty, 4),
                    "fit_known": c.fit_known,
                    "cost_known": c.cost_known,
                    "latency_known": c.latency_known,
                    "estimated_cost_usd": c.estimated_cost_usd,
                    "p50_latency_ms": c.p50_latency_ms,
                    "reason": c.reason,
                }
                for c in self.candidates
            ],
        }


class Router:
    """Holds the classifier and the evidence (fit table, latency history); decides per request."""

    def __init__(
        self,
        classifier: TaskClassifier,
        fits: FitTable | None = None,
        latency: LatencyTracker | None = None,
        *,
        default_mode: str = "balanced",
    ) -> None:
        self.classifier = classifier
        self.fits = fits or FitTable()
        self.latency = latency or LatencyTracker()
        self.default_mode = normalize_mode(default_mode, param="routing_default_mode")

    @classmethod
    def from_settings(cls, settings: Settings) -> Router:
        """A router on the process-wide classifier (cached under the base models folder) and the settings."""
        return cls(
            load_classifier(settings.resolved_base_models_dir),
            FitTable(settings.routing_fit_scores, prior_strength=settings.routing_feedback_prior_strength),
            LatencyTracker(settings.routing_latency_window),
            default_mode=settings.routing_default_mode,
        )

    def decide(
        self,
        messages: Sequence[ChatMessage],
        pool: Sequence[CandidateModel],
        mode: str | None = None,
        task: str | None = None,
        *,
        max_output_tokens: int | None = None,
    ) -> RoutingDecision:
        """Rank ``pool`` for this prompt. ``mode`` defaults to the router's; ``task`` skips task detection.

        Raises InvalidRequest (422) for an empty pool, an unknown mode or an unknown task.
        """
        started = time.perf_counter()
        unique: dict[str, CandidateModel] = {}
        for candidate in pool:
            unique.setdefault(candidate.model_id, candidate)  # the first mention wins
        candidates = list(unique.values())
        if not candidates:
            raise InvalidRequest("routing needs at least one model in the pool", param="routing.model_pool")
        chosen_mode = normalize_mode(mode) if mode is not None else self.default_mode
        override = normalize_task(task) if task is not None else None
        # Complexity comes from the classifier even when the task is given.
        classification = self.classifier.classify(messages)
        if override is not None:
            probabilities: Mapping[str, float] = {override: 1.0}
            decided_task, confidence = override, 1.0
        else:
            probabilities = classification.task_probabilities
            decided_task, confidence = classification.task, classification.confidence
        ranked = score_candidates(
            probabilities,
            classification.complexity,
            candidates,
            self.fits.estimate,
            {c.model_id: self.latency.p50(c.model_id) for c in candidates},
            chosen_mode,
            classification.prompt_tokens,
            max_output_tokens,
        )
        return RoutingDecision(
            task=decided_task,
            complexity=classification.complexity,
            confidence=confidence,
            model=ranked[0].model_id,
            candidates=tuple(ranked),
            routing_time_ms=(time.perf_counter() - started) * 1000,
            mode=chosen_mode,
            pool=tuple(c.model_id for c in candidates),
            task_source="override" if override is not None else "classifier",
            task_probabilities=dict(probabilities),
            complexity_confidence=classification.complexity_confidence,
            prompt_tokens=classification.prompt_tokens,
        )

    def record_latency(self, model_id: str, latency_ms: float) -> None:
        self.latency.record(model_id, latency_ms)

    def record_verdict(self, model_id: str, task: str, correct: bool) -> None:
        self.fits.record_verdict(model_id, task, correct)
