"""Ranking the models of a pool for one classified prompt: fit, cost and latency, weighted by the mode.

Everything here is a pure function of its arguments except the two small evidence stores, :class:`FitTable`
(configured fit scores blended with feedback verdicts) and :class:`LatencyTracker` (observed latencies).

Per candidate, each component is a score in [0, 1], higher is better:

* **fit**: how well the model does the prompt's task. From configuration (``routing_fit_scores``), blended
  with observed correct/incorrect verdicts (:func:`blend_fit`). It is the probability-weighted mean over the
  tasks the classifier finds likely (probability >= ``MIN_TASK_PROBABILITY``), so an ambiguous prompt does
  not bet everything on one guess. A pairing with no configuration and no verdicts is *unknown*: it counts
  as the neutral ``0.5`` and costs an uncertainty penalty, and the candidate says so.
* **cost**: the request's estimated USD cost (plus ``COST_FLOOR_USD``) against the cheapest priced model in
  the pool: ``1`` for the cheapest, ``0.5`` lost per 10x more expensive (``0`` at 100x). Unknown price:
  neutral ``0.5``.
* **latency**: the model's observed p50 against the fastest known p50 in the pool, on the same scale.
  No observations yet: neutral ``0.5``.

``total = w_fit * fit + w_cost * cost + w_latency * latency - penalty`` with the mode's weights
(``MODE_WEIGHTS``), tilted toward fit for complex prompts and away from it for simple ones, and
``penalty = w_fit * UNKNOWN_FIT_PENALTY * (share of the task probability whose fit is unknown)``.
"""

from __future__ import annotations

import math
import statistics
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

from outrider.core.errors import InvalidRequest
from outrider.core.usage import Price
from outrider.routing.taxonomy import TASKS, normalize_mode, normalize_task


@dataclass(frozen=True)
class ModeWeights:
    fit: float
    cost: float
    latency: float


# The named modes are the dashboard's "Best Quality", "Cheapest" and "Fastest": each lets its own component
# decide, keeping a little fit weight in cost and latency modes so a model that is bad at the task loses.
MODE_WEIGHTS: dict[str, ModeWeights] = {
    "balanced": ModeWeights(fit=0.5, cost=0.3, latency=0.2),
    "quality": ModeWeights(fit=0.9, cost=0.05, latency=0.05),
    "cost": ModeWeights(fit=0.15, cost=0.8, latency=0.05),
    "latency": ModeWeights(fit=0.15, cost=0.05, latency=0.8),
}
# Added to the fit weight before the three are renormalised: a hard prompt is worth a better model.
COMPLEXITY_FIT_TILT = {"simple": -0.1, "medium": 0.0, "complex": 0.15}
NEUTRAL_SCORE = 0.5
UNKNOWN_FIT_PENALTY = 0.1
DECADE_LOSS = 0.5  # score lost per 10x more cost or latency than the pool's best
MIN_TASK_PROBABILITY = 0.05
# Added to every request's estimated cost: free models are not infinitely cheaper, and differences far below a
# thousandth of a cent per request barely move the score (against $0.00015, free is 16x cheaper, not 150x).
COST_FLOOR_USD = 1e-5
DEFAULT_PRIOR_STRENGTH = 8.0
WILDCARD_TASK = "*"

# Expected completion length per task for a simple prompt, scaled by complexity, plus a share of the input
# for tasks whose output mirrors it. Only ratios between models matter, so rough is fine.
EXPECTED_OUTPUT_TOKENS = {
    "code": 250,
    "math": 150,
    "analysis": 300,
    "summarization": 100,
    "extraction": 80,
    "classification": 10,
    "translation": 20,
    "creative_writing": 350,
    "chat": 60,
    "question_answering": 150,
}
OUTPUT_PER_INPUT_TOKEN = {"translation": 1.1, "extraction": 0.3, "summarization": 0.1}
COMPLEXITY_OUTPUT_FACTOR = {"simple": 1.0, "medium": 2.0, "complex": 4.0}


