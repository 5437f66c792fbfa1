"""Decoder scoring: exact match (JSON compared parsed), JSON-valid and schema-valid rates, and their bootstrap."""

import numpy as np
import pytest

from outrider.evaluation.decoder_scoring import (
    DecoderCase,
    check_schema,
    compare_decoders,
    decoder_cases,
    example_figures,
    score_decoder,
)

SCHEMA = {"type": "object", "properties": {"age": {"type": "integer"}}, "required": ["age"]}


def test_an_example_is_asked_without_its_last_answer():
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
    ]
    [case] = decoder_cases([{"messages": messages}])
    assert case.messages == messages[:2] and case.expected == "Hello"
    with pytest.raises(ValueError, match="assistant"):
        decoder_cases([{"messages": [{"role": "user", "content": "Hi"}]}])


def test_each_answer_is_scored_exact_json_and_schema():
    validator = check_schema(SCHEMA)
    assert example_figures('{"age": 31}', '{ "age":31 }', validator) == [1.0, 1.0, 1.0]  # JSON compared parsed
    assert example_figures('{"age": 31}', '{"age": "31"}', validator) == [0.0, 1.0, 0.0]
    assert example_figures("forty", " forty\n", validator) == [1.0, 0.0, 0.0]  # white space trimmed
    assert example_figures("forty", "Forty", None) == [0.0, 0.0, 0.0]
    assert example_figures("[1, 2]", "[1, 2]", None) == [1.0, 1.0, 0.0]  # no schema: schema_valid stays 0
    with pytest.raises(ValueError, match="json_schema"):
        check_schema({"type": 5})


def test_rates_and_a_paired_bootstrap_of_each():
    cases = [DecoderCase([], '{"age": 1}'), DecoderCase([], '{"age": 2}'), DecoderCase([], "x"), DecoderCase([], "y")]
    base, base_rows = score_decoder(cases, ['{"age": 1}', "nope", "nope", "nope"], SCHEMA)
    better, better_rows = score_decoder(cases, ['{"age": 1}', '{"age": 2}', "x", "y"], SCHEMA)
    assert base == {"exact_match": 0.25, "json_valid": 0.25, "schema_valid": 0.25}
    assert better == {"exact_match": 1.0, "json_valid": 0.5, "schema_valid": 0.5}
    assert score_decoder(cases[:1], ["{}"], None)[0]["schema_valid"] is None
    compared = compare_decoders(base_rows, better_rows, with_schema=True, resamples=200)
    exact = compared["figures"]["exact_match"]
    assert exact["difference"] == 0.75 and exact["ci95"][0] > 0 and exact["p_value"] < 0.05
    assert compared["examples"] == 4 and set(compared["figures"]) == {"exact_match", "json_valid", "schema_valid"}
    same = compare_decoders(base_rows, base_rows, with_schema=False, resamples=50)
    assert set(same["figures"]) == {"exact_match", "json_valid"}
    assert all(f["difference"] == 0 and f["p_value"] == 1 for f in same["figures"].values())
    with pytest.raises(ValueError):
        compare_decoders(base_rows, np.zeros((3, 3)), with_schema=False)
