"""Training records longer than the encoder's input: split into overlapping windows, never cut silently.

Without this, a record whose text (with the schema prompt) exceeds the encoder's positions (MiniLM: 512)
either fails the batch in ``gliner2``'s collator or, for the label head, is cut at its ``max_length``
(128 tokens) without a word. Serving windows long texts (``backends/encoder_windows``); training does the
same with the same windows, so a model learns from the pieces it will be asked about:

- the text is cut with ``Gliner2Encoder.text_windows`` (word boundaries, preferably sentence ends, 64
  tokens of overlap) within the budget the run's whole schema prompt leaves (``text_budget``), and within
  the label head's ``max_length`` when the record has a label-head classification;
- entities, relations and structures: an annotation goes to every window that holds it whole. A mention
  given as a string (the form ``datasets.formats.to_gliner2`` writes) is held when it occurs in the
  window's text (GLiNER2 matches mentions case-insensitively); a span ``{"text", "start", "end"}`` when its
  offsets lie inside the window, re-based to the window's start. An annotation that crosses a cut is whole
  in the neighbouring window, since windows overlap by far more than a mention's length; one held by no
  window (longer than the overlap) is dropped and counted. Entity types keep their (possibly empty) lists
  in every window: an empty list teaches that the window has none;
- classifications: every window carries the document's label(s). Serving averages the windows' scores
  into one answer, so a window is taught the label the document has (label noise on long documents whose
  label rests on one passage is the price of never dropping text);
- a window left with no task (a relation-only record whose relations all lie elsewhere) is dropped.

The validation records are split the same way, so validation figures on long records are over windows.
How many records were split, into how many windows, and what was dropped is logged and returned.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from outrider.backends.encoder_windows import Window
from outrider.backends.label_head import DEFAULT_MAX_LENGTH as DEFAULT_HEAD_LENGTH
from outrider.training import encoder_classification as cls
from outrider.training.encoder_setup import Plan

if TYPE_CHECKING:
    from outrider.training.encoder_setup import Trainable

log = logging.getLogger(__name__)

TASK_KEYS = ("entities", "classifications", "relations", "json_structures")
Windower = Callable[[str, int], "list[Window] | None"]  # (text, token budget) -> windows, None when it fits


@dataclass
class SplitReport:
    records: int = 0  # records looked at
    split: int = 0  # records longer than their budget
    windows: int = 0  # windows those records became (before dropping empty ones)
    dropped_annotations: int = 0  # annotations no window holds whole
    dropped_windows: int = 0  # windows left with nothing to learn

    def log(self, what: str) -> None:
        if self.split:
            log.warning(
                "split %d of %d %s records longer than the encoder's input into %d windows "
                "(%d annotations held by no window whole and %d windows with no task left were dropped)",
                self.split,
                self.records,
                what,
                self.windows,
                self.dropped_annotations,
                self.dropped_windows,
            )


def _is_span(value: Any) -> bool:
    return isinstance(value, Mapping) and {"text", "start", "end"} <= value.keys()


def _held(value: Any, text: str, piece: str, window: Window) -> bool:
    """Does the window hold every text-bound part of ``value`` whole?"""
    if value is None or value == "":
        return True
    if isinstance(value, str):
        return value.lower() in piece.lower()
    if _is_span(value):
        start, end = value["start"], value["end"]
        return isinstance(start, int) and isinstance(end, int) and window.start <= start and end <= window.end
    if isinstance(value, Mapping):
        # a choice field ({"value", "choices"}) names an option, not a piece of the text
        return "choices" in value or all(_held(v, text, piece, window) for v in value.values())
    if isinstance(value, list):
        return all(_held(v, text, piece, window) for v in value)
    return True


def _rebase(value: Any, offset: int) -> Any:
    if _is_span(value):
        return {**value, "start": value["start"] - offset, "end": value["end"] - offset}
    if isinstance(value, Mapping):
        return {k: _rebase(v, offset) for k, v in value.items()}
    if isinstance(value, list):
        return [_rebase(v, offset) for v in value]
    return value


def _window_output(output: Mapping[str, Any], text: str, window: Window) -> dict[str, Any]:
    """The record's output as one window sees it (offsets re-based); task keys with nothing left removed."""
    piece = text[window.start : window.end]
    out: dict[str, Any] = {}
    for key, value in output.items():
        if key == "entities":
            out[key] = {
                label: [_rebase(m, window.start) for m in mentions or [] if _held(m, text, piece, window)]
                for label, mentions in (value or {}).items()
            }
        elif key in ("relations", "json_structures"):
            kept = [_rebase(item, window.start) for item in value or [] if _held(item, text, piece, window)]
            if kept:
                out[key] = kept
        else:  # classifications (the document's label for every window), descriptions
            out[key] = value
    return out


