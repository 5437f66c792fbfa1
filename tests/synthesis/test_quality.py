"""Checks applied to every teacher answer: entity location, text hygiene, and format validation."""

from __future__ import annotations

from outrider.synthesis.quality import (
    Mention,
    clean_value,
    locate_entities,
    text_problem,
    trim_to_sentence,
    validation_problem,
    value_problem,
)


def spans(text: str, *mentions: tuple[str, str]) -> list[tuple[str, str]]:
    entities, _ = locate_entities(text, [Mention(value, label) for value, label in mentions])
    for entity in entities:
        assert text[entity["start"] : entity["end"]] == entity["text"]
    return [(e["text"], e["label"]) for e in entities]


def test_offsets_are_computed_from_the_text_for_every_occurrence():
    text = "Tim Cook said Apple will grow. Apple shares rose."
    entities, missing = locate_entities(text, [Mention("Apple", "company"), Mention("Tim Cook", "person")])
    assert missing == []
    assert entities == [
        {"start": 0, "end": 8, "label": "person", "text": "Tim Cook"},
        {"start": 14, "end": 19, "label": "company", "text": "Apple"},
        {"start": 31, "end": 36, "label": "company", "text": "Apple"},
    ]


def test_values_match_whole_words_only():
    assert spans("I ate a pineapple.", ("apple", "fruit")) == []
    assert spans("Artificial intelligence by Art.", ("Art", "person")) == [("Art", "person")]
    # Values that begin or end with punctuation still match next to spaces.
    assert spans("It costs $5 in C++ land.", ("$5", "price"), ("C++", "language")) == [
        ("$5", "price"),
        ("C++", "language"),
    ]


def test_case_differences_fall_back_to_the_texts_own_spelling():
    assert spans("We met at ACME Corp yesterday.", ("Acme Corp", "company")) == [("ACME Corp", "company")]


def test_missing_values_are_reported_and_overlaps_keep_the_longer_span():
    text = "Apple Inc. hired Tim."
    entities, missing = locate_entities(
        text, [Mention("Apple", "company"), Mention("Apple Inc.", "company"), Mention("Sundar", "person")]
    )
    assert [(e["text"], e["start"]) for e in entities] == [("Apple Inc.", 0)]
    assert missing == [Mention("Sundar", "person")]


def test_text_checks():
    assert text_problem("") == "empty_text"
    assert text_problem("   ") == "empty_text"
    assert text_problem("Hello there") == "too_short"
    assert text_problem("Please contact [company's name] today.") == "placeholder"
    assert text_problem("The result was 2738912739812739812738912738917 units.") == "garbled"
    assert text_problem("Sounds like fun!🔍🔥🔬🔵🔴 , Smartwatch") == "garbled"
    assert text_problem("It was helpful in my...I'mmorefearfulabout.So,justcheckmylist,thanks.") == "garbled"
    assert text_problem("Here's the JSON we created: Acme, Bob.") == "prompt_echo"
    assert text_problem("The bank app works well for me.") is None
    assert text_problem("Wow!!! See https://example.com/a/b for the new app...") is None
    assert text_problem("Use `pip install x` and **restart**.", allow_markup=True) is None


def test_trim_to_sentence_drops_a_cut_off_tail_but_keeps_entities():
    assert trim_to_sentence("It works. It is fast.") == "It works. It is fast."
    assert trim_to_sentence("It works. It is fast and it has helped to") == "It works."
    # Never cut before the last entity: then the text stays whole.
    text = "It works. Acme has helped to"
    assert trim_to_sentence(text, keep=text.index("Acme") + 4) == text
    assert trim_to_sentence("no sentence end at all") == "no sentence end at all"


def test_value_checks():
    assert clean_value("  Acme   Corp, ") == "Acme Corp"
    assert value_problem("Acme Corp", "company") is None
    assert value_problem("Company", "company") == "invalid_value"
    assert value_problem("Tech news", "company", ("tech news",)) == "invalid_value"
    assert value_problem("x", "company") == "invalid_value"
    assert value_problem("I think that this is the name of it", "person") == "invalid_value"


def test_validation_uses_the_dataset_format():
    ner = {"text": "Tim Cook runs Apple.", "entities": [{"start": 0, "end": 8, "label": "person", "text": "Tim Cook"}]}
    assert validation_problem("ner", ner, ["person"]) is None
    assert validation_problem("ner", ner, ["company"]) == "unknown_label"
    shifted = {**ner, "entities": [{"start": 1, "end": 9, "label": "person", "text": "Tim Cook"}]}
    assert validation_problem("ner", shifted, ["person"]) == "span_not_in_text"
    assert validation_problem("classification", {"text": "Hi there you", "label": "spam"}, ["ham"]) == "unknown_label"
    chat = {"messages": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello."}]}
    assert validation_problem("decoder", chat, None) is None
