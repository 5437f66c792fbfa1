"""Long texts on a loaded GLiNER2 encoder: windows for its span heads and for Outrider's label head."""

from __future__ import annotations

from pathlib import Path

import pytest

from outrider.core.schema import ExtractionSchema

FILLER = "The committee met again on Tuesday and the minutes were approved without any changes. "


@pytest.fixture(scope="module")
def encoder(base_models_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    from outrider.backends.builtin import base_model_dir
    from outrider.backends.encoder_gliner import MINILM_BASE_ID, Gliner2Encoder, ensure_minilm_base
    from outrider.config import build_settings

    settings = build_settings(data_dir=tmp_path_factory.mktemp("data"), base_models_dir=base_models_dir)
    return Gliner2Encoder.load(str(ensure_minilm_base(base_model_dir(settings, MINILM_BASE_ID))))


def long_text(chars: int, tail: str = "") -> str:
    return (FILLER * (chars // len(FILLER) + 1))[: chars - len(tail)] + tail


def spy_on_batch_extract(encoder, monkeypatch) -> list[list[str]]:
    seen: list[list[str]] = []
    real = encoder.model.batch_extract

    def spy(texts, *args, **kwargs):
        seen.append(texts)
        return real(texts, *args, **kwargs)

    monkeypatch.setattr(encoder.model, "batch_extract", spy)
    return seen


def test_a_text_that_fits_goes_to_gliner2_as_it_is(encoder, monkeypatch):
    seen = spy_on_batch_extract(encoder, monkeypatch)
    prepared = encoder.prepare(ExtractionSchema.model_validate({"entities": ["person"]}))
    texts = ["David Kim works for Sony in Berlin.", long_text(1500)]
    encoder.extract(texts, [prepared] * 2, 0.5)
    assert seen == [texts]


def test_a_long_text_goes_as_windows_within_the_encoders_positions(encoder, monkeypatch):
    seen = spy_on_batch_extract(encoder, monkeypatch)
    schema = ExtractionSchema.model_validate(
        {"entities": ["person", "company"], "classifications": [{"task": "tone", "labels": ["formal", "casual"]}]}
    )
    prepared = encoder.prepare(schema)
    text = long_text(9000, " David Kim works for Sony in Berlin.")
    (result,) = encoder.extract([text, "Short one."], [prepared] * 2, 0.0)[:1]
    (inputs,) = seen
    assert len(inputs) > 4 and inputs[-1] == "Short one."  # one call: the windows and the short text together
    processor = encoder.model.processor
    for window in inputs[:-1]:
        assert window in text
        assert len(processor.transform_record(window, prepared.gliner_schema).input_ids) <= 512
    assert "David Kim works for Sony in Berlin." in inputs[-2]
    for spans in result["entities"].values():
        for span in spans:
            assert text[span["start"] : span["end"]] == span["text"]
    assert result["tone"]["label"] in {"formal", "casual"}


def test_the_label_head_classifies_a_long_text_window_by_window(encoder, monkeypatch):
    from outrider.backends.label_head import LabelHead, TaskLabels

    tokenizer = encoder.model.processor.tokenizer
    head = LabelHead({"topic": TaskLabels("topic", ["meetings", "football"])}, encoder.model.encoder.config.hidden_size)
    head.initialise(encoder.model.encoder, tokenizer)  # zero-shot: each label's vector is its encoded name
    monkeypatch.setattr(encoder, "label_head", head)
    calls: list[list[str]] = []
    real = head.predict
    monkeypatch.setattr(head, "predict", lambda enc, tok, texts, *a: calls.append(texts) or real(enc, tok, texts, *a))
    prepared = encoder.prepare(
        ExtractionSchema.model_validate({"classifications": [{"task": "t", "labels": ["meetings", "football"]}]})
    )
    assert prepared.head_tasks and prepared.gliner_schema is None

    short = "The minutes were approved."
    text = long_text(5000)
    short_answer, long_answer = (r["t"] for r in encoder.extract([short, text], [prepared] * 2, 0.5))
    (inputs,) = calls
    assert inputs[0] == short  # within the head's length: as it is
    windows = inputs[1:]
    assert len(windows) > 5
    assert all(len(tokenizer(w)["input_ids"]) <= head.max_length for w in windows)  # nothing truncated away
    assert windows[0] == text[: len(windows[0])] and text.rstrip().endswith(windows[-1])
    assert long_answer["label"] == "meetings" and 0.5 < long_answer["confidence"] <= 1.0
    assert short_answer["label"] == "meetings"