def _annotations(output: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """Each entity mention, relation and structure once, as a key to tell which windows kept it."""
    found = []
    for label, mentions in (output.get("entities") or {}).items():
        found += [("entities", label, repr(_rebase(m, 0))) for m in mentions or []]
    for key in ("relations", "json_structures"):
        found += [(key, "", repr(item)) for item in output.get(key) or []]
    return found


def window_record(record: Mapping[str, Any], windows: Sequence[Window], report: SplitReport) -> list[dict[str, Any]]:
    """One record per window (see the module notes), counting into ``report`` what no window keeps."""
    text, output = record["input"], record["output"]
    pieces = []
    kept: set[tuple[str, str, str]] = set()
    for window in windows:
        part = _window_output(output, text, window)
        # what this window keeps, in the original's offsets, to count what no window keeps
        for key, label, item in _annotations(_rebase(part, -window.start)):
            kept.add((key, label, item))
        if not any(part.get(key) is not None for key in TASK_KEYS):
            report.dropped_windows += 1
            continue
        pieces.append({**record, "input": text[window.start : window.end], "output": part})
    report.dropped_annotations += sum(1 for a in _annotations(output) if a not in kept)
    return pieces


def split_long_records(
    records: Sequence[dict[str, Any]], windower: Windower, budget_of: Callable[[dict[str, Any]], int], what: str
) -> list[dict[str, Any]]:
    """``records`` with every record longer than its budget replaced by its windows; logs what it did."""
    report = SplitReport(records=len(records))
    out: list[dict[str, Any]] = []
    for record in records:
        text = record.get("input")
        windows = windower(text, budget_of(record)) if isinstance(text, str) else None
        if windows is None or len(windows) < 2:
            out.append(record)
            continue
        report.split += 1
        report.windows += len(windows)
        out += window_record(record, windows, report)
    report.log(what)
    return out


# Tokens kept free beyond serving's margin: training samples label sets (GLiNER2 renames some to "label 1".."n")
# so a record's prompt may be a few tokens longer than the run's schema prompt measured once.
TRAINING_MARGIN = 16


def fit_to_encoder(
    trainable: Trainable,
    train_records: list[dict[str, Any]],
    val_records: list[dict[str, Any]],
    method: cls.ClassificationMethod,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The training and validation records with every long record split into windows that fit the encoder:
    within the positions left by the prompt of the run's whole schema, and within the label head's
    ``max_length`` for a record with a label-head classification."""
    from gliner2 import Schema

    from outrider.backends.encoder_gliner import MIN_TEXT_WINDOW, Gliner2Encoder
    from outrider.training.encoder_eval import gliner_schema

    core = trainable.core
    tokenizer = core.processor.tokenizer
    all_records = [*train_records, *val_records]
    tasks = cls.collect_tasks(all_records)
    methods = cls.plan_methods(tasks, method, tokenizer)
    schema = gliner_schema(all_records, Plan(tasks, methods, []))
    encoder = Gliner2Encoder(core)
    gliner_budget = encoder.text_budget(Schema.from_dict(schema)) - TRAINING_MARGIN if schema else None
    head_length = trainable.label_head.max_length if trainable.label_head is not None else DEFAULT_HEAD_LENGTH
    head_budget = head_length - tokenizer.num_special_tokens_to_add(pair=False)
    head_tasks = {name for name, chosen in methods.items() if chosen == "label_head"}

    def budget_of(record: dict[str, Any]) -> int:
        output = record["output"]
        tasks_here = {entry.get("task") for entry in output.get("classifications") or []}
        budgets = [head_budget] if tasks_here & head_tasks else []
        if gliner_budget is not None and (
            any(output.get(key) is not None for key in ("entities", "relations", "json_structures"))
            or tasks_here - head_tasks
        ):
            budgets.append(gliner_budget)
        return min(budgets, default=head_budget)

    def windower(text: str, budget: int) -> list[Window] | None:
        windows = encoder.text_windows(text, max(budget, MIN_TEXT_WINDOW))
        if windows is not None and budget < MIN_TEXT_WINDOW:
            raise ValueError(
                f"the run's schema leaves {budget} of the encoder's input tokens for the text, too few to train on "
                "long records: use fewer or shorter labels and descriptions"
            )
        return windows

    return (
        split_long_records(train_records, windower, budget_of, "training"),
        split_long_records(val_records, windower, budget_of, "validation"),
    )