@dataclass(frozen=True)
class CandidateModel:
    model_id: str
    price: Price | None = None  # None: the price is unknown, not zero


@dataclass(frozen=True)
class FitEstimate:
    """A model's fit for one task, and where it comes from."""

    score: float
    known: bool
    source: str  # "configured", "model_default", "observed", "<configured or model_default>+observed", "unknown"
    prior: float | None = None
    correct: int = 0
    incorrect: int = 0


def blend_fit(
    prior: float | None,
    correct: int,
    incorrect: int,
    *,
    prior_strength: float = DEFAULT_PRIOR_STRENGTH,
    prior_source: str = "configured",
) -> FitEstimate:
    """Beta-style posterior mean of a fit score.

    A configured prior counts as ``prior_strength`` pseudo-verdicts at its rate:
    ``(prior * k + correct) / (k + correct + incorrect)``. Without a prior the verdicts start from a flat
    Beta(1, 1): ``(correct + 1) / (n + 2)``. Without either, the fit is unknown (neutral, flagged).
    """
    if correct < 0 or incorrect < 0:
        raise ValueError("verdict counts cannot be negative")
    n = correct + incorrect
    if prior is None:
        if n == 0:
            return FitEstimate(NEUTRAL_SCORE, known=False, source="unknown")
        return FitEstimate((correct + 1) / (n + 2), True, "observed", None, correct, incorrect)
    if n == 0:
        return FitEstimate(prior, True, prior_source, prior)
    score = (prior * prior_strength + correct) / (prior_strength + n)
    return FitEstimate(score, True, f"{prior_source}+observed", prior, correct, incorrect)


