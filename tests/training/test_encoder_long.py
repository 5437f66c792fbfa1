"""Training records longer than the encoder's input are split into windows (never cut silently): the pure
splitting on hand-made windows, then the real MiniLM tokenizer and one short training run on long records."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from outrider.backends.encoder_windows import Window
from outrider.training.encoder_long import SplitReport, fit_to_encoder, split_long_records, window_record

FILLER = "The committee met again on Tuesday and the minutes were approved without any changes. "
FACT = "David Kim works for Sony in Berlin."


def windows_of(text: str, *cuts: tuple[int, int]) -> list[Window]:
    return [Window(a, b, 10, a == 0, b == len(text)) for a, b in cuts]


def test_annotations_go_to_each_window_that_holds_them_whole_with_spans_rebased():
    text = "Anna Lee met Bob. " + "x " * 20 + "Bob Stone works for Acme."
    acme = text.index("Acme")
    record = {
        "input": text,
        "output": {
            "entities": {
                "person": ["Anna Lee", "Bob Stone"],
                "company": [{"text": "Acme", "start": acme, "end": acme + 4}],
            },
            "relations": [{"works_for": {"head": "Bob Stone", "tail": "Acme"}}],
            "classifications": [{"task": "tone", "labels": ["formal", "casual"], "true_label": ["formal"]}],
        },
    }
    split = text.index("x x x") + 10
    report = SplitReport()
    first, second = window_record(record, windows_of(text, (0, split), (split - 8, len(text))), report)

    assert first["input"] == text[:split] and second["input"] == text[split - 8 :]
    assert first["output"]["entities"] == {"person": ["Anna Lee"], "company": []}  # empty: a negative
    assert "relations" not in first["output"]
    assert second["output"]["entities"]["person"] == ["Bob Stone"]
    [company] = second["output"]["entities"]["company"]
    assert second["input"][company["start"] : company["end"]] == "Acme"  # re-based into the window
    assert second["output"]["relations"] == record["output"]["relations"]
    # every window carries the document's label
    assert (
        first["output"]["classifications"] == second["output"]["classifications"] == record["output"]["classifications"]
    )
    assert report.dropped_annotations == 0 and report.dropped_windows == 0


def test_a_span_cut_by_a_window_edge_stays_in_the_window_that_holds_it_and_lost_ones_are_counted():
    text = "alpha beta gamma " * 4 + "Maria Lopez lives here."
    name = text.index("Maria Lopez")
    span = {"text": "Maria Lopez", "start": name, "end": name + 11}
    record = {"input": text, "output": {"entities": {"person": [span]}}}
    cut = name + 5  # the first window ends inside the name
    report = SplitReport()
    first, second = window_record(record, windows_of(text, (0, cut), (name - 6, len(text))), report)
    assert first["output"]["entities"] == {"person": []}
    assert second["output"]["entities"] == {"person": [{**span, "start": 6, "end": 17}]}
    assert report.dropped_annotations == 0

    # a relation whose head and tail never share a window is dropped, and so is a window with no task left
    relation = {"input": text, "output": {"relations": [{"lives_in": {"head": "alpha", "tail": "here"}}]}}
    report = SplitReport()
    assert window_record(relation, windows_of(text, (0, cut), (cut, len(text))), report) == []
    assert report.dropped_annotations == 1 and report.dropped_windows == 2


def test_structures_are_kept_where_all_their_values_occur():
    text = "The Pixel 9 costs $799. " + "y " * 30 + "The Galaxy costs $899."
    record = {
        "input": text,
        "output": {
            "json_structures": [
                {"product": {"name": "Pixel 9", "price": "$799", "kind": {"value": "phone", "choices": ["phone"]}}},
                {"product": {"name": "Galaxy", "price": "$899", "colour": None}},
            ]
        },
    }
    split = text.index("y y") + 20
    first, second = window_record(record, windows_of(text, (0, split), (split - 6, len(text))), SplitReport())
    assert first["output"]["json_structures"] == [record["output"]["json_structures"][0]]
    assert second["output"]["json_structures"] == [record["output"]["json_structures"][1]]


def test_short_records_pass_unchanged_and_a_split_is_logged(caplog):
    short = {"input": "short", "output": {"entities": {"person": []}}}
    long = {"input": "a " * 50, "output": {"entities": {"person": []}}}

    def windower(text: str, budget: int) -> list[Window] | None:
        return None if len(text) <= budget else windows_of(text, (0, 60), (40, len(text)))

    with caplog.at_level(logging.WARNING, logger="outrider.training.encoder_long"):
        out = split_long_records([short, long], windower, lambda record: 20, "training")
    assert out[0] is short and [r["input"] for r in out[1:]] == [long["input"][:60], long["input"][40:]]
    assert "split 1 of 2 training records" in caplog.text and "into 2 windows" in caplog.text


@pytest.fixture(scope="module")
def minilm_base(base_models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from outrider.backends.builtin import base_model_dir
    from outrider.backends.encoder_gliner import MINILM_BASE_ID, ensure_minilm_base
    from outrider.config import build_settings

    settings = build_settings(data_dir=tmp_path_factory.mktemp("data"), base_models_dir=base_models_dir)
    return ensure_minilm_base(base_model_dir(settings, MINILM_BASE_ID))


def long_records() -> list[dict]:
    text = FILLER * 40 + FACT + " " + FILLER * 10  # about 4,500 characters, ~900 tokens
    entities = {"input": text, "output": {"entities": {"person": ["David Kim"], "company": ["Sony"]}}}
    intent = {"task": "topic", "labels": ["meeting", "weather"], "true_label": ["meeting"]}
    classified = {"input": text, "output": {"classifications": [intent]}}
    return [entities, classified]


def test_real_windows_fit_the_encoder_and_the_label_head(minilm_base):
    from outrider.training.encoder import EncoderTrainingConfig, load_trainable

    trainable = load_trainable(minilm_base, EncoderTrainingConfig())
    entities, classified = long_records()
    train, val = fit_to_encoder(trainable, [entities, classified], [entities], "auto")
    tokenizer = trainable.core.processor.tokenizer
    ner = [r for r in train if "entities" in r["output"]]
    heads = [r for r in train if "classifications" in r["output"]]
    assert len(ner) > 1 and len(heads) > len(ner) and len(val) == len(ner)  # the head reads 128 tokens, not 512
    for record in ner:
        assert len(tokenizer.tokenize(record["input"])) < 512 - 16
    for record in heads:
        assert len(tokenizer(record["input"])["input_ids"]) <= 128  # nothing the head would cut off
        assert record["output"] == classified["output"]
    holders = [r for r in ner if r["output"]["entities"]["person"]]
    assert holders and all(FACT in r["input"] for r in holders)  # whole, in the window(s) that hold it
    assert ner[0]["input"] == entities["input"][: len(ner[0]["input"])]


def test_a_short_run_on_long_records_trains_on_their_windows(minilm_base, tmp_path):
    from outrider.training.encoder import EncoderTrainingConfig, run_encoder_training

    entities, _ = long_records()
    config = EncoderTrainingConfig(num_threads=1, max_steps=2, batch_size=4)
    result = run_encoder_training(minilm_base, [entities], [entities], tmp_path, config)
    # before: "The expanded size of the tensor (...) must match the existing size (512)" in the first step
    assert result.steps == 2 and result.model_dir is not None
    metadata = json.loads((result.model_dir / "outrider.json").read_text())
    assert metadata["train_examples"] > 1 and metadata["val_examples"] == metadata["train_examples"]
