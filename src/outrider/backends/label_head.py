"""Outrider's label-embedding classification head for GLiNER2 models (``LabelHead``): the text mean-pooled
from the model's own encoder, one trained vector per label, a scaled cosine plus a bias per label.

Serving applies it (``backends/encoder_gliner``) and training creates and trains it
(``training/encoder_classification`` explains why it exists and how it compares with GLiNER2's own head).
It lives in two small files next to the GLiNER2 weights (``outrider_classifier.*``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LABEL_HEAD_WEIGHTS = "outrider_classifier.safetensors"
LABEL_HEAD_CONFIG = "outrider_classifier.json"
HeadExample = tuple[str, dict[str, list[str]]]  # a text and its gold labels per label-head task


@dataclass
class TaskLabels:
    """One classification task as the records declare it: its labels in a fixed order."""

    task: str
    labels: list[str] = field(default_factory=list)
    multi_label: bool = False
    descriptions: dict[str, str] = field(default_factory=dict)


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


DEFAULT_MAX_LENGTH = 128  # tokens of text a head reads at once (longer texts go as windows)


class LabelHead:
    """Scaled cosine between the pooled text and one trained vector per label, per task."""

    def __init__(
        self, tasks: dict[str, TaskLabels], hidden: int, max_length: int = DEFAULT_MAX_LENGTH, scale: float = 20.0
    ) -> None:
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
