"""Smart routing (``model: "auto"``): classify a prompt, rank a pool of models, explain the choice.

Pure decision code over data, independent of HTTP: :class:`Router` (``decision.py``) is what callers use;
``classifier.py`` finds the task and complexity, ``scorer.py`` ranks candidates. See docs/routing.md.
"""

from outrider.routing.classifier import Classification, TaskClassifier, load_classifier
from outrider.routing.decision import EVENT_KEYS, Router, RoutingDecision
from outrider.routing.scorer import CandidateModel, FitEstimate, FitTable, LatencyTracker, ScoredCandidate, blend_fit
from outrider.routing.taxonomy import COMPLEXITIES, MODES, TASKS, normalize_mode, normalize_task

__all__ = [
    "COMPLEXITIES",
    "EVENT_KEYS",
    "MODES",
    "TASKS",
    "CandidateModel",
    "Classification",
    "FitEstimate",
    "FitTable",
    "LatencyTracker",
    "Router",
    "RoutingDecision",
    "ScoredCandidate",
    "TaskClassifier",
    "blend_fit",
    "load_classifier",
    "normalize_mode",
    "normalize_task",
]
