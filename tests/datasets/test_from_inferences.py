"""Reviewed inference records -> examples: spans re-located, unfit corrections reported, one example per text."""

import pytest

from outrider.datasets.from_inferences import Unfit, convert_record, example_key

TEXT = "Anna Schmidt met Tim Cook. Tim Cook works for Apple."


def ner(output, text=TEXT):
    return convert_record("ner", {"text": text, "schema": {}}, output, record_task="extract")


def test_text_only_mentions_land_on_every_occurrence_and_fitting_offsets_are_kept():
    [example] = ner(
        {"entities": {"person": ["Tim Cook", {"text": "Anna Schmidt", "start": 0, "end": 12}], "company": ["Apple"]}}
    )
    assert [(e["start"], e["end"], e["label"]) for e in example["entities"]] == [
        (0, 12, "person"),
        (17, 25, "person"),
        (27, 35, "person"),
        (46, 51, "company"),
    ]
    assert all(TEXT[e["start"] : e["end"]] == e["text"] for e in example["entities"])


def test_offsets_that_no_longer_fit_are_relocated_by_the_mention_text():
    [example] = ner({"entities": {"company": [{"text": "Apple", "start": 0, "end": 5}]}})
    assert [(e["start"], e["text"]) for e in example["entities"]] == [(46, "Apple")]


def test_a_mention_that_does_not_occur_is_unfit_not_guessed():
    with pytest.raises(Unfit, match="'Google' does not occur"):
        ner({"entities": {"company": ["Google"]}})
    with pytest.raises(Unfit, match="entities"):
        ner({"classifications": {}})


def test_a_confirmed_empty_output_is_a_negative_example():
    assert ner({"entities": {"person": []}}) == [{"text": TEXT, "entities": []}]


def test_batch_records_give_one_example_per_text_and_report_the_index():
    record = {"text": ["Tim Cook.", "Apple."], "schema": {}}
    output = [{"entities": {"person": ["Tim Cook"]}}, {"entities": {"company": ["Apple"]}}]
    assert len(convert_record("ner", record, output, record_task="extract")) == 2
    with pytest.raises(Unfit, match=r"text\[1\]"):
        convert_record("ner", record, [output[0], {"entities": {"company": ["Sony"]}}], record_task="extract")
    with pytest.raises(Unfit):
        convert_record("ner", record, output[:1], record_task="extract")


def test_classification_takes_the_only_task_or_the_named_one():
    record = {"text": "Where is my card?", "schema": {}}
    one = {"classifications": {"intent": "card_arrival"}}
    assert convert_record("classification", record, one, record_task="extract") == [
        {"text": "Where is my card?", "label": "card_arrival"}
    ]
    two = {"classifications": {"intent": {"label": "a", "confidence": 0.9}, "tone": ["x", "y"]}}
    with pytest.raises(Unfit, match="several"):
        convert_record("classification", record, two, record_task="extract")
    assert convert_record("classification", record, two, record_task="extract", classification_task="tone")[0][
        "labels"
    ] == ["x", "y"]


def test_relations_structures_and_decoder_records():
    rel = {"relations": {"works_for": [{"head": "Tim Cook", "tail": {"text": "Apple"}}]}}
    [example] = convert_record("relations", {"text": TEXT}, rel, record_task="extract")
    assert example["relations"] == [{"label": "works_for", "head": "Tim Cook", "tail": "Apple"}]
    with pytest.raises(Unfit):
        convert_record(
            "relations", {"text": TEXT}, {"relations": {"r": [{"head": "X", "tail": "Apple"}]}}, record_task="extract"
        )
    st = {"structures": {"meeting": [{"who": ["Anna Schmidt", "Tim Cook"], "where": None}]}}
    [example] = convert_record("structures", {"text": TEXT}, st, record_task="extract")
    assert example["structures"] == [{"meeting": {"who": ["Anna Schmidt", "Tim Cook"], "where": None}}]
    chat = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5}
    [example] = convert_record("decoder", chat, "Hello!", record_task="generate")
    assert example["messages"][-1] == {"role": "assistant", "content": "Hello!"}
    assert example_key("decoder", example) == example_key(
        "decoder", {"messages": [*chat["messages"], {"role": "assistant", "content": "other"}]}
    )
    with pytest.raises(Unfit):
        convert_record("decoder", {"text": TEXT}, {}, record_task="extract")
    with pytest.raises(Unfit):
        convert_record("ner", chat, {"completion": "x"}, record_task="generate")
