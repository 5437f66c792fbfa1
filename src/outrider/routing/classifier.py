"""Prompt -> task type, complexity and confidence, locally, in well under a millisecond after loading.

Features: the static MiniLM embedding of the last user message (blended with the system prompt's, which
often names the job: "You are a translator..."), centred on the training mean, next to the surface
features of :mod:`outrider.routing.features`. Two softmax regressions read them: one over task types, one
over complexity levels. Both are fitted from the labelled prompts shipped in
``routing/data/task_examples.jsonl`` (editing that file is how routing is taught) the first time a machine
loads the classifier, and the fit is cached; see :meth:`TaskClassifier.train`.

The regularisation strengths were chosen by 5-fold cross-validation on the training file alone; the
held-out evaluation set in ``tests/routing/data`` was never used to pick anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from outrider.core.messages import ChatMessage
from outrider.routing.embedding import StaticEmbedder
from outrider.routing.features import FEATURE_NAMES, FEATURES_VERSION, PromptView, prompt_view, surface_features
from outrider.routing.taxonomy import COMPLEXITIES, TASKS, Complexity, TaskType

SYSTEM_WEIGHT = 0.35  # the system prompt hints at the task; the user's message decides it
TASK_C = 100.0  # inverse L2 strength of the task regression (cross-validated on the training file)
COMPLEXITY_C = 10.0
SYSTEM_CACHE_SIZE = 256  # clients resend the same system prompt with every request
# Most system prompts say nothing about the task. Every training prompt is also shown once with one of these,
# so the classifier learns to look past them (without this, "You are a helpful assistant." cost 7 points).
GENERIC_SYSTEM_PROMPTS = (
    "You are a helpful assistant.",
    "You are a helpful, harmless and honest AI assistant. Answer the user's request.",
    "You are an AI assistant. Be concise and accurate.",
    "You are the support assistant of a software company. Be polite and professional.",
    "Always answer in a friendly tone. If you don't know something, say so.",
)


@dataclass(frozen=True)
class LabelledPrompt:
    text: str
    task: TaskType
    complexity: Complexity
    system: str = ""


@dataclass(frozen=True)
class Classification:
    task: TaskType
    complexity: Complexity
    confidence: float  # the classifier's probability for ``task``
    complexity_confidence: float
    task_probabilities: dict[str, float]  # every task, most likely first
    prompt_tokens: int  # MiniLM word pieces in the routed message (estimated past the embedded part)


def _fingerprint(examples: Sequence[LabelledPrompt], task_c: float, complexity_c: float, table: str) -> str:
    """What a fit depends on: change any of it (an example, a prompt list, a feature) and the cache misses."""
    blob = json.dumps(
        [
            [[e.text, e.task, e.complexity, e.system] for e in examples],
            GENERIC_SYSTEM_PROMPTS,
            SYSTEM_WEIGHT,
            task_c,
            complexity_c,
            FEATURE_NAMES,
            FEATURES_VERSION,
            table,
        ]
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def load_examples(path: Path | None = None) -> list[LabelledPrompt]:
    """Labelled prompts, one JSON object a line: ``text``, ``task``, ``complexity`` and optional ``system``."""
    if path is None:
        raw = resources.files("outrider.routing").joinpath("data/task_examples.jsonl").read_text(encoding="utf-8")
    else:
        raw = path.read_text(encoding="utf-8")
    examples = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        if row["task"] not in TASKS or row["complexity"] not in COMPLEXITIES:
            raise ValueError(f"line {number}: unknown task or complexity in {row!r}")
        examples.append(LabelledPrompt(row["text"], row["task"], row["complexity"], row.get("system", "")))
    return examples


class SoftmaxRegression:
    """Multinomial logistic regression with L2, fitted by accelerated gradient descent in plain numpy.

    numpy rather than torch: importing torch's optimisers pulls in ``torch._dynamo``, which took longer
    on the reference machine than the whole fit. The objective is smooth and strongly convex, so Nesterov
    steps of 1/L with adaptive restart converge to the same optimum as L-BFGS in well under a second.
    """

    def __init__(self, weights: np.ndarray, bias: np.ndarray) -> None:
        self.weights = weights
        self.bias = bias

    @classmethod
    def fit(
        cls,
        features: np.ndarray,
        labels: np.ndarray,
        n_classes: int,
        inverse_l2: float,
        *,
        max_iter: int = 500,
        tolerance: float = 1e-4,
    ) -> SoftmaxRegression:
        n = len(labels)
        x = np.hstack([features, np.ones((n, 1))]).astype(np.float64)  # last column: the unregularised bias
        targets = np.eye(n_classes)[labels]
        l2 = np.ones((x.shape[1], 1)) / (inverse_l2 * n)
        l2[-1] = 0.0
        # Lipschitz constant of the gradient: the softmax Hessian is bounded by half the identity (Böhning).
        step = 1.0 / (0.5 * np.linalg.norm(x, ord=2) ** 2 / n + float(l2.max()))

        def gradient(w: np.ndarray) -> np.ndarray:
            logits = x @ w
            logits -= logits.max(axis=1, keepdims=True)
            p = np.exp(logits)
            p /= p.sum(axis=1, keepdims=True)
            return x.T @ (p - targets) / n + l2 * w

        w = np.zeros((x.shape[1], n_classes))
        y, momentum = w.copy(), 1.0
        for _ in range(max_iter):
            g = gradient(y)
            w_next = y - step * g
            if float(np.abs(g).max()) < tolerance:
                w = w_next
                break
            if float(np.sum(g * (w_next - w))) > 0:  # going uphill: restart the momentum
                momentum, y = 1.0, w.copy()
                continue
            momentum_next = (1 + np.sqrt(1 + 4 * momentum**2)) / 2
            y = w_next + (momentum - 1) / momentum_next * (w_next - w)
            w, momentum = w_next, momentum_next
        return cls(w[:-1].astype(np.float32), w[-1].astype(np.float32))

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        logits = features @ self.weights + self.bias
        logits = logits - logits.max(axis=-1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=-1, keepdims=True)


class PromptFeaturizer:
    """A prompt's embedding (system prompt blended in), surface features and token count."""

    def __init__(self, embedder: StaticEmbedder) -> None:
        self.embedder = embedder
        self._system_cache: dict[str, np.ndarray] = {}
        self._system_lock = threading.Lock()

    def _system_embedding(self, system: str) -> np.ndarray:
        cached = self._system_cache.get(system)
        if cached is None:
            cached = self.embedder.embed(system)[0]
            with self._system_lock:
                if len(self._system_cache) >= SYSTEM_CACHE_SIZE:
                    self._system_cache.clear()
                self._system_cache[system] = cached
        return cached

    def __call__(self, view: PromptView) -> tuple[np.ndarray, np.ndarray, int]:
        embedding, n_tokens = self.embedder.embed(view.text)
        if view.system.strip():
            embedding = embedding + SYSTEM_WEIGHT * self._system_embedding(view.system)
            embedding = embedding / max(float(np.linalg.norm(embedding)), 1e-12)
        return embedding, surface_features(view.text, n_tokens), n_tokens


