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

Fix 2, a label-embedding head of Outrider's own (``LabelHead``, the default): the text is mean-pooled from
the same encoder, each label is a vector initialised from the encoded label name, and the score is a
scaled cosine plus a bias, trained with cross-entropy over the task's labels (binary cross-entropy for
multi-label tasks). On the same 4-label set it reaches accuracy 1.0 within 48 steps; it scales to any
number of labels at the cost of one short text encoding per example, and serves label subsets. It lives in
two small files next to the GLiNER2 weights (``outrider_classifier.*``), so ``gliner2`` alone does not see
it: Outrider serves it (``backends/encoder_gliner``), and the download's README shows the few lines that
apply it.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

ClassificationMethod = Literal["auto", "gliner", "label_head"]
LABEL_HEAD_WEIGHTS = "outrider_classifier.safetensors"
LABEL_HEAD_CONFIG = "outrider_classifier.json"
# Label tokens a classification task may take in the GLiNER2 input with the ``gliner`` method: the rest of
# MiniLM's 512 positions stay for the text and the other tasks.
GLINER_LABEL_TOKEN_BUDGET = 160
# Share of the steps trained with every label in one fixed order (phase one of the curriculum).
FIXED_ORDER_FRACTION = 0.5


@dataclass
class TaskLabels:
    """One classification task as the records declare it: its labels in a fixed order."""

    task: str
    labels: list[str] = field(default_factory=list)
    multi_label: bool = False
    descriptions: dict[str, str] = field(default_factory=dict)


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


HeadExample = tuple[str, dict[str, list[str]]]  # a text and its gold labels per label-head task


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


# --- the label-embedding head ------------------------------------------------------------------------


def label_text(name: str, description: str | None = None) -> str:
    text = name.replace("_", " ").replace("-", " ")
    return f"{text}: {description}" if description else text


def encode_texts(encoder: Any, tokenizer: Any, texts: list[str], max_length: int) -> Any:
    """L2-normalised mean-pooled states of ``encoder`` (the GLiNER2 model's own, adapters included)."""
    import torch

    device = next(encoder.parameters()).device
    batch = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt").to(device)
    states = encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
    pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)
    return torch.nn.functional.normalize(pooled, dim=-1)


def _torch_module() -> type:
    import torch

    class _LabelHeadModule(torch.nn.Module):
        def __init__(self, tasks: dict[str, TaskLabels], hidden: int, scale: float) -> None:
            super().__init__()
            self.weights = torch.nn.ParameterDict(
                {_key(t): torch.nn.Parameter(torch.zeros(len(s.labels), hidden)) for t, s in tasks.items()}
            )
            self.biases = torch.nn.ParameterDict(
                {_key(t): torch.nn.Parameter(torch.zeros(len(s.labels))) for t, s in tasks.items()}
            )
            self.log_scale = torch.nn.Parameter(torch.tensor(math.log(scale)))

    return _LabelHeadModule


def _key(task: str) -> str:
    return "t" + task.encode().hex()  # ParameterDict keys may not hold dots; task names may


