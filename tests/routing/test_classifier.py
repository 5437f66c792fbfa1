"""The task classifier on prompts it never trained on, and its bounds on cost."""

from __future__ import annotations

import re
import time
from collections import Counter

import numpy as np
import pytest

from outrider.core.messages import ChatMessage
from outrider.routing.classifier import TaskClassifier, load_examples
from outrider.routing.taxonomy import COMPLEXITIES, TASKS
from tests.routing.conftest import eval_prompts

# A system prompt that says nothing about the task, and is not among the ones the classifier trains with.
HELD_OUT_GENERIC_SYSTEM = (
    "You are Outrider, a friendly assistant built by a small team. Reply carefully to what the user asks."
)


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


def test_eval_set_is_held_out_from_training():
    training = [_words(e.text) for e in load_examples()]
    rows = eval_prompts()
    assert len(rows) >= 150
    assert set(Counter(r["task"] for r in rows)) == set(TASKS)
    for row in rows:
        words = _words(row["text"])
        overlap = max(len(words & t) / len(words | t) for t in training)
        assert overlap <= 0.6, f"eval prompt too close to a training prompt: {row['text']!r}"


def test_task_and_complexity_accuracy_on_held_out_prompts(classifier: TaskClassifier, capsys):
    rows = eval_prompts()
    results = [classifier.classify_text(r["text"]) for r in rows]
    task_hits = [c.task == r["task"] for c, r in zip(results, rows, strict=True)]
    complexity_hits = [c.complexity == r["complexity"] for c, r in zip(results, rows, strict=True)]
    per_task = {t: np.mean([hit for hit, r in zip(task_hits, rows, strict=True) if r["task"] == t]) for t in TASKS}
    task_accuracy, complexity_accuracy = float(np.mean(task_hits)), float(np.mean(complexity_hits))
    with capsys.disabled():
        print(
            f"\nrouting classifier on {len(rows)} held-out prompts: task accuracy {task_accuracy:.1%}, "
            f"complexity accuracy {complexity_accuracy:.1%}\n  per task: "
            + ", ".join(f"{t} {a:.0%}" for t, a in per_task.items())
        )
    # Measured: task 92.0%, complexity 73.5% (docs/routing.md).
    assert task_accuracy >= 0.85
    assert complexity_accuracy >= 0.65
    assert min(per_task.values()) >= 0.6


def test_a_generic_system_prompt_does_not_derail_the_task(classifier: TaskClassifier):
    rows = eval_prompts()
    hits = [classifier.classify_text(r["text"], HELD_OUT_GENERIC_SYSTEM).task == r["task"] for r in rows]
    assert np.mean(hits) >= 0.82  # measured 88.9%; without training on generic system prompts it was 85%


def test_a_task_specific_system_prompt_informs_the_task(classifier: TaskClassifier):
    text = "The delivery will arrive on Thursday morning."
    plain = classifier.classify_text(text)
    hinted = classifier.classify_text(text, "You are a professional translator. Render everything into Spanish.")
    assert hinted.task == "translation"
    assert hinted.task_probabilities["translation"] > plain.task_probabilities["translation"]


def test_the_last_user_message_is_what_gets_routed(classifier: TaskClassifier):
    messages = [
        ChatMessage("user", "Translate 'good night' into German."),
        ChatMessage("assistant", "Gute Nacht."),
        ChatMessage("user", "Now write me a four-line poem about the sea at night."),
    ]
    assert classifier.classify(messages).task == "creative_writing"


def test_classification_shape(classifier: TaskClassifier):
    result = classifier.classify([ChatMessage("user", "def add(a, b):\n    return a - b\n\nwhy does this not add?")])
    assert result.task in TASKS and result.complexity in COMPLEXITIES
    probabilities = list(result.task_probabilities.values())
    assert probabilities == sorted(probabilities, reverse=True)
    assert sum(result.task_probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert result.confidence == result.task_probabilities[result.task]
    assert 0 < result.complexity_confidence <= 1
    assert result.prompt_tokens > 5
    empty = classifier.classify([])  # nothing to read: still a valid (low-information) answer
    assert empty.task in TASKS and empty.prompt_tokens == 0


def test_long_prompts_cost_what_short_ones_do(classifier: TaskClassifier):
    document = "The committee reviewed the budget and postponed the vote on the new library. " * 2500
    long_prompt = "Summarize the following minutes in five bullet points.\n\n" + document
    short_prompt = "Summarize the following minutes in five bullet points.\n\n" + document[:1500]

    def best_of_five(text: str) -> float:
        times = []
        for _ in range(5):
            started = time.perf_counter()
            classifier.classify_text(text)
            times.append(time.perf_counter() - started)
        return min(times)

    assert len(long_prompt) > 190_000
    assert best_of_five(long_prompt) < 0.005
    assert best_of_five(long_prompt) < 5 * best_of_five(short_prompt) + 0.001
    result = classifier.classify_text(long_prompt)
    assert result.task == "summarization"
    full_count = len(classifier.embedder._tokenizer.encode(long_prompt, add_special_tokens=False).ids)
    assert result.prompt_tokens == pytest.approx(full_count, rel=0.15)  # estimated from the part embedded


def test_a_fit_is_cached_and_reused(classifier: TaskClassifier, tmp_path):
    examples = load_examples()[::6]  # a small set: the fit itself is not what is tested here
    fresh = TaskClassifier.train(classifier.embedder, examples, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("routing-classifier-*.npz"))) == 1
    cached = TaskClassifier.train(classifier.embedder, examples, cache_dir=tmp_path)
    for row in eval_prompts()[:20]:
        a, b = fresh.classify_text(row["text"]), cached.classify_text(row["text"])
        assert a.task_probabilities == pytest.approx(b.task_probabilities, abs=1e-6)
    TaskClassifier.train(classifier.embedder, examples[:-1], cache_dir=tmp_path)  # other examples: other fit
    assert len(list(tmp_path.glob("routing-classifier-*.npz"))) == 2


def test_examples_file_is_validated(tmp_path):
    bad = tmp_path / "examples.jsonl"
    bad.write_text('{"text": "hi", "task": "poetry", "complexity": "simple"}\n')
    with pytest.raises(ValueError, match="line 1"):
        load_examples(bad)
    counts = Counter(e.task for e in load_examples())
    assert set(counts) == set(TASKS) and min(counts.values()) >= 30
