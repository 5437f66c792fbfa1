"""Classification for GLiNER2 models trained from a fresh encoder: why the stock head stalls, and two fixes.

Why GLiNER2's classification head does not learn from a fresh MiniLM encoder: the head
(``BoundaryExtractorModel.classifier``) is an MLP that scores each ``[L]`` marker's contextual state *on
its own*; nothing in the head compares a label with the text, so the encoder must write "this label fits
this text" into the marker's state. On the fresh MiniLM base that state is mostly a function of its
position: over permutations of 4 labels and 4 texts, position explains 83% of the variance of the marker
states, the label name 54% (the two overlap), the text 6%, and text x label interaction about 0.3%. The
library's training-time sampling then shuffles the label order, drops labels and renames half of the label
sets to ``label 1..n`` (``SamplingConfig``), so position carries no signal, and the only path left is to
learn the text-label interaction inside attention, a second-order signal the optimiser almost never
finds: the loss sits at the constant-predictor level (ln 2 for two labels). Measured on a 4-label
templated intent set (120 examples, batches of 8): with the label order shuffled as the library does, 1 of
3 runs at an encoder rate of 1e-4 left the plateau within 8 epochs, none at 3e-4 (the rate extraction from
this base needs).

Fix 1, in the library's own format (the saved model classifies with ``gliner2`` alone;
``classification_method="gliner"``): a two-phase curriculum. Phase one keeps every label, in one fixed
order, with no renaming: the marker's position then *is* the label's identity, and the MLP learns per label
which text features fire it (a first-order signal) while the encoder learns to carry text features into
the marker states. Phase two shuffles the order, batch by batch with a rising probability, so the head must
read the label's name instead of its position. It needs constant rates (encoder 1e-4, head 1e-3, no
warmup or decay) and batches that are not grouped by length. Measured: in a plain loop, 3 of 3 seeds
reached accuracy 1.0 on held-out sentences in 120 steps, in the trained and in a reversed label order;
through ``run_encoder_training`` (4 labels, 120 examples, 8 epochs) 0.85 at the end of phase one and 0.875
at the end, against 0.15 to 0.45 over the same steps without it. The limits: every label is encoded with every
text, and MiniLM has 512 positions, so large label sets (Banking77's 77 intents take about 700 tokens)
neither fit nor train fast; phase two is fragile (accuracy dips when the order starts to shuffle).

Fix 2, a label-embedding head of Outrider's own (``LabelHead`` in ``backends/label_head``, shared with
serving; the default): the text is mean-pooled from the same encoder, each label is a vector initialised
from the encoded label name, and the score is a scaled cosine plus a bias, trained with cross-entropy over
the task's labels (binary cross-entropy for multi-label tasks). On the same 4-label set it reaches accuracy
1.0 within 48 steps; it scales to any number of labels at the cost of one short text encoding per example,
and serves label subsets. It lives in two small files next to the GLiNER2 weights
(``outrider_classifier.*``), so ``gliner2`` alone does not see it: Outrider serves it
(``backends/encoder_gliner``), and the download's README shows the few lines that apply it.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any, Literal

from outrider.backends.label_head import LABEL_HEAD_CONFIG, LABEL_HEAD_WEIGHTS, HeadExample, TaskLabels

ClassificationMethod = Literal["auto", "gliner", "label_head"]
# Label tokens a classification task may take in the GLiNER2 input with the ``gliner`` method: the rest of
# MiniLM's 512 positions stay for the text and the other tasks.
GLINER_LABEL_TOKEN_BUDGET = 160
# Share of the steps trained with every label in one fixed order (phase one of the curriculum).
FIXED_ORDER_FRACTION = 0.5


def collect_tasks(records: Iterable[dict[str, Any]]) -> dict[str, TaskLabels]:
    """Every classification task of the records, its labels in first-seen order (a dataset's label list
    is the same on every record, so that order is the dataset's)."""
    tasks: dict[str, TaskLabels] = {}
    for record in records:
        for entry in record["output"].get("classifications") or []:
            spec = tasks.setdefault(entry["task"], TaskLabels(entry["task"]))
            true = entry.get("true_label") or []
            for label in [*entry.get("labels", []), *(true if isinstance(true, list) else [true])]:
                if label not in spec.labels:
                    spec.labels.append(label)
            spec.multi_label = spec.multi_label or bool(entry.get("multi_label"))
            spec.descriptions.update(entry.get("label_descriptions") or {})
    return tasks


def label_tokens(tokenizer: Any, spec: TaskLabels) -> int:
    """Tokens the task's labels take in the GLiNER2 input: a ``[L]`` marker plus the name, per label."""
    return sum(1 + len(tokenizer.tokenize(label)) for label in spec.labels)


def plan_methods(
    tasks: dict[str, TaskLabels], method: ClassificationMethod, tokenizer: Any
) -> dict[str, Literal["gliner", "label_head"]]:
    """``auto`` is the label head: it learned every set tried, in fewer steps (see the module notes).
    ``gliner`` is refused for a task whose labels would crowd the text out of MiniLM's 512 positions."""
    if method in ("auto", "label_head"):
        return {name: "label_head" for name in tasks}
    for name, spec in tasks.items():
        if label_tokens(tokenizer, spec) > GLINER_LABEL_TOKEN_BUDGET:
            raise ValueError(
                f"classification task '{name}' has too many labels for GLiNER2's own head on this encoder "
                f"({label_tokens(tokenizer, spec)} label tokens, at most {GLINER_LABEL_TOKEN_BUDGET}): "
                "use the label head"
            )
    return {name: "gliner" for name in tasks}


def _gold(entry: dict[str, Any]) -> list[str]:
    true = entry.get("true_label") or []
    return list(true) if isinstance(true, list) else [true]


def route_record(
    record: dict[str, Any], tasks: dict[str, TaskLabels], plan: dict[str, str]
) -> tuple[dict[str, Any] | None, HeadExample | None]:
    """Split one record between the two trainers: its GLiNER2 part (label-head tasks removed, stock-head
    tasks with their labels in the task's fixed order) and its label-head part, either None when empty."""
    output = dict(record["output"])
    kept, gold = [], {}
    for entry in output.pop("classifications", None) or []:
        if plan.get(entry["task"]) == "label_head":
            gold[entry["task"]] = _gold(entry)
        else:
            kept.append({**entry, "labels": list(tasks[entry["task"]].labels)})
    if kept:
        output["classifications"] = kept
    has_gliner_task = any(output.get(key) for key in ("entities", "json_structures", "relations", "classifications"))
    return (
        {"input": record["input"], "output": output} if has_gliner_task else None,
        (record["input"], gold) if gold else None,
    )


def curriculum_phase(step: int, total_steps: int, rng: random.Random) -> Literal["fixed_order", "shuffled"]:
    """Fixed order for the first ``FIXED_ORDER_FRACTION`` of the steps; then each batch is shuffled with a
    probability that rises linearly to 1 (a hard switch undid what phase one had learnt)."""
    start = int(total_steps * FIXED_ORDER_FRACTION)
    if step < start:
        return "fixed_order"
    return "shuffled" if rng.random() < (step - start + 1) / max(1, total_steps - start) else "fixed_order"


def sampling_config(phase: Literal["fixed_order", "shuffled"]) -> Any:
    """The GLiNER2 processor's sampling for stock-head classification, per curriculum phase. No label
    dropping or renaming in either: both hide the signal the head learns from (see the module notes)."""
    from gliner2.processor import SamplingConfig

    return SamplingConfig(
        shuffle_classification_labels=phase == "shuffled",
        remove_classification_label_prob=0.0,
        synthetic_label_prob=0.0,
        include_true_label_prob=1.0,
    )


def label_head_usage(folder: str = "model", load_model: str | None = None) -> str:
    """Python that applies a saved label head with ``gliner2``, ``torch`` and ``safetensors`` alone (for the
    download's README). ``load_model`` is the line that binds ``model``; by default a full GLiNER2 folder."""
    load_model = load_model or f'model = AutoExtractor.from_pretrained("{folder}").eval()'
    return f"""import json

import torch
from gliner2 import AutoExtractor
from safetensors.torch import load_file

{load_model}
head = json.load(open("{folder}/{LABEL_HEAD_CONFIG}"))
weights = load_file("{folder}/{LABEL_HEAD_WEIGHTS}")
task = next(iter(head["tasks"]))
labels = head["tasks"][task]["labels"]


def classify(texts):
    batch = model.processor.tokenizer(
        texts, padding=True, truncation=True, max_length=head["max_length"], return_tensors="pt"
    )
    with torch.no_grad():
        states = model.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
    text = torch.nn.functional.normalize((states * mask).sum(1) / mask.sum(1), dim=-1)
    label = torch.nn.functional.normalize(weights[task + "/weight"], dim=-1)
    logits = weights["log_scale"].exp() * text @ label.T + weights[task + "/bias"]
    return [labels[i] for i in logits.argmax(-1).tolist()]  # multi-label: sigmoid(logits) > 0.5


print(classify(["Where is my new card?"]))
"""