def validate_fit_scores(scores: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """Canonical task names (aliases accepted, ``*`` = the model's default) and scores within [0, 1]."""
    clean: dict[str, dict[str, float]] = {}
    problems = []
    for model, per_task in scores.items():
        clean[model] = {}
        for task, score in per_task.items():
            name = task
            if task != WILDCARD_TASK:
                try:
                    name = normalize_task(task)
                except InvalidRequest as error:
                    problems.append(f"{model}: {error.message}")
                    continue
            if not 0.0 <= float(score) <= 1.0:
                problems.append(f"{model}: fit score for {task!r} must be within 0 and 1, got {score}")
                continue
            clean[model][name] = float(score)
    if problems:
        raise ValueError("; ".join(problems))
    return clean


class FitTable:
    """Configured fit scores per (model, task) and the feedback verdicts observed since, thread-safe."""

    def __init__(
        self,
        configured: Mapping[str, Mapping[str, float]] | None = None,
        *,
        prior_strength: float = DEFAULT_PRIOR_STRENGTH,
    ) -> None:
        self._configured = validate_fit_scores(configured or {})
        self.prior_strength = prior_strength
        self._counts: dict[tuple[str, str], list[int]] = {}
        self._lock = threading.Lock()

    def prior(self, model_id: str, task: str) -> tuple[float | None, str]:
        per_task = self._configured.get(model_id, {})
        if task in per_task:
            return per_task[task], "configured"
        if WILDCARD_TASK in per_task:
            return per_task[WILDCARD_TASK], "model_default"
        return None, "unknown"

    def record_verdict(self, model_id: str, task: str, correct: bool) -> None:
        """One feedback verdict on an answer ``model_id`` gave to a prompt of ``task``."""
        task = normalize_task(task, param="task")
        with self._lock:
            counts = self._counts.setdefault((model_id, task), [0, 0])
            counts[0 if correct else 1] += 1

    def load_counts(self, counts: Mapping[tuple[str, str], tuple[int, int]]) -> None:
        """Replace the observed counts, ``(model, task) -> (correct, incorrect)`` (e.g. from stored feedback)."""
        with self._lock:
            self._counts = {(m, normalize_task(t, param="task")): [c, i] for (m, t), (c, i) in counts.items()}

    def counts(self) -> dict[tuple[str, str], tuple[int, int]]:
        with self._lock:
            return {key: (c, i) for key, (c, i) in self._counts.items()}

    def estimate(self, model_id: str, task: str) -> FitEstimate:
        prior, source = self.prior(model_id, task)
        correct, incorrect = self._counts.get((model_id, task), (0, 0))
        return blend_fit(prior, correct, incorrect, prior_strength=self.prior_strength, prior_source=source)


class LatencyTracker:
    """The last ``window`` observed request latencies per model, and their median (p50), thread-safe."""

    def __init__(self, window: int = 200) -> None:
        self.window = window
        self._samples: dict[str, deque[float]] = {}
        self._p50: dict[str, float] = {}  # cached: decisions read far more often than requests finish
        self._lock = threading.Lock()

    def record(self, model_id: str, latency_ms: float) -> None:
        with self._lock:
            self._samples.setdefault(model_id, deque(maxlen=self.window)).append(float(latency_ms))
            self._p50.pop(model_id, None)

    def seed(self, model_id: str, latencies_ms: Sequence[float]) -> None:
        """Start a model's history from stored records (the newest last)."""
        for value in latencies_ms[-self.window :]:
            self.record(model_id, value)

    def p50(self, model_id: str) -> float | None:
        cached = self._p50.get(model_id)
        if cached is not None:
            return cached
        with self._lock:
            samples = self._samples.get(model_id)
            if not samples:
                return None
            value = self._p50[model_id] = statistics.median(samples)
            return value

    def samples(self, model_id: str) -> int:
        return len(self._samples.get(model_id, ()))


@dataclass(frozen=True)
class TaskFit:
    task: str
    probability: float
    estimate: FitEstimate


@dataclass(frozen=True)
class ScoredCandidate:
    model_id: str
    rank: int
    total: float
    fit: float
    cost: float
    latency: float
    penalty: float
    weights: ModeWeights
    fit_unknown_share: float  # share of the task probability whose fit is unknown (0: fully known)
    cost_known: bool
    latency_known: bool
    estimated_cost_usd: float | None
    p50_latency_ms: float | None
    task_fits: tuple[TaskFit, ...] = field(default=())
    mode: str = "balanced"

    @property
    def fit_known(self) -> bool:
        return self.fit_unknown_share == 0.0

    @property
    def reason(self) -> str:
        """The ranking in words: score, fit per likely task and its source, cost, latency, what was unknown."""
        # Built on demand: formatting it for every candidate of every decision would double routing time.
        return _reason(self)

    def to_dict(self) -> dict:
        return {**asdict(self), "fit_known": self.fit_known, "reason": self.reason}


def likely_tasks(task_probabilities: Mapping[str, float]) -> dict[str, float]:
    """The tasks worth scoring, with their probabilities renormalised to sum to one."""
    kept = {t: p for t, p in task_probabilities.items() if p >= MIN_TASK_PROBABILITY}
    if not kept:
        best = max(task_probabilities, key=task_probabilities.__getitem__)
        kept = {best: 1.0}
    total = sum(kept.values())
    return {t: p / total for t, p in sorted(kept.items(), key=lambda item: -item[1])}


def expected_output_tokens(tasks: Mapping[str, float], complexity: str, prompt_tokens: int) -> float:
    return sum(
        p
        * (
            EXPECTED_OUTPUT_TOKENS[t] * COMPLEXITY_OUTPUT_FACTOR[complexity]
            + OUTPUT_PER_INPUT_TOKEN.get(t, 0.0) * prompt_tokens
        )
        for t, p in tasks.items()
    )


def relative_score(value: float, best: float) -> float:
    """1 at the pool's best value, DECADE_LOSS less per 10x worse, never below 0."""
    if value <= best:
        return 1.0
    return max(0.0, 1.0 - DECADE_LOSS * math.log10(value / best))


def mode_weights(mode: str, complexity: str) -> ModeWeights:
    base = MODE_WEIGHTS[normalize_mode(mode)]
    fit = max(0.0, base.fit + COMPLEXITY_FIT_TILT.get(complexity, 0.0))
    total = fit + base.cost + base.latency
    return ModeWeights(fit=fit / total, cost=base.cost / total, latency=base.latency / total)


def _describe_fit(f: TaskFit) -> str:
    e = f.estimate
    verdicts = f", {e.correct} correct/{e.incorrect} incorrect" if e.correct + e.incorrect else ""
    return f"{f.task} p={f.probability:.2f}: {e.score:.2f} ({e.source}{verdicts})"


def _reason(c: ScoredCandidate) -> str:
    fits = ", ".join(_describe_fit(f) for f in c.task_fits)
    parts = [f"#{c.rank} {c.mode} score {c.total:.3f}", f"fit {c.fit:.2f} [{fits}]"]
    if c.fit_unknown_share:
        parts.append(f"fit unknown for {c.fit_unknown_share:.0%} of the task: neutral 0.5, penalty {c.penalty:.3f}")
    if c.cost_known:
        parts.append(f"est. cost ${c.estimated_cost_usd:.6f} (score {c.cost:.2f})")
    else:
        parts.append("price unknown (neutral 0.5)")
    if c.latency_known:
        parts.append(f"p50 {c.p50_latency_ms:.0f} ms (score {c.latency:.2f})")
    else:
        parts.append("latency unknown: no observations yet (neutral 0.5)")
    return "; ".join(parts)


def score_candidates(
    task_probabilities: Mapping[str, float],
    complexity: str,
    pool: Sequence[CandidateModel],
    fit: Callable[[str, str], FitEstimate],
    latency_p50_ms: Mapping[str, float | None],
    mode: str,
    prompt_tokens: int,
    max_output_tokens: int | None = None,
) -> list[ScoredCandidate]:
    """The pool ranked best first (ties: higher fit, then model id), each with its components and reason."""
    mode = normalize_mode(mode)
    weights = mode_weights(mode, complexity)
    tasks = likely_tasks({t: p for t, p in task_probabilities.items() if t in TASKS})
    output_tokens = expected_output_tokens(tasks, complexity, prompt_tokens)
    if max_output_tokens is not None:
        output_tokens = min(output_tokens, max_output_tokens)
    costs = {
        c.model_id: (prompt_tokens * c.price.input_per_mtok + output_tokens * c.price.output_per_mtok) / 1e6
        for c in pool
        if c.price is not None
    }
    best_cost = min(costs.values(), default=0.0) + COST_FLOOR_USD
    latencies = {c.model_id: latency_p50_ms.get(c.model_id) for c in pool}
    known_latencies = [v for v in latencies.values() if v is not None and v > 0]
    best_latency = min(known_latencies, default=None)

    scored = []
    for candidate in pool:
        task_fits = tuple(TaskFit(t, p, fit(candidate.model_id, t)) for t, p in tasks.items())
        fit_score = sum(f.probability * f.estimate.score for f in task_fits)
        unknown_share = sum(f.probability for f in task_fits if not f.estimate.known)
        cost = costs.get(candidate.model_id)
        cost_score = relative_score(cost + COST_FLOOR_USD, best_cost) if cost is not None else NEUTRAL_SCORE
        p50 = latencies[candidate.model_id]
        latency_known = p50 is not None and best_latency is not None
        latency_score = relative_score(max(p50, best_latency), best_latency) if latency_known else NEUTRAL_SCORE
        penalty = weights.fit * UNKNOWN_FIT_PENALTY * unknown_share
        total = weights.fit * fit_score + weights.cost * cost_score + weights.latency * latency_score - penalty
        scored.append(
            dict(
                model_id=candidate.model_id,
                total=round(total, 6),
                fit=fit_score,
                cost=cost_score,
                latency=latency_score,
                penalty=penalty,
                weights=weights,
                fit_unknown_share=round(unknown_share, 6),
                cost_known=cost is not None,
                latency_known=latency_known,
                estimated_cost_usd=cost,
                p50_latency_ms=p50,
                task_fits=task_fits,
                mode=mode,
            )
        )
    scored.sort(key=lambda c: (-c["total"], -c["fit"], c["model_id"]))
    return [ScoredCandidate(rank=rank, **c) for rank, c in enumerate(scored, start=1)]