class TaskClassifier:
    """Classifies prompts with two fitted regressions over the static embedding and the surface features."""

    def __init__(
        self,
        embedder: StaticEmbedder,
        task_model: SoftmaxRegression,
        complexity_model: SoftmaxRegression,
        embedding_mean: np.ndarray,
        n_examples: int,
    ) -> None:
        self.embedder = embedder
        self.n_examples = n_examples
        self._featurize = PromptFeaturizer(embedder)
        self._task_model = task_model
        self._complexity_model = complexity_model
        self._mean = embedding_mean

    @classmethod
    def train(
        cls,
        embedder: StaticEmbedder,
        examples: Sequence[LabelledPrompt],
        *,
        cache_dir: Path | None = None,
        task_c: float = TASK_C,
        complexity_c: float = COMPLEXITY_C,
    ) -> TaskClassifier:
        """Fit both regressions, or reuse a fit cached in ``cache_dir`` for exactly these examples and settings.

        The fit takes about a second on an idle machine but over ten on a busy one (OpenBLAS threads fight
        for the cores), so its result is kept next to the embedding table, keyed by a hash of its inputs.
        """
        if not examples:
            raise ValueError("the task classifier needs labelled examples")
        fingerprint = _fingerprint(examples, task_c, complexity_c, embedder.signature)
        path = cache_dir / f"routing-classifier-{fingerprint}.npz" if cache_dir is not None else None
        if path is not None and path.exists():
            saved = np.load(path)
            return cls(
                embedder,
                SoftmaxRegression(saved["task_weights"], saved["task_bias"]),
                SoftmaxRegression(saved["complexity_weights"], saved["complexity_bias"]),
                saved["mean"],
                len(examples),
            )
        featurize = PromptFeaturizer(embedder)
        views = [PromptView(e.text, e.system) for e in examples]
        views += [
            PromptView(e.text, GENERIC_SYSTEM_PROMPTS[i % len(GENERIC_SYSTEM_PROMPTS)])
            for i, e in enumerate(examples)
            if not e.system
        ]
        labelled = list(examples) + [e for e in examples if not e.system]
        raw = [featurize(view) for view in views]
        embeddings = np.stack([r[0] for r in raw])
        mean = embeddings.mean(axis=0)
        matrix = np.hstack([embeddings - mean, np.stack([r[1] for r in raw])])
        task_labels = np.array([TASKS.index(e.task) for e in labelled])
        complexity_labels = np.array([COMPLEXITIES.index(e.complexity) for e in labelled])
        task_model = SoftmaxRegression.fit(matrix, task_labels, len(TASKS), task_c)
        complexity_model = SoftmaxRegression.fit(matrix, complexity_labels, len(COMPLEXITIES), complexity_c)
        if path is not None:
            partial = path.with_suffix(f".{os.getpid()}.partial.npz")
            np.savez(
                partial,
                task_weights=task_model.weights,
                task_bias=task_model.bias,
                complexity_weights=complexity_model.weights,
                complexity_bias=complexity_model.bias,
                mean=mean,
            )
            partial.replace(path)
        return cls(embedder, task_model, complexity_model, mean, len(examples))

    @classmethod
    def load(cls, cache_dir: Path | None, examples: Sequence[LabelledPrompt] | None = None) -> TaskClassifier:
        embedder = StaticEmbedder.load(cache_dir)
        return cls.train(embedder, examples if examples is not None else load_examples(), cache_dir=cache_dir)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f"embedding_{i}" for i in range(self.embedder.dim)) + FEATURE_NAMES

    def classify_view(self, view: PromptView) -> Classification:
        embedding, surface, n_tokens = self._featurize(view)
        features = np.concatenate([embedding - self._mean, surface])
        task_p = self._task_model.probabilities(features)
        complexity_p = self._complexity_model.probabilities(features)
        order = np.argsort(-task_p)
        best_complexity = int(complexity_p.argmax())
        return Classification(
            task=TASKS[int(order[0])],
            complexity=COMPLEXITIES[best_complexity],
            confidence=float(task_p[order[0]]),
            complexity_confidence=float(complexity_p[best_complexity]),
            task_probabilities={TASKS[int(i)]: float(task_p[i]) for i in order},
            prompt_tokens=n_tokens,
        )

    def classify(self, messages: Sequence[ChatMessage]) -> Classification:
        return self.classify_view(prompt_view(messages))

    def classify_text(self, text: str, system: str = "") -> Classification:
        return self.classify_view(PromptView(text, system))


_loaded: dict[Path | None, TaskClassifier] = {}
_load_lock = threading.Lock()


def load_classifier(cache_dir: Path | None) -> TaskClassifier:
    """The process-wide classifier for ``cache_dir``: loaded and trained once, then shared (thread-safe)."""
    key = cache_dir.resolve() if cache_dir is not None else None
    with _load_lock:
        if key not in _loaded:
            classifier = TaskClassifier.load(key)
            classifier.classify_text("warm up: the first call pays for lazy initialisation", "warm up")
            _loaded[key] = classifier
        return _loaded[key]
