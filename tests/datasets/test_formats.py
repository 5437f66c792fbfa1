"""Example formats: validators name the field; conversions give records GLiNER2's own trainer accepts."""

import json

import pytest
from gliner2.training.data import InputExample

from outrider.core.errors import InvalidRequest
from outrider.datasets.formats import count_labels, to_chat, to_gliner2, validate_example
from outrider.datasets.importers import conll_to_examples, csv_to_examples
from outrider.datasets.jsonl import encode_examples, parse_jsonl

NER = {"text": "Tim Cook runs Apple.", "entities": [{"start": 0, "end": 8, "label": "person", "text": "Tim Cook"}]}
CLS = {"text": "Where is my card?", "label": "card_arrival"}
STRUCT = {
    "text": "The Pixel 9 costs $799.",
    "structures": [{"product": {"name": "Pixel 9", "price": "$799"}}],
    "descriptions": {"product": {"price": "the price"}},
}
REL = {"text": "Tim Cook works for Apple.", "relations": [{"label": "works_for", "head": "Tim Cook", "tail": "Apple"}]}
CHAT = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}


@pytest.mark.parametrize(
    ("task_type", "example"),
    [("ner", NER), ("classification", CLS), ("structures", STRUCT), ("relations", REL), ("decoder", CHAT)],
)
def test_valid_examples_pass(task_type, example):
    assert validate_example(task_type, example) is None


@pytest.mark.parametrize(
    ("task_type", "example", "field"),
    [
        ("ner", {**NER, "entities": [{**NER["entities"][0], "text": "Tim"}]}, "entities[0].text"),
        ("ner", {**NER, "entities": [{**NER["entities"][0], "end": 99}]}, "entities[0].end"),
        ("ner", {"text": "x", "entites": []}, "entities"),
        ("ner", {**NER, "extra": 1}, "extra"),
        ("classification", {"text": "x"}, "label"),
        ("classification", {"text": "x", "labels": ["a", "a"]}, "labels"),
        ("classification", {"text": "", "label": "a"}, "text"),
        ("structures", {**STRUCT, "structures": [{"product": {"name": "Pixel 10"}}]}, "structures[0].product.name"),
        ("relations", {**REL, "relations": [{"label": "works_for", "head": "Tim Cook"}]}, "relations[0].tail"),
        ("decoder", {"messages": [{"role": "user", "content": "Hi"}]}, "messages"),
        ("decoder", {"messages": [CHAT["messages"][1], CHAT["messages"][0]]}, "messages[1].role"),
    ],
)
def test_invalid_examples_name_the_field(task_type, example, field):
    error = validate_example(task_type, example)
    assert error is not None and error.startswith(field), error


def test_the_label_set_is_enforced_when_given():
    assert validate_example("ner", NER, labels=["person"]) is None
    assert "not one of the labels" in validate_example("ner", NER, labels=["company"])
    assert validate_example("classification", CLS, labels=["lost_card", "card_arrival"]) is None
    assert validate_example("classification", CLS, labels=["lost_card", "x"]).startswith("label")


@pytest.mark.parametrize(
    ("task_type", "example"), [("ner", NER), ("classification", CLS), ("structures", STRUCT), ("relations", REL)]
)
def test_gliner2_records_pass_gliner2s_own_validation(task_type, example):
    labels = {"ner": ["person", "company"], "classification": ["card_arrival", "lost_card"]}.get(task_type)
    record = to_gliner2(task_type, example, labels)
    parsed = InputExample.from_dict(record)
    assert parsed.validate() == []
    assert record["input"] == example["text"]


def test_gliner2_ner_records_list_absent_labels_as_negatives():
    record = to_gliner2("ner", NER, ["person", "company"])
    assert record["output"]["entities"] == {"person": ["Tim Cook"], "company": []}


