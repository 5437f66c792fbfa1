"""Long texts on encoders with a fixed input length: overlapping windows, and merging their results.

An encoder sees at most a few hundred tokens at once (MiniLM: 512 positions, shared with the schema
prompt). A longer text is cut into overlapping windows on word boundaries, each window is extracted on
its own (all windows of all texts in one batch), and the windows' results are merged back into one
result whose character offsets index the original text:

- spans are shifted by their window's start;
- a span touching a window's cut edge (the window's first or last word, where the text was cut) may be a
  fragment of a longer one; it is dropped, because the neighbouring window holds the same words with
  context (windows overlap by far more than an entity's length);
- entities: one per (label, start, end), the highest confidence kept; two different but overlapping
  spans of one label reported by different windows are the same mention seen twice, so the more
  confident one is kept (a span across a window border is found once);
- relations: one per (type, head span, tail span), the highest confidence kept; found within a window;
- structures: the windows' records concatenated, duplicates removed; found within a window;
- classifications: a single-label task takes the label with the highest mean score over the windows
  (windows weighted by their token count; a window that chose another label scores 0), and that mean as
  its confidence; a multi-label task takes the union of the windows' labels with each label's highest
  confidence.

Pure functions: the caller supplies the words with their token counts and runs the model.
"""

from __future__ import annotations

import bisect
import itertools
import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

# A word that ends a sentence: a window preferably ends after one (and the next starts after one).
SENTENCE_END = frozenset(".!?;\u3002\uff01\uff1f\u2026")  # also the CJK full stop, "!", "?", and "..."

Unit = tuple[int, int, int]  # (start char, end char, tokens): a word as the model tokenizes it


@dataclass(frozen=True)
class Window:
    start: int  # character offsets into the original text
    end: int
    tokens: int
    first: bool  # starts at the text's first word: no cut edge at its start
    last: bool  # ends at the text's last word: no cut edge at its end


def _break_after(text: str, units: Sequence[Unit], k: int) -> int:
    """How good a cut between ``units[k - 1]`` and ``units[k]`` is: 2 sentence end, 1 whitespace, 0 inside."""
    prev_start, prev_end, _ = units[k - 1]
    gap = text[prev_end : units[k][0]]
    if "\n" in gap or (gap and text[prev_start:prev_end] in SENTENCE_END):
        return 2
    return 1 if gap else 0


def _best_cut(text: str, units: Sequence[Unit], candidates: range) -> int | None:
    """The first candidate with the best break quality (candidates in order of preference)."""
    best, best_quality = None, -1
    for k in candidates:
        quality = _break_after(text, units, k)
        if quality > best_quality:
            best, best_quality = k, quality
            if quality == 2:
                break
    return best


