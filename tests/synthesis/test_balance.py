"""Label planning: classification quotas stay within one of each other; NER requests cover every label."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from outrider.synthesis.balance import LabelCoverage, LabelQuotas


def test_quotas_split_the_total_evenly():
    quotas = LabelQuotas(["a", "b", "c"], 10, random.Random(0))
    assert sum(quotas.quota.values()) == 10
    assert max(quotas.quota.values()) - min(quotas.quota.values()) == 1


@pytest.mark.parametrize("seed", range(5))
def test_counts_differ_by_at_most_one_when_the_teacher_sometimes_fails(seed):
    rng = random.Random(seed)
    labels = ["refund", "card_lost", "fees", "login", "transfer"]
    quotas = LabelQuotas(labels, 23, rng)
    # "refund" fails 60% of the time, the others 20%: requests keep going to the label that lags.
    failure = {label: 0.2 for label in labels} | {"refund": 0.6}
    accepted = Counter()
    for _ in range(40):  # waves of 8 concurrent requests
        wave = [quotas.next_label() for _ in range(8)]
        for label in wave:
            quotas.release(label)
            if rng.random() > failure[label] and quotas.accept(label):
                accepted[label] += 1
        if sum(accepted.values()) == 23:
            break
    assert sum(accepted.values()) == 23
    assert max(accepted.values()) - min(accepted.values()) <= 1
    assert not quotas.accept(max(accepted, key=accepted.get))  # a full label refuses more


def test_requests_target_the_labels_still_short():
    quotas = LabelQuotas(["a", "b"], 4, random.Random(0))
    for _ in range(2):
        quotas.accept("a")
    assert [quotas.next_label() for _ in range(4)] == ["b"] * 4  # "a" is full: even overshoot goes to "b"


def test_ner_requests_cover_every_label():
    labels = ["person", "company", "product", "location", "date", "event", "money"]
    coverage = LabelCoverage(labels, random.Random(1))
    for _ in range(4):  # four examples of up to two labels each could miss one without the planner
        chosen = coverage.next_labels(2)
        assert len(set(chosen)) == 2
        coverage.release(chosen)
        coverage.accept([{"label": label} for label in chosen])
    assert coverage.uncovered() == []