def test_chat_conversion_for_decoders():
    assert to_chat("decoder", CHAT) == CHAT["messages"]
    messages = to_chat("classification", CLS, ["card_arrival", "lost_card"])
    assert messages[-1] == {"role": "assistant", "content": "card_arrival"}
    assert "card_arrival, lost_card" in messages[0]["content"]


def test_conll_import_computes_offsets_and_bio_spans():
    data = "-DOCSTART-\tO\n\nTim\tB-person\nCook\tI-person\nvisited\tO\nNew\tB-location\nYork\tI-location\n\t\nHi\tO\n"
    examples = conll_to_examples(data)
    assert examples[0]["text"] == "Tim Cook visited New York"
    assert [(e["text"], e["label"]) for e in examples[0]["entities"]] == [
        ("Tim Cook", "person"),
        ("New York", "location"),
    ]
    assert examples[1] == {"text": "Hi", "entities": []}
    assert all(validate_example("ner", e) is None for e in examples)


def test_csv_import_accepts_label_or_category_columns_and_quoted_fields():
    examples = csv_to_examples('text,category\n"Hello, world",greeting\n"two\nlines",other\n')
    assert examples == [{"text": "Hello, world", "label": "greeting"}, {"text": "two\nlines", "label": "other"}]
    assert count_labels("classification", examples) == {"greeting": 1, "other": 1}


def test_jsonl_parsing_keeps_exact_spans_and_skips_blank_lines():
    raw = b'\xef\xbb\xbf{"text": "a", "label": "x"}\r\n\n  \n{"label":"y","text":"b"}'
    result = parse_jsonl(raw, "classification")
    assert result.count == 2 and result.label_stats == {"x": 1, "y": 1}
    assert [raw[s:e] for s, e in result.spans] == [b'{"text": "a", "label": "x"}', b'{"label":"y","text":"b"}']


def test_encoded_examples_round_trip_through_the_parser():
    data, spans = encode_examples([CLS, {"text": "Zürich ☃", "label": "x"}], start=0)
    parsed = parse_jsonl(data, "classification")
    assert parsed.spans == spans and data.endswith(b"\n") and "Zürich".encode() in data


@pytest.mark.parametrize(
    ("example", "field", "problem"),
    [
        ({"text": "\ud800abc", "entities": []}, "text", "not valid Unicode"),
        ({**NER, "metadata": {"note": ["ok", "x\udfff"]}}, "metadata.note[1]", "not valid Unicode"),
        ({**NER, "metadata": {"k\ud800": 1}}, "metadata.k\ufffd", "key that is not valid Unicode"),
        ({**NER, "metadata": {"score": float("nan")}}, "metadata.score", "finite"),
        ({**NER, "metadata": {"score": float("-inf")}}, "metadata.score", "finite"),
        ({**NER, "metadata": json.loads('{"a": ' * 70 + "1" + "}" * 70)}, "metadata.a.a.a.a.a", "64 levels"),
    ],
)
def test_text_that_cannot_be_stored_is_refused_naming_the_field(example, field, problem):
    error = validate_example("ner", example)
    assert error is not None and error.startswith(f"{field}: ") and problem in error, error


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b'{"text": "\\ud800abc", "entities": []}', "line 2: text: is not valid Unicode"),
        (b'{"text": "a", "entities": [], "metadata": {"x": NaN}}', "line 2: metadata.x: must be a finite number"),
        (b'{"text": "a", "entities": [], "metadata": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5001, "line 2: nested"),
    ],
)
def test_jsonl_lines_that_cannot_be_stored_are_refused_with_their_line(line, message):
    with pytest.raises(InvalidRequest) as raised:
        parse_jsonl(b'{"text": "ok", "entities": []}\n' + line + b"\n", "ner")
    assert raised.value.message.startswith(message), raised.value.message


def test_csv_fields_longer_than_the_csv_modules_default_limit_import():
    long_text = "word " * 40_000  # 200,000 characters; the csv module's default limit is 131,072
    examples = csv_to_examples(f'text,label\n"{long_text}",long\n')
    assert examples == [{"text": long_text, "label": "long"}]
