"""Windows over long texts and the merge of their results (pure functions, no model)."""

from __future__ import annotations

import itertools
import random
import re

import pytest
from pytest import approx

from outrider.backends.encoder_windows import (
    Window,
    aggregate_classification,
    merge_window_results,
    split_windows,
)


def units_of(text: str, tokens_per_word=lambda word: 1) -> list[tuple[int, int, int]]:
    return [(m.start(), m.end(), tokens_per_word(m.group())) for m in re.finditer(r"\w+|\S", text)]


def check_cover(text: str, units, windows: list[Window], budget: int) -> None:
    """Every word lies whole inside some window; windows stay in budget, overlap and move forward."""
    assert windows[0].first and windows[0].start == units[0][0]
    assert windows[-1].last and windows[-1].end == units[-1][1]
    for window in windows:
        inside = [u for u in units if window.start <= u[0] and u[1] <= window.end]
        assert sum(u[2] for u in inside) == window.tokens <= budget
        assert text[window.start].strip() and text[window.end - 1].strip()  # cut on words, not in spaces
    for before, after in itertools.pairwise(windows):
        assert before.start < after.start < before.end < after.end  # overlapping, advancing
    for start, end, _ in units:
        assert any(w.start <= start and end <= w.end for w in windows)


@pytest.mark.parametrize("seed", range(5))
def test_windows_cover_the_text_within_budget_and_overlap(seed: int) -> None:
    rng = random.Random(seed)
    words = ["alpha", "beta", "Gamma", "delta.", "epsilon,", "zeta!", "eta\n\n", "theta?"]
    text = " ".join(rng.choice(words) for _ in range(3000))
    units = units_of(text, lambda word: 1 + len(word) // 4)
    windows = split_windows(text, units, budget=200, overlap=32)
    assert len(windows) > 10
    check_cover(text, units, windows, 200)
    for before, after in itertools.pairwise(windows):
        shared = sum(u[2] for u in units if after.start <= u[0] and u[1] <= before.end)
        assert 32 <= shared <= 2 * 32  # about the overlap; up to twice it to start at a sentence


def test_windows_end_at_sentences_when_they_can() -> None:
    sentence = "Alice met Bob in Paris and they talked about the weather for a while ."
    text = " ".join([sentence] * 60)
    units = units_of(text)
    windows = split_windows(text, units, budget=100, overlap=16)
    check_cover(text, units, windows, 100)
    for window in windows[:-1]:
        assert text[window.end - 1] == "."
    for window in windows[1:]:
        assert text[window.start : window.start + 5] == "Alice"  # and start at one


def test_windows_are_balanced_not_a_short_tail() -> None:
    text = " ".join(f"w{i}" for i in range(1000))
    units = units_of(text)
    windows = split_windows(text, units, budget=400, overlap=50)
    sizes = [w.tokens for w in windows]
    assert len(windows) == 3 and max(sizes) - min(sizes) < 60, sizes


def test_a_text_within_budget_is_one_window() -> None:
    text = "  Short text here.  "
    windows = split_windows(text, units_of(text), budget=50, overlap=10)
    assert windows == [Window(2, 18, 4, True, True)]


def span(text: str, sub: str, confidence: float, after: int = 0) -> dict:
    start = text.index(sub, after)
    return {"text": sub, "start": start, "end": start + len(sub), "confidence": confidence}


def local(window_text: str, sub: str, confidence: float) -> dict:
    return span(window_text, sub, confidence)


def test_merge_shifts_offsets_and_keeps_one_entity_per_span() -> None:
    text = "Intro words here. David Kim works for Sony in Berlin. More words follow here."
    windows = [Window(0, 52, 20, True, False), Window(12, len(text), 20, False, True)]
    first, second = (text[w.start : w.end] for w in windows)
    results = [
        {"entities": {"person": [local(first, "David Kim", 0.7)], "location": [local(first, "Berlin", 0.6)]}},
        {"entities": {"person": [local(second, "David Kim", 0.9)], "location": [local(second, "Berlin", 0.5)]}},
    ]
    merged = merge_window_results(windows, results)
    person, location = merged["entities"]["person"], merged["entities"]["location"]
    assert person == [{"text": "David Kim", "start": 18, "end": 27, "confidence": 0.9}]
    assert text[person[0]["start"] : person[0]["end"]] == "David Kim"
    # the first window was cut right after "Berlin": that copy may be a fragment, so the second one is kept
    assert location == [{"text": "Berlin", "start": 46, "end": 52, "confidence": 0.5}]


def test_a_span_across_a_window_border_is_found_once() -> None:
    text = "aaa bbb ccc Maria Lopez Garcia ddd eee fff"
    windows = [Window(0, 34, 7, True, False), Window(12, len(text), 6, False, True)]
    first, second = (text[w.start : w.end] for w in windows)
    results = [
        # the first window sees the whole name; the second, starting at "Maria", also a shorter span
        {"entities": {"person": [local(first, "Maria Lopez Garcia", 0.8), local(first, "ccc", 0.1)]}},
        {"entities": {"person": [local(second, "Lopez Garcia", 0.6), local(second, "Maria Lopez Garcia", 0.7)]}},
    ]
    merged = merge_window_results(windows, results)
    names = [(p["text"], p["confidence"]) for p in merged["entities"]["person"]]
    assert names == [("Maria Lopez Garcia", 0.8), ("ccc", 0.1)]


def test_overlapping_spans_from_one_window_both_stay() -> None:
    text = "w " * 10 + "New York City Hall " + "w " * 10
    windows = [Window(0, 30, 15, True, False), Window(10, len(text) - 1, 15, False, True)]
    second = text[10 : len(text) - 1]
    results = [
        {"entities": {"location": []}},
        {"entities": {"location": [local(second, "New York City Hall", 0.9), local(second, "New York", 0.8)]}},
    ]
    merged = merge_window_results(windows, results)
    assert [loc["text"] for loc in merged["entities"]["location"]] == ["New York City Hall", "New York"]


def test_relations_and_structures_merge_without_duplicates() -> None:
    text = "x " * 20 + "David Kim works for Sony. " + "y " * 20
    windows = [Window(0, 66, 30, True, False), Window(30, len(text) - 1, 30, False, True)]
    results = []
    for window in windows:
        piece = text[window.start : window.end]
        relation = {"head": local(piece, "David Kim", 0.9), "tail": local(piece, "Sony", 0.8), "confidence": 0.7}
        record = {"employee": local(piece, "David Kim", 0.9), "employer": [local(piece, "Sony", 0.5)]}
        results.append({"relation_extraction": {"works_for": [relation]}, "job": [record]})
    results[1]["relation_extraction"]["works_for"][0]["confidence"] = 0.75
    merged = merge_window_results(windows, results)
    (relation,) = merged["relation_extraction"]["works_for"]
    assert relation["confidence"] == 0.75
    assert text[relation["head"]["start"] : relation["head"]["end"]] == "David Kim"
    assert text[relation["tail"]["start"] : relation["tail"]["end"]] == "Sony"
    (record,) = merged["job"]
    assert text[record["employer"][0]["start"] : record["employer"][0]["end"]] == "Sony"


def test_classification_aggregates_over_windows() -> None:
    single = [{"label": "positive", "confidence": 0.9}, {"label": "negative", "confidence": 0.6}, None]
    assert aggregate_classification(single, [100.0, 100.0, 100.0]) == {"label": "positive", "confidence": approx(0.3)}
    # two windows outvote one more confident window
    votes = [{"label": "a", "confidence": 0.6}, {"label": "a", "confidence": 0.6}, {"label": "b", "confidence": 0.9}]
    assert aggregate_classification(votes, [1.0, 1.0, 1.0])["label"] == "a"
    multi = [
        [{"label": "sport", "confidence": 0.6}],
        [],
        [{"label": "tech", "confidence": 0.7}, {"label": "sport", "confidence": 0.8}],
    ]
    assert aggregate_classification(multi, [1.0, 1.0, 1.0]) == [
        {"label": "sport", "confidence": 0.8},
        {"label": "tech", "confidence": 0.7},
    ]
    windows = [Window(0, 10, 5, True, False), Window(5, 20, 5, False, True)]
    merged = merge_window_results(windows, [{"tone": single[0]}, {"tone": single[0]}], {"tone"})
    assert merged == {"tone": {"label": "positive", "confidence": approx(0.9)}}