class LabelHead:
    """Scaled cosine between the pooled text and one trained vector per label, per task."""

    def __init__(self, tasks: dict[str, TaskLabels], hidden: int, max_length: int = 128, scale: float = 20.0) -> None:
        self.tasks = tasks
        self.max_length = max_length
        self.module = _torch_module()(tasks, hidden, scale)

    def parameters(self) -> list[Any]:
        return list(self.module.parameters())

    def initialise(self, encoder: Any, tokenizer: Any) -> None:
        """Each label's vector starts as its encoded name: MiniLM is a sentence encoder, so the head starts
        from a sensible guess rather than from chance. Multi-label biases start low (most labels are off)."""
        import torch

        with torch.no_grad():
            for task, spec in self.tasks.items():
                texts = [label_text(label, spec.descriptions.get(label)) for label in spec.labels]
                self.module.weights[_key(task)].copy_(encode_texts(encoder, tokenizer, texts, self.max_length))
                self.module.biases[_key(task)].fill_(-2.0 if spec.multi_label else 0.0)

    def logits(self, task: str, text_vectors: Any) -> Any:
        import torch

        weights = torch.nn.functional.normalize(self.module.weights[_key(task)], dim=-1)
        return self.module.log_scale.exp() * text_vectors @ weights.T + self.module.biases[_key(task)]

    def loss(self, encoder: Any, tokenizer: Any, examples: list[HeadExample]) -> Any:
        """Mean over the examples' tasks of cross-entropy (single label) or binary cross-entropy (multi)."""
        import torch

        vectors = encode_texts(encoder, tokenizer, [text for text, _ in examples], self.max_length)
        total, count = vectors.new_zeros(()), 0
        for task, spec in self.tasks.items():
            rows = [i for i, (_, gold) in enumerate(examples) if task in gold]
            if not rows:
                continue
            logits = self.logits(task, vectors[rows])
            index = {label: j for j, label in enumerate(spec.labels)}
            if spec.multi_label:
                target = torch.zeros_like(logits)
                for r, i in enumerate(rows):
                    for label in examples[i][1][task]:
                        target[r, index[label]] = 1.0
                total = total + torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
            else:
                target = torch.tensor([index[examples[i][1][task][0]] for i in rows], device=logits.device)
                total = total + torch.nn.functional.cross_entropy(logits, target)
            count += 1
        return total / max(count, 1)

    def predict(
        self,
        encoder: Any,
        tokenizer: Any,
        texts: list[str],
        task: str,
        labels: list[str] | None = None,
        threshold: float = 0.5,
        batch_size: int = 64,
    ) -> list[Any]:
        """gliner2-shaped answers with confidences: ``{"label", "confidence"}`` for a single-label task
        (softmax over ``labels``, a subset of the trained ones), a list of them for a multi-label task."""
        import torch

        spec = self.tasks[task]
        chosen = labels or spec.labels
        columns = [spec.labels.index(label) for label in chosen]
        answers: list[Any] = []
        with torch.no_grad():
            for start in range(0, len(texts), batch_size):
                vectors = encode_texts(encoder, tokenizer, texts[start : start + batch_size], self.max_length)
                logits = self.logits(task, vectors)[:, columns]
                if spec.multi_label:
                    probs = torch.sigmoid(logits)
                    answers += [
                        [{"label": chosen[j], "confidence": float(p)} for j, p in enumerate(row) if p >= threshold]
                        for row in probs.tolist()
                    ]
                else:
                    probs = torch.softmax(logits, dim=-1)
                    best = probs.argmax(-1).tolist()
                    answers += [{"label": chosen[j], "confidence": float(probs[r, j])} for r, j in enumerate(best)]
        return answers

    def covers(self, labels: list[str]) -> str | None:
        """The trained task whose labels include all of ``labels``, if any."""
        for task, spec in self.tasks.items():
            if set(labels) <= set(spec.labels):
                return task
        return None

    # -- files ------------------------------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        from safetensors.torch import save_file

        tensors = {"log_scale": self.module.log_scale.detach().cpu().reshape(1)}
        for task in self.tasks:
            tensors[f"{task}/weight"] = self.module.weights[_key(task)].detach().cpu().contiguous()
            tensors[f"{task}/bias"] = self.module.biases[_key(task)].detach().cpu().contiguous()
        save_file(tensors, str(folder / LABEL_HEAD_WEIGHTS))
        config = {
            "method": "label_head",
            "pooling": "mean over the GLiNER2 encoder's last layer, L2-normalised",
            "score": "exp(log_scale) * cos(text, label) + bias",
            "max_length": self.max_length,
            "tasks": {
                t: {"labels": s.labels, "multi_label": s.multi_label, "descriptions": s.descriptions}
                for t, s in self.tasks.items()
            },
        }
        (folder / LABEL_HEAD_CONFIG).write_text(json.dumps(config, indent=2))

    @classmethod
    def load(cls, folder: Path | str) -> LabelHead | None:
        """The head saved in ``folder``, or None when it has none."""
        import torch
        from safetensors.torch import load_file

        folder = Path(folder)
        if not (folder / LABEL_HEAD_CONFIG).exists():
            return None
        config = json.loads((folder / LABEL_HEAD_CONFIG).read_text())
        tasks = {
            name: TaskLabels(name, list(t["labels"]), bool(t.get("multi_label")), dict(t.get("descriptions") or {}))
            for name, t in config["tasks"].items()
        }
        tensors = load_file(str(folder / LABEL_HEAD_WEIGHTS))
        hidden = next(iter(v.shape[1] for k, v in tensors.items() if k.endswith("/weight")))
        head = cls(tasks, hidden, max_length=int(config.get("max_length", 128)))
        with torch.no_grad():
            head.module.log_scale.copy_(tensors["log_scale"][0])
            for task in tasks:
                head.module.weights[_key(task)].copy_(tensors[f"{task}/weight"])
                head.module.biases[_key(task)].copy_(tensors[f"{task}/bias"])
        head.module.eval()
        return head


def shuffled_batches(count: int, batch_size: int, rng: random.Random) -> list[list[int]]:
    order = list(range(count))
    rng.shuffle(order)
    return [order[i : i + batch_size] for i in range(0, count, batch_size)]


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