def split_windows(text: str, units: Sequence[Unit], budget: int, overlap: int) -> list[Window]:
    """Cover ``units`` with windows of at most ``budget`` tokens, each overlapping the previous one.

    A window ends at a sentence end when one lies in its last quarter, else at whitespace near its
    budget; the next window starts ``overlap`` tokens before that end (earlier, up to twice that, to
    start at a sentence). A single word over ``budget`` must be split by the caller first.
    """
    if budget <= 0 or overlap < 0:
        raise ValueError("budget must be positive and overlap non-negative")
    n = len(units)
    if n == 0:
        return [Window(0, len(text), 0, True, True)]
    prefix = [0, *itertools.accumulate(u[2] for u in units)]
    overlap = min(overlap, budget // 2)
    windows: list[Window] = []
    i = 0
    while True:
        # Share what is left evenly among the windows it needs, rather than leaving a short last one.
        remaining = prefix[n] - prefix[i]
        count = max(1, -(-(remaining - overlap) // (budget - overlap)))
        fill = min(budget, -(-(remaining + (count - 1) * overlap) // count))
        # furthest end j with tokens(i..j) <= fill; at least one word, so the loop always advances
        j = max(bisect.bisect_right(prefix, prefix[i] + fill) - 1, i + 1)
        if j < n:
            # prefer a sentence end in the last quarter of the window, else whitespace near its end
            floor = bisect.bisect_left(prefix, prefix[j] - fill // 4)
            cut = _best_cut(text, units, range(j, max(floor, i + 1) - 1, -1))
            j = cut if cut is not None else j
        windows.append(Window(units[i][0], units[j - 1][1], prefix[j] - prefix[i], i == 0, j == n))
        if j == n:
            return windows
        # next start: at least ``overlap`` tokens before j, moved back to a sentence start if one is near
        k0 = min(bisect.bisect_right(prefix, prefix[j] - overlap) - 1, j - 1)
        far = bisect.bisect_left(prefix, prefix[j] - 2 * overlap)
        cut = _best_cut(text, units, range(k0, max(far, i + 1) - 1, -1))
        i = max(cut if cut is not None else k0, i + 1)


def window_weights(windows: Sequence[Window]) -> list[float]:
    return [float(max(w.tokens, 1)) for w in windows]


# -- merging -------------------------------------------------------------------------------------------------
def _is_span(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("start"), int) and isinstance(value.get("end"), int)


def _shift(value: Any, offset: int) -> Any:
    """A copy of ``value`` with every span's offsets moved by ``offset``."""
    if isinstance(value, list):
        return [_shift(v, offset) for v in value]
    if isinstance(value, dict):
        out = {k: _shift(v, offset) for k, v in value.items()}
        if _is_span(value):
            out["start"], out["end"] = value["start"] + offset, value["end"] + offset
        return out
    return value


def _spans_in(value: Any):
    if _is_span(value):
        yield value
    if isinstance(value, dict):
        for v in value.values():
            yield from _spans_in(v)
    elif isinstance(value, list):
        for v in value:
            yield from _spans_in(v)


def _on_cut_edge(value: Any, window: Window) -> bool:
    """Does any span in ``value`` (already shifted) touch an edge where the window cut the text?"""
    return any(
        (not window.first and span["start"] <= window.start) or (not window.last and span["end"] >= window.end)
        for span in _spans_in(value)
    )


def _confidence(value: Any) -> float:
    score = value.get("confidence") if isinstance(value, dict) else None
    return float(score) if isinstance(score, int | float) else float("-inf")


def _overlaps(a: dict, b: dict) -> bool:
    return a["start"] < b["end"] and b["start"] < a["end"]


def _select(found: dict[tuple, tuple[Any, set[int]]], spans_of) -> list[Any]:
    """Highest confidence first; drop an item that overlaps a kept one which no common window reported
    (the same mention, seen by two windows with different boundaries). Overlaps within one window are
    the model's own decision and stay."""
    kept: list[tuple[Any, set[int]]] = []
    by_start: list[tuple[int, int]] = []  # (first span's start, index into kept), sorted: look at neighbours only
    longest = 0
    for item, seen in sorted(found.values(), key=lambda entry: -_confidence(entry[0])):
        spans = spans_of(item)
        lo = bisect.bisect_left(by_start, (spans[0]["start"] - longest, -1))
        hi = bisect.bisect_left(by_start, (spans[0]["end"], -1))
        clash = False
        for _, index in by_start[lo:hi]:
            other, other_seen = kept[index]
            if not (seen & other_seen) and all(map(_overlaps, spans, spans_of(other))):
                clash = True
                break
        if not clash:
            kept.append((item, seen))
            bisect.insort(by_start, (spans[0]["start"], len(kept) - 1))
            longest = max(longest, spans[0]["end"] - spans[0]["start"])
    return [item for item, _ in kept]


def _collect(found: dict[tuple, tuple[Any, set[int]]], key: tuple, item: Any, window: int) -> None:
    previous = found.get(key)
    if previous is None:
        found[key] = (item, {window})
        return
    best = item if _confidence(item) > _confidence(previous[0]) else previous[0]
    found[key] = (best, previous[1] | {window})


def _merge_entities(windows: Sequence[Window], values: Sequence[Any]) -> Any:
    if not any(isinstance(v, list) for v in values):  # a scalar entity type: the single best span
        spans = [v for v, w in zip(values, windows, strict=True) if _is_span(v) and not _on_cut_edge(v, w)]
        return max(spans, key=_confidence) if spans else next((v for v in values if v is not None), None)
    found: dict[tuple, tuple[Any, set[int]]] = {}
    for index, (window, spans) in enumerate(zip(windows, values, strict=True)):
        for span in spans or []:
            if _is_span(span) and not _on_cut_edge(span, window):
                _collect(found, (span["start"], span["end"]), span, index)
    return _select(found, lambda span: [span])


def _merge_relations(windows: Sequence[Window], values: Sequence[list]) -> list:
    found: dict[tuple, tuple[Any, set[int]]] = {}
    for index, (window, relations) in enumerate(zip(windows, values, strict=True)):
        for rel in relations or []:
            head, tail = rel.get("head"), rel.get("tail")
            if not (_is_span(head) and _is_span(tail)) or _on_cut_edge(rel, window):
                continue
            _collect(found, (head["start"], head["end"], tail["start"], tail["end"]), rel, index)
    return _select(found, lambda rel: [rel["head"], rel["tail"]])


def _without_confidence(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_confidence(v) for k, v in value.items() if k != "confidence"}
    if isinstance(value, list):
        return [_without_confidence(v) for v in value]
    return value


def _merge_records(windows: Sequence[Window], values: Sequence[list]) -> list:
    out, seen = [], set()
    for window, records in zip(windows, values, strict=True):
        for record in records or []:
            if _on_cut_edge(record, window):
                continue
            key = json.dumps(_without_confidence(record), sort_keys=True, default=str)
            if key not in seen:
                seen.add(key)
                out.append(record)
    return out


def aggregate_classification(values: Sequence[Any], weights: Sequence[float]) -> Any:
    """One document-level answer from the windows' answers (see the module docstring for the rule)."""
    if any(isinstance(v, list) for v in values):  # multi-label: union, each label's highest confidence
        best: dict[str, dict] = {}
        for answer in values:
            for item in answer or []:
                if not (isinstance(item, dict) and "label" in item):
                    continue
                if item["label"] not in best or _confidence(item) > _confidence(best[item["label"]]):
                    best[item["label"]] = item
        return sorted(best.values(), key=lambda item: -_confidence(item))
    scores: dict[str, float] = {}
    for answer, weight in zip(values, weights, strict=True):
        if isinstance(answer, dict) and "label" in answer:
            score = _confidence(answer)
            scores[answer["label"]] = scores.get(answer["label"], 0.0) + weight * (score if score > 0 else 0.0)
    if not scores:
        return next((v for v in values if v is not None), None)
    label = max(scores, key=lambda name: scores[name])
    return {"label": label, "confidence": scores[label] / sum(weights)}


def merge_window_results(
    windows: Sequence[Window], results: Sequence[dict], classification_tasks: Collection[str] = ()
) -> dict:
    """One result for the whole text from the windows' gliner2-shaped results (offsets window-relative)."""
    if len(windows) != len(results):
        raise ValueError("one result per window")
    if len(windows) == 1:
        return _shift(results[0], windows[0].start)
    shifted = [_shift(result, window.start) for window, result in zip(windows, results, strict=True)]
    weights = window_weights(windows)
    keys = list(dict.fromkeys(key for result in shifted for key in result))
    merged: dict[str, Any] = {}
    for key in keys:
        values = [result.get(key) for result in shifted]
        if key in classification_tasks:
            merged[key] = aggregate_classification(values, weights)
        elif key == "entities":
            labels = list(dict.fromkeys(label for v in values for label in (v or {})))
            merged[key] = {
                label: _merge_entities(windows, [(v or {}).get(label, []) for v in values]) for label in labels
            }
        elif key == "relation_extraction":
            types = list(dict.fromkeys(name for v in values for name in (v or {})))
            merged[key] = {name: _merge_relations(windows, [(v or {}).get(name, []) for v in values]) for name in types}
        elif any(isinstance(v, list) for v in values):  # structures: lists of records
            merged[key] = _merge_records(windows, values)
        else:
            merged[key] = next((v for v in values if v is not None), None)
    return merged
