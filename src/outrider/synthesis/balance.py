"""Which labels the next requests ask the teacher for, so the finished set is balanced.

Classification: each label has a quota (the total split evenly; the remainder goes to labels picked by the
seed), the next request goes to the label furthest below its quota counting requests already in flight, and
an accepted example beyond its label's quota is refused. Counts therefore differ by at most one whenever the
teacher keeps producing acceptable examples for every label.

NER: every example asks for one to three entity types, the least covered ones, so every type appears.
"""

from __future__ import annotations

import random
from collections import Counter


class LabelQuotas:
    def __init__(self, labels: list[str], total: int, rng: random.Random) -> None:
        if not labels:
            raise ValueError("labels must not be empty")
        self.labels = list(labels)
        base, extra = divmod(total, len(labels))
        lucky = set(rng.sample(self.labels, extra))
        self.quota = {label: base + (label in lucky) for label in self.labels}
        self.accepted: Counter[str] = Counter()
        self.pending: Counter[str] = Counter()
        self._turn = 0

    def remaining(self, label: str) -> int:
        return self.quota[label] - self.accepted[label]

    def next_label(self) -> str:
        """The label most in need of a request; reserve a pending request for it (``release`` when done)."""
        # Rotating the starting point breaks ties round-robin instead of always favouring the first label.
        order = self.labels[self._turn :] + self.labels[: self._turn]
        self._turn = (self._turn + 1) % len(self.labels)
        label = max(order, key=lambda lb: (self.remaining(lb) > 0, self.remaining(lb) - self.pending[lb]))
        self.pending[label] += 1
        return label

    def release(self, label: str) -> None:
        self.pending[label] -= 1

    def accept(self, label: str) -> bool:
        """Count an example of ``label``; False (refused) when the label's quota is already full."""
        if self.remaining(label) <= 0:
            return False
        self.accepted[label] += 1
        return True


class LabelCoverage:
    def __init__(self, labels: list[str], rng: random.Random) -> None:
        if not labels:
            raise ValueError("labels must not be empty")
        self.labels = list(labels)
        self.rng = rng
        self.mentions: Counter[str] = Counter()
        self.pending: Counter[str] = Counter()

    def next_labels(self, count: int) -> list[str]:
        """``count`` distinct labels (at most all of them), the least covered ones (counting pending requests),
        ties broken at random. Reserved as pending until ``release``."""
        count = max(1, min(count, len(self.labels)))
        shuffled = self.rng.sample(self.labels, len(self.labels))
        chosen = sorted(shuffled, key=lambda lb: self.mentions[lb] + self.pending[lb])[:count]
        self.pending.update(chosen)
        return chosen

    def release(self, labels: list[str]) -> None:
        self.pending.subtract(labels)

    def accept(self, entities: list[dict]) -> None:
        self.mentions.update(entity["label"] for entity in entities)

    def uncovered(self) -> list[str]:
        return [label for label in self.labels if self.mentions[label] == 0]
