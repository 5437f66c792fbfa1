"""The judge's prompt and the parsing of its answer."""

from datetime import UTC, datetime

import pytest

from outrider.services.judging import judge_prompt, parse_verdict
from outrider.storage.records import Inference


def record(task: str, given: dict, output: object) -> Inference:
    return Inference(
        "inf_1",
        "acct",
        None,
        "native",
        "m",
        "m",
        task,
        None,
        None,
        given,
        output,
        "success",
        None,
        None,
        1.0,
        0,
        0,
        0,
        None,
        datetime.now(UTC),
    )


def test_the_prompt_shows_input_schema_and_output():
    extraction = record(
        "extract", {"text": "Tim Cook", "schema": {"entities": ["person"]}}, {"entities": {"person": []}}
    )
    shown = judge_prompt(extraction)[1].content
    assert "Tim Cook" in shown and '"person"' in shown and "Model output" in shown
    chat = record("generate", {"messages": [{"role": "user", "content": "2+2?"}]}, {"completion": "4"})
    assert "2+2?" in judge_prompt(chat)[1].content and '"4"' in judge_prompt(chat)[1].content
    long = record("extract", {"text": "x" * 10_000, "schema": {}}, {})
    assert len(judge_prompt(long)[1].content) < 9000


def test_only_a_well_formed_verdict_is_accepted():
    assert parse_verdict('{"verdict": "pass", "score": 1, "reasoning": "ok"}') == ("pass", 1.0, "ok")
    fenced = 'Sure:\n```json\n{"verdict": "fail", "score": 0.2, "reasoning": "no"}\n```'
    assert parse_verdict(fenced) == ("fail", 0.2, "no")
    for bad in ('{"verdict": "great", "score": 1}', '{"verdict": "fail", "score": 2}', "Hello", '{"verdict": "fail"}'):
        with pytest.raises(ValueError):
            parse_verdict(bad)
